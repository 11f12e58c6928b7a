// What happens to tasks, as the use cases see it: the port through which metrics
// (metrics/task-metrics.ts) learn of creates, deliveries and results. Calls are
// synchronous and must not throw; the default does nothing (unit tests, tools).
import type { TaskRecord } from "../tasks/task.js";

export interface TaskEvents {
  /** A task was created (CreateTask, CreateTasks, a schedule's tick, RerunTaskByID). */
  created(task: TaskRecord): void;
  /** A task was leased to a worker, `waitMs` after it could first be delivered (its create, RunAt or retry backoff). */
  delivered(task: TaskRecord, waitMs: number): void;
  /** A task reached a final state; `runMs`: since its last delivery (undefined: it was not running). */
  finished(task: TaskRecord, runMs: number | undefined): void;
  /** An attempt failed with attempts left: the task waits for its backoff. */
  retried(task: TaskRecord): void;
  /** A lease ran out without a report (the worker died or hung). */
  leaseExpired(task: TaskRecord): void;
}

export const NO_TASK_EVENTS: TaskEvents = {
  created: () => {},
  delivered: () => {},
  finished: () => {},
  retried: () => {},
  leaseExpired: () => {},
};

/** When a task could first be delivered: its create, or later its RunAt or the end of a retry backoff. */
export function dueAtMs(task: TaskRecord): number {
  return Math.max(Date.parse(task.createTime), task.notBeforeMs);
}

/** How long a finished task ran: since its last delivery, if it was running. */
export function runMsOf(task: TaskRecord, nowMs: number): number | undefined {
  const started = task.lease?.startedAtMs;
  return started === undefined ? undefined : Math.max(0, nowMs - started);
}
