// SPEC §4 "Backends down": DynamoDB, then SQS, goes away for 10 s each under load.
// The backend sits behind a TCP proxy whose port then refuses connections and cuts
// the open ones, as when the emulator stops (its data survives, as a managed
// service's does). Calls in the window answer 503 within their deadline, streams
// stay open, health goes NOT_SERVING and back to SERVING on its own, and afterwards
// every task whose create was answered 200 reaches a final state.
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueuesApp } from "../service/app.js";
import { DuplicateTaskError, QueuesClient, UnavailableError, Worker } from "../service/client/index.js";
import { parseChannels } from "../service/config/channels.js";
import { DEFAULTS, type Settings } from "../service/config/settings.js";
import { provision } from "../service/local/backends.js";
import { createSqsClients } from "../service/queue/sqs-client.js";
import { createDocumentClient } from "../service/store/dynamo-client.js";
import { eventually, sleep, TEST_SETTINGS, testLogger } from "./support/harness.js";
import { TcpProxy } from "./support/tcp-proxy.js";

const OUTAGE_MS = 10_000;
const DEADLINE_MS = 2_000;

let dynamoProxy: TcpProxy;
let sqsProxy: TcpProxy;
let app: QueuesApp;
let address: string;

beforeAll(async () => {
  const id = randomBytes(4).toString("hex");
  const channels = parseChannels(["outage"], "outage test");
  const { queueUrls } = await provision(`outage-${id}`, `outage${id}`, channels);
  const target = (endpoint: string) => ({ host: "127.0.0.1", port: Number(new URL(endpoint).port) });
  dynamoProxy = new TcpProxy(target(process.env.AWS_ENDPOINT_URL_DYNAMODB as string));
  sqsProxy = new TcpProxy(target(process.env.AWS_ENDPOINT_URL_SQS as string));
  const [dynamoAt, sqsAt] = [await dynamoProxy.listen(), await sqsProxy.listen()];
  const settings: Settings = {
    ...DEFAULTS,
    ...TEST_SETTINGS,
    host: "127.0.0.1",
    port: 0,
    tableName: `outage-${id}`,
    channels,
    queueUrls,
    queuePrefix: `outage${id}`,
    sweepAfterMs: 2_000,
    sweepIntervalMs: 500,
  };
  // The server reaches both backends only through the proxies.
  app = new QueuesApp({
    settings,
    logger: testLogger(),
    dynamo: createDocumentClient({ endpoint: `http://${dynamoAt}` }),
    sqs: createSqsClients({ endpoint: `http://${sqsAt}` }),
  });
  address = `127.0.0.1:${await app.start()}`;
  await app.health.check();
});

afterAll(async () => {
  await app?.shutdown();
  await dynamoProxy?.close();
  await sqsProxy?.close();
});

interface Load {
  /** HashCodes whose create was answered 200 (or 409: an earlier attempt took effect). */
  created: string[];
  /** Answers in the outage windows: 503 within the deadline is right; anything else is listed here. */
  wrongAnswers: string[];
  unavailable: number;
  slowest: number;
  stop(): Promise<void>;
}

/** Creates tasks all along, each with its own HashCode, retrying 503s until the create is answered 200. */
function startLoad(client: QueuesClient): Load {
  const load: Load = { created: [], wrongAnswers: [], unavailable: 0, slowest: 0, stop: async () => {} };
  let running = true;
  let index = 0;
  const loop = (async () => {
    while (running) {
      const hashCode = `outage-${index++}-${randomBytes(3).toString("hex")}`;
      for (;;) {
        const started = Date.now();
        try {
          await client.createTask({ channel: "outage", input: hashCode, hashCode }, { deadlineMs: DEADLINE_MS });
          load.created.push(hashCode);
          break;
        } catch (error) {
          load.slowest = Math.max(load.slowest, Date.now() - started);
          if (error instanceof DuplicateTaskError) {
            load.created.push(hashCode);
            break;
          }
          if (error instanceof UnavailableError) load.unavailable += 1;
          else load.wrongAnswers.push(`${(error as Error).name}: ${(error as Error).message}`);
          if (!running) break;
          await sleep(200);
        }
      }
      await sleep(50);
    }
  })();
  load.stop = async () => {
    running = false;
    await loop;
  };
  return load;
}

function healthOf(target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new grpc.Client(target, grpc.credentials.createInsecure());
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (request: Buffer) => request,
      (response: Buffer) => response,
      Buffer.from([0x0a, 0x00]), // HealthCheckRequest { service: "" }
      { deadline: Date.now() + DEADLINE_MS },
      (error, response) => {
        client.close();
        if (error) return reject(error);
        // HealthCheckResponse { status = 1 SERVING | 2 NOT_SERVING } is field 1, a varint.
        resolve(response?.[1] === 1 ? "SERVING" : "NOT_SERVING");
      },
    );
  });
}

describe("backend outages under load (10 s each)", () => {
  it("DynamoDB, then SQS: 503 within the deadline, health NOT_SERVING then SERVING, streams open, nothing lost", async () => {
    const client = new QueuesClient({ address });
    const done = new Set<string>();
    const worker = new Worker({ address, channel: "outage", concurrency: 4, handler: (task) => `done ${task.Input}` });
    worker.on("taskSucceeded", (task) => done.add(task.HashCode));
    worker.on("error", () => {});
    const reconnects: string[] = [];
    worker.on("reconnecting", ({ stream }) => reconnects.push(stream));
    void worker.run();
    const load = startLoad(client);
    try {
      await eventually(() => done.size >= 5, 15_000);

      for (const [backend, proxy] of [
        ["DynamoDB", dynamoProxy],
        ["SQS", sqsProxy],
      ] as const) {
        const before = load.unavailable;
        await proxy.down();
        const downAt = Date.now();
        await eventually(async () => (await healthOf(address)) === "NOT_SERVING", 5_000, 100);
        // A read in the window answers 503 well within its deadline, naming the backend.
        if (backend === "DynamoDB") {
          const started = Date.now();
          const error = await client.getTask("1", { deadlineMs: DEADLINE_MS }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UnavailableError);
          expect((error as Error).message).toMatch(/DynamoDB/);
          expect(Date.now() - started).toBeLessThan(DEADLINE_MS);
        } else {
          const error = await client.queueLength("outage", { deadlineMs: DEADLINE_MS }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(UnavailableError);
          expect((error as Error).message).toMatch(/SQS/);
        }
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - downAt)));
        await proxy.up();
        await eventually(async () => (await healthOf(address)) === "SERVING", 15_000, 200);
        // Creates kept answering during the DynamoDB outage: with 503s (SQS alone down does not stop a create).
        if (backend === "DynamoDB") expect(load.unavailable).toBeGreaterThan(before);
      }

      // No call hung past its deadline, and every answer in the windows was a 503.
      expect(load.wrongAnswers).toEqual([]);
      expect(load.slowest).toBeLessThan(DEADLINE_MS);
      await load.stop();
      // Every task whose create was answered reaches a final state: nothing is lost.
      const created = [...load.created];
      expect(created.length).toBeGreaterThan(20);
      await eventually(() => created.every((hashCode) => done.has(hashCode)), 60_000, 250);
      for (const hashCode of created.slice(0, 10)) expect((await client.getTaskByHashCode(hashCode)).State).toBe("SUCCESS");
      // The worker's streams survived (the server stayed up); at most they were reopened.
      expect(reconnects.filter((stream) => stream === "receive").length).toBeLessThanOrEqual(2);
    } finally {
      await load.stop();
      await worker.close();
      client.close();
    }
  }, 120_000);
});
