// CloudWatch Embedded Metric Format (SPEC §7.3, issue item 4): a real server with
// QUEUES_EMF_NAMESPACE writes, on stdout, one valid EMF line per channel and interval
// whose counts are what a test did through a real gRPC client, with no task data in
// them; its drain writes the last interval's line and stops the timer.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ReceiveStream, ReportState, ReportStream } from "./support/client.js";
import { emfValues, expectValidEmf, type EmfLine } from "./support/emf.js";
import { eventually, sleep, startTestServer, type TestServer } from "./support/harness.js";

const NAMESPACE = "QueuesTest";
let server: TestServer;
/** The EMF lines written to stdout (other output goes through). */
const lines: string[] = [];

beforeAll(async () => {
  const write = process.stdout.write.bind(process.stdout);
  vi.spyOn(process.stdout, "write").mockImplementation(((chunk: string | Uint8Array, ...rest: never[]) => {
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    if (text.includes('"_aws"')) {
      lines.push(text);
      return true;
    }
    return write(chunk, ...rest);
  }) as typeof process.stdout.write);
  // Settings in code skip the environment's 10 s minimum: a line every 300 ms.
  server = await startTestServer({ channels: ["default", "measured"], settings: { emfNamespace: NAMESPACE, emfIntervalMs: 300 } });
});
afterAll(async () => {
  await server?.stop();
  vi.restoreAllMocks();
});

/** The lines of a channel, parsed and checked against the EMF specification. */
function linesOf(channel: string): EmfLine[] {
  return lines.map(expectValidEmf).filter((line) => line.Channel === channel);
}

/** A metric summed over the channel's lines (counts: the total since the server started). */
function total(channel: string, metric: string): number {
  return linesOf(channel).reduce((sum, line) => sum + (emfValues(line)[metric] ?? 0), 0);
}

describe("EMF lines on stdout (QUEUES_EMF_NAMESPACE)", () => {
  it("one valid line per channel per interval, in the namespace with the Channel dimension; counts add up to what happened", async () => {
    const secret = "input-that-must-not-be-in-a-metric-line";
    for (let i = 0; i < 3; i++) await server.api.create({ Channel: "measured", Input: `${secret}-${i}`, RetryMaxLimit: "1" });
    const stream = new ReceiveStream(server.api, "measured").credit(3);
    const reports = new ReportStream(server.api);
    const tasks = await Promise.all(Array.from({ length: 3 }, () => stream.next(10_000)));
    for (const task of tasks.slice(0, 2)) expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
    expect((await reports.report(tasks[2]!.ID, ReportState.CANCEL, "no", tasks[2]!.LeaseToken)).State).toBe("200");
    stream.credit(2); // two credits left waiting

    await eventually(() => total("measured", "Succeeded") === 2 && total("measured", "Cancelled") === 1, 10_000);
    // The credits waiting show once the server has them; the backlog is SQS's count (read at most every 10 s).
    const line = await eventually(() => linesOf("measured").find((each) => emfValues(each).CreditsWaiting === 2), 5_000);
    expect(line._aws.CloudWatchMetrics).toHaveLength(1);
    expect(line._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: NAMESPACE, Dimensions: [["Channel"]] });
    expect(typeof emfValues(line).Backlog).toBe("number");
    expect(typeof emfValues(line).InFlight).toBe("number");
    expect(total("measured", "Created")).toBe(3);
    expect(total("measured", "Delivered")).toBe(3);
    expect(total("measured", "Failed")).toBe(0);
    // Timings: an average in ms, in some interval's line.
    for (const timing of ["QueueWait", "RunTime"]) expect(linesOf("measured").some((each) => typeof each[timing] === "number"), timing).toBe(true);
    // Every channel gets its line, also with nothing happening; a line is one write of one JSON object.
    expect(linesOf("default").length).toBeGreaterThan(0);
    expect(total("default", "Created")).toBe(0);
    for (const each of lines) expect(each.endsWith("}\n")).toBe(true);
    expect(lines.join("")).not.toContain(secret);
    stream.cancel();
    reports.end();
  });

  it("the drain writes the last interval's lines and stops the timer; a server without the setting writes none", async () => {
    const replica = await startTestServer({ replicaOf: server, settings: { emfNamespace: "QueuesReplica", emfIntervalMs: 60_000 } });
    const plain = await startTestServer({ replicaOf: server });
    try {
      await replica.api.create({ Channel: "default", Input: "counted at the drain" });
      await plain.api.create({ Channel: "default", Input: "not counted anywhere" });
      await replica.app.shutdown({ abandonLongPolls: true });
      const last = lines.map(expectValidEmf).filter((line) => line._aws.CloudWatchMetrics[0]?.Namespace === "QueuesReplica");
      expect(last.map((line) => line.Channel).sort()).toEqual(["default", "measured"]);
      expect(emfValues(last.find((line) => line.Channel === "default")!).Created).toBe(1);
      const count = lines.length;
      await sleep(400);
      expect(lines.filter((line) => line.includes("QueuesReplica"))).toHaveLength(2);
      expect(lines.length).toBeGreaterThan(count); // the first server goes on
      expect(plain.app.emf).toBeUndefined();
    } finally {
      await replica.stop();
      await plain.stop();
    }
  });
});
