// Delivery (core/delivery.ts) on the in-memory backends: a message becomes a delivery
// only through the conditional WAITING → PROCEEDING write; everything else a message
// can mean is handled here and never reaches a worker.
import { describe, expect, it } from "vitest";
import { MemoryCore, LEASE_MS, RETRY, T0 } from "../../support/memory-context.js";
import { expectDistinctLeaseTokens, expectLeaseToken } from "../../support/lease-tokens.js";

describe("delivery", () => {
  it("leases a queued task with one conditional write (no read) and hands it over with its payloads", async () => {
    const core = new MemoryCore();
    const task = await core.create({ input: "y".repeat(5_000) });
    const calls = core.watchCalls();
    const message = core.queue.receiveTask(task.id);
    const leased = await core.delivery.lease(core.queue, message);
    expect(calls()).toEqual(["leaseUnread", "withPayloads"]);
    expect(leased).toMatchObject({
      state: "PROCEEDING",
      input: "y".repeat(5_000),
      lease: { messageId: message.messageId, receiptHandle: message.receiptHandle, expiresAtMs: T0 + LEASE_MS },
    });
    expectLeaseToken(leased?.lease?.token);
    // The outbox marker stays: it is the task's watchdog until it is final.
    expect(core.task(task.id).outbox).toBeDefined();
    expect(core.task(task.id).lastWrite).toMatch(/^lease\./);
  });

  it("drops (deletes) a duplicate message of a leased task", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const leased = await core.lease(task.id);
    await core.queue.send(task); // a copy (the sweeper's)
    const copy = core.queue.receiveTask(task.id);
    expect(await core.delivery.lease(core.queue, copy)).toBeUndefined();
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: copy.receiptHandle }]);
    expect(core.task(task.id).lease?.token).toBe(expectLeaseToken(leased.lease?.token));
    expect(core.logged("dropped a message")[0]).toMatchObject({ reason: "duplicate message of a leased task" });
  });

  it("drops the message of a missing task, of a cancelled one, of one waiting for its Prior, and a body that is no task ID", async () => {
    const core = new MemoryCore();
    const cancelled = await core.create();
    await core.tasks.cancel(cancelled.id);
    const prior = await core.create();
    const waiting = await core.create({ prior: prior.id });
    await core.queue.send({ id: 999n, owner: 0n, priority: 1 });
    await core.queue.send(waiting); // a stray copy
    for (const id of [999n, cancelled.id, waiting.id]) expect(await core.delivery.lease(core.queue, core.queue.receiveTask(id))).toBeUndefined();
    expect(await core.delivery.lease(core.queue, { messageId: "m-x", receiptHandle: "rh-x", taskId: undefined })).toBeUndefined();
    expect(core.logged("dropped a message").map((line) => line.reason)).toEqual([
      "no such task",
      "task is CANCEL",
      "task waits for its Prior",
      "the message body is not a task ID",
    ]);
    expect(core.queue.taskIds()).toEqual([prior.id]);
    expect(core.task(waiting.id).state).toBe("WAITING");
  });

  it("a redelivery of its own message while the lease is valid keeps the lease and takes the new receipt handle", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const first = core.queue.receiveTask(task.id);
    const leased = await core.delivery.lease(core.queue, first);
    core.advance(LEASE_MS + 1); // the message came back ...
    await core.store.transition(core.task(task.id), "heartbeat", { leaseExpiresAtMs: core.now() + LEASE_MS }); // ... though a heartbeat extended the lease
    const again = core.queue.receiveTask(task.id);
    expect(again.messageId).toBe(first.messageId);
    expect(await core.delivery.lease(core.queue, again)).toBeUndefined();
    expect(core.task(task.id)).toMatchObject({ state: "PROCEEDING", lease: { token: expectLeaseToken(leased?.lease?.token), receiptHandle: again.receiptHandle } });
    expect(core.queue.callsOf("changeVisibility")).toEqual([{ op: "changeVisibility", receiptHandle: again.receiptHandle, seconds: LEASE_MS / 1000 }]);
  });

  it("an expired lease is a failed attempt: retried after a backoff, and the message then leases again", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const message = core.queue.receiveTask(task.id);
    const first = await core.delivery.lease(core.queue, message);
    const firstToken = expectLeaseToken(first?.lease?.token);
    core.advance(LEASE_MS);
    const back = core.queue.receiveTask(task.id); // SQS redelivers when the visibility timeout ends
    expect(await core.delivery.lease(core.queue, back)).toBeUndefined();
    const retried = core.task(task.id);
    expect(retried).toMatchObject({ state: "WAITING", retryCount: 1n, lease: { token: firstToken, messageId: message.messageId, receiptHandle: back.receiptHandle } });
    const backoffMs = retried.notBeforeMs - core.now();
    expect(backoffMs).toBeGreaterThanOrEqual(RETRY.baseMs / 2);
    expect(backoffMs).toBeLessThanOrEqual(RETRY.baseMs);
    expect(core.queue.callsOf("changeVisibility")).toEqual([{ op: "changeVisibility", receiptHandle: back.receiptHandle, seconds: backoffMs / 1000 }]);
    expect(core.logged("lease expired without a report")).toHaveLength(1);

    // A copy during the backoff must not cut it short.
    await core.queue.send(task);
    expect(await core.delivery.lease(core.queue, core.queue.receiveTask(task.id))).toBeUndefined();
    expect(core.logged("dropped a message")[0]).toMatchObject({ reason: "duplicate message during a retry backoff" });

    core.advance(backoffMs);
    const leased = await core.delivery.lease(core.queue, core.queue.receiveTask(task.id));
    expect(leased).toMatchObject({ state: "PROCEEDING", retryCount: 1n, lease: { messageId: message.messageId } });
    expectDistinctLeaseTokens(firstToken, leased?.lease?.token);
  });

  it("an expired lease on the last attempt is FAILURE: the message is deleted and the rest of the chain cancelled", async () => {
    const core = new MemoryCore();
    const task = await core.create({ retryMaxLimit: 0n });
    const next = await core.create({ prior: task.id });
    const after = await core.create({ prior: next.id });
    await core.deliver(task.id);
    core.advance(LEASE_MS);
    const back = core.queue.receiveTask(task.id);
    expect(await core.delivery.lease(core.queue, back)).toBeUndefined();
    expect(core.task(task.id)).toMatchObject({ state: "FAILURE", retryCount: 1n, outbox: undefined });
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: back.receiptHandle }]);
    expect([core.task(next.id).state, core.task(after.id).state]).toEqual(["CANCEL", "CANCEL"]);
    expect(core.queue.taskIds()).toEqual([]);
  });

  it("hands a leased task back (its worker left before delivery): WAITING again, no attempt counted, message released", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const leased = await core.lease(task.id);
    await core.delivery.handBack(core.queue, leased);
    const handle = leased.lease?.receiptHandle;
    expect(core.task(task.id)).toMatchObject({ state: "WAITING", retryCount: 0n });
    expect(core.queue.callsOf("changeVisibility")).toEqual([{ op: "changeVisibility", receiptHandle: handle, seconds: 0 }]);
    const again = await core.deliver(task.id);
    expect(again).toMatchObject({ state: "PROCEEDING" });
    expectDistinctLeaseTokens(leased.lease?.token, again?.lease?.token);
  });

  it("a lease whose payloads cannot be read is handed back at once, and the error goes to the poller", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    core.store.failNext((call) => call.method === "withPayloads", new Error("read failed"));
    await expect(core.deliver(task.id)).rejects.toThrow("read failed");
    expect(core.task(task.id)).toMatchObject({ state: "WAITING", lastWrite: expect.stringMatching(/^handBack\./) });
    expect(core.queue.callsOf("changeVisibility")).toMatchObject([{ seconds: 0 }]);
  });

  it("a hand-back whose write fails leaves the lease to expire (counted as an attempt), without an error", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const leased = await core.lease(task.id);
    core.store.failNext((call) => call.transition === "handBack");
    await core.delivery.handBack(core.queue, leased);
    expect(core.task(task.id).state).toBe("PROCEEDING");
    expect(core.queue.callsOf("changeVisibility")).toEqual([]);
    expect(core.logged("could not hand a leased task back")).toHaveLength(1);
  });
});
