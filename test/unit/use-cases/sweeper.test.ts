// The sweeper (core/sweeper.ts) on the in-memory backends: it acts on due outbox
// markers only, claims each by a conditional write, and spaces out repeated re-sends.
import { describe, expect, it } from "vitest";
import { BATCH_PER_SHARD, SHARDS_PER_PASS, Sweeper } from "../../../service/src/core/sweeper.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import { MemoryCore, SWEEP_AFTER_MS } from "../../support/memory-context.js";
import { MemoryRepository } from "../../support/memory-repository.js";

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
    expect(calls()).toEqual(["dueOutboxTaskIds", "parkedTaskIds", "getTask", "claimOutbox"]);
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
    expect(calls()).toEqual(["dueOutboxTaskIds", "parkedTaskIds", "getTask", "claimOutbox", "getTask", "transition:cancel", "clearOutbox"]);
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

  describe("with markers spread over many shards", () => {
    /** A sweeper on a repository with 128 outbox shards, and the shards each of its passes read. */
    async function sharded(): Promise<{ core: MemoryCore; store: MemoryRepository; sweeper: Sweeper; passes: number[][]; dueIn: (shard: number, count?: number) => bigint[] }> {
      const core = new MemoryCore();
      const template = await core.create();
      const store = new MemoryRepository(core.now, { outboxShards: 128 });
      const passes: number[][] = [];
      const read = store.dueOutboxTaskIds.bind(store);
      store.dueOutboxTaskIds = (shards, limit) => {
        passes.push([...shards]);
        return read(shards, limit);
      };
      let next = 0n;
      /** Seeds `count` queued tasks whose markers are due, in `shard`. */
      const dueIn = (shard: number, count = 1) =>
        Array.from({ length: count }, () => {
          const id = 128n * ++next + BigInt(shard);
          expect(store.outboxShardOf(id)).toBe(shard);
          return store.seed({ ...template, id, outbox: { dueAtMs: core.now(), sweeps: 0 } }).id;
        });
      return { core, store, sweeper: new Sweeper({ ...core.ctx, store }, 1_000), passes, dueIn };
    }

    it("reads 16 shards a pass, a rotating window: all 128 every 8 passes, each once", async () => {
      const { sweeper, passes } = await sharded();
      for (let pass = 0; pass < 16; pass++) await sweeper.sweepOnce();
      for (const shards of passes) {
        expect(shards).toHaveLength(SHARDS_PER_PASS);
        // A contiguous window (modulo 128), following the previous one.
        for (let i = 1; i < shards.length; i++) expect(shards[i]).toBe(((shards[i - 1] as number) + 1) % 128);
      }
      for (let pass = 1; pass < passes.length; pass++) expect(passes[pass]?.[0]).toBe(((passes[pass - 1]?.[0] as number) + SHARDS_PER_PASS) % 128);
      for (const cycle of [passes.slice(0, 8), passes.slice(8, 16)]) {
        expect(cycle.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 128 }, (_, shard) => shard));
      }
    });

    it("finds a due marker in any shard within 8 passes", async () => {
      const { core, sweeper, dueIn } = await sharded();
      const ids = [0, 5, 63, 64, 100, 127].flatMap((shard) => dueIn(shard));
      let acted = 0;
      for (let pass = 0; pass < 8; pass++) acted += await sweeper.sweepOnce();
      expect(acted).toBe(ids.length);
      // (The queue also holds the message of the task the seeded ones were copied from.)
      expect(core.queue.taskIds().filter((id) => ids.includes(id)).sort()).toEqual([...ids].sort());
    });

    it("reads a shard that came back full again on the next pass, besides the next window", async () => {
      const { sweeper, passes, dueIn } = await sharded();
      // Find where this sweeper's rotation starts (random per replica), then fill a shard of its next window.
      await sweeper.sweepOnce();
      const backlogged = ((passes[0]?.[0] as number) + SHARDS_PER_PASS) % 128;
      dueIn(backlogged, 2 * BATCH_PER_SHARD + 7);
      expect(await sweeper.sweepOnce()).toBe(BATCH_PER_SHARD);
      expect(await sweeper.sweepOnce()).toBe(BATCH_PER_SHARD);
      expect(passes[2]).toContain(backlogged);
      expect(passes[2]).toHaveLength(SHARDS_PER_PASS + 1);
      expect(await sweeper.sweepOnce()).toBe(7);
      // It came back with 7 (not full): the pass after reads the window only.
      await sweeper.sweepOnce();
      expect(passes[4]).toHaveLength(SHARDS_PER_PASS);
      expect(passes[4]).not.toContain(backlogged);
    });

    it("reads at most 16 full shards again besides the window", async () => {
      const { sweeper, passes, dueIn } = await sharded();
      await sweeper.sweepOnce();
      // The next two windows: 32 shards, each with more due markers than a pass reads.
      const start = ((passes[0]?.[0] as number) + SHARDS_PER_PASS) % 128;
      const full = Array.from({ length: 2 * SHARDS_PER_PASS }, (_, i) => (start + i) % 128);
      for (const shard of full) dueIn(shard, BATCH_PER_SHARD * 3);
      await sweeper.sweepOnce(); // the first 16 come back full
      await sweeper.sweepOnce(); // the next window (the other 16, full too) and the first 16 again
      expect(passes[2]).toEqual(full.slice(SHARDS_PER_PASS).concat(full.slice(0, SHARDS_PER_PASS)));
      await sweeper.sweepOnce(); // a new window, and 16 of the 32 full ones
      expect(passes[3]).toHaveLength(2 * SHARDS_PER_PASS);
    });
  });
});
