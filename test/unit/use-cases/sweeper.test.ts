// The sweeper (core/sweeper.ts) on the in-memory backends: it acts on due outbox
// markers only, claims each by a conditional write, and spaces out repeated re-sends.
import { describe, expect, it } from "vitest";
import { Sweeper } from "../../../service/src/core/sweeper.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import { MemoryCore, SWEEP_AFTER_MS } from "../../support/memory-context.js";

/** A queued task whose message was never sent (the replica died between the write and the send). */
async function unsent(core: MemoryCore): Promise<StoredTask> {
  core.queue.failNext("send");
  return core.create();
}

describe("sweeper", () => {
  it("re-sends the message of a queued task once its marker is due, and claims the marker for the next look", async () => {
    const core = new MemoryCore();
    const task = await unsent(core);
    core.advance(SWEEP_AFTER_MS - 1);
    expect(await core.sweeper.sweepOnce()).toBe(0);
    core.advance(1);
    const calls = core.watchCalls();
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(calls()).toEqual(["dueOutboxTaskIds", "getTask", "claimOutbox"]);
    expect(core.queue.taskIds()).toEqual([task.id]);
    expect(core.task(task.id).outbox).toEqual({ dueAtMs: core.now() + SWEEP_AFTER_MS, sweeps: 1 });
    expect(core.logged("sweeper: its message is overdue; sending a copy")[0]).toMatchObject({ sweeps: 1 });
    expect(await core.lease(task.id)).toMatchObject({ state: "PROCEEDING" });
  });

  it("spaces out repeated re-sends of one task exponentially, at least 1 s and at most an hour apart", async () => {
    const core = new MemoryCore();
    const task = await unsent(core);
    const gaps: number[] = [];
    for (let sweep = 1; sweep <= 4; sweep++) {
      core.ms = core.task(task.id).outbox?.dueAtMs ?? 0;
      await core.sweeper.sweepOnce();
      gaps.push((core.task(task.id).outbox?.dueAtMs ?? 0) - core.now());
    }
    expect(gaps).toEqual([1, 2, 4, 8].map((factor) => factor * SWEEP_AFTER_MS));
    expect(core.queue.taskIds()).toEqual([task.id, task.id, task.id, task.id]);

    core.store.seed({ ...core.task(task.id), outbox: { dueAtMs: core.now(), sweeps: 20 } }, core.task(task.id).version);
    await core.sweeper.sweepOnce();
    expect(core.task(task.id).outbox?.dueAtMs).toBe(core.now() + 60 * 60_000);

    const quick = new MemoryCore({ sweepAfterMs: 100 });
    await unsent(quick);
    quick.advance(100);
    await quick.sweeper.sweepOnce();
    const [id] = quick.queue.taskIds();
    expect(quick.task(id as bigint).outbox?.dueAtMs).toBe(quick.now() + 1_000);
  });

  it("watches a leased task: the marker moves to the lease's end plus the grace, nothing is sent", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const leased = await core.lease(task.id);
    const leaseEnd = leased.lease?.expiresAtMs ?? 0;
    core.advance(SWEEP_AFTER_MS);
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.task(task.id).outbox).toEqual({ dueAtMs: leaseEnd + SWEEP_AFTER_MS, sweeps: 0 });
    expect(core.queue.callsOf("send")).toHaveLength(1); // the create's

    // The lease ran out and its message never came back (dead-letter queue, say): a copy is sent,
    // and the copy counts the failed attempt as a redelivery would.
    await core.queue.delete(leased.lease?.receiptHandle ?? "");
    core.ms = leaseEnd + SWEEP_AFTER_MS;
    await core.sweeper.sweepOnce();
    expect(core.queue.taskIds()).toEqual([task.id]);
    expect(await core.deliver(task.id)).toBeUndefined();
    expect(core.task(task.id)).toMatchObject({ state: "WAITING", retryCount: 1n });
  });

  it("runs the chain follow-up of a final task whose marker is still set", async () => {
    const core = new MemoryCore();
    const prior = await core.create();
    const next = await core.create({ prior: prior.id });
    await core.lease(prior.id);
    core.store.failNext((call) => call.transition === "cancel" && call.id === next.id);
    expect((await core.tasks.cancel(prior.id)).cascadePending).toBe(true);
    core.advance(SWEEP_AFTER_MS);
    const calls = core.watchCalls();
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(calls()).toEqual(["dueOutboxTaskIds", "getTask", "claimOutbox", "getTask", "transition:cancel", "clearOutbox"]);
    expect(core.task(next.id).state).toBe("CANCEL");
    expect(core.task(prior.id).outbox).toBeUndefined();
  });

  it("clears the marker of a task that waits for its Prior (the Prior's own marker covers it)", async () => {
    const core = new MemoryCore();
    const prior = await core.create();
    const next = await core.create({ prior: prior.id });
    core.store.seed({ ...core.task(next.id), outbox: { dueAtMs: core.now(), sweeps: 0 } });
    await core.lease(prior.id); // the Prior's marker is watched, not due yet
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.task(next.id).outbox).toBeUndefined();
    expect(core.queue.callsOf("send")).toHaveLength(1);
  });

  it("two sweepers at once: the conditional claim lets only one act on a task", async () => {
    const core = new MemoryCore();
    const tasks = [await unsent(core), await unsent(core), await unsent(core)];
    core.advance(SWEEP_AFTER_MS);
    const other = new Sweeper(core.ctx, 1_000);
    const acted = await Promise.all([core.sweeper.sweepOnce(), other.sweepOnce()]);
    expect(acted[0] + acted[1]).toBe(3);
    expect([...core.queue.taskIds()].sort()).toEqual(tasks.map((task) => task.id).sort());
  });

  it("a task it cannot handle is logged and left for the next pass; the others are handled", async () => {
    const core = new MemoryCore();
    const broken = await unsent(core);
    const fine = await unsent(core);
    core.advance(SWEEP_AFTER_MS);
    core.store.failNext((call) => call.method === "getTask" && call.id === broken.id);
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.queue.taskIds()).toEqual([fine.id]);
    expect(core.logged("sweeper could not handle a task")[0]).toMatchObject({ taskId: String(broken.id) });
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.queue.taskIds()).toEqual([fine.id, broken.id]);
  });
});
