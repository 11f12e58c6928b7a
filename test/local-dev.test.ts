// `npm run dev` as a user runs it: the compiled dev runner as its own process, with
// its own emulators (or the endpoints in AWS_ENDPOINT_URL*), and clean exits.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { existsSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { DynamoDBClient, DescribeTableCommand } from "@aws-sdk/client-dynamodb";
import { SQSClient, GetQueueUrlCommand } from "@aws-sdk/client-sqs";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../service/src/local/free-port.js";
import { Api } from "./support/client.js";
import { eventually } from "./support/harness.js";
import { requireBuild } from "./harness/build.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const devScript = join(root, "service", "dist", "local", "dev.js");

interface DevRun {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const running: DevRun[] = [];

function startDev(env: NodeJS.ProcessEnv): DevRun {
  const child = spawn(process.execPath, [devScript], { env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const run = { child, output: () => output, exited };
  running.push(run);
  return run;
}

/** Environment of a fresh shell: no endpoints from the test run. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: "warn", ...extra };
  for (const name of ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS", "QUEUES_CHANNELS"]) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

function healthStatus(address: string): Promise<string> {
  const definition = loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true });
  const Health = (grpc.loadPackageDefinition(definition) as any).grpc.health.v1.Health;
  const client = new Health(address, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.Check({ service: "" }, { deadline: Date.now() + 3_000 }, (error: Error | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    }),
  );
}

function javaProcessesOnPort(port: string): number {
  const result = spawnSync("pgrep", ["-f", `^java .*DynamoDBLocal.jar.*-port ${port}$`], { encoding: "utf8" });
  return result.stdout.trim() === "" ? 0 : result.stdout.trim().split("\n").length;
}

function dynamoPortOf(output: string): string {
  const match = /DynamoDB: http:\/\/127\.0\.0\.1:(\d+)/.exec(output);
  if (!match?.[1]) throw new Error(`no DynamoDB endpoint in output:\n${output}`);
  return match[1];
}

afterEach(async () => {
  for (const run of running.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill("SIGKILL");
    await run.exited;
  }
});

// The tests run the compiled dev runner: build it first if it is older than the sources.
beforeAll(() => requireBuild("npm run dev"), 300_000);

describe("npm run dev", () => {
  it("is built before the tests run", () => {
    expect(existsSync(devScript)).toBe(true);
  });

  it("starts the emulators, serves all RPCs with health SERVING, and Ctrl-C stops everything", async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const run = startDev(cleanEnv({ PORT: String(port), HTTP_PORT: String(httpPort) }));
    await eventually(() => run.output().includes("Queues is serving on"), 90_000, 200);
    const address = `127.0.0.1:${port}`;
    expect(await healthStatus(address)).toBe("SERVING");
    // The HTTP port (HTTP_PORT; 8080 by default) is printed and serves the console.
    expect(run.output()).toContain(`Console:  http://127.0.0.1:${httpPort}/`);
    const consolePage = await fetch(`http://127.0.0.1:${httpPort}/`);
    expect(consolePage.status).toBe(200);
    expect(await consolePage.text()).toContain("Channels");

    const api = new Api(address);
    const created = await api.createTask({ Channel: "default", Input: "from the dev runner", Owner: "77" });
    expect(created.State).toBe("200");
    expect((await api.queryByHashCode(created.Data)).Data?.Input).toBe("from the dev runner");
    // The dev runner reads the table's stream: the owner's Total counts the task.
    await eventually(async () => (await api.queryByOwner("77")).Total === "1", 10_000);
    expect((await api.length("emails")).State).toBe("200"); // channels come from cdk.json
    api.close();

    const dynamoPort = dynamoPortOf(run.output());
    expect(javaProcessesOnPort(dynamoPort)).toBe(1);
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
    await eventually(() => javaProcessesOnPort(dynamoPort) === 0, 10_000);
  });

  it("leaves no Java process behind even when it is killed with SIGKILL", async () => {
    const port = await freePort();
    const run = startDev(cleanEnv({ PORT: String(port), HTTP_PORT: String(await freePort()) }));
    await eventually(() => run.output().includes("Queues is serving on"), 90_000, 200);
    const dynamoPort = dynamoPortOf(run.output());
    expect(javaProcessesOnPort(dynamoPort)).toBe(1);
    run.child.kill("SIGKILL");
    await run.exited;
    await eventually(() => javaProcessesOnPort(dynamoPort) === 0, 15_000);
  });

  it("uses AWS_ENDPOINT_URL_* endpoints (LocalStack mode) and creates the missing table and queues there", async () => {
    const port = await freePort();
    const id = randomBytes(4).toString("hex");
    const table = `dev-${id}`;
    const prefix = `dev${id}`;
    const run = startDev(
      cleanEnv({
        PORT: String(port),
        HTTP_PORT: String(await freePort()),
        AWS_ENDPOINT_URL_DYNAMODB: process.env.AWS_ENDPOINT_URL_DYNAMODB ?? "",
        AWS_ENDPOINT_URL_SQS: process.env.AWS_ENDPOINT_URL_SQS ?? "",
        QUEUES_TABLE: table,
        QUEUES_QUEUE_PREFIX: prefix,
        QUEUES_CHANNELS: JSON.stringify(["jobs"]),
      }),
    );
    await eventually(() => run.output().includes("Queues is serving on"), 60_000, 200);
    expect(run.output()).toContain("Using the endpoints in AWS_ENDPOINT_URL*");
    expect(run.output()).not.toContain("Starting DynamoDB Local");

    const db = new DynamoDBClient({});
    const sqs = new SQSClient({ useQueueUrlAsEndpoint: false });
    const description = await db.send(new DescribeTableCommand({ TableName: table }));
    expect(description.Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName).sort()).toEqual(["byChannelFailures", "byOutboxDue", "byOwnerShard"]);
    expect(description.Table?.StreamSpecification).toEqual({ StreamEnabled: true, StreamViewType: "NEW_AND_OLD_IMAGES" });
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-jobs` }))).QueueUrl).toBeTruthy();
    expect((await sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}-jobs-dlq` }))).QueueUrl).toBeTruthy();
    db.destroy();
    sqs.destroy();

    const api = new Api(`127.0.0.1:${port}`);
    expect((await api.createTask({ Channel: "jobs", Input: "x", Owner: "78" })).State).toBe("200");
    await eventually(async () => (await api.queryByOwner("78")).Total === "1", 10_000);
    api.close();
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  });

  it("prints a clear error when Java is missing", async () => {
    // A PATH that has node but no java.
    const bin = mkdtempSync(join(tmpdir(), "no-java-"));
    try {
      symlinkSync(process.execPath, join(bin, "node"));
      const run = startDev(cleanEnv({ PATH: bin }));
      expect(await run.exited).toBe(2);
      expect(run.output()).toMatch(/needs Java 17 or newer/);
      expect(run.output()).toMatch(/AWS_ENDPOINT_URL/);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
