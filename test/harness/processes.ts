// Processes the harnesses (chaos, bench) run: the standalone backends (`npm run
// backends`) and server replicas started the way production starts them (node on
// the compiled entrypoint), plus the environment such a server needs.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { QueuesClient } from "@queues/client";
import type { ChannelConfig } from "../../service/src/config/channels.js";
import { provision, useLocalCredentials } from "../../service/src/local/backends.js";
import { StreamRunner } from "../../service/src/local/stream-runner.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SERVER_ENTRYPOINT = `${ROOT}/service/dist/main.js`;
const BACKENDS = `${ROOT}/service/dist/local/backends-main.js`;

export interface Backends {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  table: string;
  queueUrls: Record<string, string>;
  stop(): Promise<void>;
}

/** Builds dist/ when it is older than the sources, or fails with the fix (see build.ts). */
export { requireBuild } from "./build.js";

/** The environment of a server on `backends` serving `channels` (add PORT and tuning). */
export function serverEnv(backends: Backends, channels: ChannelConfig[], extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    PATH: process.env.PATH,
    NODE_ENV: "production",
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_ENDPOINT_URL_DYNAMODB: backends.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SQS: backends.sqsEndpoint,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    HOST: "127.0.0.1",
    QUEUES_TABLE: backends.table,
    QUEUES_CHANNELS: JSON.stringify(channels),
    QUEUES_QUEUE_URLS: JSON.stringify(backends.queueUrls),
    ...extra,
  };
}

/** Points this process's AWS SDK clients at `backends` (the benchmark's baseline calls them directly). */
export function useBackends(backends: Backends): void {
  process.env.AWS_ENDPOINT_URL_DYNAMODB = backends.dynamodbEndpoint;
  process.env.AWS_ENDPOINT_URL_SQS = backends.sqsEndpoint;
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  useLocalCredentials();
}

/** A server replica as its own process (logs discarded); `nodeArgs` go to node (e.g. --cpu-prof). */
export function startServer(port: number, env: Record<string, string | undefined>, nodeArgs: string[] = []): ChildProcess {
  const child = spawn(process.execPath, [...nodeArgs, SERVER_ENTRYPOINT], { env: { ...env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  child.stderr?.resume();
  return child;
}

/** Stops a server with SIGTERM (its graceful drain), SIGKILL if it takes longer than `graceMs`. */
export async function stopServer(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(graceMs)]);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Waits until the server at `address` answers a call on `channel` (gives up after 300 tries, or once `signal` aborts). */
export async function waitServing(address: string, channel: string, signal?: AbortSignal): Promise<void> {
  const client = new QueuesClient({ address, deadlineMs: 1_000 });
  try {
    for (let i = 0; i < 300 && !signal?.aborted; i++) {
      try {
        await client.queueLength(channel);
        return;
      } catch {
        await sleep(100);
      }
    }
    throw new Error(signal?.aborted ? `stopped waiting for ${address}` : `${address} did not start serving`);
  } finally {
    client.close();
  }
}

/**
 * The emulators as a process of their own (`npm run backends`, which also reads the
 * table's stream: owners' Totals), so that killing a replica never touches the data;
 * or, when AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS are set (inside the test
 * suite), those endpoints, with the table's stream read in this process.
 */
export async function standaloneBackends(table: string, queuePrefix: string, channels: ChannelConfig[], log: (line: string) => void): Promise<Backends> {
  if (process.env.AWS_ENDPOINT_URL_DYNAMODB && process.env.AWS_ENDPOINT_URL_SQS) {
    useLocalCredentials();
    const { queueUrls } = await provision(table, queuePrefix, channels);
    const stream = await StreamRunner.start({ tableName: table, onError: (error) => log(`table stream: a batch failed, trying again: ${String(error)}`) });
    return {
      dynamodbEndpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB,
      sqsEndpoint: process.env.AWS_ENDPOINT_URL_SQS,
      table,
      queueUrls,
      stop: () => stream.stop(),
    };
  }
  const child = spawn(process.execPath, [BACKENDS, "--table", table, "--queue-prefix", queuePrefix], {
    env: { ...process.env, QUEUES_CHANNELS: JSON.stringify(channels), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const info = await new Promise<Omit<Backends, "stop">>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as Omit<Backends, "stop">);
    });
    child.once("exit", (code) => reject(new Error(`npm run backends exited (${code}):\n${stderr}`)));
  });
  log(`backends: DynamoDB ${info.dynamodbEndpoint}, SQS ${info.sqsEndpoint} (process ${child.pid})`);
  return {
    ...info,
    stop: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, sleep(10_000)]);
      if (child.exitCode === null) child.kill("SIGKILL");
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
