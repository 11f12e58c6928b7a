// Scheduling (SPEC §7.1): Task.RunAt, CreateTasks and recurring schedules, through a
// real gRPC client against real servers on the emulators. Tasks scheduled further
// ahead than SQS's 15 minutes are seen coming due by moving a server's clock (its
// `now`), never by waiting: the parking shards, the look-ahead and SQS's delay run
// for real.
import { randomBytes } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Schedule, Task } from "@queues/protocol";
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { eventually, queueCounts, sleep, startTestServer, type TestServer } from "./support/harness.js";

const MINUTE = 60_000;
let server: TestServer;
let replica: TestServer;
const extra: TestServer[] = [];

beforeAll(async () => {
  server = await startTestServer({ channels: ["default", "other", "batch", "ticks", "restart", "cancelled", "lookahead"], settings: { parkedScanIntervalMs: 200 } });
  replica = await startTestServer({ replicaOf: server, settings: { parkedScanIntervalMs: 200 } });
});
afterEach(async () => {
  await Promise.all(extra.splice(0).map((started) => started.stop()));
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

const freshOwner = () => BigInt(`0x${randomBytes(6).toString("hex")}`).toString();
const iso = (ms: number) => new Date(ms).toISOString();

/** A server on the test's table and queues whose clock runs `offset.ms` ahead of the real one. */
async function offsetReplica(offset: { ms: number }, settings = {}): Promise<TestServer> {
  const started = await startTestServer({ replicaOf: server, now: () => Date.now() + offset.ms, settings: { parkedScanIntervalMs: 200, ...settings } });
  extra.push(started);
  return started;
}

/** Takes one task off `channel` through `on`, reports SUCCESS, and returns it with the time it arrived. */
async function takeOne(on: TestServer, channel: string, timeoutMs: number): Promise<{ task: WireTask; at: number }> {
  const stream = new ReceiveStream(on.api, channel).credit(1);
  try {
    const task = await stream.next(timeoutMs);
    const at = Date.now();
    const reports = new ReportStream(on.api);
    expect((await reports.report(task.ID, ReportState.SUCCESS, "done", task.LeaseToken)).State).toBe("200");
    reports.end();
    return { task, at };
  } finally {
    stream.cancel();
  }
}

describe("Task.RunAt", () => {
  it("empty or in the past: delivered at once, not shown as scheduled", async () => {
    for (const RunAt of ["", iso(Date.now() - 5 * MINUTE)]) {
      const task = await server.api.create({ Channel: "other", Input: "now", RunAt });
      expect(task.RunAt).toBe("");
      const { task: delivered } = await takeOne(server, "other", 5_000);
      expect(delivered.ID).toBe(task.ID);
    }
  });

  it("10 s ahead: never delivered before RunAt, delivered within 2 s after it with a worker waiting", async () => {
    const runAt = Date.now() + 10_000;
    const created = await server.api.create({ Channel: "other", Input: "ten", RunAt: iso(runAt) });
    expect(created.RunAt).toBe(iso(runAt));
    expect(created.State).toBe("WAITING");
    const { task, at } = await takeOne(replica, "other", 20_000);
    expect(task.ID).toBe(created.ID);
    expect(at).toBeGreaterThanOrEqual(runAt);
    expect(at - runAt).toBeLessThanOrEqual(2_000);
  });

  it("accepts RFC 3339 with an offset and fractions; rejects other forms and more than 366 days ahead with 400", async () => {
    const in5Min = new Date(Date.now() + 5 * MINUTE);
    const withOffset = `${new Date(in5Min.getTime() + 2 * 3_600_000).toISOString().slice(0, 19)}.5+02:00`;
    const created = await server.api.create({ Channel: "other", RunAt: withOffset });
    expect(Date.parse(created.RunAt)).toBe(Date.parse(withOffset));
    expect((await server.api.cancel(created.ID)).State).toBe("200");
    const bad = ["tomorrow", "2026-12-01", "2026-12-01T09:00:00", "2026-02-30T09:00:00Z", "2026-12-01T25:00:00Z", "1796115600"];
    for (const RunAt of bad) {
      const answer = await server.api.createTask({ Channel: "other", RunAt });
      expect({ RunAt, State: answer.State }).toEqual({ RunAt, State: "400" });
      expect(answer.Message).toContain("RunAt");
    }
    const tooFar = await server.api.createTask({ Channel: "other", RunAt: iso(Date.now() + 367 * 86_400_000) });
    expect(tooFar.State).toBe("400");
    expect(tooFar.Message).toContain("366 days");
    const farthest = await server.api.create({ Channel: "other", RunAt: iso(Date.now() + 365 * 86_400_000) });
    expect(farthest.State).toBe("WAITING");
    expect((await server.api.cancel(farthest.ID)).State).toBe("200");
  });

  it("20 minutes ahead: stored, not sent, not delivered before; delivered on time once the server's clock reaches it", async () => {
    const offset = { ms: 0 };
    const clocked = await offsetReplica(offset);
    const runAt = Date.now() + 20 * MINUTE;
    const owner = freshOwner();
    const created = await clocked.api.create({ Channel: "default", Owner: owner, Input: "twenty", RunAt: iso(runAt) });
    // Counted and listed at once, shown with its RunAt; no SQS message yet (SQS delays at most 15 minutes).
    await eventually(async () => (await clocked.api.queryByOwner(owner)).Total === "1", 5_000);
    expect((await clocked.api.queryByOwner(owner)).Data[0]?.RunAt).toBe(iso(runAt));
    const waiting = new ReceiveStream(clocked.api, "default").credit(1);
    expect(await waiting.nothingWithin(2_000)).toBe(true);
    expect(await queueCounts(server, "default")).toEqual({ visible: 0, inFlight: 0, delayed: 0 });
    // The server's clock moves to 3 s before RunAt: the look-ahead sends the message, delayed until RunAt.
    offset.ms = runAt - 3_000 - Date.now();
    const task = await waiting.next(15_000);
    const deliveredAt = Date.now() + offset.ms;
    waiting.cancel();
    expect(task.ID).toBe(created.ID);
    expect(deliveredAt).toBeGreaterThanOrEqual(runAt);
    expect(deliveredAt - runAt).toBeLessThanOrEqual(2_000);
  });

  it("survives a server restart and is delivered once (sent delayed, and parked)", async () => {
    const offset = { ms: 0 };
    const first = await offsetReplica(offset);
    const soon = await first.api.create({ Channel: "restart", Input: "soon", RunAt: iso(Date.now() + 4_000) });
    const later = await first.api.create({ Channel: "restart", Input: "later", RunAt: iso(Date.now() + 30 * MINUTE) });
    await first.stop();
    // Only the other servers (their clocks real) run now: "soon" comes, "later" is parked.
    offset.ms = 30 * MINUTE - 2_000;
    const stream = new ReceiveStream(server.api, "restart").credit(1);
    const one = await stream.next(15_000);
    expect(one.ID).toBe(soon.ID);
    // A server whose clock has reached "later" sends it (the look-ahead of the restarted replica).
    const restarted = await offsetReplica(offset);
    const restartedStream = new ReceiveStream(restarted.api, "restart").credit(1);
    const two = await restartedStream.next(15_000);
    expect(two.ID).toBe(later.ID);
    const reports = new ReportStream(server.api);
    for (const task of [one, two]) expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
    reports.end();
    // Delivered once: the copies each look-ahead sent (one per replica) are dropped.
    stream.credit(1);
    restartedStream.credit(1);
    expect(await stream.nothingWithin(3_000)).toBe(true);
    expect(await restartedStream.nothingWithin(500)).toBe(true);
    stream.cancel();
    restartedStream.cancel();
    for (const task of [soon, later]) expect((await server.api.get(task.ID)).State).toBe("SUCCESS");
  });

  it("with several replicas, one message per task scheduled far ahead: each parking shard's lease has one holder", async () => {
    const offset = { ms: 0 };
    const replicas = [await offsetReplica(offset), await offsetReplica(offset)];
    const runAt = Date.now() + 20 * MINUTE;
    const created = [];
    for (let i = 0; i < 40; i++) created.push(await replicas[i % 2]!.api.create({ Channel: "lookahead", Input: `far ${i}`, RunAt: iso(runAt + i) }));
    // Both clocks move to 5 minutes before RunAt: every task comes within the look-ahead of both.
    offset.ms = 15 * MINUTE;
    await eventually(async () => (await queueCounts(server, "lookahead")).delayed >= 40, 10_000);
    await sleep(2_000); // ten more passes of each replica
    expect(await queueCounts(server, "lookahead")).toEqual({ visible: 0, inFlight: 0, delayed: 40 });
    for (const task of created) expect((await server.api.cancel(task.ID)).State).toBe("200");
  });

  it("cancelled before RunAt: never delivered (sent delayed, and parked)", async () => {
    const offset = { ms: 0 };
    const clocked = await offsetReplica(offset);
    const soon = await server.api.create({ Channel: "cancelled", Input: "x", RunAt: iso(Date.now() + 3_000) });
    const far = await clocked.api.create({ Channel: "cancelled", Input: "y", RunAt: iso(Date.now() + 60 * MINUTE) });
    for (const task of [soon, far]) expect((await server.api.cancel(task.ID)).Data[0]?.State).toBe("CANCEL");
    offset.ms = 60 * MINUTE;
    const stream = new ReceiveStream(clocked.api, "cancelled").credit(2);
    expect(await stream.nothingWithin(6_000)).toBe(true);
    stream.cancel();
  });

  it("with a Prior: after the Prior succeeded and not before RunAt", async () => {
    const prior = await server.api.create({ Channel: "other", Input: "first" });
    const runAt = Date.now() + 6_000;
    const next = await server.api.create({ Channel: "other", Prior: prior.ID, RunAt: iso(runAt) });
    expect((await takeOne(server, "other", 5_000)).task.ID).toBe(prior.ID);
    const { task, at } = await takeOne(server, "other", 15_000);
    expect(task.ID).toBe(next.ID);
    expect(task.Input).toBe("done"); // the Prior's Output, piped into the empty Input
    expect(at).toBeGreaterThanOrEqual(runAt);
    expect(at - runAt).toBeLessThanOrEqual(2_000);
  });
});

describe("CreateTasks", () => {
  const task = (index: number, fields: Partial<Task> = {}): Task => ({ Channel: "batch", Input: `b-${index}`, ...fields });

  it("creates 100 tasks in one call, one result each in order; all are delivered", async () => {
    const answer = await server.api.createTasks(Array.from({ length: 100 }, (_, i) => task(i)));
    expect(answer.State).toBe("200");
    expect(answer.Results).toHaveLength(100);
    expect(answer.Results.every((result) => result.State === "200" && result.Data !== "")).toBe(true);
    const stream = new ReceiveStream(server.api, "batch").credit(100);
    const reports = new ReportStream(server.api);
    const inputs = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const delivered = await stream.next(15_000);
      inputs.add(delivered.Input);
      await reports.report(delivered.ID, ReportState.SUCCESS, "", delivered.LeaseToken);
    }
    stream.cancel();
    reports.end();
    expect(inputs).toEqual(new Set(Array.from({ length: 100 }, (_, i) => `b-${i}`)));
    for (const [i, result] of answer.Results.entries()) expect((await server.api.queryByHashCode(result.Data)).Data?.Input).toBe(`b-${i}`);
  });

  it("0 or 101 tasks: 400 for the call", async () => {
    for (const count of [0, 101]) {
      const answer = await server.api.createTasks(Array.from({ length: count }, (_, i) => task(i)));
      expect(answer.State).toBe("400");
      expect(answer.Message).toContain("1 to 100");
      expect(answer.Results).toEqual([]);
    }
  });

  it("a bad task answers 400 for itself only; duplicate HashCodes answer 409 per task, in one batch and across batches", async () => {
    const key = `batch-${randomBytes(4).toString("hex")}`;
    const answer = await server.api.createTasks([
      task(1, { HashCode: `${key}-a` }),
      task(2, { Channel: "nope" }),
      task(3, { HashCode: `${key}-a` }),
      task(4, { RunAt: "soon" }),
      task(5, { HashCode: `${key}-b`, RunAt: iso(Date.now() + 60 * MINUTE) }),
    ]);
    expect(answer.State).toBe("200");
    expect(answer.Results.map((result) => result.State)).toEqual(["200", "400", "409", "400", "200"]);
    expect(answer.Results[1]?.Message).toContain("Channel");
    expect(answer.Results[2]?.Data).toBe(`${key}-a`);
    expect(answer.Results[3]?.Message).toContain("RunAt");
    expect((await server.api.queryByHashCode(`${key}-b`)).Data?.RunAt).not.toBe("");
    const again = await server.api.createTasks([task(6, { HashCode: `${key}-a` }), task(7, { HashCode: `${key}-b` }), task(8)]);
    expect(again.Results.map((result) => result.State)).toEqual(["409", "409", "200"]);
    // Clean up the queue for the other tests of this channel.
    const created = [answer.Results[0], again.Results[2]].map((result) => result?.Data as string);
    for (const hashCode of created) await server.api.cancel((await server.api.queryByHashCode(hashCode)).Data?.ID as string);
    await server.api.cancel((await server.api.queryByHashCode(`${key}-b`)).Data?.ID as string);
  });
});

describe("recurring schedules", () => {
  const schedule = (name: string, fields: Partial<Schedule> = {}, template: Partial<Task> = {}): Schedule => ({
    Name: name,
    Cron: "*/2 * * * * *",
    Template: { Channel: "ticks", Input: "tick", ...template },
    ...fields,
  });
  const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

  /** The ticks (epoch ms, from the HashCodes) of the tasks the schedule created, by its template's Owner. */
  async function ticksOf(owner: string, name: string): Promise<number[]> {
    const page = await server.api.queryByOwner(owner, "100", "0");
    expect(page.State).toBe("200");
    return page.Data.map((task) => {
      const match = new RegExp(`^schedule:${name}:(\\d+)$`).exec(task.HashCode);
      expect(match, task.HashCode).not.toBeNull();
      return Number(match?.[1]);
    }).sort((a, b) => a - b);
  }

  it("every 2 s across 2 replicas, one stopped and one crashing between create and advance: exactly one task per tick", async () => {
    const owner = freshOwner();
    const name = uniqueName("every2s");
    const extraReplica = await startTestServer({ replicaOf: server });
    extra.push(extraReplica);
    const put = await server.api.putSchedule(schedule(name, {}, { Owner: owner }));
    expect(put.State).toBe("200");
    expect(put.Data?.NextRunTime).toMatch(/^\d{4}-.*Z$/);
    const firstTick = Date.parse(put.Data?.NextRunTime as string);
    // The extra replica creates tasks but cannot move the schedule on (as if it died each time in between).
    extraReplica.faults.hook = (command, input) => {
      if (command === "UpdateItemCommand" && JSON.stringify(input).includes(`"SC#${name}"`)) throw new Error("injected: the replica dies before it moves the schedule on");
    };
    await sleep(5_000);
    await replica.stop(); // one replica goes mid-run; the first server goes on
    replica = await startTestServer({ replicaOf: server, settings: { parkedScanIntervalMs: 200 } });
    await sleep(5_000);
    expect((await server.api.deleteSchedule(name)).State).toBe("200");
    const lastTick = Date.now() - 1_000;
    await sleep(2_500);
    const ticks = await ticksOf(owner, name);
    // One task per even second from the first tick on, none twice, none missing.
    const expected: number[] = [];
    for (let tick = firstTick; tick <= ticks.at(-1)!; tick += 2_000) expected.push(tick);
    expect(ticks).toEqual(expected);
    expect(ticks.length).toBeGreaterThanOrEqual(4);
    expect(ticks.at(-1)).toBeGreaterThanOrEqual(lastTick - 2_000);
    // Each tick's task is created at or after its tick, within 2 s of it (SPEC §7.1) as a rule; the
    // bound on the slowest one leaves room for a machine busy with other test files.
    const lags = (await server.api.queryByOwner(owner, "100", "0")).Data.map((task) => Date.parse(task.CreateTime) - Number(task.HashCode.split(":")[2])).sort((a, b) => a - b);
    expect(lags[0]).toBeGreaterThanOrEqual(0);
    expect(lags[Math.floor(lags.length / 2)]).toBeLessThanOrEqual(2_000);
    expect(lags.at(-1)).toBeLessThanOrEqual(5_000);
  });

  it("pause stops ticks, resume goes on; delete stops them; NextRunTime and LastRunTime stay current", async () => {
    const owner = freshOwner();
    const name = uniqueName("pause");
    expect((await server.api.putSchedule(schedule(name, {}, { Owner: owner }))).State).toBe("200");
    await eventually(async () => (await ticksOf(owner, name)).length >= 2, 8_000);
    const [listed] = (await server.api.querySchedules("ticks")).Data.filter((found) => found.Name === name);
    expect(Date.parse(listed?.LastRunTime as string)).toBeGreaterThan(Date.now() - 4_000);
    expect(Date.parse(listed?.NextRunTime as string)).toBeGreaterThan(Date.parse(listed?.LastRunTime as string));
    const paused = await server.api.putSchedule(schedule(name, { Paused: true }, { Owner: owner }));
    expect(paused.Data).toMatchObject({ Paused: true, NextRunTime: "" });
    await sleep(1_500);
    const atPause = (await ticksOf(owner, name)).length;
    await sleep(4_500);
    expect((await ticksOf(owner, name)).length).toBe(atPause);
    expect((await server.api.putSchedule(schedule(name, {}, { Owner: owner }))).State).toBe("200");
    await eventually(async () => (await ticksOf(owner, name)).length > atPause, 8_000);
    expect((await server.api.deleteSchedule(name)).State).toBe("200");
    await sleep(1_500);
    const atDelete = (await ticksOf(owner, name)).length;
    await sleep(4_500);
    expect((await ticksOf(owner, name)).length).toBe(atDelete);
    const again = await server.api.deleteSchedule(name);
    expect(again.State).toBe("404");
    expect((await server.api.querySchedules()).Data.map((found) => found.Name)).not.toContain(name);
  });

  it("ticks missed while no server ran collapse into one catch-up task", async () => {
    const owner = freshOwner();
    const name = uniqueName("catchup");
    // Only this server runs a scheduler, and it stops: ticks are missed.
    const lone = await startTestServer({ channels: ["ticks"], settings: { scheduleIntervalMs: 1_000 } });
    extra.push(lone);
    expect((await lone.api.putSchedule(schedule(name, {}, { Owner: owner }))).State).toBe("200");
    await eventually(async () => (await lone.api.queryByOwner(owner)).Data.length >= 1, 8_000);
    const tableName = lone.settings.tableName;
    const queuePrefix = lone.settings.queuePrefix;
    await lone.stop();
    const stoppedAt = Date.now(); // no tick after this one was fired by `lone`
    const before = (await server.api.queryByOwner(owner)).Data.length; // (another table: 0)
    expect(before).toBe(0);
    await sleep(7_000); // three or four ticks missed
    const restartedAt = Date.now();
    const back = await startTestServer({ channels: ["ticks"], tableName, queuePrefix, settings: { scheduleIntervalMs: 1_000 } });
    extra.push(back);
    const ticksAfterStop = async () =>
      (await back.api.queryByOwner(owner, "100", "0")).Data.map((task) => Number(task.HashCode.split(":")[2]))
        .filter((tick) => tick > stoppedAt)
        .sort((a, b) => a - b);
    await eventually(async () => (await ticksAfterStop()).length >= 1, 8_000);
    const ticks = await ticksAfterStop();
    // The missed ticks (every 2 s between the stop and the restart) gave one task: the latest one due
    // when `back` first ran, never one that had a later due tick before the restart.
    const missed = ticks.filter((tick) => tick <= restartedAt);
    expect(missed.length).toBeLessThanOrEqual(1);
    expect(ticks.filter((tick) => tick <= restartedAt - 2_000)).toEqual([]);
    expect(ticks[0]).toBeGreaterThan(restartedAt - 2_000);
    expect((await back.api.deleteSchedule(name)).State).toBe("200");
  });

  it("computes NextRunTime in the schedule's time zone", async () => {
    const name = uniqueName("tz");
    const answer = await server.api.putSchedule(schedule(name, { Cron: "30 9 * * *", TimeZone: "America/New_York" }));
    expect(answer.State).toBe("200");
    const next = new Date(answer.Data?.NextRunTime as string);
    const local = new Intl.DateTimeFormat("en-US", { timeZone: "America/New_York", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false }).format(next);
    expect(local).toBe("09:30:00");
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(86_400_000 + 3_600_000);
    const utc = await server.api.putSchedule(schedule(uniqueName("utc"), { Cron: "30 9 * * *" }));
    expect(new Date(utc.Data?.NextRunTime as string).getUTCHours()).toBe(9);
    for (const done of [name, utc.Data?.Name as string]) expect((await server.api.deleteSchedule(done)).State).toBe("200");
  });

  it("puts of one name at once: each answers the schedule as it wrote it, not as another put left it (found by the fuzz harness)", async () => {
    const name = uniqueName("racing");
    const puts = Array.from({ length: 8 }, (_, i) => schedule(name, { Paused: true, Cron: `${i} 3 * * *` }, { Input: `put ${i}`, Owner: String(100 + i), ConcurrencyKey: i % 2 ? `tenant-${i}` : "" }));
    const answers = await Promise.all(puts.map((put) => server.api.putSchedule(put)));
    answers.forEach((answer, i) => {
      expect(answer.State).toBe("200");
      expect(answer.Data).toMatchObject({ Name: name, Cron: `${i} 3 * * *`, Paused: true });
      expect(answer.Data?.Template).toMatchObject({ Input: `put ${i}`, Owner: String(100 + i), ConcurrencyKey: i % 2 ? `tenant-${i}` : "" });
    });
    // What is stored is one of them, whole.
    const stored = (await server.api.querySchedules("ticks")).Data.find((each) => each.Name === name);
    const winner = answers.findIndex((answer) => answer.Data?.Cron === stored?.Cron);
    expect(winner).toBeGreaterThanOrEqual(0);
    expect(stored?.Template).toMatchObject({ Input: `put ${winner}`, Owner: String(100 + winner) });
    expect((await server.api.deleteSchedule(name)).State).toBe("200");
  });

  it("400 on a bad name, cron, time zone or template; QuerySchedules filters by channel", async () => {
    const bad: [Schedule | null, string][] = [
      [null, "Schedule"],
      [schedule("has space"), "Name"],
      [schedule("x".repeat(65)), "Name"],
      [schedule(uniqueName("c"), { Cron: "* * * *" }), "Cron"],
      [schedule(uniqueName("c"), { Cron: "61 * * * *" }), "Cron"],
      [schedule(uniqueName("c"), { Cron: "@daily" }), "Cron"],
      [schedule(uniqueName("c"), { Cron: "* * * * * * *" }), "Cron"],
      [schedule(uniqueName("z"), { TimeZone: "Mars/Olympus" }), "TimeZone"],
      [{ Name: uniqueName("t"), Cron: "* * * * *" }, "Template"],
      [schedule(uniqueName("t"), {}, { Channel: "nope" }), "Channel"],
      [schedule(uniqueName("t"), {}, { Channel: "" }), "Channel"],
    ];
    for (const [candidate, field] of bad) {
      const answer = await server.api.putSchedule(candidate);
      expect({ field, State: answer.State }).toEqual({ field, State: "400" });
      expect(answer.Message).toContain(field);
    }
    expect((await server.api.deleteSchedule("bad name")).State).toBe("400");
    const a = uniqueName("list");
    const b = uniqueName("list");
    expect((await server.api.putSchedule(schedule(a, { Cron: "0 0 1 1 *" }, { Channel: "other" }))).State).toBe("200");
    expect((await server.api.putSchedule(schedule(b, { Cron: "0 0 1 1 *", Paused: true }, { Channel: "batch" }))).State).toBe("200");
    const other = (await server.api.querySchedules("other")).Data.map((found) => found.Name);
    expect(other).toContain(a);
    expect(other).not.toContain(b);
    const all = await server.api.querySchedules("");
    expect(all.Data.map((found) => found.Name)).toEqual(expect.arrayContaining([a, b]));
    expect(all.Data.find((found) => found.Name === b)).toMatchObject({ Paused: true, NextRunTime: "", Template: { Channel: "batch" } });
    expect((await server.api.querySchedules("nope")).State).toBe("400");
    for (const name of [a, b]) expect((await server.api.deleteSchedule(name)).State).toBe("200");
  });
});
