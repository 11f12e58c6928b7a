// SPEC §3 ReportTaskResult: the report table (SUCCESS, FAILURE, CANCEL, heartbeat),
// the 400/404/409 answers, in-order responses, a cancel seen by a heartbeating worker,
// and a report that lands on another replica. Every test uses its own channel.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, type WireTask } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { queueCounts, queueDrained, startTestServer, type TestServer } from "./support/harness.js";
import { expectDistinctLeaseTokens, expectLeaseToken } from "./support/lease-tokens.js";

const CHANNELS = [
  "success",
  "failure",
  "lastFailure",
  "cancel",
  "heartbeat",
  "codes",
  "ids",
  "notLeased",
  "size",
  "burst",
  "burstIdle",
  "cancelPush",
  "replica",
  "backend",
];
/** 2 s leases, for the fencing tests. */
const SHORT_LEASE = ["fenced", "fencedFail", "unfenced"];

let server: TestServer;
let replica: TestServer | undefined;

const streams = new OpenStreams(() => server);
const worker = (channel: string, on?: TestServer) => streams.worker(channel, on);
const reporter = (on?: TestServer) => streams.reporter(on);

/** Creates a task and has a worker lease it; the worker stays open (more credits may be sent on it). */
async function leased(channel: string, Input = "in", RetryMaxLimit = "0"): Promise<{ task: WireTask; worker: ReceiveStream }> {
  const created = await server.api.create({ Channel: channel, Input, RetryMaxLimit });
  const w = worker(channel).credit();
  const task = await w.next();
  expect(task).toMatchObject({ ID: created.ID, State: "PROCEEDING" });
  return { task, worker: w };
}

const emptyQueue = (channel: string, on: TestServer = server) => queueDrained(on, channel);

beforeAll(async () => {
  server = await startTestServer({
    channels: [{ name: "default" }, "other", ...CHANNELS, ...SHORT_LEASE.map((name) => ({ name, visibilityTimeoutSeconds: 2 }))],
  });
});

afterEach(async () => {
  await streams.closeAll(server, replica);
});

afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

describe("ReportTaskResult codes", () => {
  it("SUCCESS (1) finishes the task, stores its Output and deletes its message", async () => {
    const { task, worker: w } = await leased("success", "question");
    const answer = await reporter().report(task.ID, ReportState.SUCCESS, "answer ✓");
    expect(answer).toMatchObject({ State: "200", Data: task.ID });
    expect(answer.Message).not.toBe("");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "answer ✓", Input: "question", RetryCount: "0" });
    await emptyQueue("success");
    w.credit();
    expect(await w.nothingWithin(1_000)).toBe(true);
  });

  it("FAILURE (2) with attempts left counts the attempt and redelivers the task after a backoff", async () => {
    const { task, worker: w } = await leased("failure", "flaky");
    expect(task.RetryCount).toBe("0");
    w.credit();
    const answer = await reporter().report(task.ID, ReportState.FAILURE, "boom");
    expect(answer).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "1" });
    // Not handed straight back: the retry waits out its backoff first.
    expect(await w.nothingWithin(300)).toBe(true);
    const again = await w.next(10_000);
    expect(again).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "1", Input: "flaky" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "fine now")).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "1", Output: "fine now" });
    await emptyQueue("failure");
  });

  it("FAILURE (2) on the last attempt is final: FAILURE with RetryCount 1 + RetryMaxLimit", async () => {
    const { task, worker: w } = await leased("lastFailure", "doomed", "1");
    expect(task.RetryMaxLimit).toBe("1");
    const reports = reporter();
    w.credit();
    expect((await reports.report(task.ID, ReportState.FAILURE, "first")).State).toBe("200");
    const second = await w.next(10_000);
    expect(second).toMatchObject({ ID: task.ID, RetryCount: "1" });
    w.credit();
    const last = await reports.report(task.ID, ReportState.FAILURE, "second");
    expect(last).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "FAILURE", RetryCount: "2" });
    await emptyQueue("lastFailure");
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect((await reports.report(task.ID, ReportState.FAILURE, "third")).State).toBe("409");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "FAILURE", RetryCount: "2" });
  });

  it("CANCEL (4) is final and never retried", async () => {
    const { task, worker: w } = await leased("cancel", "pointless");
    w.credit();
    const answer = await reporter().report(task.ID, ReportState.CANCEL, "gave up");
    expect(answer).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "CANCEL", RetryCount: "0" });
    await emptyQueue("cancel");
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect((await server.api.get(task.ID)).State).toBe("CANCEL");
  });

  it("PROCEEDING (6) is a heartbeat: 200, the task stays PROCEEDING and its Output is stored as progress", async () => {
    const { task } = await leased("heartbeat", "long");
    const reports = reporter();
    const beat = await reports.report(task.ID, ReportState.PROCEEDING, "50%");
    expect(beat).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: "50%", RetryCount: "0" });
    expect(await queueCounts(server, "heartbeat")).toMatchObject({ visible: 0, inFlight: 1 });
    expect((await reports.report(task.ID, ReportState.PROCEEDING, "90%")).State).toBe("200");
    expect((await server.api.get(task.ID)).Output).toBe("90%");
    expect((await reports.report(task.ID, ReportState.SUCCESS, "100%")).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "100%" });
    await emptyQueue("heartbeat");
  });

  it("answers 400 for any other State code and leaves the task alone", async () => {
    const { task } = await leased("codes");
    const reports = reporter();
    for (const code of ["0", "3", "5", "7", "8", "100", "18446744073709551615"]) {
      const answer = await reports.report(task.ID, code, "nope");
      expect(answer, `code ${code}`).toMatchObject({ State: "400", Data: task.ID });
      expect(answer.Message, `code ${code}`).not.toBe("");
    }
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: "", RetryCount: "0" });
    expect((await reports.report(task.ID, ReportState.SUCCESS, "ok")).State).toBe("200");
  });

  it("answers 400 for ID 0 and 404 for an unknown ID", async () => {
    const reports = reporter();
    const zero = await reports.report("0", ReportState.SUCCESS);
    expect(zero).toMatchObject({ State: "400", Data: "0" });
    expect(zero.Message).toMatch(/ID/);
    for (const id of ["9007199254740993", "18446744073709551615"]) {
      const unknown = await reports.report(id, ReportState.SUCCESS);
      expect(unknown).toMatchObject({ State: "404", Data: id });
      expect(unknown.Message).not.toBe("");
    }
  });

  it("answers 409 for a task that is not PROCEEDING: WAITING, SUCCESS or cancelled", async () => {
    const reports = reporter();
    // WAITING: created, nobody has received it.
    const waiting = await server.api.create({ Channel: "notLeased", Input: "queued" });
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      const answer = await reports.report(waiting.ID, code);
      expect(answer, `code ${code}`).toMatchObject({ State: "409", Data: waiting.ID });
    }
    expect(await server.api.get(waiting.ID)).toMatchObject({ State: "WAITING", RetryCount: "0", Output: "" });

    // Cancelled while WAITING: the Message says so.
    const cancelled = await server.api.cancel(waiting.ID);
    expect(cancelled.State).toBe("200");
    const afterCancel = await reports.report(waiting.ID, ReportState.SUCCESS, "too late");
    expect(afterCancel).toMatchObject({ State: "409", Data: waiting.ID });
    expect(afterCancel.Message).toMatch(/cancel/i);
    expect(await server.api.get(waiting.ID)).toMatchObject({ State: "CANCEL", Output: "" });

    // SUCCESS: a second SUCCESS (or anything else) is a conflict, the first result stays.
    const { task } = await leased("notLeased", "once");
    expect((await reports.report(task.ID, ReportState.SUCCESS, "first")).State).toBe("200");
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      const answer = await reports.report(task.ID, code, "second");
      expect(answer, `code ${code}`).toMatchObject({ State: "409", Data: task.ID });
      expect(answer.Message).not.toBe("");
    }
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "first" });
  });

  it("answers 400 naming Output for an Output over 256 KiB of UTF-8", async () => {
    const { task } = await leased("size");
    const reports = reporter();
    for (const output of ["x".repeat(262_145), "é".repeat(131_073)]) {
      const answer = await reports.report(task.ID, ReportState.SUCCESS, output);
      expect(answer).toMatchObject({ State: "400", Data: task.ID });
      expect(answer.Message).toMatch(/Output/);
    }
    const heartbeat = await reports.report(task.ID, ReportState.PROCEEDING, "y".repeat(262_145));
    expect(heartbeat).toMatchObject({ State: "400", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: "" });

    const limit = "é".repeat(131_072);
    expect((await reports.report(task.ID, ReportState.SUCCESS, limit)).State).toBe("200");
    const done = await server.api.get(task.ID);
    expect(done.State).toBe("SUCCESS");
    expect(done.Output === limit).toBe(true);
  });

  it("answers a burst of reports in request order, each with Data = its request ID", async () => {
    const created = await Promise.all([1, 2, 3].map((i) => server.api.create({ Channel: "burst", Input: `b${i}` })));
    const w = worker("burst").credit(3);
    const got = [await w.next(), await w.next(), await w.next()];
    const byInput = new Map(got.map((task) => [task.Input, task.ID]));
    const [t1, t2, t3] = ["b1", "b2", "b3"].map((input) => byInput.get(input) as string);
    expect(new Set([t1, t2, t3])).toEqual(new Set(created.map((task) => task.ID)));
    const idle = await server.api.create({ Channel: "burstIdle", Input: "never received" });

    const burst: [id: string, state: number | string, output: string, expected: string][] = [
      [t1 as string, ReportState.SUCCESS, "one", "200"],
      ["0", ReportState.SUCCESS, "", "400"],
      ["9007199254740993", ReportState.SUCCESS, "", "404"],
      [t2 as string, 3, "", "400"],
      [t2 as string, ReportState.PROCEEDING, "half", "200"],
      ["18446744073709551614", ReportState.FAILURE, "", "404"],
      [t3 as string, ReportState.FAILURE, "bad", "200"],
      [idle.ID, ReportState.SUCCESS, "", "409"],
      [t2 as string, ReportState.SUCCESS, "z".repeat(262_145), "400"],
      ["12345", ReportState.CANCEL, "", "404"],
    ];
    const reports = reporter();
    const answers = await Promise.all(burst.map(([id, state, output]) => reports.report(id, state, output)));
    expect(answers.map((answer) => [answer.Data, answer.State])).toEqual(burst.map(([id, , , expected]) => [id, expected]));

    expect(await server.api.get(t1 as string)).toMatchObject({ State: "SUCCESS", Output: "one" });
    expect(await server.api.get(t2 as string)).toMatchObject({ State: "PROCEEDING", Output: "half" });
    expect(await server.api.get(t3 as string)).toMatchObject({ State: "WAITING", RetryCount: "1" });
    expect(await server.api.get(idle.ID)).toMatchObject({ State: "WAITING", RetryCount: "0" });
    expect((await reports.report(t2 as string, ReportState.SUCCESS, "two")).State).toBe("200");
  });
});

describe("cancel and replicas", () => {
  it("tells a heartbeating worker that its task was cancelled", async () => {
    const { task } = await leased("cancelPush", "to be cancelled");
    const reports = reporter();
    expect((await reports.report(task.ID, ReportState.PROCEEDING, "working")).State).toBe("200");

    const cancelled = await server.api.cancel(task.ID);
    expect(cancelled.State).toBe("200");
    expect(cancelled.Data.map((t) => [t.ID, t.State])).toEqual([[task.ID, "CANCEL"]]);

    const beat = await reports.report(task.ID, ReportState.PROCEEDING, "still working");
    expect(beat).toMatchObject({ State: "409", Data: task.ID });
    expect(beat.Message).toMatch(/cancel/i);
    const success = await reports.report(task.ID, ReportState.SUCCESS, "done anyway");
    expect(success).toMatchObject({ State: "409", Data: task.ID });
    expect(success.Message).toMatch(/cancel/i);
    expect((await server.api.get(task.ID)).State).toBe("CANCEL");
    // Its SQS message is removed.
    await emptyQueue("cancelPush");
  });

  it("accepts a report on another replica than the one that delivered the task", async () => {
    replica = await startTestServer({ replicaOf: server });
    const { task } = await leased("replica", "cross");
    const answer = await reporter(replica).report(task.ID, ReportState.SUCCESS, "reported elsewhere");
    expect(answer).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "reported elsewhere" });
    expect(await replica.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "reported elsewhere" });
    await emptyQueue("replica");
  });
});

describe("backend failures on the report stream", () => {
  it("answers 503 naming DynamoDB while it fails, keeps the stream open, and takes the same report once it is back", async () => {
    const { task } = await leased("backend", "report through an outage");
    const reports = reporter();
    server.faults.failAlways("GetItemCommand").failAlways("UpdateItemCommand");
    let answer;
    try {
      answer = await reports.report(task.ID, ReportState.SUCCESS, "done");
    } finally {
      server.faults.clear();
    }
    expect(answer).toMatchObject({ State: "503", Data: task.ID });
    expect(answer.Message).toMatch(/DynamoDB/);
    expect(answer.Message).toMatch(/retry/i);
    // Nothing changed, and the same stream carries the retried report.
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: "" });
    expect(await reports.report(task.ID, ReportState.SUCCESS, "done")).toMatchObject({ State: "200", Data: task.ID });
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "done" });
    await emptyQueue("backend");
  });

  it("answers 500 with a request id for an unexpected (non-AWS) error and keeps the stream open", async () => {
    const { task } = await leased("backend", "report through a bug");
    const reports = reporter();
    server.faults.failAlways("UpdateItemCommand", () => new TypeError("boom"));
    let answer;
    try {
      answer = await reports.report(task.ID, ReportState.SUCCESS, "done");
    } finally {
      server.faults.clear();
    }
    expect(answer).toMatchObject({ State: "500", Data: task.ID });
    expect(answer.Message).toMatch(/request id/i);
    expect((await server.api.get(task.ID)).State).toBe("PROCEEDING");
    expect(await reports.report(task.ID, ReportState.SUCCESS, "done")).toMatchObject({ State: "200", Data: task.ID });
    await emptyQueue("backend");
  });
});

describe("fencing (LeaseToken, an addition to the seed)", () => {
  it("a report for an older lease answers 409 and leaves the newer delivery alone; the current lease's report works", async () => {
    const created = await server.api.create({ Channel: "fenced", Input: "fence me" });
    const first = worker("fenced").credit();
    const stale = await first.next();
    expect(stale).toMatchObject({ ID: created.ID });
    expectLeaseToken(stale.LeaseToken);
    // The lease (2 s) runs out without a heartbeat: redelivered with a new token.
    const second = worker("fenced").credit();
    const fresh = await second.next(15_000);
    expect(fresh).toMatchObject({ ID: created.ID, RetryCount: "1" });
    expectDistinctLeaseTokens(stale.LeaseToken, fresh.LeaseToken);

    const reports = reporter();
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      const answer = await reports.report(created.ID, code, "from the old lease", stale.LeaseToken);
      expect(answer).toMatchObject({ State: "409", Data: created.ID });
      expect(answer.Message).toMatch(/stale/);
    }
    expect(await server.api.get(created.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "1", Output: "" });

    const beat = await reports.report(created.ID, ReportState.PROCEEDING, "halfway", fresh.LeaseToken);
    expect(beat).toMatchObject({ State: "200" });
    expect(Date.parse(beat.LeaseExpireTime)).toBeGreaterThan(Date.parse(fresh.LeaseExpireTime) - 1);
    expect(await reports.report(created.ID, ReportState.SUCCESS, "done", fresh.LeaseToken)).toMatchObject({ State: "200" });
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", Output: "done" });
  });

  it("a report without a LeaseToken (the seed's client) acts on the newer lease; that lease's holder then gets the final task", async () => {
    const created = await server.api.create({ Channel: "unfenced", Input: "two workers" });
    const first = worker("unfenced").credit();
    const lease1 = await first.next(20_000);
    expect(lease1).toMatchObject({ ID: created.ID, State: "PROCEEDING", RetryCount: "0" });
    expectLeaseToken(lease1.LeaseToken);
    // Lease 1 (2 s) runs out without a report: a failed attempt, then delivery again as lease 2.
    const second = worker("unfenced").credit();
    const lease2 = await second.next(20_000);
    expect(lease2).toMatchObject({ ID: created.ID, State: "PROCEEDING", RetryCount: "1", Input: "two workers" });
    expectDistinctLeaseTokens(lease1.LeaseToken, lease2.LeaseToken);
    expect(await first.nothingWithin(200)).toBe(true);

    const reports = reporter();
    // The late worker of lease 1 with its token is refused ("a report for an older lease answers
    // 409..." above covers every code):
    const fenced = await reports.report(created.ID, ReportState.SUCCESS, "late, fenced", lease1.LeaseToken);
    expect(fenced).toMatchObject({ State: "409", Data: created.ID });
    expect(fenced.Message).toBe(`Task ${created.ID} was delivered again since lease ${lease1.LeaseToken}; this report is stale`);
    // The current lease's token is never told: it is what lets its holder report.
    expect(fenced.Message).not.toContain(lease2.LeaseToken);
    expect(await server.api.get(created.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "1", Output: "" });

    // ...but the same late report without a token (a client generated from the seed) acts on lease 2.
    const unfenced = await reports.report(created.ID, ReportState.SUCCESS, "late, unfenced");
    expect(unfenced).toMatchObject({ State: "200", Data: created.ID, Message: "Task succeeded" });
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "1", Output: "late, unfenced" });
    await emptyQueue("unfenced");

    // Lease 2's holder, reporting with its token afterwards, finds the task final: its result was
    // never recorded (the SUCCESS under lease 2 was the unfenced report's), so even its SUCCESS is
    // not "Already recorded" but 409 (the task keeps which report finished it, `reportLease`).
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      const answer = await reports.report(created.ID, code, "from lease 2", lease2.LeaseToken);
      expect(answer, `code ${code}`).toMatchObject({ State: "409", Data: created.ID, Message: `Task ${created.ID} is already SUCCESS; a final task never changes` });
    }
    // Nothing the holder sent changed the task: the unfenced report's result stays.
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "1", Output: "late, unfenced" });
    expect(await second.nothingWithin(500)).toBe(true);
  });

  it("a repeat of a report that already took effect under the same lease answers 200 and changes nothing", async () => {
    const { task } = await leased("success", "repeat me");
    const reports = reporter();
    expect(await reports.report(task.ID, ReportState.SUCCESS, "once", task.LeaseToken)).toMatchObject({ State: "200" });
    const repeat = await reports.report(task.ID, ReportState.SUCCESS, "once", task.LeaseToken);
    expect(repeat).toMatchObject({ State: "200", Data: task.ID });
    expect(repeat.Message).toMatch(/Already recorded/);
    // Without the token, the seed's behaviour: the task is not PROCEEDING, 409.
    expect((await reports.report(task.ID, ReportState.SUCCESS, "once")).State).toBe("409");
    // A different result under the same lease is still a conflict.
    expect((await reports.report(task.ID, ReportState.CANCEL, "", task.LeaseToken)).State).toBe("409");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "once" });
    await emptyQueue("success");
  });

  it("a worker's CANCEL after CancelTaskByID cancelled its task is 409 (cancelled), not a repeat of its own report", async () => {
    const { task } = await leased("success", "cancelled under me");
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const reports = reporter();
    for (const code of [ReportState.CANCEL, ReportState.SUCCESS, ReportState.PROCEEDING]) {
      const answer = await reports.report(task.ID, code, "", task.LeaseToken);
      expect(answer, `code ${code}`).toMatchObject({ State: "409", Data: task.ID, Message: `Task ${task.ID} was cancelled; stop working on it` });
    }
    // The worker's own CANCEL, repeated under its lease, is a repeat.
    const other = await leased("success", "given up");
    expect((await reports.report(other.task.ID, ReportState.CANCEL, "no", other.task.LeaseToken)).State).toBe("200");
    expect(await reports.report(other.task.ID, ReportState.CANCEL, "no", other.task.LeaseToken)).toMatchObject({
      State: "200",
      Message: `Already recorded: task ${other.task.ID} is cancelled`,
    });
    await emptyQueue("success");
  });

  it("a repeated FAILURE under the same lease answers 200 without counting a second attempt", async () => {
    const { task } = await leased("fencedFail", "fail once", "5");
    const reports = reporter();
    expect((await reports.report(task.ID, ReportState.FAILURE, "boom", task.LeaseToken)).State).toBe("200");
    expect((await reports.report(task.ID, ReportState.FAILURE, "boom", task.LeaseToken)).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "1" });
  });

  it("LeaseToken 2^64-1 is just a stale token (409), and 0 means no fencing", async () => {
    const { task } = await leased("codes", "bad token");
    const answer = await new Promise<{ State: string; Message: string }>((resolve) => {
      const call = server.api.raw.ReportTaskResult();
      call.on("data", (response: { State: string; Message: string }) => {
        resolve(response);
        call.end();
      });
      call.on("error", () => {});
      call.write({ ID: task.ID, State: "6", LeaseToken: "18446744073709551615" });
    });
    expect(answer.State).toBe("409");
    expect(answer.Message).toMatch(/stale/);
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "", "0")).State).toBe("200");
  });
});
