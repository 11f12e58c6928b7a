// maxInFlight and concurrencyPerKey on the in-memory backends: a lease takes the
// task's slots with it (all or none), a full slot holds the task back (WAITING, no
// attempt counted, its message sent again delayed and the old one deleted), and every
// way out of PROCEEDING gives the slots back.
import { describe, expect, it } from "vitest";
import { MemoryCore } from "../../support/memory-context.js";
import { reportResult } from "../../../service/src/core/reports.js";
import { holdBackSeconds, slotsFor } from "../../../service/src/tasks/flow-slots.js";

const LIMITED = "limited";

describe("flow-control slots", () => {
  it("slotsFor: the channel's maxInFlight, and the key's concurrencyPerKey when the task has a key", () => {
    expect(slotsFor({ channel: "c", concurrencyKey: "" }, { maxInFlight: 3, concurrencyPerKey: 1 })).toEqual([{ id: "IF#c", max: 3 }]);
    expect(slotsFor({ channel: "c", concurrencyKey: "k" }, { concurrencyPerKey: 2 })).toEqual([{ id: "CK#c#k", max: 2 }]);
    expect(slotsFor({ channel: "c", concurrencyKey: "k" }, {})).toEqual([]);
    expect([0, 1, 2, 3, 4, 5, 20].map((times) => holdBackSeconds(times))).toEqual([1, 2, 4, 8, 10, 10, 10]);
    expect(holdBackSeconds(5, 2)).toBe(2);
  });

  it("maxInFlight 2: the third lease is held back, no attempt counted; a result frees a slot", async () => {
    const core = new MemoryCore();
    const [a, b, c] = [await core.create({ channel: LIMITED }), await core.create({ channel: LIMITED }), await core.create({ channel: LIMITED })];
    await core.lease(a!.id);
    await core.lease(b!.id);
    expect(core.store.slotCounts.get("IF#limited")).toBe(2);
    const queue = core.queues.get(LIMITED);
    expect(await core.deliver(c!.id)).toBeUndefined();
    expect(core.task(c!.id)).toMatchObject({ state: "WAITING", retryCount: 0n });
    // Sent again, delayed 1 s and counted as held once; the received message deleted.
    expect(queue.callsOf("send").at(-1)).toEqual({ op: "send", taskId: c!.id, seconds: 1, held: 1 });
    expect(queue.callsOf("delete")).toHaveLength(1);
    expect(queue.taskIds().filter((id) => id === c!.id)).toHaveLength(1);
    // Held again: 2 s.
    core.advance(1_000);
    expect(await core.deliver(c!.id)).toBeUndefined();
    expect(queue.callsOf("send").at(-1)).toEqual({ op: "send", taskId: c!.id, seconds: 2, held: 2 });
    // a succeeds: its slot is free, and c gets it.
    await reportResult(core.ctx, a!.id, "SUCCESS", "done", core.task(a!.id).lease?.token ?? 0n);
    expect(core.store.slotCounts.get("IF#limited")).toBe(1);
    core.advance(2_000);
    expect((await core.lease(c!.id)).state).toBe("PROCEEDING");
    expect(core.task(c!.id).heldSlots).toEqual(["IF#limited"]);
    expect(core.store.slotCounts.get("IF#limited")).toBe(2);
  });

  it("concurrencyPerKey 1: a second task of key A waits while a task of key B runs; failure, retry and cancel give the slots back", async () => {
    const core = new MemoryCore();
    const a1 = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    const a2 = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    const b1 = await core.create({ channel: LIMITED, concurrencyKey: "B" });
    const leased = await core.lease(a1.id);
    expect(leased.heldSlots).toEqual(["IF#limited", "CK#limited#A"]);
    expect(await core.deliver(a2.id)).toBeUndefined();
    // The key's slot was full, so nothing was taken: not even the channel's.
    expect(core.store.slotCounts.get("IF#limited")).toBe(1);
    expect((await core.lease(b1.id)).state).toBe("PROCEEDING");
    // A failed attempt with retries left goes back to WAITING: its slots are free again.
    await reportResult(core.ctx, a1.id, "FAILURE", "boom", leased.lease?.token ?? 0n);
    expect(core.task(a1.id)).toMatchObject({ state: "WAITING", heldSlots: undefined });
    expect(core.store.slotCounts.get("CK#limited#A")).toBe(0);
    core.advance(1_000);
    expect((await core.lease(a2.id)).state).toBe("PROCEEDING");
    // Cancelling a PROCEEDING task gives its slots back too.
    await core.tasks.cancel(a2.id);
    expect(core.store.slotCounts.get("CK#limited#A")).toBe(0);
    expect(core.store.slotCounts.get("IF#limited")).toBe(1);
  });

  it("a lease that runs out (the worker died) gives its slots back when its message comes again", async () => {
    const core = new MemoryCore();
    const task = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    await core.lease(task.id);
    core.advance(10_001);
    expect(await core.deliver(task.id)).toBeUndefined(); // expire: a failed attempt, back to WAITING with backoff
    expect(core.task(task.id)).toMatchObject({ state: "WAITING", retryCount: 1n });
    expect(core.store.slotCounts.get("IF#limited")).toBe(0);
    expect(core.store.slotCounts.get("CK#limited#A")).toBe(0);
  });

  it("crash window: the held-back message was sent again but the old one not deleted: two messages, one delivery, the counts balance", async () => {
    const core = new MemoryCore();
    const first = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    const second = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    const running = await core.lease(first.id);
    const queue = core.queues.get(LIMITED);
    queue.failNext("delete");
    expect(await core.deliver(second.id)).toBeUndefined();
    expect(queue.taskIds().filter((id) => id === second.id)).toHaveLength(2);
    await reportResult(core.ctx, first.id, "SUCCESS", "done", running.lease?.token ?? 0n);
    core.advance(10_001); // both of second's messages are visible again
    const [one, two] = queue.receive(10).filter((message) => message.taskId === second.id);
    const leased = await core.delivery.lease(queue, one!);
    expect(leased?.state).toBe("PROCEEDING");
    expect(await core.delivery.lease(queue, two!)).toBeUndefined();
    await reportResult(core.ctx, second.id, "SUCCESS", "done", leased?.lease?.token ?? 0n);
    expect(core.task(second.id).state).toBe("SUCCESS");
    expect(core.store.slotCounts.get("CK#limited#A")).toBe(0);
    expect(core.store.slotCounts.get("IF#limited")).toBe(0);
  });

  it("a slot that refused a lease is taken as full for a while: the next task is held back without a transaction, and the poller pauses on a full maxInFlight", async () => {
    const core = new MemoryCore();
    const tasks = [];
    for (let i = 0; i < 4; i++) tasks.push(await core.create({ channel: LIMITED }));
    await core.lease(tasks[0]!.id);
    await core.lease(tasks[1]!.id);
    const queue = core.queues.get(LIMITED);
    expect(core.delivery.pauseMs(queue)).toBe(0);
    const calls = core.watchCalls();
    expect(await core.deliver(tasks[2]!.id)).toBeUndefined(); // refused by the transaction
    expect(core.delivery.pauseMs(queue)).toBe(100);
    expect(await core.deliver(tasks[3]!.id)).toBeUndefined(); // held back on what the replica knows
    expect(calls().filter((call) => call === "transition:lease")).toHaveLength(1);
    core.advance(100);
    expect(core.delivery.pauseMs(queue)).toBe(0);
    // Refused again: the pause doubles; a lease that takes the slot clears it.
    core.advance(1_000);
    expect(await core.deliver(tasks[2]!.id)).toBeUndefined();
    expect(core.delivery.pauseMs(queue)).toBe(200);
    await reportResult(core.ctx, tasks[0]!.id, "SUCCESS", "ok", core.task(tasks[0]!.id).lease?.token ?? 0n);
    core.advance(2_000);
    expect((await core.lease(tasks[3]!.id)).state).toBe("PROCEEDING");
    expect(core.delivery.pauseMs(queue)).toBe(0);
  });

  it("a held-back task is never sent back before its retry backoff ends, and its watchdog moves on instead of the sweeper sending copies", async () => {
    const core = new MemoryCore();
    const running = await core.create({ channel: LIMITED, concurrencyKey: "A" });
    const first = await core.lease(running.id);
    // Another task of key A failed once and waits out a backoff (5 s more); its own message comes back early.
    const queue = core.queues.get(LIMITED);
    const template = await core.create({ channel: LIMITED, concurrencyKey: "B" });
    const message = queue.receiveTask(template.id);
    const backedOff = core.store.seed({
      ...core.task(template.id),
      concurrencyKey: "A",
      retryCount: 1n,
      notBeforeMs: core.now() + 5_000,
      lease: { token: 5n, messageId: message.messageId, receiptHandle: message.receiptHandle, expiresAtMs: core.now() - 1 },
      outbox: { dueAtMs: core.now() + 1_000, sweeps: 0 },
    });
    expect(await core.delivery.lease(queue, message)).toBeUndefined();
    const resent = queue.callsOf("send").at(-1);
    expect(resent?.taskId).toBe(backedOff.id);
    expect(resent?.seconds).toBeGreaterThanOrEqual(5);
    // Its outbox marker (the watchdog) was due within the sweep grace: it is moved past the hold.
    expect(core.task(backedOff.id).outbox?.dueAtMs).toBeGreaterThan(core.now() + 5_000);
    await reportResult(core.ctx, running.id, "SUCCESS", "ok", first.lease?.token ?? 0n);
  });
});
