// Flow control (SPEC §7.2) through real gRPC clients against two server replicas on
// the emulators: rateLimitPerSecond, priorities and fairness (maxInFlight and
// concurrencyPerKey: flow-slots.test.ts). The replicas share the limits through the table, so every check counts
// deliveries over both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { queueCounts, sleep, startTestServer, type TestServer } from "./support/harness.js";
import { RecordingWorker as Worker } from "./support/recording-worker.js";

let server: TestServer;
let replica: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    channels: [
      { name: "limited", rateLimitPerSecond: 5 },
      { name: "ranked", priorities: 3 },
      { name: "mixed", priorities: 3 },
      { name: "fair", fairness: "owner", priorities: 2 },
    ],
  });
  replica = await startTestServer({ replicaOf: server });
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

describe("rateLimitPerSecond", () => {
  it("5 a second across 2 replicas: 200 tasks waiting, 10 workers with 10 credits each: 45-55 deliveries in every 10 s window after the first second", async () => {
    for (let start = 0; start < 200; start += 100) {
      const answer = await server.api.createTasks(Array.from({ length: 100 }, (_, i) => ({ Channel: "limited", Input: `r${start + i}` })));
      expect(answer.Results.every((result) => result.State === "200")).toBe(true);
    }
    const started = Date.now();
    const workers = Array.from({ length: 10 }, (_, i) => new Worker(i % 2 === 0 ? server : replica, "limited", 10));
    await sleep(32_000);
    for (const worker of workers) worker.stop();
    const times = workers.flatMap((worker) => worker.deliveries.map((delivery) => delivery.at - started)).sort((a, b) => a - b);
    const first = times[0] as number;
    const windows = [0, 1, 2].map((n) => times.filter((t) => t >= first + 1_000 + n * 10_000 && t < first + 1_000 + (n + 1) * 10_000).length);
    for (const count of windows) {
      expect(count, `deliveries per 10 s window: ${windows.join(", ")}`).toBeGreaterThanOrEqual(45);
      expect(count, `deliveries per 10 s window: ${windows.join(", ")}`).toBeLessThanOrEqual(55);
    }
  });
});

describe("priorities", () => {
  /** One worker, one credit at a time: the order of delivery is the order of choice. */
  async function deliverInOrder(channel: string, count: number, done: (delivered: WireTask[]) => boolean = () => false): Promise<WireTask[]> {
    const stream = new ReceiveStream(server.api, channel);
    const reports = new ReportStream(server.api);
    const delivered: WireTask[] = [];
    try {
      for (let i = 0; i < count && !done(delivered); i++) {
        stream.credit(1);
        const task = await stream.next(20_000).catch((error: unknown) => {
          throw new Error(`${String(error)} after ${delivered.length} deliveries: ${delivered.map((t) => t.Priority).join("")}`);
        });
        delivered.push(task);
        expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
      }
    } finally {
      stream.cancel();
      reports.end();
    }
    return delivered;
  }

  async function createAt(channel: string, priority: number, count: number, label: string): Promise<void> {
    for (let start = 0; start < count; start += 100) {
      const batch = Array.from({ length: Math.min(100, count - start) }, (_, i) => ({ Channel: channel, Input: `${label}${start + i}`, Priority: String(priority) }));
      const answer = await server.api.createTasks(batch);
      expect(answer.Results.every((result) => result.State === "200")).toBe(true);
    }
  }

  it("priorities 3: 300 low then 30 high, 1 worker: the high ones come before the rest of the low ones (at least 80 % of the deliveries while both wait)", async () => {
    await createAt("ranked", 3, 300, "low");
    await createAt("ranked", 1, 30, "high");
    // QueryLengthByChannel sums the levels: 330 (more if the sweeper sent copies of tasks still waiting after its grace on a slow machine).
    expect(Number((await server.api.length("ranked")).Data)).toBeGreaterThanOrEqual(330);
    // One at a time until the 30 high ones are all out (the rest of the low ones then follow as usual).
    const delivered = await deliverInOrder("ranked", 330, (so) => so.filter((task) => task.Priority === "1").length === 30);
    const levels = delivered.map((task) => task.Priority);
    expect(levels.filter((level) => level === "1")).toHaveLength(30);
    const lastHigh = levels.lastIndexOf("1");
    const firstHigh = levels.indexOf("1");
    expect(firstHigh).toBeLessThanOrEqual(2);
    const highShare = 30 / (lastHigh - firstHigh + 1);
    expect(highShare, `the 30 high ones spread over deliveries ${firstHigh}..${lastHigh}`).toBeGreaterThanOrEqual(0.8);
    // All 30 high ones were out within the first 60 deliveries, while 270 and more low ones still waited.
    expect(delivered.length).toBeLessThan(60);
  }, 120_000);

  it("with every level backlogged, the lowest still gets at least 2 % of the deliveries; Priority 0 is the middle level", async () => {
    await createAt("mixed", 1, 200, "a");
    await createAt("mixed", 0, 100, "b");
    await createAt("mixed", 3, 100, "c");
    const delivered = await deliverInOrder("mixed", 150);
    const count = (level: string) => delivered.filter((task) => task.Priority === level).length;
    expect(delivered.filter((task) => task.Input.startsWith("b")).every((task) => task.Priority === "2")).toBe(true);
    expect(count("3") / 150).toBeGreaterThanOrEqual(0.02);
    expect(count("2") / 150).toBeGreaterThanOrEqual(0.02);
    expect(count("1") / 150).toBeGreaterThanOrEqual(0.8);
    // 250 wait (more if the sweeper sent copies of tasks still waiting after its grace on a slow machine).
    expect(Number((await server.api.length("mixed")).Data)).toBeGreaterThanOrEqual(250);
  }, 120_000);

  it("a Priority above the channel's levels is 400", async () => {
    const answer = await server.api.createTask({ Channel: "ranked", Priority: "4" });
    expect(answer.State).toBe("400");
    expect(answer.Message).toContain("Priority");
    expect((await server.api.createTask({ Channel: "limited", Priority: "2" })).State).toBe("400");
  });
});

describe("fairness: owner", () => {
  it("every message of the channel carries its Owner as MessageGroupId, at every level and on every path", async () => {
    const since = server.faults.log.length;
    const fairQueues = new Set([server.queueUrls.fair, server.queueUrls["fair-p2"]]);
    for (const owner of ["11", "22", "33"]) {
      for (const Priority of ["1", "2"]) expect((await server.api.createTask({ Channel: "fair", Owner: owner, Input: "x", Priority })).State).toBe("200");
    }
    await server.api.createTasks(["44", "55"].map((owner) => ({ Channel: "fair", Owner: owner, Input: "y" })));
    const entries = server.faults.log
      .slice(since)
      .filter((call) => call.command === "SendMessageBatchCommand" || call.command === "SendMessageCommand")
      .filter((call) => fairQueues.has((call.input as { QueueUrl?: string }).QueueUrl))
      .flatMap((call) => {
        const input = call.input as { QueueUrl?: string; Entries?: { MessageBody?: string; MessageGroupId?: string }[]; MessageBody?: string; MessageGroupId?: string };
        return input.Entries ?? [{ MessageBody: input.MessageBody, MessageGroupId: input.MessageGroupId }];
      });
    expect(entries).toHaveLength(8);
    for (const entry of entries) {
      const task = await server.api.get(entry.MessageBody as string);
      expect(entry.MessageGroupId).toBe(task.Owner);
    }
    // Delivered as usual on the emulator (which does not reorder by group).
    const stream = new ReceiveStream(server.api, "fair").credit(8);
    for (let i = 0; i < 8; i++) {
      await stream.next(10_000).catch(async (error: unknown) => {
        throw new Error(`${String(error)} after ${i}: ${JSON.stringify(await queueCounts(server, "fair"))} ${JSON.stringify(await queueCounts(server, "fair-p2"))}`);
      });
    }
    stream.cancel();
  });
});
