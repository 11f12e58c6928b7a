// SPEC §4 "Backends down": DynamoDB, then SQS, goes away for 10 s each under load.
// The backend sits behind a TCP proxy whose port then refuses connections and cuts
// the open ones, as when the emulator stops (its data survives, as a managed
// service's does). Calls in the window answer 503 within their deadline, streams
// stay open, health goes NOT_SERVING and back to SERVING on its own, and afterwards
// every task whose create was answered 200 reaches a final state. A second test
// holds one raw receive stream and one raw report stream through a DynamoDB and an
// SQS outage and checks that those very streams never end and serve again after.
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueuesApp } from "../service/src/app.js";
import { DuplicateTaskError, QueuesClient, UnavailableError, Worker } from "@queues/client";
import { parseChannels } from "../service/src/config/channels.js";
import { DEFAULTS, type Settings } from "../service/src/config/settings.js";
import { provision } from "../service/src/local/backends.js";
import { createSqsClients } from "../service/src/queue/sqs-client.js";
import { createDocumentClient } from "../service/src/store/dynamo-client.js";
import { Api, ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
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
  // "steady": the raw-stream test's own channel, with a lease that outlasts both of its outages.
  const channels = parseChannels(["outage", { name: "steady", visibilityTimeoutSeconds: 60 }], "outage test");
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
  await app?.shutdown({ abandonLongPolls: true });
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

describe("streams stay open through an outage (5 s of DynamoDB, then 5 s of SQS)", () => {
  const STREAM_OUTAGE_MS = 5_000;

  /**
   * Creates a task, retrying the 503s of a backend that is just coming back; its own
   * HashCode makes a retry of a create that took effect find that task (409), not make a second.
   */
  async function createSteady(api: Api, input: string): Promise<WireTask> {
    const hashCode = `steady-${randomBytes(6).toString("hex")}`;
    return eventually(
      async () => {
        const created = await api.createTask({ Channel: "steady", Input: input, HashCode: hashCode });
        if (created.State !== "200" && created.State !== "409") return undefined;
        return (await api.queryByHashCode(hashCode)).Data ?? undefined;
      },
      15_000,
      200,
    );
  }

  it("the same receive and report streams: no end or error event, reports answered in order, credits kept, and a task delivered and reported on them after each outage", async () => {
    const api = new Api(address);
    const receive = new ReceiveStream(api, "steady");
    const reports = new ReportStream(api);
    // Anything that ends or breaks either stream, at any time in this test.
    const streamEvents: string[] = [];
    for (const [name, call] of [
      ["receive", receive.call],
      ["report", reports.call],
    ] as const) {
      for (const event of ["end", "error", "status"]) call.on(event, (detail: unknown) => streamEvents.push(`${name} ${event}: ${JSON.stringify(detail)}`));
    }
    // A proxy this test took down comes back even if the test fails (the other test shares them).
    const down = new Set<TcpProxy>();
    const takeDown = async (proxy: TcpProxy) => {
      down.add(proxy);
      await proxy.down();
    };
    const bringUp = async (proxy: TcpProxy) => {
      down.delete(proxy);
      await proxy.up();
    };
    try {
      // Before: both streams carry work.
      const first = await createSteady(api, "before");
      const t1 = await receive.credit().next(10_000);
      expect(t1).toMatchObject({ ID: first.ID, State: "PROCEEDING" });
      expect(await reports.report(t1.ID, ReportState.PROCEEDING, "", t1.LeaseToken)).toMatchObject({ State: "200", Data: t1.ID });
      receive.credit(); // outstanding when the outage starts

      // ---- DynamoDB down
      await takeDown(dynamoProxy);
      const dynamoDownAt = Date.now();
      // Reports in the window: each answered 503 (retry later), in the order sent, on this stream.
      const sent = [t1.ID, "1", "2", t1.ID];
      const answers = await Promise.all([
        reports.report(t1.ID, ReportState.PROCEEDING, "", t1.LeaseToken),
        reports.report("1", ReportState.SUCCESS, "no such task"),
        reports.report("2", ReportState.FAILURE, "no such task"),
        reports.report(t1.ID, ReportState.SUCCESS, "too early", t1.LeaseToken),
      ]);
      expect(answers.map((answer) => answer.Data)).toEqual(sent);
      expect(answers.map((answer) => answer.State)).toEqual(["503", "503", "503", "503"]);
      expect(answers[0]?.Message).toMatch(/DynamoDB/);
      // Credits in the window are taken, not refused.
      receive.credit(2);
      await sleep(Math.max(0, STREAM_OUTAGE_MS - (Date.now() - dynamoDownAt)));
      expect(streamEvents).toEqual([]);
      expect(receive.buffered).toBe(0);
      await bringUp(dynamoProxy);
      await eventually(async () => (await healthOf(address)) === "SERVING", 15_000, 200);

      // After: the same streams deliver a new task and take its SUCCESS; the task leased
      // before the outage kept its lease.
      const second = await createSteady(api, "after DynamoDB");
      const t2 = await receive.next(15_000);
      expect(t2).toMatchObject({ ID: second.ID, State: "PROCEEDING", RetryCount: "0" });
      expect(await reports.report(t2.ID, ReportState.SUCCESS, "done 2", t2.LeaseToken)).toMatchObject({ State: "200", Data: t2.ID });
      expect(await reports.report(t1.ID, ReportState.SUCCESS, "done 1", t1.LeaseToken)).toMatchObject({ State: "200", Data: t1.ID });
      expect(await api.get(t1.ID)).toMatchObject({ State: "SUCCESS", Output: "done 1", RetryCount: "0" });
      expect(await api.get(t2.ID)).toMatchObject({ State: "SUCCESS", Output: "done 2", RetryCount: "0" });
      expect(streamEvents).toEqual([]);

      // ---- SQS down (two credits are still outstanding)
      const third = await createSteady(api, "before SQS");
      const t3 = await receive.next(15_000);
      expect(t3).toMatchObject({ ID: third.ID, State: "PROCEEDING" });
      await takeDown(sqsProxy);
      const sqsDownAt = Date.now();
      // Reports need DynamoDB only (SQS's part is best effort): answered as usual, in order.
      const sqsAnswers = await Promise.all([
        reports.report(t3.ID, ReportState.PROCEEDING, "halfway", t3.LeaseToken),
        reports.report("1", ReportState.SUCCESS, "no such task"),
      ]);
      expect(sqsAnswers.map((answer) => [answer.Data, answer.State])).toEqual([
        [t3.ID, "200"],
        ["1", "404"],
      ]);
      receive.credit();
      await sleep(Math.max(0, STREAM_OUTAGE_MS - (Date.now() - sqsDownAt)));
      expect(streamEvents).toEqual([]);
      expect(receive.buffered).toBe(0);
      await bringUp(sqsProxy);
      await eventually(async () => (await healthOf(address)) === "SERVING", 15_000, 200);

      const fourth = await createSteady(api, "after SQS");
      // The poller backs off while SQS is down (at most 10 s between tries).
      const t4 = await receive.next(25_000);
      expect(t4).toMatchObject({ ID: fourth.ID, State: "PROCEEDING", RetryCount: "0" });
      expect(await reports.report(t4.ID, ReportState.SUCCESS, "done 4", t4.LeaseToken)).toMatchObject({ State: "200", Data: t4.ID });
      expect(await reports.report(t3.ID, ReportState.SUCCESS, "done 3", t3.LeaseToken)).toMatchObject({ State: "200", Data: t3.ID });
      for (const [task, output] of [
        [t3, "done 3"],
        [t4, "done 4"],
      ] as const) {
        expect(await api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: output, RetryCount: "0" });
      }
      // The last credit sent in the outages is answered too (and no long poll is left behind).
      const fifth = await createSteady(api, "last");
      const t5 = await receive.next(15_000);
      expect(t5).toMatchObject({ ID: fifth.ID, RetryCount: "0" });
      expect(await reports.report(t5.ID, ReportState.SUCCESS, "done 5", t5.LeaseToken)).toMatchObject({ State: "200", Data: t5.ID });
      // Through both outages, neither stream ended, broke or was reopened.
      expect(streamEvents).toEqual([]);
    } finally {
      for (const proxy of down) await proxy.up();
      receive.cancel();
      reports.end();
      api.close();
    }
  }, 120_000);
});
