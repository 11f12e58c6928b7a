// CreateTask (core/task-service.ts) on the in-memory backends: the task and its outbox
// marker are one write, then the message is sent; chains link to their Prior.
import { describe, expect, it } from "vitest";
import { reportResult } from "../../../service/src/core/reports.js";
import { generateHashCode, taskIdOfGeneratedHashCode } from "../../../service/src/tasks/ids.js";
import { MemoryCore, SWEEP_AFTER_MS, T0, rejection } from "../../support/memory-context.js";

/** A task that has succeeded with `output`. */
async function succeeded(core: MemoryCore, output: string) {
  const task = await core.create();
  await core.deliver(task.id);
  await reportResult(core.ctx, task.id, "SUCCESS", output);
  return core.task(task.id);
}

describe("create", () => {
  it("writes a WAITING task with its outbox marker, then sends its message", async () => {
    const core = new MemoryCore();
    const calls = core.watchCalls();
    const hashCode = await core.tasks.create({ owner: 7n, channel: "default", input: "hello", hashCode: "", retryMaxLimit: 2n, prior: 0n, runAtMs: 0, priority: 1, concurrencyKey: "" });
    const id = taskIdOfGeneratedHashCode(hashCode) as bigint;
    expect(core.task(id)).toMatchObject({
      state: "WAITING",
      owner: 7n,
      input: "hello",
      hashCode,
      retryCount: 0n,
      retryMaxLimit: 2n,
      awaitsPrior: false,
      outbox: { dueAtMs: T0 + SWEEP_AFTER_MS, sweeps: 0 },
      createTime: new Date(T0).toISOString(),
    });
    expect(calls()).toEqual(["create"]);
    expect(core.queue.taskIds()).toEqual([id]);
  });

  it("keeps a caller's HashCode; a second create with it is 409 carrying the HashCode, and creates nothing", async () => {
    const core = new MemoryCore();
    const first = await core.create({ hashCode: "order-1" });
    expect(first.hashCode).toBe("order-1");
    const duplicate = await rejection(core.create({ hashCode: "order-1", input: "other" }));
    expect(duplicate.status).toBe(409);
    expect(duplicate.data).toBe("order-1");
    expect(await core.store.countOwnerTasks(1n)).toBe(1n);
    expect(core.queue.taskIds()).toEqual([first.id]);
  });

  it("a generated HashCode sent back is 409 while its task exists, and 400 when it names none", async () => {
    const core = new MemoryCore();
    const task = await core.create();
    expect((await rejection(core.create({ hashCode: task.hashCode }))).status).toBe(409);
    expect((await rejection(core.create({ hashCode: generateHashCode(12345n) }))).status).toBe(400);
  });

  it("a channel that is not configured is 400", async () => {
    const core = new MemoryCore();
    expect((await rejection(core.create({ channel: "nope" }))).status).toBe(400);
  });

  it("with a Prior still running: waits unqueued (no message, no marker) and is linked as the Prior's Next", async () => {
    const core = new MemoryCore();
    const prior = await core.create();
    const next = await core.create({ prior: prior.id, input: "own" });
    expect(next).toMatchObject({ state: "WAITING", awaitsPrior: true, outbox: undefined, prior: prior.id });
    expect(core.task(prior.id)).toMatchObject({ next: next.id, nextTakesOutput: false, version: prior.version + 1n });
    expect(core.queue.taskIds()).toEqual([prior.id]);
  });

  it("with a Prior that succeeded: queued at once, the Prior's Output piped into an empty Input", async () => {
    const core = new MemoryCore();
    const prior = await succeeded(core, "result");
    const next = await core.create({ prior: prior.id, input: "" });
    expect(next).toMatchObject({ awaitsPrior: false, input: "result", outbox: { sweeps: 0 } });
    expect(core.task(prior.id)).toMatchObject({ state: "SUCCESS", next: next.id, nextTakesOutput: true });
    expect(core.queue.taskIds()).toEqual([next.id]);
  });

  it("pipes an Output too large for the task item (read with its payload)", async () => {
    const core = new MemoryCore();
    const large = "x".repeat(5_000);
    const prior = await succeeded(core, large);
    expect(prior.outputExternal).toBe(true);
    const next = await core.create({ prior: prior.id, input: "" });
    expect(next.input).toBe(large);
    expect(next.inputExternal).toBe(true);
  });

  it("a missing Prior is 404; a FAILURE or CANCEL Prior, or one that has a Next already, is 409", async () => {
    const core = new MemoryCore();
    expect((await rejection(core.create({ prior: 999n }))).status).toBe(404);
    const cancelled = await core.create();
    await core.tasks.cancel(cancelled.id);
    expect((await rejection(core.create({ prior: cancelled.id }))).status).toBe(409);
    const prior = await core.create();
    await core.create({ prior: prior.id });
    expect((await rejection(core.create({ prior: prior.id }))).message).toMatch(/already has a Next/);
  });

  it("a retried create of a chained task is 409 'duplicate HashCode', not 'the Prior already has a Next'", async () => {
    const core = new MemoryCore();
    const prior = await core.create();
    await core.create({ prior: prior.id, hashCode: "step-2" });
    const retried = await rejection(core.create({ prior: prior.id, hashCode: "step-2" }));
    expect(retried.status).toBe(409);
    expect(retried.data).toBe("step-2");
  });

  it("a failed send leaves the task with its outbox marker, and the create still succeeds; the sweeper sends it", async () => {
    const core = new MemoryCore();
    core.queue.failNext("send");
    const task = await core.create();
    expect(core.queue.taskIds()).toEqual([]);
    expect(core.task(task.id).outbox).toEqual({ dueAtMs: T0 + SWEEP_AFTER_MS, sweeps: 0 });
    expect(core.logged("send of a new task failed; the sweeper or SQS redelivery will converge")).toHaveLength(1);
    core.advance(SWEEP_AFTER_MS);
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.queue.taskIds()).toEqual([task.id]);
  });

  it("a Prior that changed between its read and the create's write (StaleTask): decided again on the Prior as it is", async () => {
    const core = new MemoryCore();
    const prior = await core.create();
    // Just before the chained create is written, the Prior is delivered (a new version).
    core.store.intercept((call) => call.method === "create", () => core.deliver(prior.id).then(() => undefined));
    const next = await core.create({ prior: prior.id });
    expect(core.store.calls.filter((call) => call.method === "create")).toHaveLength(3); // the Prior's, the refused one, the retried one
    expect(next).toMatchObject({ awaitsPrior: true, prior: prior.id });
    expect(core.task(prior.id)).toMatchObject({ state: "PROCEEDING", next: next.id });
  });

  it("an ID taken by another replica (IdTaken): created again under a fresh ID", async () => {
    const core = new MemoryCore();
    const other = await core.create({ owner: 2n });
    core.store.intercept(
      (call) => call.method === "create",
      (call) => void core.store.seed({ ...other, id: call.id as bigint, hashCode: "elsewhere" }),
    );
    const task = await core.create({ hashCode: "mine" });
    expect(task.hashCode).toBe("mine");
    expect(core.store.calls.filter((call) => call.method === "create")).toHaveLength(3);
    expect(core.queue.taskIds()).toEqual([other.id, task.id]);
  });
});
