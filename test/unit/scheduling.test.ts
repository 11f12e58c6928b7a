// Scheduling's pure rules (RunAt, when a task's message goes out, recurring ticks)
// and the look-ahead that sends parked tasks, on the in-memory backends.
import { describe, expect, it } from "vitest";
import { LOOK_AHEAD_MS, lookAheadLeaseMs } from "../../service/src/core/parked-tasks.js";
import { MAX_RUN_AT_AHEAD_MS, parseRfc3339, runAt, validateNewTask } from "../../service/src/tasks/rules.js";
import { reportResult } from "../../service/src/core/reports.js";
import { cronOf, dueTick, nextTick, tickHashCode, validateSchedule } from "../../service/src/tasks/schedule-rules.js";
import { decideDelivery, decideSweep, dispatchOf, MAX_SQS_DELAY_MS } from "../../service/src/tasks/state-machine.js";
import { Status } from "../../service/src/tasks/status.js";
import { MemoryCore, SWEEP_AFTER_MS, T0 } from "../support/memory-context.js";
import { rejectionOf } from "../support/rejection.js";

describe("RunAt", () => {
  it("parses RFC 3339 with a zone, rounding fractions up to the millisecond", () => {
    expect(parseRfc3339("2026-12-01T09:00:00Z")).toBe(Date.UTC(2026, 11, 1, 9));
    expect(parseRfc3339("2026-12-01t10:00:00+01:00")).toBe(Date.UTC(2026, 11, 1, 9));
    expect(parseRfc3339("2026-12-01T04:30:00-04:30")).toBe(Date.UTC(2026, 11, 1, 9));
    expect(parseRfc3339("2026-12-01T09:00:00.0001Z")).toBe(Date.UTC(2026, 11, 1, 9) + 1);
    expect(parseRfc3339("2028-02-29T00:00:00Z")).toBe(Date.UTC(2028, 1, 29));
    for (const bad of ["2026-12-01", "2026-12-01T09:00:00", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T09:60:00Z", "2026-12-01T09:00:00+24:00", " 2026-12-01T09:00:00Z"]) {
      expect(parseRfc3339(bad)).toBeUndefined();
    }
  });

  it("empty or past is 0 (now); more than 366 days ahead or malformed is 400", () => {
    expect(runAt("", T0)).toBe(0);
    expect(runAt(new Date(T0).toISOString(), T0)).toBe(0);
    expect(runAt(new Date(T0 - 1).toISOString(), T0)).toBe(0);
    expect(runAt(new Date(T0 + MAX_RUN_AT_AHEAD_MS).toISOString(), T0)).toBe(T0 + MAX_RUN_AT_AHEAD_MS);
    expect(rejectionOf(() => runAt(new Date(T0 + MAX_RUN_AT_AHEAD_MS + 1).toISOString(), T0))?.status).toBe(Status.INVALID);
    expect(rejectionOf(() => runAt("next week", T0))?.message).toContain("RunAt must be an RFC 3339");
  });

  it("a message is sent at once, delayed by whole seconds rounded up, or not at all beyond SQS's 15 minutes", () => {
    expect(dispatchOf(0, T0)).toEqual({ send: true, delaySeconds: 0 });
    expect(dispatchOf(T0 - 5, T0)).toEqual({ send: true, delaySeconds: 0 });
    expect(dispatchOf(T0 + 1, T0)).toEqual({ send: true, delaySeconds: 1 });
    expect(dispatchOf(T0 + 10_001, T0)).toEqual({ send: true, delaySeconds: 11 });
    expect(dispatchOf(T0 + MAX_SQS_DELAY_MS, T0)).toEqual({ send: true, delaySeconds: 900 });
    expect(dispatchOf(T0 + MAX_SQS_DELAY_MS + 1, T0)).toEqual({ send: false });
  });
});

describe("delivery and sweep of a scheduled task", () => {
  const waiting = { id: 9n, state: "WAITING", awaitsPrior: false, lease: undefined, notBeforeMs: T0 + 5_000, priority: 1, concurrencyKey: "" } as const;

  it("a message that arrives before RunAt waits (defer), never leases", () => {
    expect(decideDelivery({ ...base(), ...waiting }, "m-1", T0)).toEqual({ action: "defer", remainingMs: 5_000 });
    expect(decideDelivery({ ...base(), ...waiting }, "m-1", T0 + 5_000)).toEqual({ action: "lease" });
  });

  it("a marker of a task further ahead than SQS delays is parked at its RunAt; a parked one is left alone until overdue", () => {
    const far = { ...base(), ...waiting, notBeforeMs: T0 + MAX_SQS_DELAY_MS + 1, outbox: { dueAtMs: T0, sweeps: 0 } };
    expect(decideSweep(far, T0, SWEEP_AFTER_MS)).toEqual({ action: "park", untilMs: T0 + MAX_SQS_DELAY_MS + 1 });
    const parked = { ...far, outbox: { dueAtMs: far.notBeforeMs, sweeps: 0, parked: true } };
    expect(decideSweep(parked, far.notBeforeMs + SWEEP_AFTER_MS, SWEEP_AFTER_MS)).toEqual({ action: "resend" });
  });
});

describe("the look-ahead (parked tasks)", () => {
  it("a task 20 minutes ahead is stored with a parked marker and no message; its message goes out, delayed, once RunAt is within the look-ahead", async () => {
    const core = new MemoryCore();
    const runAtMs = T0 + 20 * 60_000;
    const task = await core.create({ runAtMs });
    expect(task.outbox).toEqual({ dueAtMs: runAtMs, sweeps: 0, parked: true });
    expect(task.runAtMs).toBe(runAtMs);
    expect(core.queue.taskIds()).toEqual([]);
    expect(await core.parked.sendDueOnce()).toBe(0);
    core.advance(20 * 60_000 - LOOK_AHEAD_MS);
    expect(await core.parked.sendDueOnce()).toBe(1);
    expect(core.queue.calls.filter((call) => call.op === "send")).toEqual([{ op: "send", taskId: task.id, seconds: LOOK_AHEAD_MS / 1000, copy: true }]);
    // Each replica sends it once: the next pass reads on from where this one stopped.
    expect(await core.parked.sendDueOnce()).toBe(0);
    core.advance(LOOK_AHEAD_MS);
    expect((await core.deliver(task.id))?.state).toBe("PROCEEDING");
  });

  it("a copy (every replica's look-ahead sends one) is read before anything is written: the copies that find the task taken write nothing", async () => {
    const core = new MemoryCore();
    const task = await core.create({ runAtMs: T0 + 20 * 60_000 });
    core.advance(20 * 60_000 - LOOK_AHEAD_MS);
    await core.parked.sendDueOnce();
    await core.queue.send(task, { delaySeconds: LOOK_AHEAD_MS / 1000, copy: true }); // a second replica's copy
    core.advance(LOOK_AHEAD_MS);
    const calls = core.watchCalls();
    const [first, second] = core.queue.receive(2);
    expect(first?.copy && second?.copy).toBe(true);
    expect((await core.delivery.lease(core.queue, first!))?.state).toBe("PROCEEDING");
    expect(await core.delivery.lease(core.queue, second!)).toBeUndefined();
    // The first: a read, then the lease (conditional on the version read); the second: a read only.
    expect(calls()).toEqual(["getTask", "transition:lease", "withPayloads", "getTask"]);
  });

  it("with two replicas, one holds each shard's lease and sends: one message per task, one write per pass", async () => {
    const core = new MemoryCore();
    const second = core.lookAhead("replica-2");
    const tasks = [];
    for (let i = 0; i < 5; i++) tasks.push(await core.create({ runAtMs: T0 + 20 * 60_000 + i }));
    expect(await core.parked.sendDueOnce()).toBe(0); // takes the lease (1 write), renews it (1 write)
    expect(await second.sendDueOnce()).toBe(0); // finds it held (1 failed write); waits until it ends
    expect(core.leases.writes).toBe(3);
    expect(await second.sendDueOnce()).toBe(0); // still held: no write at all
    expect(core.leases.writes).toBe(3);
    core.advance(20 * 60_000 - LOOK_AHEAD_MS + 10);
    const counts = [await core.parked.sendDueOnce(), await second.sendDueOnce()];
    expect(counts).toEqual([5, 0]);
    expect(core.queue.callsOf("send").map((call) => call.taskId).sort()).toEqual(tasks.map((task) => task.id).sort());
  });

  it("a stopping replica hands its shards over with their cursors; a crashed one's are taken over when its lease ends", async () => {
    const core = new MemoryCore();
    const [a, b, c] = [core.lookAhead("a"), core.lookAhead("b"), core.lookAhead("c")];
    const first = await core.create({ runAtMs: T0 + 20 * 60_000 });
    await a.sendDueOnce();
    core.advance(20 * 60_000 - LOOK_AHEAD_MS);
    expect(await a.sendDueOnce()).toBe(1);
    await a.stop(); // released at once, with its cursor past `first`
    const second = await core.create({ runAtMs: core.now() + 16 * 60_000 });
    core.advance(6 * 60_000);
    expect([await b.sendDueOnce(), await c.sendDueOnce()]).toEqual([1, 0]);
    expect(core.queue.callsOf("send").map((call) => call.taskId)).toEqual([first.id, second.id]);
    // b's last pass, just before `third` comes within the look-ahead; then b dies without a word (no release).
    const third = await core.create({ runAtMs: core.now() + 16 * 60_000 });
    core.advance(6 * 60_000 - 2_000);
    expect(await b.sendDueOnce()).toBe(0);
    core.advance(2_000);
    // c takes the shard only once b's lease has ended, and goes on from b's cursor.
    expect(await c.sendDueOnce()).toBe(0);
    core.advance(lookAheadLeaseMs(1_000) - 2_000 - 1);
    expect(await c.sendDueOnce()).toBe(0);
    core.advance(2);
    expect(await c.sendDueOnce()).toBe(1);
    expect(core.queue.callsOf("send").map((call) => call.taskId)).toEqual([first.id, second.id, third.id]);
  });

  it("a cancelled parked task is not sent; one whose message never came is re-sent by the sweeper after the grace", async () => {
    const core = new MemoryCore();
    const cancelled = await core.create({ runAtMs: T0 + 30 * 60_000 });
    const lost = await core.create({ runAtMs: T0 + 30 * 60_000 + 1 });
    await core.tasks.cancel(cancelled.id);
    core.advance(30 * 60_000 + SWEEP_AFTER_MS + 1);
    // Neither was sent by a look-ahead here (as if every replica was down meanwhile): the sweeper finds the overdue one.
    for (let pass = 0; pass < 20 && !core.queue.taskIds().includes(lost.id); pass++) await core.sweeper.sweepOnce();
    expect(core.queue.taskIds()).toEqual([lost.id]);
  });
});

describe("a chain successor with a RunAt", () => {
  it("further ahead than SQS delays when its Prior succeeds: parked at once, no message; nearer: sent delayed", async () => {
    const core = new MemoryCore();
    const prior = await core.create({ input: "first" });
    const far = await core.create({ prior: prior.id, runAtMs: T0 + 60 * 60_000 });
    const leased = await core.lease(prior.id);
    await reportResult(core.ctx, prior.id, "SUCCESS", "out", leased.lease?.token ?? 0n);
    expect(core.task(far.id).outbox).toEqual({ dueAtMs: T0 + 60 * 60_000, sweeps: 0, parked: true });
    expect(core.queue.taskIds()).toEqual([]);

    const second = await core.create({ input: "second" });
    const near = await core.create({ prior: second.id, runAtMs: T0 + 5 * 60_000 });
    const secondLease = await core.lease(second.id);
    await reportResult(core.ctx, second.id, "SUCCESS", "out", secondLease.lease?.token ?? 0n);
    expect(core.queue.callsOf("send").at(-1)).toEqual({ op: "send", taskId: near.id, seconds: 5 * 60 });
  });
});

const EMAILS = { names: new Set(["emails"]) as ReadonlySet<string>, levelsOf: () => 1 };

describe("HashCodes of schedule ticks", () => {
  it("are reserved: a create with one is 400; the scheduler's own keys have that form", () => {
    const task = { Next: "0", Prior: "0", Owner: "1", Input: "", Channel: "emails", RetryMaxLimit: "0", HashCode: tickHashCode("nightly", T0) };
    expect(rejectionOf(() => validateNewTask(task, EMAILS, T0))?.message).toContain('starting with "schedule:" are reserved');
    expect(validateNewTask({ ...task, HashCode: "scheduled-1" }, EMAILS, T0).hashCode).toBe("scheduled-1");
  });
});

describe("recurring schedules", () => {
  const spec = { cron: "*/2 * * * * *", timeZone: "" };

  it("the next tick is strictly after; the due tick is the latest one not after now (missed ticks collapse)", () => {
    const t = Date.UTC(2026, 11, 1, 9, 0, 0);
    expect(nextTick(spec, t)).toBe(t + 2_000);
    expect(nextTick(spec, t + 1)).toBe(t + 2_000);
    expect(dueTick(spec, t, t - 1)).toBeUndefined();
    expect(dueTick(spec, t, t)).toBe(t);
    expect(dueTick(spec, t, t + 1_999)).toBe(t);
    expect(dueTick(spec, t, t + 60_500)).toBe(t + 60_000);
    expect(tickHashCode("daily-report", t)).toBe(`schedule:daily-report:${t}`);
  });

  it("5 fields tick on minutes, 6 on seconds; a time zone shifts the hour, daylight saving included", () => {
    const winter = Date.UTC(2026, 0, 15, 0, 0, 0);
    const summer = Date.UTC(2026, 6, 15, 0, 0, 0);
    expect(nextTick({ cron: "30 9 * * *", timeZone: "Europe/Berlin" }, winter)).toBe(Date.UTC(2026, 0, 15, 8, 30));
    expect(nextTick({ cron: "30 9 * * *", timeZone: "Europe/Berlin" }, summer)).toBe(Date.UTC(2026, 6, 15, 7, 30));
    expect(nextTick({ cron: "15 30 9 * * *", timeZone: "" }, winter)).toBe(Date.UTC(2026, 0, 15, 9, 30, 15));
    expect(rejectionOf(() => cronOf("* * * *", ""))?.status).toBe(Status.INVALID);
  });

  it("validates name, cron, zone and template, with defaults", () => {
    const channels = { names: new Set(["emails"]) as ReadonlySet<string>, levelsOf: () => 1 };
    const wire = { Name: "n", Cron: "0 * * * *", TimeZone: "", Paused: false, Template: { Channel: "emails", Input: "x", Owner: "7", RetryMaxLimit: "0" } };
    expect(validateSchedule(wire, channels)).toEqual({
      name: "n",
      cron: "0 * * * *",
      timeZone: "",
      paused: false,
      template: { channel: "emails", input: "x", owner: 7n, retryMaxLimit: 3n, priority: 1, concurrencyKey: "" },
    });
    expect(rejectionOf(() => validateSchedule({ ...wire, Template: { ...wire.Template, RetryMaxLimit: "101" } }, channels))?.message).toContain("RetryMaxLimit");
    expect(rejectionOf(() => validateSchedule({ ...wire, TimeZone: "Nowhere/Land" }, channels))?.message).toContain("TimeZone");
    expect(rejectionOf(() => validateSchedule({ ...wire, Name: "" }, channels))?.message).toContain("Name");
  });
});

function base() {
  return {
    owner: 1n,
    channel: "default",
    hashCode: "h",
    input: "",
    output: "",
    retryCount: 0n,
    retryMaxLimit: 3n,
    prior: 0n,
    next: 0n,
    createTime: "",
    updateTime: "",
    nextTakesOutput: false,
    runAtMs: 0,
    outbox: undefined,
  };
}
