// A real Queues server (QueuesApp, real gRPC port) on the shared emulators, with
// its own table and queues, so test files never see each other's tasks, and the
// reader of its table's stream (the table stream function: owners' Totals). AWS SDK
// middleware is used only to inject faults and to count calls.
import { randomBytes } from "node:crypto";
import { SQSClient, GetQueueAttributesCommand, SendMessageCommand, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { pino, type Logger } from "pino";
import { QueuesApp } from "../../service/src/app.js";
import { parseChannels, type ChannelEntry } from "../../service/src/config/channels.js";
import { DEFAULTS, type Settings } from "../../service/src/config/settings.js";
import { provision } from "../../service/src/local/backends.js";
import { StreamRunner } from "../../service/src/local/stream-runner.js";
import { createSqsClients, type SqsClients } from "../../service/src/queue/sqs-client.js";
import { createDocumentClient } from "../../service/src/store/dynamo-client.js";
import { Api } from "./client.js";

/** One AWS SDK call the server made, as the test saw it (see Faults.log). */
export interface AwsCall {
  /** The command's name, e.g. "UpdateItemCommand". */
  command: string;
  input: unknown;
  /** Attempts sent to the backend (more than 1: the SDK retried, e.g. after a lost answer). */
  attempts: number;
  /** The answer, once the call returned. */
  output?: unknown;
  /** The error the caller got, once the call failed. */
  error?: Error;
  /** Failed by a fault this class injected (fail(), failAlways() or a hook that threw). */
  injected: boolean;
}

/** The most calls Faults.log keeps (the oldest go first). */
const CALL_LOG_LIMIT = 50_000;

/** Fails or counts chosen AWS SDK commands (by name, e.g. "SendMessageCommand"), and logs every call. */
export class Faults {
  /** Every call since the last clear(), in the order they were made. */
  readonly log: AwsCall[] = [];
  private readonly rules: { command: string; remaining: number; error: () => Error }[] = [];
  private readonly lostAnswers: { command: string; remaining: number; when: (input: unknown) => boolean }[] = [];
  /** How many answers loseAnswer() has swallowed since the last clear(). */
  answersLost = 0;
  readonly calls = new Map<string, number>();
  /** Runs before a command is sent; may throw to fail it (or wait to delay it). */
  hook: ((command: string, input: unknown) => Promise<void> | void) | undefined;

  /** Fails the next `times` calls of the command with a network error (or the given one). */
  fail(command: string, times = 1, error: () => Error = connectionRefused): this {
    this.rules.push({ command, remaining: times, error });
    return this;
  }

  /** Fails every call of the command until clear(). */
  failAlways(command: string, error: () => Error = connectionRefused): this {
    return this.fail(command, Number.POSITIVE_INFINITY, error);
  }

  /**
   * The next `times` matching calls reach the backend and take effect, but their answer
   * is lost (a timeout): the SDK's own retry sends the same request again.
   */
  loseAnswer(command: string, times = 1, when: (input: unknown) => boolean = () => true): this {
    this.lostAnswers.push({ command, remaining: times, when });
    return this;
  }

  clear(): void {
    this.log.length = 0;
    this.rules.length = 0;
    this.lostAnswers.length = 0;
    this.answersLost = 0;
    this.hook = undefined;
  }

  count(command: string): number {
    return this.calls.get(command) ?? 0;
  }

  attach(client: { middlewareStack: { add(middleware: unknown, options: object): void } }): void {
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string; testCall?: AwsCall }) => async (args: { input?: unknown }) => {
        const command = context.commandName ?? "unknown";
        this.calls.set(command, (this.calls.get(command) ?? 0) + 1);
        const call: AwsCall = { command, input: args.input, attempts: 0, injected: false };
        context.testCall = call;
        this.log.push(call);
        if (this.log.length > CALL_LOG_LIMIT) this.log.splice(0, this.log.length - CALL_LOG_LIMIT);
        try {
          await this.hook?.(command, args.input);
          const rule = this.rules.find((r) => r.command === command && r.remaining > 0);
          if (rule) {
            rule.remaining -= 1;
            throw rule.error();
          }
        } catch (error) {
          call.injected = true;
          call.error = error as Error;
          throw error;
        }
        try {
          const result = (await next(args)) as { output?: unknown };
          call.output = result?.output;
          return result;
        } catch (error) {
          call.error = error as Error;
          throw error;
        }
      },
      { step: "initialize", priority: "low", name: "testFaults" },
    );
    // Inside the SDK's retry loop (which is in the finalizeRequest step), so a lost answer is retried.
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string; testCall?: AwsCall }) => async (args: { input?: unknown }) => {
        if (context.testCall) context.testCall.attempts += 1;
        const result = await next(args);
        const rule = this.lostAnswers.find((r) => r.command === context.commandName && r.remaining > 0 && r.when(args.input));
        if (rule) {
          rule.remaining -= 1;
          this.answersLost += 1;
          throw Object.assign(new Error("the answer was lost (injected)"), { name: "TimeoutError", $metadata: {} });
        }
        return result;
      },
      { step: "deserialize", priority: "high", name: "testLostAnswers" },
    );
  }
}

export function connectionRefused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1 (injected)"), { code: "ECONNREFUSED" });
}

export interface TestServerOptions {
  /** Channels (SPEC §5 format). Default: "default" (30 s lease) and "other". */
  channels?: ChannelEntry[];
  settings?: Partial<Settings>;
  /** Start another replica on the same table and queues as this server (sharing its stream reader). */
  replicaOf?: TestServer;
  /** A table of this name (made where missing, as provisioning does), instead of a new one. */
  tableName?: string;
  /** Queues with this prefix (made where missing), instead of new ones. */
  queuePrefix?: string;
  logLevel?: string;
  /** The server's logger (a test that reads the log lines); default: testLogger(logLevel). */
  logger?: Logger;
  /**
   * Read the table's stream, as `npm run dev` does (default true). Its clients are its
   * own: faults injected into the server's never reach it (attach some to `stream.db`
   * to fail it).
   */
  streamReader?: boolean;
  /** The server's clock (default Date.now): a test moves it to see tasks scheduled far ahead come due. */
  now?: () => number;
}

export interface TestServer {
  app: QueuesApp;
  address: string;
  settings: Settings;
  queueUrls: Record<string, string>;
  api: Api;
  faults: Faults;
  /** Clients of the server itself (faults attach to them). */
  dynamo: DynamoDBDocumentClient;
  sqsClients: SqsClients;
  /** A separate SQS client for the test to look at queues. */
  sqs: SQSClient;
  /** The reader of the table's stream: one per table, shared by its servers, stopped with the last of them. */
  stream: StreamRunner | undefined;
  /**
   * Shuts the server down. By default its long polls in flight are abandoned (the test's queues
   * go with it); `waitForLongPolls` drains as SIGTERM does on ECS, releasing what they bring back,
   * for a test whose next server goes on with the same queues.
   */
  stop(options?: { waitForLongPolls?: boolean }): Promise<void>;
}

export const TEST_SETTINGS: Partial<Settings> = {
  retryBaseMs: 200,
  retryMaxMs: 2_000,
  // A pass reads 16 outbox shards (core/sweeper.ts), each an index Query that costs DynamoDB Local
  // about 2-3 ms of CPU: at one pass a second an idle test server cost DynamoDB Local 4 % of a core
  // and itself 1 %, and the suite has 4 to 6 of them up at any time on 2 cores. With sweepAfterMs
  // 30 s nothing is due during most tests anyway; tests that wait for the sweeper set their own interval.
  sweepIntervalMs: 5_000,
  sweepAfterMs: 30_000,
  drainTimeoutMs: 5_000,
  healthIntervalMs: 250,
};

export function testLogger(level = process.env.TEST_LOG_LEVEL ?? "silent"): Logger {
  return pino({ level });
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const base = options.replicaOf;
  const channels = parseChannels(options.channels ?? base?.settings.channels ?? [{ name: "default" }, "other"], "test channels");
  const id = randomBytes(4).toString("hex");
  const tableName = base?.settings.tableName ?? options.tableName ?? `t-${id}`;
  const queuePrefix = base?.settings.queuePrefix ?? options.queuePrefix ?? `t${id}`;
  const { queueUrls } = base ? { queueUrls: base.queueUrls } : await provision(tableName, queuePrefix, channels);
  const settings: Settings = {
    ...DEFAULTS,
    ...TEST_SETTINGS,
    ...options.settings,
    host: "127.0.0.1",
    // A fixed port lets a test restart a server where its clients expect it.
    port: options.settings?.port ?? 0,
    tableName,
    channels,
    queueUrls,
    queuePrefix,
  };
  const readsStream = options.streamReader ?? (base ? base.stream !== undefined : true);
  const stream = readsStream ? await acquireStreamReader(tableName) : undefined;
  const releaseStream = async () => {
    if (readsStream) await releaseStreamReader(tableName);
  };
  const faults = new Faults();
  const dynamo = createDocumentClient();
  const sqsClients = createSqsClients();
  faults.attach(dynamo);
  faults.attach(sqsClients.sqs);
  faults.attach(sqsClients.poll);
  const app = new QueuesApp({ settings, logger: options.logger ?? testLogger(options.logLevel), dynamo, sqs: sqsClients, now: options.now });
  let port: number;
  try {
    port = await app.start();
    await app.health.check();
  } catch (error) {
    await releaseStream();
    throw error;
  }
  const address = `127.0.0.1:${port}`;
  const api = new Api(address);
  const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  let stopped = false;
  return {
    app,
    address,
    settings,
    queueUrls,
    api,
    faults,
    dynamo,
    sqsClients,
    sqs,
    stream,
    stop: async (options = {}) => {
      if (stopped) return;
      stopped = true;
      api.close();
      faults.clear();
      // Unless a next server takes over the queues, they go with the test: no need to wait out a long poll in flight (up to 5 s here).
      await app.shutdown({ abandonLongPolls: options.waitForLongPolls !== true });
      sqs.destroy();
      dynamo.destroy();
      sqsClients.sqs.destroy();
      sqsClients.poll.destroy();
      await releaseStream();
    },
  };
}

/** The stream readers of the tables of running test servers: one per table, as on AWS one Lambda reads the stream. */
const streamReaders = new Map<string, { reader: Promise<StreamRunner>; users: number }>();

async function acquireStreamReader(tableName: string): Promise<StreamRunner> {
  let entry = streamReaders.get(tableName);
  if (!entry) {
    const log = testLogger();
    const reader = StreamRunner.start({ tableName, onError: (error) => log.warn({ err: error }, "table stream: a batch failed; trying again") });
    entry = { reader, users: 0 };
    streamReaders.set(tableName, entry);
    reader.catch(() => streamReaders.delete(tableName));
  }
  entry.users += 1;
  return entry.reader;
}

async function releaseStreamReader(tableName: string): Promise<void> {
  const entry = streamReaders.get(tableName);
  if (!entry || --entry.users > 0) return;
  streamReaders.delete(tableName);
  await (await entry.reader).stop();
}

/** Visible, in-flight and delayed message counts of a channel's queue. */
export async function queueCounts(server: TestServer, channel = "default"): Promise<{ visible: number; inFlight: number; delayed: number }> {
  const { Attributes } = await server.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: server.queueUrls[channel],
      AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
    }),
  );
  return {
    visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

/** Puts a message on a channel's queue directly, bypassing the server (e.g. a duplicate delivery). */
export async function sendRawMessage(server: TestServer, body: string, channel = "default"): Promise<void> {
  await server.sqs.send(new SendMessageCommand({ QueueUrl: server.queueUrls[channel], MessageBody: body }));
}

/** Takes messages off a channel's queue directly (the test plays a crashed replica). */
export async function receiveRawMessages(server: TestServer, channel = "default", visibilitySeconds = 30) {
  const { Messages } = await server.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: server.queueUrls[channel], MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: visibilitySeconds }),
  );
  return Messages ?? [];
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value or the time is up. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await sleep(everyMs);
  }
}

/** Waits until a channel's queue holds no message at all (visible, in flight or delayed). */
export async function queueDrained(server: TestServer, channel = "default"): Promise<void> {
  await eventually(async () => {
    const counts = await queueCounts(server, channel);
    return counts.visible === 0 && counts.inFlight === 0 && counts.delayed === 0;
  });
}
