// Flow control (SPEC §7.2) through real gRPC clients against two server replicas on
// the emulators: rateLimitPerSecond, maxInFlight, concurrencyPerKey, priorities and
// fairness. The replicas share the limits through the table, so every check counts
// deliveries over both.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { sleep, startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;
let replica: TestServer;

beforeAll(async () => {
  server = await startTestServer({
    channels: [
      { name: "limited", rateLimitPerSecond: 5 },
      { name: "ranked", priorities: 3 },
    ],
  });
  replica = await startTestServer({ replicaOf: server });
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

/** A worker on `on`: takes tasks of `channel` with `credits` credits, reports SUCCESS after `holdMs`, and records each delivery. */
class Worker {
  readonly deliveries: { task: WireTask; at: number }[] = [];
  private readonly stream: ReceiveStream;
  private readonly reports: ReportStream;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(on: TestServer, channel: string, credits: number, holdMs = 0) {
    this.stream = new ReceiveStream(on.api, channel).credit(credits);
    this.reports = new ReportStream(on.api);
    this.done = (async () => {
      while (!this.stopped) {
        const task = await this.stream.next(60_000).catch(() => undefined);
        if (!task || this.stopped) return;
        this.deliveries.push({ task, at: Date.now() });
        void (async () => {
          if (holdMs > 0) await sleep(holdMs);
          await this.reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken);
          if (!this.stopped) this.stream.credit(1);
        })();
      }
    })();
  }

  stop(): void {
    this.stopped = true;
    this.stream.cancel();
    this.reports.end();
  }
}

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
