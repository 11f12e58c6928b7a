// The benchmark's backends: what `npm run backends` runs (the emulators, the table and
// queues, the table's stream read by the local stream reader, service/src/local/
// stream-runner.ts) as a process of its own, plus the reader's DynamoDB usage served
// over HTTP, so that the bench can count what the table stream function writes (owner
// counters, stream markers: the owner's Total) with what the server writes:
//   GET /usage             the reader's BackendUsage snapshot and its stream stats
//   POST/GET/DELETE /usage/partitions   its partition-load window (as on a server)
// The reader runs here and not in the bench's process, whose CPU time is the
// baseline's measurement. Inside the test suite (AWS_ENDPOINT_URL_DYNAMODB and
// AWS_ENDPOINT_URL_SQS set), the suite's emulators are used instead of new ones.
//
// Started by bench.ts through startBenchBackends; run directly it is the child:
//   tsx --conditions=queues-source test/harness/bench-backends.ts --table T --queue-prefix P  (QUEUES_CHANNELS in the environment)
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { ChannelConfig } from "../../service/src/config/channels.js";
import { parseChannelsJson } from "../../service/src/config/channels.js";
import { provision, startLocalBackends, useLocalCredentials, useLocalEndpoints, type LocalBackends } from "../../service/src/local/backends.js";
import { StreamRunner, type StreamRunnerStats } from "../../service/src/local/stream-runner.js";
import { BackendUsage, type UsageSnapshot } from "../../service/src/metrics/backend-usage.js";
import type { PartitionLoadSnapshot } from "../../service/src/metrics/partition-load.js";
import type { Backends } from "./processes.js";

export interface StreamUsage extends UsageSnapshot {
  stream: StreamRunnerStats;
}

export interface BenchBackends extends Backends {
  /** The stream reader's usage (GET /usage) and partition window (/usage/partitions). */
  usageUrl: string;
  streamUsage(): Promise<StreamUsage>;
}

const SELF = fileURLToPath(import.meta.url);

/** Starts the bench's backends process; its stop() ends the reader, then the emulators. */
export async function startBenchBackends(table: string, queuePrefix: string, channels: ChannelConfig[], log: (line: string) => void): Promise<BenchBackends> {
  // The same node flags as this process (tsx's loader, the queues-source condition).
  const child = spawn(process.execPath, [...process.execArgv, SELF, "--table", table, "--queue-prefix", queuePrefix], {
    env: { ...process.env, QUEUES_CHANNELS: JSON.stringify(channels), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2_000)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const info = await new Promise<Omit<BenchBackends, "stop" | "streamUsage">>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line) as Omit<BenchBackends, "stop" | "streamUsage">);
    });
    child.once("exit", (code) => reject(new Error(`the bench's backends exited (${code}):\n${stderr}`)));
  });
  log(`backends: DynamoDB ${info.dynamodbEndpoint}, SQS ${info.sqsEndpoint}, stream reader's usage ${info.usageUrl} (process ${child.pid})`);
  return {
    ...info,
    streamUsage: async () => (await (await fetch(info.usageUrl)).json()) as StreamUsage,
    stop: async () => {
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** POST (start), GET (read) or DELETE (end) a partition-load window at a /usage base URL. */
export async function partitionWindow(usageUrl: string, method: "POST" | "DELETE"): Promise<void>;
export async function partitionWindow(usageUrl: string, method: "GET"): Promise<PartitionLoadSnapshot>;
export async function partitionWindow(usageUrl: string, method: "POST" | "GET" | "DELETE"): Promise<PartitionLoadSnapshot | void> {
  const response = await fetch(`${usageUrl}/partitions`, { method });
  if (!response.ok) throw new Error(`${method} ${usageUrl}/partitions: ${response.status}`);
  if (method === "GET") return (await response.json()) as PartitionLoadSnapshot;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { table: { type: "string" }, "queue-prefix": { type: "string" } } });
  const table = values.table;
  const queuePrefix = values["queue-prefix"];
  if (!table || !queuePrefix || !process.env.QUEUES_CHANNELS) throw new Error("usage: bench-backends.ts --table T --queue-prefix P (QUEUES_CHANNELS set)");
  const channels = parseChannelsJson(process.env.QUEUES_CHANNELS, "QUEUES_CHANNELS");
  let emulators: LocalBackends | undefined;
  if (process.env.AWS_ENDPOINT_URL_DYNAMODB && process.env.AWS_ENDPOINT_URL_SQS) useLocalCredentials();
  else useLocalEndpoints((emulators = await startLocalBackends()));
  let stream: StreamRunner | undefined;
  const stop = async () => {
    await stream?.stop().catch(() => {});
    await emulators?.stop();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop());
  process.once("SIGINT", () => void stop());
  const { queueUrls } = await provision(table, queuePrefix, channels);
  stream = await StreamRunner.start({ tableName: table, onError: (error) => console.error(`table stream: a batch failed, trying again: ${String(error)}`) });
  const usage = new BackendUsage();
  usage.attachDynamoDb(stream.db);
  const reader = stream;
  const server = createServer((request, response) => {
    const json = (value: unknown) => response.writeHead(200, { "content-type": "application/json" }).end(`${JSON.stringify(value)}\n`);
    if (request.url === "/usage" && request.method === "GET") json({ ...usage.snapshot(), stream: reader.stats } satisfies StreamUsage);
    else if (request.url === "/usage/partitions" && request.method === "GET") json(usage.partitions.snapshot());
    else if (request.url === "/usage/partitions" && (request.method === "POST" || request.method === "DELETE")) {
      if (request.method === "POST") usage.partitions.start();
      else usage.partitions.reset();
      response.writeHead(204).end();
    } else response.writeHead(404).end();
    request.resume();
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );
  console.log(
    JSON.stringify({
      dynamodbEndpoint: process.env.AWS_ENDPOINT_URL_DYNAMODB,
      sqsEndpoint: process.env.AWS_ENDPOINT_URL_SQS,
      table,
      queueUrls,
      usageUrl: `http://127.0.0.1:${port}/usage`,
    }),
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error("bench backends: failed to start:", error);
    process.exit(1);
  });
}
