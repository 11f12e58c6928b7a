// The server under test: the compiled production entrypoint (node dist/service/main.js)
// in a child process, configured only through its documented environment variables,
// so a crash is a real process exit and memory is the real process's RSS.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseChannels, type ChannelConfig } from "../../service/src/config/channels.js";
import { provision, startLocalBackends, useLocalEndpoints, type LocalBackends } from "../../service/src/local/backends.js";
import { freePort } from "../../service/src/local/free-port.js";
import { checkServing } from "../../service/src/health/check.js";
import { FUZZ_CHANNELS } from "./fuzz-values.js";

// "default", "other" and "ranked" (priorities 3, concurrencyPerKey, maxInFlight, rateLimitPerSecond): see fuzz-values.ts.
export { FUZZ_CHANNELS };

/** The server's caps as the fuzzer configures them (small, so the fuzzer reaches them). */
export interface ServerCaps {
  maxCreditsPerStream: number;
  maxConcurrentStreams: number;
  maxMessageBytes: number;
}

export interface Crash {
  exitCode: number | null;
  signal: string | null;
  /** The last lines the process wrote (stderr and stdout). */
  outputTail: string;
  atRequest: number;
}

/** The DynamoDB and SQS the server uses: the ones in the environment, or emulators started here. */
export class Backends {
  private constructor(
    readonly env: { dynamodb: string; sqs: string },
    private readonly started: LocalBackends | undefined,
  ) {}

  static async acquire(log: (line: string) => void): Promise<Backends> {
    // The SDK's notice that its 2027 releases need Node 22 is noise in the report.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ||= "true";
    const dynamodb = process.env.AWS_ENDPOINT_URL_DYNAMODB;
    const sqs = process.env.AWS_ENDPOINT_URL_SQS;
    if (dynamodb && sqs) return new Backends({ dynamodb, sqs }, undefined);
    log("starting DynamoDB Local and the SQS emulator…");
    const started = await startLocalBackends();
    useLocalEndpoints(started);
    return new Backends({ dynamodb: started.dynamodbEndpoint, sqs: started.sqsEndpoint }, started);
  }

  async release(): Promise<void> {
    await this.started?.stop();
  }
}

/** A fresh table and queues for one run (ranked: one queue per priority level), so runs never see each other's tasks. */
export async function provisionFuzzResources(): Promise<{ table: string; channels: ChannelConfig[]; queueUrls: Record<string, string> }> {
  const id = randomBytes(4).toString("hex");
  const table = `fuzz-${id}`;
  const channels = parseChannels([...FUZZ_CHANNELS], "fuzz channels");
  // provision() uses the SDK defaults: make sure it has a region and (fake) credentials.
  process.env.AWS_REGION ||= "us-east-1";
  if (!process.env.AWS_ACCESS_KEY_ID && !process.env.AWS_PROFILE) {
    process.env.AWS_ACCESS_KEY_ID = "local";
    process.env.AWS_SECRET_ACCESS_KEY = "local";
  }
  const { queueUrls } = await provision(table, `fuzz${id}`, channels);
  return { table, channels, queueUrls };
}

const OUTPUT_TAIL_BYTES = 8 * 1024;
const START_TIMEOUT_MS = 60_000;

/**
 * `node service/dist/main.js` on a free port. An exit the harness did not ask for is
 * a crash: it is recorded and the server is started again on the same port, so the
 * run goes on and finds more.
 */
export class ServerProcess {
  readonly crashes: Crash[] = [];
  /** Lines the server logged at level error (pino level ≥ 50): 500s leave one each. */
  readonly errorLogs: string[] = [];
  errorLogCount = 0;
  /** Increases at every (re)start: a call that began under an older one was cut by a crash. */
  generation = 0;
  address = "";
  private child: ChildProcess | undefined;
  private outputTail = "";
  private stopping = false;
  private port = 0;
  private restarting: Promise<void> | undefined;
  private restartError: Error | undefined;
  /** Set by the runner so a crash says when it happened. */
  requestsSoFar = () => 0;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly caps: ServerCaps,
  ) {}

  static entrypoint(): string {
    const path = fileURLToPath(new URL("../../service/dist/main.js", import.meta.url));
    if (!existsSync(path)) throw new Error(`${path} does not exist: run npm run build first (npm run fuzz does it)`);
    return path;
  }

  async start(): Promise<void> {
    this.port ||= await freePort();
    this.address = `127.0.0.1:${this.port}`;
    this.generation += 1;
    this.outputTail = "";
    const child = spawn(process.execPath, [ServerProcess.entrypoint()], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...this.env, PORT: String(this.port) },
      // Its own process group: a Ctrl-C on the terminal must not stop it behind our back
      // (that would look like a crash); stop() and the exit hook below end it.
      detached: true,
    });
    this.child = child;
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    child.once("exit", () => process.off("exit", killOnExit));
    child.stdout?.on("data", (chunk: Buffer) => this.takeOutput(chunk, true));
    child.stderr?.on("data", (chunk: Buffer) => this.takeOutput(chunk, false));
    child.once("exit", (exitCode, signal) => {
      if (this.stopping || this.child !== child) return;
      this.crashes.push({ exitCode, signal, outputTail: this.outputTail, atRequest: this.requestsSoFar() });
      this.child = undefined;
      // A server that cannot even start again ends the run (ready() rethrows).
      this.restarting = this.start()
        .catch((error: unknown) => void (this.restartError = error as Error))
        .finally(() => (this.restarting = undefined));
    });
    await this.waitServing(child);
  }

  /** Resolves once the server (possibly restarted after a crash) is up. */
  async ready(): Promise<void> {
    while (this.restarting) await this.restarting;
    if (this.restartError) throw this.restartError;
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** VmRSS of the server process in MiB (Linux /proc), undefined elsewhere. */
  rssMiB(): number | undefined {
    const pid = this.child?.pid;
    if (pid === undefined) return undefined;
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return match ? Number(match[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** Stops the server for good (SIGTERM, then SIGKILL if it does not drain in time). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.restarting?.catch(() => undefined);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private async waitServing(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = "";
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the server exited while starting (code ${child.exitCode}, signal ${child.signalCode}):\n${this.outputTail}`);
      }
      try {
        last = await checkServing(this.address, "");
        if (last === "SERVING") return;
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`the server was not SERVING within ${START_TIMEOUT_MS} ms (last answer: ${last}):\n${this.outputTail}`);
  }

  private takeOutput(chunk: Buffer, stdout: boolean): void {
    const text = chunk.toString("utf8");
    this.outputTail = (this.outputTail + text).slice(-OUTPUT_TAIL_BYTES);
    if (!stdout) return;
    // pino writes one JSON object per line; keep a few error lines for the report.
    for (const line of text.split("\n")) {
      if (!line.includes('"level":5') && !line.includes('"level":6')) continue;
      this.errorLogCount += 1;
      if (this.errorLogs.length < 5) this.errorLogs.push(line.slice(0, 2_000));
    }
  }
}

/** The environment of the server under test: documented variables only. */
export function serverEnv(
  backends: Backends,
  resources: { table: string; channels: ChannelConfig[]; queueUrls: Record<string, string> },
  caps: ServerCaps,
): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOST: "127.0.0.1",
    QUEUES_TABLE: resources.table,
    QUEUES_CHANNELS: JSON.stringify(resources.channels),
    QUEUES_QUEUE_URLS: JSON.stringify(resources.queueUrls),
    QUEUES_MAX_CREDITS_PER_STREAM: String(caps.maxCreditsPerStream),
    QUEUES_MAX_CONCURRENT_STREAMS: String(caps.maxConcurrentStreams),
    QUEUES_MAX_MESSAGE_BYTES: String(caps.maxMessageBytes),
    QUEUES_DRAIN_TIMEOUT_MS: "3000",
    AWS_ENDPOINT_URL_DYNAMODB: backends.env.dynamodb,
    AWS_ENDPOINT_URL_SQS: backends.env.sqs,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    LOG_LEVEL: "warn",
  };
}
