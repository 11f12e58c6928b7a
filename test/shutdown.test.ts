// SPEC §4 "Graceful shutdown", through the real thing: the compiled server
// (`dist/service/main.js`) as its own process gets a real SIGTERM while a worker has
// a handler running, a report in flight and messages received for its credits. To keep
// work in flight at the instant of the signal, the server reaches DynamoDB through a
// proxy that can hold requests (a slow backend); a second proxy in front of SQS only
// watches (to see when a long poll is in flight).
//
// Proven here, per replica process: the report in flight is written and answered 200
// on its own stream before that stream ends with UNAVAILABLE; receive streams end with
// UNAVAILABLE; the process exits 0 within QUEUES_DRAIN_TIMEOUT_MS; a task whose handler
// was still running keeps its lease across the restart and its result is accepted by
// the next server (RetryCount 0); messages received from SQS for credits but not yet
// handed to a worker (their lease write was in flight, or a long poll brought them back
// during the drain) are visible again at once, not after the 60 s visibility timeout,
// their tasks WAITING with RetryCount 0, and are delivered later. The in-process
// variant of the drain (a fault hook, QueuesApp.shutdown()) is in operations.test.ts,
// release on a closed stream in delivery.test.ts ("stream close").
//
// A drain waits for the long polls in flight (up to 20 s) even when no stream is left
// to serve; so every replica stopped here cleanly has no credit outstanding, or gets a
// message for its last poll.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer, Socket, type Server } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { QueuesClient, Worker, type Task } from "@queues/client";
import { parseChannels } from "../service/src/config/channels.js";
import { freePort } from "../service/src/local/free-port.js";
import { provision, useLocalCredentials } from "../service/src/local/backends.js";
import { requireBuild, SERVER_ENTRYPOINT, serverEnv, waitServing } from "./harness/processes.js";
import { Api, ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { eventually, queueCounts, sleep, type TestServer } from "./support/harness.js";

/** Long enough that a message the server kept would stay hidden far beyond any assertion here. */
const VISIBILITY_SECONDS = 60;
/** The replicas' QUEUES_DRAIN_TIMEOUT_MS; every drain here must end well before it. */
const DRAIN_TIMEOUT_MS = 15_000;
/**
 * A request to DynamoDB is never held longer than this: the server's DynamoDB client
 * gives up on a silent connection after 5 s (requestTimeout) and retries, and a retried
 * conditional write whose first copy also lands is another test.
 */
const HOLD_BUDGET_MS = 4_000;
/** The drain is watched this long after SIGTERM (within the budget) while DynamoDB is held. */
const HOLD_AFTER_SIGTERM_MS = 1_000;

// ------------------------------------------------------------------ a TCP proxy that can hold requests

interface Connection {
  client: Socket;
  upstream: Socket;
  /** Bytes of the request being sent (client → backend) since the backend last answered. */
  request: string;
  /** A request went out and no byte of its answer came back yet. */
  awaitingAnswer: boolean;
  /** Request chunks kept back while the proxy holds. */
  held: Buffer[];
}

/**
 * A TCP proxy in front of a backend (HTTP/1.1 with keep-alive: one request at a time per
 * connection). hold() keeps every request byte back (a backend that takes as long as the
 * test wants), release() sends what was kept and lets everything through again; both
 * ways, it notes which requests are still waiting for their answer.
 */
class HoldingProxy {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private holding = false;
  /** When the first request byte was held since hold() (0: none yet). */
  heldSince = 0;
  address = "";

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      const upstream = new Socket();
      upstream.connect(this.target.port, this.target.host);
      const connection: Connection = { client, upstream, request: "", awaitingAnswer: false, held: [] };
      this.connections.add(connection);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.connections.delete(connection);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      client.on("data", (chunk: Buffer) => {
        if (!connection.awaitingAnswer) {
          connection.request = "";
          connection.awaitingAnswer = true;
        }
        connection.request += chunk.toString("latin1");
        if (this.holding || connection.held.length > 0) {
          this.heldSince ||= Date.now();
          connection.held.push(chunk);
        } else upstream.write(chunk);
      });
      upstream.on("data", (chunk: Buffer) => {
        connection.awaitingAnswer = false;
        client.write(chunk);
      });
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    const bound = this.server.address();
    this.address = `http://127.0.0.1:${typeof bound === "object" && bound ? bound.port : 0}`;
    return this.address;
  }

  hold(): void {
    this.holding = true;
    this.heldSince = 0;
  }

  release(): void {
    this.holding = false;
    this.heldSince = 0;
    for (const connection of this.connections) {
      for (const chunk of connection.held.splice(0)) connection.upstream.write(chunk);
    }
  }

  /** The requests sent and not answered yet (held ones included), as text. */
  unanswered(): string[] {
    return [...this.connections].filter((c) => c.awaitingAnswer).map((c) => c.request);
  }

  /** Held requests that mention `text` (a task ID in a DynamoDB key). */
  heldMentioning(text: string): number {
    return [...this.connections].filter((c) => c.held.length > 0 && c.request.includes(text)).length;
  }

  async close(): Promise<void> {
    this.release();
    for (const connection of this.connections) {
      connection.client.destroy();
      connection.upstream.destroy();
    }
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function endpointTarget(endpoint: string): { host: string; port: number } {
  const url = new URL(endpoint);
  return { host: url.hostname, port: Number(url.port) };
}

// ------------------------------------------------------------------ server replicas as processes

interface Replica {
  child: ChildProcess;
  address: string;
  /** Its stdout and stderr (JSON log lines), for failure messages and log checks. */
  output(): string;
  /** Resolves with the exit code (null: killed by a signal) and the time it exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const replicas: Replica[] = [];

let table: string;
let queueUrls: Record<string, string>;
let channels: ReturnType<typeof parseChannels>;
/** A view of the queues for queueCounts() (it needs only an SQS client and the URLs). */
let queues: TestServer;
let sqs: SQSClient;

function startReplica(port: number, dynamodbEndpoint: string, sqsEndpoint: string): Replica {
  const env = serverEnv(
    { dynamodbEndpoint, sqsEndpoint, table, queueUrls, stop: async () => {} },
    channels,
    { QUEUES_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_MS), LOG_LEVEL: "info", PORT: String(port) },
  );
  const child = spawn(process.execPath, [SERVER_ENTRYPOINT], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-200_000));
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  const replica = { child, address: `127.0.0.1:${port}`, output: () => output, exited };
  replicas.push(replica);
  return replica;
}

async function startServing(port: number, dynamodbEndpoint: string, sqsEndpoint: string): Promise<Replica> {
  const replica = startReplica(port, dynamodbEndpoint, sqsEndpoint);
  try {
    await Promise.race([
      waitServing(replica.address, "drain"),
      replica.exited.then(({ code }) => Promise.reject(new Error(`the server exited (${code}) before serving`))),
    ]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n${replica.output()}`);
  }
  return replica;
}

function running(replica: Replica): boolean {
  return replica.child.exitCode === null && replica.child.signalCode === null;
}

/** Waits for the exit; fails with the replica's log if it takes longer than `ms`. */
async function exitOf(replica: Replica, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not exit within ${ms} ms\n${replica.output().slice(-5_000)}`)), ms);
  });
  try {
    return await Promise.race([replica.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Rejects if `promise` does not settle within `ms` (with what was waited for). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

beforeAll(async () => {
  requireBuild("the shutdown tests");
  useLocalCredentials();
  const id = randomBytes(4).toString("hex");
  table = `shutdown-${id}`;
  channels = parseChannels(
    [
      { name: "drain", visibilityTimeoutSeconds: VISIBILITY_SECONDS },
      { name: "sdk", visibilityTimeoutSeconds: VISIBILITY_SECONDS },
      { name: "release", visibilityTimeoutSeconds: VISIBILITY_SECONDS },
      { name: "late", visibilityTimeoutSeconds: VISIBILITY_SECONDS },
    ],
    "shutdown test channels",
  );
  ({ queueUrls } = await provision(table, `shutdown${id}`, channels));
  sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
  queues = { sqs, queueUrls } as unknown as TestServer;
});

afterAll(() => {
  sqs?.destroy();
});

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup();
    } catch {
      // best effort: the next cleanup still runs
    }
  }
  // No replica outlives its test, whatever happened in it.
  for (const replica of replicas.splice(0)) {
    if (!running(replica)) continue;
    replica.child.kill("SIGKILL");
    await replica.exited;
  }
});

const dynamodbEndpoint = () => process.env.AWS_ENDPOINT_URL_DYNAMODB as string;
const sqsEndpoint = () => process.env.AWS_ENDPOINT_URL_SQS as string;

/**
 * Keeps DynamoDB held after SIGTERM until `drainSeen` (the streams' end shows the drain
 * runs) and at least HOLD_AFTER_SIGTERM_MS have passed, but never past the hold budget.
 */
async function watchDrainWhileHeld(dynamo: HoldingProxy, sigtermAt: number, drainSeen: () => boolean): Promise<void> {
  const releaseBy = dynamo.heldSince + HOLD_BUDGET_MS;
  while (!drainSeen() && Date.now() < releaseBy) await sleep(10);
  await sleep(Math.max(0, Math.min(sigtermAt + HOLD_AFTER_SIGTERM_MS, releaseBy) - Date.now()));
}

/** The two proxies of a leaving replica: DynamoDB through one that can hold requests, SQS through one that only watches. */
async function proxies(): Promise<{ dynamo: HoldingProxy; sqsWatch: HoldingProxy }> {
  const dynamo = new HoldingProxy(endpointTarget(dynamodbEndpoint()));
  const sqsWatch = new HoldingProxy(endpointTarget(sqsEndpoint()));
  cleanups.push(
    () => dynamo.close(),
    () => sqsWatch.close(),
  );
  await Promise.all([dynamo.listen(), sqsWatch.listen()]);
  return { dynamo, sqsWatch };
}

function api(address: string): Api {
  const client = new Api(address);
  cleanups.push(() => client.close());
  return client;
}

async function emptyQueue(channel: string): Promise<void> {
  await eventually(
    async () => {
      const counts = await queueCounts(queues, channel);
      return counts.visible === 0 && counts.inFlight === 0 && counts.delayed === 0;
    },
    15_000,
    200,
  );
}

/** Ends the replica with SIGTERM and expects a clean exit (exit 0, no drain timeout). */
async function stopCleanly(replica: Replica): Promise<void> {
  const sentAt = Date.now();
  replica.child.kill("SIGTERM");
  const exit = await exitOf(replica, DRAIN_TIMEOUT_MS + 5_000);
  expect(exit, replica.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
  expect(exit.at - sentAt).toBeLessThan(DRAIN_TIMEOUT_MS);
}

describe("SIGTERM with work in flight (the server as its own process)", () => {
  it("raw streams: the report in flight is written and answered 200 on its stream, then UNAVAILABLE; receive streams end UNAVAILABLE at once; exit 0 within the drain timeout; the task still running is reported to the restarted server", async () => {
    const { dynamo, sqsWatch } = await proxies();
    const port = await freePort();
    const leaving = await startServing(port, dynamo.address, sqsWatch.address);
    // One client for the whole test, on the one address: it outlives the restart.
    const client = api(leaving.address);
    const created = [await client.create({ Channel: "drain", Input: "one" }), await client.create({ Channel: "drain", Input: "two" })];
    const receive = new ReceiveStream(client, "drain").credit(2);
    cleanups.push(() => receive.cancel());
    const [stillRunning, done] = [await receive.next(10_000), await receive.next(10_000)];
    expect(new Set([stillRunning.ID, done.ID])).toEqual(new Set(created.map((task) => task.ID)));
    const reports = new ReportStream(client);
    cleanups.push(() => reports.end());

    // DynamoDB stalls; the report of `done` reaches it and waits there.
    dynamo.hold();
    let answeredAt = 0;
    const inFlight = reports.report(done.ID, ReportState.SUCCESS, "result two", done.LeaseToken).then((answer) => ((answeredAt = Date.now()), answer));
    inFlight.catch(() => {}); // awaited below; a rejection must fail the test there, not as an unhandled one
    await eventually(() => dynamo.heldMentioning(done.ID) > 0, 10_000, 20);

    const sigtermAt = Date.now();
    leaving.child.kill("SIGTERM");
    await watchDrainWhileHeld(dynamo, sigtermAt, () => receive.ended);
    // The receive stream ended at once (its worker goes to another replica) while the
    // drain waits for the report's write: not answered, not cut off, the process still up.
    expect(receive.ended).toBe(true);
    expect(answeredAt).toBe(0);
    expect(running(leaving)).toBe(true);

    dynamo.release();
    const receiveStatus = await receive.status;
    expect(receiveStatus.code, `receive stream ended with ${grpc.status[receiveStatus.code]}: ${receiveStatus.details}`).toBe(grpc.status.UNAVAILABLE);
    const answer = await within(inFlight, 10_000, "the answer to the report in flight");
    expect(answer).toMatchObject({ State: "200", Data: done.ID });
    const reportStatus = await within(reports.status, 5_000, "the report stream's end");
    expect(reportStatus.code, `report stream ended with ${grpc.status[reportStatus.code]}: ${reportStatus.details}`).toBe(grpc.status.UNAVAILABLE);
    const exit = await exitOf(leaving, DRAIN_TIMEOUT_MS + 5_000);
    expect(exit, leaving.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_TIMEOUT_MS);
    // It drained; it was not cut off by its drain timeout.
    expect(leaving.output()).not.toContain("drain timeout reached");

    // The same port again, DynamoDB direct: the report's write is there, and the task
    // whose worker is still on it kept its lease (no attempt counted, same lease token).
    const restarted = await startServing(port, dynamodbEndpoint(), sqsEndpoint());
    expect(await client.get(done.ID)).toMatchObject({ State: "SUCCESS", Output: "result two", RetryCount: "0" });
    expect(await client.get(stillRunning.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
    const later = new ReportStream(client);
    cleanups.push(() => later.end());
    expect(await later.report(stillRunning.ID, ReportState.SUCCESS, "result one", stillRunning.LeaseToken)).toMatchObject({ State: "200", Data: stillRunning.ID });
    expect(await client.get(stillRunning.ID)).toMatchObject({ State: "SUCCESS", Output: "result one", RetryCount: "0" });
    // Nothing left over or lost: both messages were deleted with their SUCCESS.
    await emptyQueue("drain");
    later.end();
    await stopCleanly(restarted);
  });

  it("SDK Worker: a running handler survives the restart and its result is accepted; the result in flight is acknowledged by the leaving server; the message leased for the next credit is handed back", async () => {
    const { dynamo, sqsWatch } = await proxies();
    const port = await freePort();
    const leaving = await startServing(port, dynamo.address, sqsWatch.address);
    const address = leaving.address;
    const client = new QueuesClient({ address });
    cleanups.push(() => client.close());
    const ids: string[] = [];
    for (const input of ["x", "y", "z"]) ids.push((await client.getTaskByHashCode(await client.createTask({ channel: "sdk", input }))).ID);

    const gates = new Map<string, ReturnType<typeof deferred>>();
    const gate = (id: string) => gates.get(id) ?? (gates.set(id, deferred()), gates.get(id) as ReturnType<typeof deferred>);
    const started: Task[] = [];
    const succeeded = new Map<string, { output: string; at: number }>();
    const reconnects: { stream: string; code: number | undefined }[] = [];
    const errors: Error[] = [];
    const worker = new Worker({
      address,
      channel: "sdk",
      concurrency: 2,
      reconnect: { initialMs: 100, maxMs: 1_000 },
      drainTimeoutMs: 3_000,
      handler: async (task) => {
        started.push(task);
        await gate(task.ID).promise;
        return `result ${task.Input}`;
      },
    });
    worker.on("taskSucceeded", (task, output) => succeeded.set(task.ID, { output, at: Date.now() }));
    worker.on("reconnecting", ({ stream, error }) => reconnects.push({ stream, code: (error as grpc.ServiceError | undefined)?.code }));
    worker.on("error", (error) => errors.push(error));
    const run = worker.run();
    run.catch(() => {});
    cleanups.push(async () => {
      for (const pending of gates.values()) pending.resolve();
      await worker.close();
    });

    // Two handlers run (concurrency 2); the third task waits in the queue.
    await eventually(() => started.length === 2, 15_000, 20);
    const [keepsRunning, finishes] = started as [Task, Task];
    const third = ids.find((id) => id !== keepsRunning.ID && id !== finishes.ID) as string;

    // DynamoDB stalls. One handler finishes: its SUCCESS goes out, and the credit it frees
    // brings the third task's message, whose lease write waits on DynamoDB too.
    dynamo.hold();
    gate(finishes.ID).resolve();
    await eventually(() => dynamo.heldMentioning(finishes.ID) > 0 && dynamo.heldMentioning(third) > 0, 10_000, 20);

    const sigtermAt = Date.now();
    leaving.child.kill("SIGTERM");
    await watchDrainWhileHeld(dynamo, sigtermAt, () => reconnects.some((r) => r.stream === "receive"));
    // The receive stream ended with UNAVAILABLE while the result was still being written.
    expect(reconnects.find((r) => r.stream === "receive")?.code).toBe(grpc.status.UNAVAILABLE);
    expect(succeeded.has(finishes.ID)).toBe(false);
    expect(running(leaving)).toBe(true);
    dynamo.release();

    const exit = await exitOf(leaving, DRAIN_TIMEOUT_MS + 5_000);
    expect(exit, leaving.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_TIMEOUT_MS);
    expect(leaving.output()).not.toContain("drain timeout reached");
    // Acknowledged by the leaving server itself (no other server existed before it exited).
    expect(succeeded.get(finishes.ID)).toMatchObject({ output: `result ${finishes.Input}` });
    expect((succeeded.get(finishes.ID)?.at ?? Infinity) <= exit.at).toBe(true);
    // The third task's message was handed back: visible again now (not in 60 s); the running task's message stays leased.
    expect(await queueCounts(queues, "sdk")).toMatchObject({ visible: 1, inFlight: 1, delayed: 0 });
    // Meanwhile the handler is still running, with nothing aborted.
    expect(worker.active).toBe(1);

    const restarted = await startServing(port, dynamodbEndpoint(), sqsEndpoint());
    // The worker comes back on its own and gets the handed-back task as a first attempt.
    await eventually(() => started.length === 3, 20_000, 50);
    expect(started[2]).toMatchObject({ ID: third, RetryCount: "0" });
    gate(third).resolve();
    await eventually(() => succeeded.has(third), 15_000, 50);
    expect(await client.getTask(keepsRunning.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });

    gate(keepsRunning.ID).resolve();
    await eventually(() => succeeded.has(keepsRunning.ID), 15_000, 50);
    for (const id of ids) {
      const task = await client.getTask(id);
      expect(task).toMatchObject({ State: "SUCCESS", RetryCount: "0" });
      expect(task.Output).toBe(`result ${task.Input}`);
    }
    // Each handler ran once: no redelivery, no attempt lost.
    expect(started.map((task) => task.ID).sort()).toEqual([...ids].sort());
    expect(errors).toEqual([]);
    await emptyQueue("sdk");
    await worker.close();
    // `restarted` is left to afterEach: the worker's two credits left a long poll in flight
    // there, which its drain would wait for (up to 20 s, or the drain timeout).
    expect(running(restarted)).toBe(true);
  });

  it("messages received for credits but not handed to a worker are visible again at once, their tasks WAITING with RetryCount 0, and delivered later", async () => {
    const { dynamo, sqsWatch } = await proxies();
    const leaving = await startServing(await freePort(), dynamo.address, sqsWatch.address);
    const staying = await startServing(await freePort(), dynamodbEndpoint(), sqsEndpoint());
    const onLeaving = api(leaving.address);
    const onStaying = api(staying.address);
    const created: WireTask[] = [];
    for (let i = 0; i < 3; i++) created.push(await onStaying.create({ Channel: "release", Input: `before ${i}` }));

    // Three credits on the leaving replica take the three messages (hidden for 60 s), and
    // their lease writes stall on DynamoDB; a fourth credit, for the empty channel "late",
    // leaves a long poll in flight there.
    dynamo.hold();
    const receive = new ReceiveStream(onLeaving, "release").credit(3).credit(1, "late");
    cleanups.push(() => receive.cancel());
    await eventually(() => created.every((task) => dynamo.heldMentioning(task.ID) > 0), 10_000, 10);

    const sigtermAt = Date.now();
    leaving.child.kill("SIGTERM");
    await watchDrainWhileHeld(dynamo, sigtermAt, () => receive.ended);
    expect(receive.ended).toBe(true);
    expect(running(leaving)).toBe(true);
    // DynamoDB answers: the three leases land after their stream is gone, so they are
    // handed back and their messages released.
    dynamo.release();
    const status = await receive.status;
    expect(status.code, `receive stream ended with ${grpc.status[status.code]}: ${status.details}`).toBe(grpc.status.UNAVAILABLE);
    await eventually(async () => {
      const counts = await queueCounts(queues, "release");
      return counts.visible === 3 && counts.inFlight === 0;
    }, 8_000, 100);

    // The long poll on "late" is still out: the drain waits for it. A task created there on
    // the other replica now: that poll brings its message back, and it is released too.
    await eventually(() => sqsWatch.unanswered().some((request) => request.includes("ReceiveMessage") && request.includes("-late")), 5_000, 20);
    const late = await onStaying.create({ Channel: "late", Input: "during the drain" });
    await eventually(async () => {
      const counts = await queueCounts(queues, "late");
      return counts.visible === 1 && counts.inFlight === 0;
    }, 8_000, 100);
    // All far below the 60 s visibility timeout the messages were received with.
    expect(Date.now() - sigtermAt).toBeLessThan(30_000);
    const exit = await exitOf(leaving, DRAIN_TIMEOUT_MS + 5_000);
    expect(exit, leaving.output().slice(-3_000)).toMatchObject({ code: 0, signal: null });
    expect(exit.at - sigtermAt).toBeLessThan(DRAIN_TIMEOUT_MS);
    expect(leaving.output()).not.toContain("drain timeout reached");
    created.push(late);

    // No attempt was counted: the tasks wait as if never received.
    for (const task of created) expect(await onStaying.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "0" });
    // A new worker gets all four, each as a first attempt.
    const next = new ReceiveStream(onStaying, "release").credit(3).credit(1, "late");
    cleanups.push(() => next.cancel());
    const delivered: WireTask[] = [];
    for (let i = 0; i < 4; i++) delivered.push(await next.next(10_000));
    expect(new Set(delivered.map((task) => task.ID))).toEqual(new Set(created.map((task) => task.ID)));
    for (const task of delivered) expect(task).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
    const reports = new ReportStream(onStaying);
    cleanups.push(() => reports.end());
    for (const task of delivered) expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
    reports.end();
    next.end();
    await emptyQueue("release");
    await emptyQueue("late");
    await stopCleanly(staying);
  });
});
