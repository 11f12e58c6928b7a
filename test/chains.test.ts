// SPEC §3 CreateTask with a Prior (chains): the atomic link, successors waiting for
// their Prior, queueing on SUCCESS with the Output piped into an empty Input, the
// 404/409 rules of linking, and the cascade of CANCEL when a Prior fails for good or
// is given up. Every test uses its own channel, so one test's messages never reach
// another's workers.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReportState, type WireTask } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { expectDistinctLeaseTokens, expectLeaseToken } from "./support/lease-tokens.js";
import { eventually, queueCounts, queueDrained, startTestServer, type TestServer } from "./support/harness.js";
import { createLogger } from "../service/src/logging.js";

const CHANNELS = [
  "link",
  "atomic",
  "waits",
  "pipeSmall",
  "pipeLarge",
  "keepInput",
  "three",
  "priorDone",
  "priorDoneLarge",
  "conflicts",
  "succPrior",
  "failPrior",
  "failChain",
  "giveUpChain",
  "race",
];
/** 2 s leases, for a chain whose head's leases run out. */
const SHORT_LEASE = ["expireChain"];

let server: TestServer;
let unique = 0;

const streams = new OpenStreams(() => server);
const worker = (channel: string) => streams.worker(channel);
const reporter = () => streams.reporter();

/** Records the server's log lines (parsed) while `body` runs, then puts its own logger back. */
async function withServerLog<T>(body: (lines: Record<string, unknown>[]) => Promise<T>): Promise<T> {
  const lines: Record<string, unknown>[] = [];
  const own = server.app.ctx.log;
  server.app.ctx.log = createLogger("info", { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  try {
    return await body(lines);
  } finally {
    server.app.ctx.log = own;
  }
}

function hashCode(label: string): string {
  unique += 1;
  return `chains-${label}-${process.pid}-${Date.now()}-${unique}`;
}

async function createOn(channel: string, Input = "", extra: { Prior?: string; RetryMaxLimit?: string; HashCode?: string } = {}): Promise<WireTask> {
  return server.api.create({ Channel: channel, Input, ...extra });
}

/** Delivers and completes a task that is alone on its channel. */
async function runToSuccess(task: WireTask, Output: string): Promise<void> {
  const w = worker(task.Channel).credit();
  const got = await w.next();
  expect(got.ID).toBe(task.ID);
  expect((await reporter().report(task.ID, ReportState.SUCCESS, Output)).State).toBe("200");
  w.cancel();
}

const emptyQueue = (channel: string) => queueDrained(server, channel);

beforeAll(async () => {
  server = await startTestServer({
    channels: [{ name: "default" }, "other", ...CHANNELS, ...SHORT_LEASE.map((name) => ({ name, visibilityTimeoutSeconds: 2 }))],
  });
});

afterEach(async () => {
  server.faults.clear();
  await streams.closeAll(server);
});

afterAll(async () => {
  await server?.stop();
});

describe("linking a task to its Prior", () => {
  it("sets Prior.Next to the new ID and the new task's Prior, and leaves the Prior's state and UpdateTime alone", async () => {
    const a = await createOn("link", "first");
    const created = await server.api.createTask({ Channel: "link", Input: "second", Prior: a.ID });
    expect(created.State).toBe("200");
    const b = await server.api.queryByHashCode(created.Data);
    expect(b.State).toBe("200");
    expect(b.Data).toMatchObject({ Prior: a.ID, Next: "0", State: "WAITING", Input: "second" });
    const prior = await server.api.get(a.ID);
    expect(prior).toMatchObject({ Next: b.Data?.ID, Prior: "0", State: "WAITING", UpdateTime: a.UpdateTime, Input: "first" });
  });

  it("writes the link and the new task atomically: whenever one is visible, so is the other", async () => {
    for (let round = 0; round < 3; round++) {
      const a = await createOn("atomic", `prior ${round}`);
      const code = hashCode("atomic");
      let done = false;
      const observations: string[] = [];
      const watch = (async () => {
        let flip = false;
        while (!done) {
          flip = !flip;
          if (flip) {
            // Prior first: once it names a Next, that task must exist.
            const prior = await server.api.get(a.ID);
            if (prior.Next !== "0") {
              const next = await server.api.queryById(prior.Next);
              observations.push(`next:${next.State}:${next.Data?.Prior}:${next.Data?.HashCode === code}`);
            }
          } else {
            // New task first: once it exists, the Prior must already name it.
            const found = await server.api.queryByHashCode(code);
            if (found.State === "200") {
              const prior = await server.api.get(a.ID);
              observations.push(`prior:${prior.Next === found.Data?.ID}`);
            }
          }
        }
      })();
      const created = await server.api.createTask({ Channel: "atomic", Prior: a.ID, HashCode: code });
      expect(created.State).toBe("200");
      // Keep watching a little after the answer, then check every observation.
      await eventually(() => observations.length >= 4, 5_000, 10);
      done = true;
      await watch;
      for (const seen of observations) {
        if (seen.startsWith("next:")) expect(seen).toBe(`next:200:${a.ID}:true`);
        else expect(seen).toBe("prior:true");
      }
    }
  });
});

describe("successors wait for their Prior", () => {
  it("does not deliver a successor while its Prior is WAITING or PROCEEDING, then delivers it with the Prior's Output once the Prior succeeds", async () => {
    const a = await createOn("waits", "step one");
    const b = await createOn("waits", "", { Prior: a.ID });
    expect(b.State).toBe("WAITING");

    const w = worker("waits").credit(2);
    const first = await w.next();
    expect(first).toMatchObject({ ID: a.ID, State: "PROCEEDING" });
    // The worker has a second credit, but B is not queued while A is PROCEEDING.
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect(await server.api.get(b.ID)).toMatchObject({ State: "WAITING", Input: "" });

    const reports = reporter();
    expect((await reports.report(a.ID, ReportState.PROCEEDING, "half way")).State).toBe("200");
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect(await server.api.get(b.ID)).toMatchObject({ State: "WAITING" });

    expect((await reports.report(a.ID, ReportState.SUCCESS, "step one done")).State).toBe("200");
    const second = await w.next();
    expect(second).toMatchObject({ ID: b.ID, Prior: a.ID, State: "PROCEEDING", Input: "step one done", RetryCount: "0" });
    expect((await reports.report(b.ID, ReportState.SUCCESS, "step two done")).State).toBe("200");
    expect(await server.api.get(b.ID)).toMatchObject({ State: "SUCCESS", Input: "step one done", Output: "step two done" });
    expect(await server.api.get(a.ID)).toMatchObject({ State: "SUCCESS", Next: b.ID, Output: "step one done" });
    await emptyQueue("waits");
  });

  it("does not queue a successor whose Prior is still WAITING (no worker at all)", async () => {
    const a = await createOn("waits", "lonely prior");
    const b = await createOn("waits", "", { Prior: a.ID });
    // Only A's message is on the queue.
    await eventually(async () => (await queueCounts(server, "waits")).visible === 1);
    const w = worker("waits").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect(await server.api.get(b.ID)).toMatchObject({ State: "WAITING" });
    const reports = reporter();
    expect((await reports.report(a.ID, ReportState.SUCCESS, "")).State).toBe("200");
    // An empty Output piped into an empty Input: still empty.
    expect(await w.next()).toMatchObject({ ID: b.ID, Input: "" });
    expect((await reports.report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("waits");
  });
});

describe("pipelines", () => {
  it("gives an empty successor Input the Prior's small Output", async () => {
    const a = await createOn("pipeSmall", "in");
    const b = await createOn("pipeSmall", "", { Prior: a.ID });
    const w = worker("pipeSmall").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const reports = reporter();
    const output = "small output ✓ \u{1F680}";
    expect((await reports.report(a.ID, ReportState.SUCCESS, output)).State).toBe("200");
    expect(await w.next()).toMatchObject({ ID: b.ID, Input: output });
    expect(await server.api.get(b.ID)).toMatchObject({ State: "PROCEEDING", Input: output });
    expect((await reports.report(b.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("gives an empty successor Input the Prior's Output when it is larger than 1 KiB (stored as its own item)", async () => {
    const a = await createOn("pipeLarge", "in");
    const b = await createOn("pipeLarge", "", { Prior: a.ID });
    const w = worker("pipeLarge").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const reports = reporter();
    const output = `${"é".repeat(700)}|${"x".repeat(5_000)}|end`;
    expect((await reports.report(a.ID, ReportState.SUCCESS, output)).State).toBe("200");
    const delivered = await w.next();
    expect(delivered.ID).toBe(b.ID);
    expect(delivered.Input.length).toBe(output.length);
    expect(delivered.Input).toBe(output);
    expect((await server.api.get(b.ID)).Input).toBe(output);
    expect((await server.api.get(a.ID)).Output).toBe(output);
    expect((await reports.report(b.ID, ReportState.SUCCESS, "short")).State).toBe("200");
    expect(await server.api.get(b.ID)).toMatchObject({ State: "SUCCESS", Input: output, Output: "short" });
  });

  it("keeps a non-empty successor Input", async () => {
    const a = await createOn("keepInput", "in");
    const b = await createOn("keepInput", "my own input", { Prior: a.ID });
    const w = worker("keepInput").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const reports = reporter();
    expect((await reports.report(a.ID, ReportState.SUCCESS, "prior output")).State).toBe("200");
    expect(await w.next()).toMatchObject({ ID: b.ID, Input: "my own input" });
    expect((await reports.report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await server.api.get(b.ID)).toMatchObject({ Input: "my own input" });
  });

  it("keeps a non-empty successor Input larger than 1 KiB when the Prior's Output is small", async () => {
    const own = "k".repeat(3_000);
    const a = await createOn("keepInput", "in");
    const b = await createOn("keepInput", own, { Prior: a.ID });
    const w = worker("keepInput").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const reports = reporter();
    expect((await reports.report(a.ID, ReportState.SUCCESS, "tiny")).State).toBe("200");
    const delivered = await w.next();
    expect(delivered.ID).toBe(b.ID);
    expect(delivered.Input).toBe(own);
    expect((await reports.report(b.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("runs a chain of three in order, piping each Output into the next Input", async () => {
    const a = await createOn("three", "start");
    const b = await createOn("three", "", { Prior: a.ID });
    const c = await createOn("three", "", { Prior: b.ID });
    expect(await server.api.get(a.ID)).toMatchObject({ Next: b.ID, Prior: "0" });
    expect(await server.api.get(b.ID)).toMatchObject({ Next: c.ID, Prior: a.ID });
    expect(await server.api.get(c.ID)).toMatchObject({ Next: "0", Prior: b.ID });

    const w = worker("three").credit(3);
    const reports = reporter();
    const order: string[] = [];

    const first = await w.next();
    order.push(first.ID);
    expect(first.Input).toBe("start");
    expect(await w.nothingWithin(800)).toBe(true);
    expect((await reports.report(first.ID, ReportState.SUCCESS, "out of A")).State).toBe("200");

    const second = await w.next();
    order.push(second.ID);
    expect(second.Input).toBe("out of A");
    expect(await w.nothingWithin(800)).toBe(true);
    expect(await server.api.get(c.ID)).toMatchObject({ State: "WAITING", Input: "" });
    expect((await reports.report(second.ID, ReportState.SUCCESS, "out of B")).State).toBe("200");

    const third = await w.next();
    order.push(third.ID);
    expect(third.Input).toBe("out of B");
    expect((await reports.report(third.ID, ReportState.SUCCESS, "out of C")).State).toBe("200");

    expect(order).toEqual([a.ID, b.ID, c.ID]);
    expect(await server.api.get(c.ID)).toMatchObject({ State: "SUCCESS", Input: "out of B", Output: "out of C" });
    await emptyQueue("three");
  });

  it("queues a task at once, with the Prior's Output as Input, when its Prior already succeeded", async () => {
    const a = await createOn("priorDone", "in");
    await runToSuccess(a, "finished earlier");
    const doneA = await server.api.get(a.ID);

    const w = worker("priorDone").credit();
    const b = await createOn("priorDone", "", { Prior: a.ID });
    expect(b.Prior).toBe(a.ID);
    const delivered = await w.next();
    expect(delivered).toMatchObject({ ID: b.ID, Input: "finished earlier", State: "PROCEEDING" });
    // The final Prior is linked, but otherwise stays as it was.
    expect(await server.api.get(a.ID)).toMatchObject({ State: "SUCCESS", Next: b.ID, UpdateTime: doneA.UpdateTime, Output: "finished earlier" });
    expect((await reporter().report(b.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("pipes a large Output of an already successful Prior, and keeps an explicit Input in that case", async () => {
    const big = "L".repeat(4_000);
    const a = await createOn("priorDoneLarge", "in");
    await runToSuccess(a, big);
    const w = worker("priorDoneLarge").credit();
    const b = await createOn("priorDoneLarge", "", { Prior: a.ID });
    const delivered = await w.next();
    expect(delivered.ID).toBe(b.ID);
    expect(delivered.Input).toBe(big);
    const reports = reporter();
    expect((await reports.report(b.ID, ReportState.SUCCESS, "b done")).State).toBe("200");

    const c = await createOn("priorDoneLarge", "explicit", { Prior: b.ID });
    w.credit();
    expect(await w.next()).toMatchObject({ ID: c.ID, Input: "explicit" });
    expect((await reports.report(c.ID, ReportState.SUCCESS)).State).toBe("200");
  });
});

describe("Prior rules", () => {
  async function rejectedLink(prior: string, label: string): Promise<{ State: string; Message: string }> {
    const code = hashCode(label);
    const answer = await server.api.createTask({ Channel: "conflicts", Input: "x", Prior: prior, HashCode: code });
    // Nothing was created.
    expect((await server.api.queryByHashCode(code)).State).toBe("404");
    return answer;
  }

  it("answers 404 for a Prior that does not exist", async () => {
    const answer = await rejectedLink("987654321987654321", "missing");
    expect(answer.State).toBe("404");
    expect(answer.Message).not.toBe("");
  });

  it("answers 409 for a Prior that already has a Next, and leaves the existing link alone", async () => {
    const a = await createOn("conflicts", "a");
    const b = await createOn("conflicts", "b", { Prior: a.ID });
    const answer = await rejectedLink(a.ID, "hasNext");
    expect(answer.State).toBe("409");
    expect(answer.Message).not.toBe("");
    expect(await server.api.get(a.ID)).toMatchObject({ Next: b.ID });
    // The link stays even when the successor is cancelled: still "already has a Next".
    expect((await server.api.cancel(b.ID)).State).toBe("200");
    expect((await rejectedLink(a.ID, "hasCancelledNext")).State).toBe("409");
    expect(await server.api.get(a.ID)).toMatchObject({ Next: b.ID, State: "WAITING" });
  });

  it("answers 409 for a successful Prior that already has a Next", async () => {
    const c = await createOn("succPrior", "c");
    await runToSuccess(c, "c out");
    const d = await createOn("conflicts", "", { Prior: c.ID });
    expect((await rejectedLink(c.ID, "successHasNext")).State).toBe("409");
    expect(await server.api.get(c.ID)).toMatchObject({ Next: d.ID, State: "SUCCESS" });
    expect(await server.api.get(d.ID)).toMatchObject({ Prior: c.ID, Input: "c out" });
  });

  it("answers 409 for a Prior that is FAILURE", async () => {
    const a = await createOn("failPrior", "doomed", { RetryMaxLimit: "1" });
    const w = worker("failPrior").credit();
    const reports = reporter();
    for (let attempt = 0; attempt < 2; attempt++) {
      const task = await w.next();
      expect(task).toMatchObject({ ID: a.ID, RetryCount: String(attempt) });
      expect((await reports.report(a.ID, ReportState.FAILURE, `attempt ${attempt}`)).State).toBe("200");
      if (attempt === 0) w.credit();
    }
    expect(await server.api.get(a.ID)).toMatchObject({ State: "FAILURE", RetryCount: "2" });
    const answer = await rejectedLink(a.ID, "failed");
    expect(answer.State).toBe("409");
    expect(answer.Message).toMatch(/FAILURE/);
    expect(await server.api.get(a.ID)).toMatchObject({ Next: "0" });
  });

  it("answers 409 for a Prior that is CANCEL", async () => {
    const a = await createOn("conflicts", "to cancel");
    expect((await server.api.cancel(a.ID)).State).toBe("200");
    const answer = await rejectedLink(a.ID, "cancelled");
    expect(answer.State).toBe("409");
    expect(answer.Message).toMatch(/CANCEL/);
    expect(await server.api.get(a.ID)).toMatchObject({ Next: "0", State: "CANCEL" });
  });

  it("lets exactly one of two concurrent creates link to the same Prior (chains are linear)", async () => {
    for (let round = 0; round < 4; round++) {
      const a = await createOn("race", `prior ${round}`);
      const codes = [hashCode("raceOne"), hashCode("raceTwo")];
      const answers = await Promise.all(codes.map((HashCode) => server.api.createTask({ Channel: "race", Input: "succ", Prior: a.ID, HashCode })));
      expect(answers.map((answer) => answer.State).sort()).toEqual(["200", "409"]);
      const winner = answers[0]?.State === "200" ? 0 : 1;
      const winnerCode = codes[winner] as string;
      const loserCode = codes[1 - winner] as string;
      const won = await server.api.queryByHashCode(winnerCode);
      expect(won.State).toBe("200");
      expect(won.Data?.Prior).toBe(a.ID);
      expect((await server.api.queryByHashCode(loserCode)).State).toBe("404");
      expect(await server.api.get(a.ID)).toMatchObject({ Next: won.Data?.ID });
    }
  });
});

describe("a Prior that does not succeed cancels its successors", () => {
  it("cancels every successor when the Prior fails for good", async () => {
    const a = await createOn("failChain", "fragile", { RetryMaxLimit: "1" });
    const b = await createOn("failChain", "", { Prior: a.ID });
    const c = await createOn("failChain", "", { Prior: b.ID });
    const w = worker("failChain").credit();
    const reports = reporter();

    const first = await w.next();
    expect(first).toMatchObject({ ID: a.ID, RetryCount: "0" });
    expect((await reports.report(a.ID, ReportState.FAILURE, "try 1")).State).toBe("200");
    // One attempt left: the successors still wait.
    expect(await server.api.get(b.ID)).toMatchObject({ State: "WAITING" });
    w.credit();
    const second = await w.next();
    expect(second).toMatchObject({ ID: a.ID, RetryCount: "1" });
    expect((await reports.report(a.ID, ReportState.FAILURE, "try 2")).State).toBe("200");

    expect(await server.api.get(a.ID)).toMatchObject({ State: "FAILURE", RetryCount: "2", Output: "try 2" });
    await eventually(async () => (await server.api.get(b.ID)).State === "CANCEL" && (await server.api.get(c.ID)).State === "CANCEL", 5_000);
    // Nothing of the chain is delivered any more.
    w.credit();
    expect(await w.nothingWithin(1_000)).toBe(true);
    await emptyQueue("failChain");
  });

  it("cancels every successor when the Prior's lease runs out on its last attempt (no report at all)", async () => {
    await withServerLog(async (log) => {
      const a = await createOn("expireChain", "silent", { RetryMaxLimit: "1" });
      const b = await createOn("expireChain", "", { Prior: a.ID });
      const c = await createOn("expireChain", "own input", { Prior: b.ID });
      // A worker that takes A and never reports nor heartbeats (no report stream is ever opened).
      const w = worker("expireChain").credit();
      const first = await w.next(20_000);
      expect(first).toMatchObject({ ID: a.ID, State: "PROCEEDING", RetryCount: "0" });
      expectLeaseToken(first.LeaseToken);
      // Lease 1 (2 s) runs out: a failed attempt; one attempt is left, so A comes back.
      w.credit();
      const second = await w.next(20_000);
      expect(second).toMatchObject({ ID: a.ID, State: "PROCEEDING", RetryCount: "1", Input: "silent" });
      expectDistinctLeaseTokens(first.LeaseToken, second.LeaseToken);
      expect(await server.api.get(b.ID)).toMatchObject({ State: "WAITING" });
      expect(await server.api.get(c.ID)).toMatchObject({ State: "WAITING" });
      // Lease 2 runs out too. The credit outstanding keeps the channel polled, so the message
      // comes back to the server, which finds no attempt left.
      w.credit();
      const failed = await eventually(async () => {
        const task = await server.api.get(a.ID);
        return task.State === "FAILURE" ? task : undefined;
      }, 30_000);
      expect(failed).toMatchObject({ RetryCount: "2", RetryMaxLimit: "1", Output: "", Next: b.ID });
      // Written when lease 2's message came back, after that lease had run out.
      expect(Date.parse(failed.UpdateTime)).toBeGreaterThanOrEqual(Date.parse(second.LeaseExpireTime));

      await eventually(async () => (await server.api.get(b.ID)).State === "CANCEL" && (await server.api.get(c.ID)).State === "CANCEL", 10_000);
      expect(await server.api.get(b.ID)).toMatchObject({ State: "CANCEL", RetryCount: "0", Input: "", Prior: a.ID, Next: c.ID });
      expect(await server.api.get(c.ID)).toMatchObject({ State: "CANCEL", RetryCount: "0", Input: "own input", Prior: b.ID });
      // B and C are never delivered, and nothing of the chain is left on the queue.
      expect(await w.nothingWithin(1_500)).toBe(true);
      await emptyQueue("expireChain");
      expect(server.app.streams.size).toBe(1);

      // Both failed attempts were lease expiries found on a redelivery, and the chain was not
      // cancelled through CancelTaskByID.
      const expiries = log.filter((line) => line.msg === "lease expired without a report" && line.taskId === a.ID);
      expect(expiries.map((line) => line.retryCount)).toEqual(["1", "2"]);
      expect(log.filter((line) => line.msg === "task finished" || line.msg === "task cancelled")).toEqual([]);
      expect((await server.api.cancel(a.ID)).State).toBe("409");
    });
  }, 120_000);

  it("cancels every successor when the worker reports CANCEL (4)", async () => {
    const a = await createOn("giveUpChain", "hopeless");
    const b = await createOn("giveUpChain", "", { Prior: a.ID });
    const c = await createOn("giveUpChain", "own", { Prior: b.ID });
    const w = worker("giveUpChain").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    const answer = await reporter().report(a.ID, ReportState.CANCEL, "giving up");
    expect(answer).toMatchObject({ State: "200", Data: a.ID });
    expect(await server.api.get(a.ID)).toMatchObject({ State: "CANCEL", Output: "giving up", RetryCount: "0" });
    await eventually(async () => (await server.api.get(b.ID)).State === "CANCEL" && (await server.api.get(c.ID)).State === "CANCEL", 5_000);
    expect(await w.nothingWithin(1_000)).toBe(true);
    // The whole chain is final: cancelling any of it is a conflict.
    expect((await server.api.cancel(b.ID)).State).toBe("409");
    await emptyQueue("giveUpChain");
  });
});
