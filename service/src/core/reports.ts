// ReportTaskResult: one worker result for one task. The state machine decides, the
// store writes conditionally (two racing reports produce exactly one final state),
// then SQS is told: delete on a final state, a new visibility on a heartbeat or retry.
import { finalOutbox, type CoreContext } from "./context.js";
import type { StoredTask, UnreadWrite } from "./task-repository.js";
import { decideReport } from "../tasks/state-machine.js";
import type { ReportKind } from "../tasks/rules.js";
import { decidedOn, withLatest } from "./optimistic.js";
import { bestEffort } from "./best-effort.js";
import { runMsOf } from "./task-events.js";
import { followUpOrLeaveToSweeper } from "./chains.js";
import { visible, type TaskScope } from "../tasks/scope.js";

export interface ReportOutcome {
  task: StoredTask;
  /** What happened, for the response Message. */
  message: string;
}

/**
 * `leaseToken` 0: the seed's behaviour; otherwise the report is fenced to that delivery.
 * `scope`: the reporter's (a scoped token); a task outside it is answered as absent (404).
 */
export async function reportResult(ctx: CoreContext, id: bigint, kind: ReportKind, output: string, leaseToken = 0n, scope?: TaskScope): Promise<ReportOutcome> {
  // SUCCESS, the usual report, is one conditional write; anything else comes back as
  // the task as it is, and the rules below decide. A task's channel and owner never
  // change, so the one read (or the write's answer) decides the scope for good.
  const unread = await writeUnread(ctx, id, kind, output, leaseToken, scope);
  if (unread && "written" in unread) return afterUnreadSuccess(ctx, unread.written);
  let finished: StoredTask | undefined;
  const outcome = await withLatest(
    async () => visible(scope, unread ? unread.current : await ctx.store.getTask(id)),
    async (task): Promise<ReportOutcome> => {
      const decision = decideReport(task, id, kind, ctx.retry, leaseToken);
      const current = decidedOn(task);
      const queue = ctx.channels.get(current.channel);
      const handle = current.lease?.receiptHandle ?? "";
      const fields = { taskId: String(id) };
      const chainOutbox = finalOutbox(ctx, current);
      switch (decision.transition) {
        case "none":
          return { task: current, message: decision.message };
        case "heartbeat": {
          const leaseSeconds = queue.leaseMs / 1000;
          const updated = await ctx.store.transition(current, "heartbeat", {
            leaseExpiresAtMs: ctx.now() + queue.leaseMs,
            output: output === "" ? undefined : output,
          });
          await bestEffort(ctx.log, "lease extension", fields, () => queue.changeVisibility(handle, leaseSeconds));
          return { task: updated, message: `Lease extended by ${leaseSeconds} s` };
        }
        case "succeed": {
          finished = await ctx.store.transition(current, "succeed", { output, outbox: chainOutbox, reportLease: leaseToken });
          await bestEffort(ctx.log, "delete of a finished task's message", fields, () => queue.delete(handle));
          return { task: finished, message: "Task succeeded" };
        }
        case "giveUp": {
          finished = await ctx.store.transition(current, "giveUp", { output, outbox: chainOutbox, reportLease: leaseToken });
          await bestEffort(ctx.log, "delete of a finished task's message", fields, () => queue.delete(handle));
          return { task: finished, message: "Task cancelled by its worker; it will not be retried" };
        }
        case "fail": {
          finished = await ctx.store.transition(current, "fail", { output, retryCount: decision.retryCount, outbox: chainOutbox });
          await bestEffort(ctx.log, "delete of a finished task's message", fields, () => queue.delete(handle));
          return { task: finished, message: `Task failed after ${decision.retryCount} attempt(s); no attempts remain` };
        }
        case "retry": {
          const updated = await ctx.store.transition(current, "retry", {
            output,
            retryCount: decision.retryCount,
            notBeforeMs: ctx.now() + decision.backoffMs,
          });
          ctx.events.retried(updated);
          await bestEffort(ctx.log, "retry backoff", fields, () => queue.changeVisibility(handle, decision.backoffMs / 1000));
          const left = current.retryMaxLimit + 1n - decision.retryCount;
          return { task: updated, message: `Attempt failed; retrying in ${(decision.backoffMs / 1000).toFixed(1)} s (${left} attempt(s) left)` };
        }
      }
    },
  );
  if (finished) {
    ctx.log.info({ taskId: String(id), state: finished.state }, "task finished");
    ctx.events.finished(finished, runMsOf(finished, ctx.now()));
    if (finished.outbox) await followUpOrLeaveToSweeper(ctx, finished);
  }
  return outcome;
}

/** SUCCESS, the usual report, as one conditional write (UNREAD_PRECONDITIONS). */
async function writeUnread(ctx: CoreContext, id: bigint, kind: ReportKind, output: string, leaseToken: bigint, scope: TaskScope | undefined): Promise<UnreadWrite | undefined> {
  return kind === "SUCCESS" ? ctx.store.succeedUnread(id, output, leaseToken, scope) : undefined;
}

/** The SUCCESS written without a read: delete its message. */
async function afterUnreadSuccess(ctx: CoreContext, task: StoredTask): Promise<ReportOutcome> {
  const handle = task.lease?.receiptHandle ?? "";
  await bestEffort(ctx.log, "delete of a finished task's message", { taskId: String(task.id) }, () => ctx.channels.get(task.channel).delete(handle));
  ctx.log.info({ taskId: String(task.id), state: task.state }, "task finished");
  ctx.events.finished(task, runMsOf(task, ctx.now()));
  return { task, message: "Task succeeded" };
}
