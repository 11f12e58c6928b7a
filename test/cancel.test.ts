// SPEC §3 CancelTaskByID: 400/404, cancelling a WAITING task, the cascade along
// Next (answered in chain order), 409 with the final task, and cancelling a
// PROCEEDING task (its message removed, its worker told on the next heartbeat or
// report). Every test uses its own channel, so one test's messages never reach
// another's workers.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReportState, type WireTask } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { eventually, queueCounts, queueDrained, startTestServer, type TestServer } from "./support/harness.js";

const CHANNELS = ["waiting", "dropped", "chainHead", "chainMiddle", "final", "proceeding", "proceedingChain", "retrying", "outage"];

let server: TestServer;

const streams = new OpenStreams(() => server);
const worker = (channel: string) => streams.worker(channel);
const reporter = () => streams.reporter();

async function createOn(channel: string, Input = "", extra: { Prior?: string; RetryMaxLimit?: string } = {}): Promise<WireTask> {
  return server.api.create({ Channel: channel, Input, ...extra });
}

const emptyQueue = (channel: string) => queueDrained(server, channel);

beforeAll(async () => {
  server = await startTestServer({ channels: [{ name: "default" }, "other", ...CHANNELS] });
});

afterEach(async () => {
  server.faults.clear();
  await streams.closeAll(server);
});

afterAll(async () => {
  await server?.stop();
});

describe("CancelTaskByID arguments", () => {
  it("answers 400 for ID 0", async () => {
    const answer = await server.api.cancel("0");
    expect(answer.State).toBe("400");
    expect(answer.Message).not.toBe("");
    expect(answer.Data).toEqual([]);
  });

  it("answers 404 for a task that does not exist", async () => {
    const answer = await server.api.cancel("123456789012345678");
    expect(answer.State).toBe("404");
    expect(answer.Message).not.toBe("");
    expect(answer.Data).toEqual([]);
  });
});

describe("cancelling a WAITING task", () => {
  it("answers 200 with Data = [the task], now CANCEL", async () => {
    const task = await createOn("waiting", "cancel me");
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data).toHaveLength(1);
    expect(answer.Data[0]).toMatchObject({ ID: task.ID, State: "CANCEL", Input: "cancel me", HashCode: task.HashCode, Channel: "waiting" });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "CANCEL", Input: "cancel me" });
  });

  it("never delivers a cancelled task; its message is dropped and the queue empties", async () => {
    const task = await createOn("dropped", "never run");
    await eventually(async () => (await queueCounts(server, "dropped")).visible === 1);
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const w = worker("dropped").credit(2);
    expect(await w.nothingWithin(2_000)).toBe(true);
    await emptyQueue("dropped");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "CANCEL" });
    // The credits are still good for the next task.
    const next = await createOn("dropped", "runs");
    expect(await w.next()).toMatchObject({ ID: next.ID, State: "PROCEEDING" });
    expect((await reporter().report(next.ID, ReportState.SUCCESS)).State).toBe("200");
  });
});

describe("cancelling a chain", () => {
  it("cancels A→B→C from A and answers [A, B, C] in chain order", async () => {
    const a = await createOn("chainHead", "a");
    const b = await createOn("chainHead", "", { Prior: a.ID });
    const c = await createOn("chainHead", "c", { Prior: b.ID });
    const answer = await server.api.cancel(a.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data.map((task) => task.ID)).toEqual([a.ID, b.ID, c.ID]);
    expect(answer.Data.map((task) => task.State)).toEqual(["CANCEL", "CANCEL", "CANCEL"]);
    expect(answer.Data[1]).toMatchObject({ Prior: a.ID, Next: c.ID });
    for (const task of [a, b, c]) expect((await server.api.get(task.ID)).State).toBe("CANCEL");
    const w = worker("chainHead").credit(3);
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("chainHead");
  });

  it("cancels B and C but not A when B, the middle of A→B→C, is cancelled", async () => {
    const a = await createOn("chainMiddle", "a");
    const b = await createOn("chainMiddle", "b", { Prior: a.ID });
    const c = await createOn("chainMiddle", "c", { Prior: b.ID });
    const answer = await server.api.cancel(b.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data.map((task) => `${task.ID}:${task.State}`)).toEqual([`${b.ID}:CANCEL`, `${c.ID}:CANCEL`]);
    expect(await server.api.get(a.ID)).toMatchObject({ State: "WAITING", Next: b.ID });
    expect((await server.api.get(c.ID)).State).toBe("CANCEL");

    // A still runs; its success does not revive B.
    const w = worker("chainMiddle").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    expect((await reporter().report(a.ID, ReportState.SUCCESS, "a out")).State).toBe("200");
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect(await server.api.get(b.ID)).toMatchObject({ State: "CANCEL", Input: "b" });
    expect((await server.api.get(c.ID)).State).toBe("CANCEL");
  });
});

describe("cancelling a final task", () => {
  it("answers 409 with Data = [the task] in its final state (SUCCESS)", async () => {
    const task = await createOn("final", "done soon");
    const w = worker("final").credit();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "the result")).State).toBe("200");
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("409");
    expect(answer.Message).not.toBe("");
    expect(answer.Data).toHaveLength(1);
    expect(answer.Data[0]).toMatchObject({ ID: task.ID, State: "SUCCESS", Output: "the result", Input: "done soon" });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "the result" });
  });

  it("answers 409 with the task (large Output included) when it is SUCCESS with an Output over 1 KiB", async () => {
    const big = "R".repeat(3_000);
    const task = await createOn("final", "big result");
    const w = worker("final").credit();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reporter().report(task.ID, ReportState.SUCCESS, big)).State).toBe("200");
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("409");
    expect(answer.Data[0]?.Output).toBe(big);
  });

  it("answers 409 with Data = [the task] for a task already cancelled", async () => {
    const task = await createOn("final", "twice");
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("409");
    expect(answer.Data).toHaveLength(1);
    expect(answer.Data[0]).toMatchObject({ ID: task.ID, State: "CANCEL" });
  });

  it("answers 409 with Data = [the task] for a FAILURE task", async () => {
    const task = await createOn("final", "fails", { RetryMaxLimit: "1" });
    const w = worker("final").credit();
    const reports = reporter();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reports.report(task.ID, ReportState.FAILURE, "no 1")).State).toBe("200");
    w.credit();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reports.report(task.ID, ReportState.FAILURE, "no 2")).State).toBe("200");
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("409");
    expect(answer.Data).toHaveLength(1);
    expect(answer.Data[0]).toMatchObject({ ID: task.ID, State: "FAILURE", Output: "no 2", RetryCount: "2" });
  });
});

describe("cancelling a PROCEEDING task", () => {
  it("cancels it at once, removes its SQS message, and answers its worker's next heartbeat and report with 409 cancelled", async () => {
    const task = await createOn("proceeding", "long job");
    const w = worker("proceeding").credit();
    expect(await w.next()).toMatchObject({ ID: task.ID, State: "PROCEEDING" });
    await eventually(async () => (await queueCounts(server, "proceeding")).inFlight === 1);

    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data.map((t) => `${t.ID}:${t.State}`)).toEqual([`${task.ID}:CANCEL`]);
    expect((await server.api.get(task.ID)).State).toBe("CANCEL");
    // The message is deleted, not left to come back after the 30 s lease.
    await eventually(async () => {
      const counts = await queueCounts(server, "proceeding");
      return counts.inFlight === 0 && counts.visible === 0 && counts.delayed === 0;
    }, 5_000);

    const reports = reporter();
    const heartbeat = await reports.report(task.ID, ReportState.PROCEEDING, "still going");
    expect(heartbeat).toMatchObject({ State: "409", Data: task.ID });
    expect(heartbeat.Message).toMatch(/cancel/i);
    const result = await reports.report(task.ID, ReportState.SUCCESS, "finished anyway");
    expect(result).toMatchObject({ State: "409", Data: task.ID });
    expect(result.Message).toMatch(/cancel/i);
    const failure = await reports.report(task.ID, ReportState.FAILURE, "failed anyway");
    expect(failure.State).toBe("409");
    expect(failure.Message).toMatch(/cancel/i);
    // The reports changed nothing.
    expect(await server.api.get(task.ID)).toMatchObject({ State: "CANCEL", Output: "", RetryCount: "0" });
  });

  it("cancels a PROCEEDING head of a chain together with its waiting successors", async () => {
    const a = await createOn("proceedingChain", "head");
    const b = await createOn("proceedingChain", "", { Prior: a.ID });
    const w = worker("proceedingChain").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const answer = await server.api.cancel(a.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data.map((t) => `${t.ID}:${t.State}`)).toEqual([`${a.ID}:CANCEL`, `${b.ID}:CANCEL`]);
    const report = await reporter().report(a.ID, ReportState.SUCCESS, "too late");
    expect(report.State).toBe("409");
    expect(report.Message).toMatch(/cancel/i);
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect((await server.api.get(b.ID)).State).toBe("CANCEL");
    await emptyQueue("proceedingChain");
  });

  it("cancels a task that is WAITING in a retry backoff; its message never reaches a worker again", async () => {
    const task = await createOn("retrying", "flaky", { RetryMaxLimit: "5" });
    const w = worker("retrying").credit();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reporter().report(task.ID, ReportState.FAILURE, "first try")).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "1" });
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("200");
    expect(answer.Data[0]).toMatchObject({ ID: task.ID, State: "CANCEL", RetryCount: "1" });
    w.credit();
    expect(await w.nothingWithin(2_000)).toBe(true);
    await emptyQueue("retrying");
  });
});

describe("cancelling while DynamoDB fails", () => {
  it("answers 503 naming DynamoDB and leaves the task alone; the same cancel works once it is back", async () => {
    const task = await createOn("outage", "cancel through an outage");
    server.faults.failAlways("GetItemCommand");
    let answer;
    try {
      answer = await server.api.cancel(task.ID);
    } finally {
      server.faults.clear();
    }
    expect(answer.State).toBe("503");
    expect(answer.Message).toMatch(/DynamoDB/);
    expect(answer.Message).toMatch(/retry/i);
    expect(answer.Data).toEqual([]);
    expect((await server.api.get(task.ID)).State).toBe("WAITING");
    const again = await server.api.cancel(task.ID);
    expect(again.State).toBe("200");
    expect(again.Data.map((t) => [t.ID, t.State])).toEqual([[task.ID, "CANCEL"]]);
    // Its message is dropped when a worker's poll brings it back; the worker gets nothing.
    const w = worker("outage").credit();
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("outage");
  });
});
