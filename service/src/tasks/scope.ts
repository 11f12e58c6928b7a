// The tasks a caller may see and act on: every task (no scope), the tasks of some
// owners (a producer token scoped to owners), or the tasks of some channels (a worker
// token scoped to channels); see auth/tokens.ts. A task outside the caller's scope is
// answered exactly as a task that does not exist. A task's Owner and Channel never
// change after CreateTask, so a task read once is in or out of a scope for good: a
// decision taken on one read holds for every later version of the task.
import type { TaskRecord } from "./task.js";

export interface TaskScope {
  /** Only the tasks of these owners. */
  readonly owners?: ReadonlySet<bigint>;
  /** Only the tasks of these channels. */
  readonly channels?: ReadonlySet<string>;
}

/** Whether tasks of `owner` are in the scope (no scope, or one not limited to owners: yes). */
export function ownerInScope(scope: TaskScope | undefined, owner: bigint): boolean {
  return scope?.owners === undefined || scope.owners.has(owner);
}

/** Whether tasks of `channel` are in the scope (no scope, or one not limited to channels: yes). */
export function channelInScope(scope: TaskScope | undefined, channel: string): boolean {
  return scope?.channels === undefined || scope.channels.has(channel);
}

export function inScope(scope: TaskScope | undefined, task: Pick<TaskRecord, "owner" | "channel">): boolean {
  return ownerInScope(scope, task.owner) && channelInScope(scope, task.channel);
}

/** The task if the scope lets the caller see it; undefined (as if absent) otherwise. */
export function visible<T extends Pick<TaskRecord, "owner" | "channel">>(scope: TaskScope | undefined, task: T | undefined): T | undefined {
  return task !== undefined && inScope(scope, task) ? task : undefined;
}
