// ReportTaskResult (core/reports.ts) on the in-memory backends: each report code, the
// fencing by lease token, and which repeats are "Already recorded".
import { describe, expect, it } from "vitest";
import { reportResult } from "../../../service/src/core/reports.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import type { ReportKind } from "../../../service/src/tasks/rules.js";
import { LEASE_MS, MemoryCore, RETRY, rejection } from "../../support/memory-context.js";
import { expectDistinctLeaseTokens, expectLeaseToken } from "../../support/lease-tokens.js";

async function leasedTask(core: MemoryCore, request: Parameters<MemoryCore["create"]>[0] = {}): Promise<StoredTask> {
  const task = await core.create(request);
  return core.lease(task.id);
}

const report = (core: MemoryCore, task: StoredTask, kind: ReportKind, output = "", token = 0n) => reportResult(core.ctx, task.id, kind, output, token);

/** The token of the task's lease (the one its worker got): a new random one with every delivery. */
const leaseOf = (task: StoredTask): bigint => expectLeaseToken(task.lease?.token);

describe("reports", () => {
  it("SUCCESS: one conditional write without a read, then the message is deleted", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    const calls = core.watchCalls();
    const outcome = await report(core, task, "SUCCESS", "done");
    expect(calls()).toEqual(["succeedUnread"]);
    expect(outcome.message).toBe("Task succeeded");
    expect(core.task(task.id)).toMatchObject({ state: "SUCCESS", output: "done", outbox: undefined, reportLease: 0n });
    expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: task.lease?.receiptHandle }]);
    expect(core.queue.taskIds()).toEqual([]);
  });

  it("SUCCESS with the lease token records the token; with an Output too large for the task item it is decided on a read", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    await report(core, task, "SUCCESS", "ok", leaseOf(task));
    expect(core.task(task.id).reportLease).toBe(leaseOf(task));

    const large = await leasedTask(core);
    const calls = core.watchCalls();
    await report(core, large, "SUCCESS", "z".repeat(5_000), leaseOf(large));
    expect(calls()).toEqual(["succeedUnread", "transition:succeed"]);
    expect(core.task(large.id)).toMatchObject({ state: "SUCCESS", outputExternal: true, reportLease: leaseOf(large) });
    expect((await core.tasks.getById(large.id)).output).toBe("z".repeat(5_000));
  });

  it("FAILURE with attempts left: WAITING, RetryCount + 1, the message hidden for the backoff", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    const outcome = await report(core, task, "FAILURE", "boom");
    const retried = core.task(task.id);
    expect(retried).toMatchObject({ state: "WAITING", retryCount: 1n, output: "boom" });
    const backoffMs = retried.notBeforeMs - core.now();
    expect(backoffMs).toBeGreaterThanOrEqual(RETRY.baseMs / 2);
    expect(backoffMs).toBeLessThanOrEqual(RETRY.baseMs);
    expect(outcome.message).toMatch(/^Attempt failed; retrying in \d\.\d s \(3 attempt\(s\) left\)$/);
    expect(core.queue.callsOf("changeVisibility")).toEqual([{ op: "changeVisibility", receiptHandle: task.lease?.receiptHandle, seconds: backoffMs / 1000 }]);
  });

  const finalReports = [
    { kind: "FAILURE", retryMaxLimit: 0n, message: "Task failed after 1 attempt(s); no attempts remain", stored: { state: "FAILURE", retryCount: 1n } },
    { kind: "CANCEL", retryMaxLimit: 3n, message: "Task cancelled by its worker; it will not be retried", stored: { state: "CANCEL" } },
  ] as const;
  for (const { kind, retryMaxLimit, message, stored } of finalReports) {
    it(`${kind} that ends the task (${stored.state}, never retried): the marker goes and the message is deleted`, async () => {
      const core = new MemoryCore();
      const task = await leasedTask(core, { retryMaxLimit });
      expect((await report(core, task, kind, "", leaseOf(task))).message).toBe(message);
      expect(core.task(task.id)).toMatchObject({ ...stored, outbox: undefined });
      // A CANCEL keeps the token of the report that made it (a repeat is told apart from someone else's cancel).
      if (kind === "CANCEL") expect(core.task(task.id).reportLease).toBe(leaseOf(task));
      expect(core.queue.callsOf("delete")).toEqual([{ op: "delete", receiptHandle: task.lease?.receiptHandle }]);
    });
  }

  it("PROCEEDING (heartbeat): the lease and the message's visibility are extended; a non-empty Output is kept", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    core.advance(10_000);
    const outcome = await report(core, task, "PROCEEDING", "half way");
    expect(outcome.message).toBe(`Lease extended by ${LEASE_MS / 1000} s`);
    expect(outcome.task.lease?.expiresAtMs).toBe(core.now() + LEASE_MS);
    expect(core.task(task.id)).toMatchObject({ state: "PROCEEDING", output: "half way", lease: { expiresAtMs: core.now() + LEASE_MS } });
    await report(core, task, "PROCEEDING", "");
    expect(core.task(task.id).output).toBe("half way");
    expect(core.queue.callsOf("changeVisibility")).toMatchObject([{ seconds: LEASE_MS / 1000 }, { seconds: LEASE_MS / 1000 }]);
  });

  it("a missing task is 404; a task that is not leased, or final, is 409", async () => {
    const core = new MemoryCore();
    expect((await rejection(reportResult(core.ctx, 999n, "SUCCESS", ""))).status).toBe(404);
    const waiting = await core.create();
    expect((await rejection(report(core, waiting, "FAILURE"))).message).toMatch(/not leased/);
    const done = await leasedTask(core);
    await report(core, done, "SUCCESS", "ok");
    expect((await rejection(report(core, done, "FAILURE"))).message).toMatch(/already SUCCESS/);
  });

  it("fencing: a report under an older lease is 409 and changes nothing", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    core.advance(LEASE_MS);
    await core.delivery.lease(core.queue, core.queue.receiveTask(task.id)); // expired: retried
    core.advance(RETRY.maxMs);
    const second = await core.lease(task.id); // lease 2
    expectDistinctLeaseTokens(leaseOf(task), leaseOf(second));
    const before = core.task(task.id);
    for (const kind of ["SUCCESS", "FAILURE", "CANCEL", "PROCEEDING"] as const) {
      const stale = await rejection(report(core, task, kind, "late", leaseOf(task)));
      expect(stale.status).toBe(409);
      expect(stale.message).toBe(`Task ${task.id} was delivered again since lease ${leaseOf(task)}; this report is stale`);
      // The current lease's token is never told: it is what lets its holder report.
      expect(stale.message).not.toContain(String(leaseOf(second)));
    }
    expect(core.task(task.id)).toEqual(before);
  });

  it("a repeat of the holder's own report is 'Already recorded' (200, nothing written)", async () => {
    const core = new MemoryCore();
    const succeeded = await leasedTask(core);
    await report(core, succeeded, "SUCCESS", "ok", leaseOf(succeeded));
    const cancelled = await leasedTask(core);
    await report(core, cancelled, "CANCEL", "", leaseOf(cancelled));
    const failed = await leasedTask(core);
    await report(core, failed, "FAILURE", "no", leaseOf(failed));
    const calls = core.watchCalls();
    expect((await report(core, succeeded, "SUCCESS", "ok", leaseOf(succeeded))).message).toBe(`Already recorded: task ${succeeded.id} succeeded`);
    expect((await report(core, cancelled, "CANCEL", "", leaseOf(cancelled))).message).toBe(`Already recorded: task ${cancelled.id} is cancelled`);
    expect((await report(core, failed, "FAILURE", "no", leaseOf(failed))).message).toBe(`Already recorded: this attempt of task ${failed.id} failed`);
    expect(calls()).toEqual(["succeedUnread", "getTask", "getTask"]);
  });

  it("a result someone else recorded under the same lease is 409, not 'Already recorded'", async () => {
    const core = new MemoryCore();
    const byOther = await leasedTask(core);
    await report(core, byOther, "SUCCESS", "ok", 0n); // a report without a token
    expect((await rejection(report(core, byOther, "SUCCESS", "ok", leaseOf(byOther)))).status).toBe(409);
    const cancelledById = await leasedTask(core);
    await core.tasks.cancel(cancelledById.id); // CancelTaskByID
    const refused = await rejection(report(core, cancelledById, "CANCEL", "", leaseOf(cancelledById)));
    expect(refused.status).toBe(409);
    expect(refused.message).toMatch(/was cancelled/);
  });

  it("a report that loses a race (StaleTask) is decided again on the task as it is now", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    // Between the report's read and its write, the task is cancelled.
    core.store.intercept(
      (call) => call.transition === "retry",
      () => core.tasks.cancel(task.id).then(() => undefined),
    );
    const refused = await rejection(report(core, task, "FAILURE", "no", leaseOf(task)));
    expect(refused.message).toMatch(/was cancelled; stop working on it/);
    expect(core.task(task.id)).toMatchObject({ state: "CANCEL", retryCount: 0n });
  });

  it("a failed SQS call after the write does not fail the report", async () => {
    const core = new MemoryCore();
    const task = await leasedTask(core);
    core.queue.failNext("delete");
    expect((await report(core, task, "SUCCESS", "ok")).message).toBe("Task succeeded");
    expect(core.task(task.id).state).toBe("SUCCESS");
    expect(core.logged("delete of a finished task's message failed; the sweeper or SQS redelivery will converge")).toHaveLength(1);
  });
});
