// What the task service's parts share: the repository, the channels' queues, the
// retry policy and a few settings. Built once per server (app.ts), or on in-memory
// implementations by the unit tests.
import type { Logger } from "pino";
import type { RetryPolicy } from "../tasks/state-machine.js";
import type { IdGenerator } from "../tasks/ids.js";
import type { Outbox, TaskRecord } from "../tasks/task.js";
import type { TaskQueues } from "./task-queues.js";
import type { TaskRepository } from "./task-repository.js";

export interface CoreContext {
  store: TaskRepository;
  channels: TaskQueues;
  ids: IdGenerator;
  retry: RetryPolicy;
  /** Delay before the sweeper looks at a task whose outbox marker is still set. */
  sweepAfterMs: number;
  log: Logger;
  now: () => number;
}

/** A fresh outbox marker: the sweeper looks at the task `sweepAfterMs` from now. */
export function outboxDue(ctx: CoreContext): Outbox {
  return { dueAtMs: ctx.now() + ctx.sweepAfterMs, sweeps: 0 };
}

/** The marker a final write leaves: set while the task still owes its chain a follow-up (it has a Next), else removed. */
export function finalOutbox(ctx: CoreContext, task: TaskRecord): Outbox | null {
  return task.next !== 0n ? outboxDue(ctx) : null;
}
