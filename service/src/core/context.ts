// What the task service's parts share: the repository, the channels' queues, the
// retry policy and a few settings. Built once per server (app.ts), or on in-memory
// implementations by the unit tests.
import type { Logger } from "pino";
import { dispatchOf, type RetryPolicy } from "../tasks/state-machine.js";
import type { IdGenerator } from "../tasks/ids.js";
import type { Outbox, TaskRecord } from "../tasks/task.js";
import type { TaskQueues } from "./task-queues.js";
import type { TaskRepository } from "./task-repository.js";
import type { TaskEvents } from "./task-events.js";

export interface CoreContext {
  store: TaskRepository;
  channels: TaskQueues;
  ids: IdGenerator;
  retry: RetryPolicy;
  /** The longest a task held back by a full flow-control slot waits before it is tried again. */
  holdBackMaxSeconds: number;
  /** Delay before the sweeper looks at a task whose outbox marker is still set. */
  sweepAfterMs: number;
  log: Logger;
  now: () => number;
  /** Creates, deliveries and results, for metrics (NO_TASK_EVENTS: none). */
  events: TaskEvents;
}

/**
 * A fresh outbox marker: the sweeper looks at the task `sweepAfterMs` after it may be
 * delivered (now, or its RunAt). A task further ahead than SQS delays a message gets
 * a parked marker at its RunAt instead (its message is sent when RunAt is near).
 */
export function outboxDue(ctx: CoreContext, notBeforeMs = 0): Outbox {
  const now = ctx.now();
  if (!dispatchOf(notBeforeMs, now).send) return { dueAtMs: notBeforeMs, sweeps: 0, parked: true };
  return { dueAtMs: Math.max(now, notBeforeMs) + ctx.sweepAfterMs, sweeps: 0 };
}

/** Sends a queued task's message, delayed until its RunAt if that is ahead; a parked task is left to the look-ahead. */
export async function dispatch(ctx: CoreContext, task: TaskRecord): Promise<void> {
  const plan = dispatchOf(task.notBeforeMs, ctx.now());
  if (plan.send) await ctx.channels.get(task.channel).send(task, { delaySeconds: plan.delaySeconds });
}

/** The marker a final write leaves: set while the task still owes its chain a follow-up (it has a Next), else removed. */
export function finalOutbox(ctx: CoreContext, task: TaskRecord): Outbox | null {
  return task.next !== 0n ? outboxDue(ctx) : null;
}
