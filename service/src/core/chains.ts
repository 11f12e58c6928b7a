// Chain follow-ups. When a task with a Next becomes final, its transition also set
// its outbox marker; the follow-up then queues the successor (SUCCESS, piping the
// Output into an empty Input) or cancels the rest of the chain (FAILURE, CANCEL),
// and clears the marker last. A crash anywhere in between leaves the marker set, so
// the sweeper runs the follow-up again; every step is idempotent.
import { dispatch, finalOutbox, outboxDue, type CoreContext } from "./context.js";
import { StaleTask, type StoredTask } from "./task-repository.js";
import { followUp, decideCancel } from "../tasks/state-machine.js";
import { isFinal } from "../tasks/task.js";
import { Rejection } from "../tasks/status.js";
import { decidedOn, withLatest } from "./optimistic.js";
import { bestEffort } from "./best-effort.js";
import { visible, type TaskScope } from "../tasks/scope.js";

/**
 * Runs the follow-up a final task owes its chain and clears its outbox marker. The
 * tasks it cancels on the way are appended to `cancelled` (in chain order) as each
 * write commits, so a caller still knows them when a later step fails.
 */
export async function runFollowUp(ctx: CoreContext, task: StoredTask, cancelled: StoredTask[] = []): Promise<StoredTask[]> {
  switch (followUp(task)) {
    case "queueNext":
      await queueSuccessor(ctx, task);
      break;
    case "cancelNext":
      await cancelChainFrom(ctx, task.next, cancelled);
      break;
    case "none":
      break;
  }
  if (task.outbox) {
    try {
      await ctx.store.clearOutbox(task);
    } catch (error) {
      // Someone (a sweeper) moved the marker: it will run this idempotent follow-up again.
      if (!(error instanceof StaleTask)) throw error;
    }
  }
  return cancelled;
}

/**
 * The follow-up right after a final write. The final state is already committed, so
 * the caller's answer must not turn into an error (a worker told to retry a report
 * that took effect would only get 409; a cancel retried would get 409 too): if the
 * follow-up fails, the outbox marker written with the final state makes the sweeper
 * run it again. Returns false when it was left to the sweeper.
 */
export async function followUpOrLeaveToSweeper(ctx: CoreContext, task: StoredTask, cancelled: StoredTask[] = []): Promise<boolean> {
  try {
    await runFollowUp(ctx, task, cancelled);
    return true;
  } catch (error) {
    ctx.log.warn({ err: error, taskId: String(task.id) }, "chain follow-up failed; the sweeper will finish it");
    return false;
  }
}

async function queueSuccessor(ctx: CoreContext, prior: StoredTask): Promise<void> {
  const piped = prior.nextTakesOutput ? (await ctx.store.withPayloads(prior)).output : undefined;
  // A successor with a RunAt further ahead than SQS delays gets a parked marker right away (its RunAt never changes).
  const waiting = await ctx.store.getTask(prior.next);
  const successor = await ctx.store.queueSuccessor(prior.next, piped, outboxDue(ctx, waiting?.notBeforeMs ?? 0));
  if (!successor) return; // already queued by an earlier run, or cancelled
  ctx.log.info({ taskId: String(successor.id), prior: String(prior.id) }, "queued the next task of a chain");
  // A successor with a RunAt ahead is sent delayed, or (further ahead than SQS delays) parked by the sweeper.
  await bestEffort(ctx.log, "send of a queued successor", { taskId: String(successor.id) }, () => dispatch(ctx, successor));
}

/**
 * Cancels every task from `startId` along Next that is not final yet. Tasks already
 * final are stepped over (an earlier, interrupted run may have cancelled them).
 */
export async function cancelChainFrom(ctx: CoreContext, startId: bigint, cancelled: StoredTask[] = []): Promise<StoredTask[]> {
  const seen = new Set<bigint>();
  let id = startId;
  while (id !== 0n && !seen.has(id)) {
    seen.add(id);
    const task = await withLatest(
      () => ctx.store.getTask(id),
      async (current) => {
        if (!current || isFinal(current.state)) return current;
        const done = await ctx.store.transition(current, "cancel", { outbox: null });
        cancelled.push(done);
        await releaseMessage(ctx, current);
        return done;
      },
    );
    if (!task) break;
    id = task.next;
  }
  return cancelled;
}

export interface CancelOutcome {
  /** The tasks this call cancelled, in chain order: the task asked for first. */
  cancelled: StoredTask[];
  /** The cascade broke off after the task's own CANCEL was committed: the sweeper cancels the rest of the chain. */
  cascadePending: boolean;
}

/**
 * Cancels one task (CancelTaskByID) and then the rest of its chain. Once the task's
 * own CANCEL is committed the call has done what it was asked, so the answer is the
 * tasks cancelled so far, never an error: the task's write set its outbox marker when
 * it has a Next, and the sweeper finishes an interrupted cascade (as after a report).
 * `scope`: the caller's (a scoped token); it decides whether the caller may cancel the
 * task, not which of its successors go with it (they could never run).
 */
export async function cancelTask(ctx: CoreContext, id: bigint, scope?: TaskScope): Promise<CancelOutcome> {
  const head = await withLatest(
    // A task outside the caller's scope is as absent (404); its owner never changes, so one read decides.
    async () => visible(scope, await ctx.store.getTask(id)),
    async (current) => {
      try {
        decideCancel(current, id);
      } catch (error) {
        // The 409 answer carries the final task, with its payloads.
        if (error instanceof Rejection && current) throw new Rejection(error.status, error.message, [await ctx.store.withPayloads(current)]);
        throw error;
      }
      const task = decidedOn(current);
      const done = await ctx.store.transition(task, "cancel", { outbox: finalOutbox(ctx, task) });
      await releaseMessage(ctx, task);
      return done;
    },
  );
  ctx.log.info({ taskId: String(id) }, "task cancelled");
  const cancelled = [head];
  const complete = await followUpOrLeaveToSweeper(ctx, head, cancelled);
  return { cancelled, cascadePending: !complete };
}

/** A cancelled task's message, if we hold its receipt handle, is deleted; otherwise it is dropped when received. */
async function releaseMessage(ctx: CoreContext, task: StoredTask): Promise<void> {
  const handle = task.lease?.receiptHandle;
  if (!handle) return;
  await bestEffort(ctx.log, "delete of a cancelled task's message", { taskId: String(task.id) }, async () =>
    ctx.channels.get(task.channel).delete(handle),
  );
}
