// CancelTaskByID (TaskService.cancel, core/chains.ts) on the in-memory backends: once
// the task's own CANCEL is written the answer is 200, whatever happens to the rest.
import { describe, expect, it } from "vitest";
import { reportResult } from "../../../service/src/core/reports.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import { MemoryCore, SWEEP_AFTER_MS, rejection } from "../../support/memory-context.js";
import { expectLeaseToken } from "../../support/lease-tokens.js";

describe("cancel", () => {
  it("cancels a WAITING task: 200 with the task; its message is dropped when it comes", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const result = await core.tasks.cancel(task.id);
    expect(result).toMatchObject({ cascadePending: false, payloadsMissing: false });
    expect(result.tasks).toMatchObject([{ id: task.id, state: "CANCEL", outbox: undefined }]);
    expect(core.task(task.id).lastWrite).toMatch(/^cancel\./);
    expect(await core.deliver(task.id)).toBeUndefined();
    expect(core.queue.taskIds()).toEqual([]);
  });

  it("cancels a leased task: its message is deleted and its worker's next report is 409", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    const leased = await core.lease(task.id);
    await core.tasks.cancel(task.id);
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: leased.lease?.receiptHandle }]);
    expect((await rejection(reportResult(core.ctx, task.id, "SUCCESS", "late", expectLeaseToken(leased.lease?.token)))).message).toMatch(/was cancelled/);
  });

  it("a missing task is 404; a final one is 409 carrying the task with its payloads", async () => {
    const core = new MemoryCore();
    expect((await rejection(core.tasks.cancel(999n))).status).toBe(404);
    const task = await core.create({ input: "I".repeat(3_000) });
    await core.tasks.cancel(task.id);
    const again = await rejection(core.tasks.cancel(task.id));
    expect(again.status).toBe(409);
    expect(again.data).toMatchObject([{ id: task.id, state: "CANCEL", input: "I".repeat(3_000) }]);
  });

  it("200 with cascadePending when a write of the cascade fails; a retry is 409; the sweeper finishes the chain", async () => {
    const core = new MemoryCore();
    const head = await core.create();
    const next = await core.create({ prior: head.id });
    core.store.failNext((call) => call.transition === "cancel" && call.id === next.id);
    const result = await core.tasks.cancel(head.id);
    expect(result.cascadePending).toBe(true);
    expect(result.tasks.map((task) => [task.id, task.state])).toEqual([[head.id, "CANCEL"]]);
    expect((await rejection(core.tasks.cancel(head.id))).status).toBe(409);
    core.advance(SWEEP_AFTER_MS);
    await core.sweeper.sweepOnce();
    expect(core.task(next.id).state).toBe("CANCEL");
  });

  it("when the cancelled tasks cannot be read back, answers with them as written and says which payloads are missing", async () => {
    const core = new MemoryCore();
    const task = await core.create({ input: "I".repeat(3_000) });
    core.store.failNext((call) => call.method === "getTasks");
    const result = await core.tasks.cancel(task.id);
    expect(result).toMatchObject({ cascadePending: false, payloadsMissing: true, tasks: [{ id: task.id, state: "CANCEL" }] });
  });

  it("a cancel racing a delivery (StaleTask) decides again and cancels the leased task, deleting its message", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    let leased: StoredTask | undefined;
    core.store.intercept(
      (call) => call.transition === "cancel",
      async () => void (leased = await core.lease(task.id)),
    );
    const result = await core.tasks.cancel(task.id);
    const leasedHandle = leased?.lease?.receiptHandle;
    // The task as leased in the race (its lease, with that delivery's token), now cancelled.
    expect(result.tasks).toMatchObject([{ state: "CANCEL", lease: { token: expectLeaseToken(leased?.lease?.token), receiptHandle: leasedHandle } }]);
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: leasedHandle }]);
  });
});
