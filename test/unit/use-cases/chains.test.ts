// Chain follow-ups (core/chains.ts) on the in-memory backends: a Prior's SUCCESS queues
// its successor (piping the Output), FAILURE and CANCEL cancel the rest of the chain,
// and whatever a crash or a failed write interrupts, the sweeper finishes.
import { describe, expect, it } from "vitest";
import { runFollowUp } from "../../../service/src/core/chains.js";
import { reportResult } from "../../../service/src/core/reports.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import { MemoryCore, SWEEP_AFTER_MS } from "../../support/memory-context.js";
import { expectLeaseToken } from "../../support/lease-tokens.js";

/** A chain of `length` (2 or more) tasks, each after the one before; the later ones with `input`. */
async function chain(core: MemoryCore, length: number, input = "", headRetryMaxLimit = 3n): Promise<[StoredTask, StoredTask, ...StoredTask[]]> {
  const tasks: StoredTask[] = [];
  for (let prior = 0n; tasks.length < length; prior = (tasks.at(-1) as StoredTask).id) {
    tasks.push(await core.create(prior === 0n ? { input: "first", retryMaxLimit: headRetryMaxLimit } : { prior, input }));
  }
  return tasks as [StoredTask, StoredTask, ...StoredTask[]];
}

const states = (core: MemoryCore, tasks: StoredTask[]) => tasks.map((task) => core.task(task.id).state);

describe("chains", () => {
  it("the Prior's SUCCESS queues its successor with the Output piped into its empty Input, then clears the marker", async () => {
    const core = new MemoryCore();
    const [a, b] = await chain(core, 2);
    const leased = await core.lease(a.id);
    await reportResult(core.ctx, a.id, "SUCCESS", "result", expectLeaseToken(leased.lease?.token));
    expect(core.task(b.id)).toMatchObject({ state: "WAITING", awaitsPrior: false, input: "result", outbox: { sweeps: 0 }, lastWrite: expect.stringMatching(/^queue\./) });
    expect(core.task(a.id)).toMatchObject({ state: "SUCCESS", outbox: undefined });
    expect(core.queue.taskIds()).toEqual([b.id]);
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: leased.lease?.receiptHandle }]);
    expect(await core.lease(b.id)).toMatchObject({ input: "result" });
  });

  it("a successor with its own Input keeps it; a large Output is piped whole", async () => {
    const core = new MemoryCore();
    const [a, b] = await chain(core, 2, "own");
    await core.lease(a.id);
    await reportResult(core.ctx, a.id, "SUCCESS", "result");
    expect(core.task(b.id).input).toBe("own");

    const [c, d] = await chain(core, 2);
    await core.lease(c.id);
    await reportResult(core.ctx, c.id, "SUCCESS", "L".repeat(4_000));
    expect((await core.lease(d.id)).input).toBe("L".repeat(4_000));
  });

  it("FAILURE cancels the rest of the chain, in order, and clears every marker", async () => {
    const core = new MemoryCore();
    const tasks = await chain(core, 4, "", 0n);
    await core.lease(tasks[0].id);
    expect((await reportResult(core.ctx, tasks[0].id, "FAILURE", "")).message).toMatch(/no attempts remain/);
    expect(states(core, tasks)).toEqual(["FAILURE", "CANCEL", "CANCEL", "CANCEL"]);
    expect(tasks.map((task) => core.task(task.id).outbox)).toEqual([undefined, undefined, undefined, undefined]);
    expect(core.store.calls.filter((call) => call.transition === "cancel").map((call) => call.id)).toEqual(tasks.slice(1).map((task) => task.id));
  });

  it("cancelling the head cancels the chain (the tasks in chain order); a leased task's message is deleted", async () => {
    const core = new MemoryCore();
    const tasks = await chain(core, 3);
    const leased = await core.lease(tasks[0].id);
    const result = await core.tasks.cancel(leased.id);
    expect(result).toMatchObject({ cascadePending: false, payloadsMissing: false });
    expect(result.tasks.map((task) => [task.id, task.state])).toEqual(tasks.map((task) => [task.id, "CANCEL"]));
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: leased.lease?.receiptHandle }]);
  });

  it("an interrupted cascade is finished by the sweeper", async () => {
    const core = new MemoryCore();
    const tasks = await chain(core, 3);
    const [a, b, c] = tasks as [StoredTask, StoredTask, StoredTask];
    core.store.failNext((call) => call.transition === "cancel" && call.id === c.id);
    const result = await core.tasks.cancel(a.id);
    expect(result.cascadePending).toBe(true);
    expect(result.tasks.map((task) => task.id)).toEqual([a.id, b.id]);
    expect(states(core, tasks)).toEqual(["CANCEL", "CANCEL", "WAITING"]);
    expect(core.task(a.id).outbox).toBeDefined(); // the marker says: follow-up pending

    expect(await core.sweeper.sweepOnce()).toBe(0); // not due yet
    core.advance(SWEEP_AFTER_MS);
    await core.sweeper.sweepOnce();
    expect(states(core, tasks)).toEqual(["CANCEL", "CANCEL", "CANCEL"]);
    expect(core.task(a.id).outbox).toBeUndefined();
    expect(core.logged("sweeper: running a chain follow-up")).toHaveLength(1);
  });

  it("a successor whose queueing failed after the Prior's SUCCESS is queued by the sweeper; a repeated follow-up is harmless", async () => {
    const core = new MemoryCore();
    const [a, b] = await chain(core, 2);
    await core.lease(a.id);
    core.store.failNext((call) => call.method === "queueSuccessor");
    expect((await reportResult(core.ctx, a.id, "SUCCESS", "out")).message).toBe("Task succeeded");
    expect(core.task(b.id).awaitsPrior).toBe(true);
    expect(core.logged("chain follow-up failed; the sweeper will finish it")).toHaveLength(1);

    core.advance(SWEEP_AFTER_MS);
    expect(await core.sweeper.sweepOnce()).toBe(1);
    expect(core.task(b.id)).toMatchObject({ awaitsPrior: false, input: "out" });
    expect(core.queue.taskIds()).toEqual([b.id]);

    // A follow-up run again (a sweeper that claimed the marker before a crash) queues nothing twice.
    await runFollowUp(core.ctx, core.task(a.id));
    expect(core.queue.taskIds()).toEqual([b.id]);
    expect(core.task(b.id).lastWrite).toMatch(/^queue\./);
  });
});
