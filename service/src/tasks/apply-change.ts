// A transition's change applied to a task record: the task as a store has just
// written it. Pure: no I/O. The store writes a change and returns the task through
// this function, so the record it answers with is defined once, here, for the
// DynamoDB store and the in-memory one of the unit tests alike.
import type { Lease, Outbox, TaskRecord } from "./task.js";
import { TRANSITIONS, type TransitionName } from "./state-machine.js";
import type { Slot } from "./flow-slots.js";

/** Fields a transition may change besides the state; undefined leaves a field as it is. */
export interface TaskChange {
  output?: string;
  retryCount?: bigint;
  notBeforeMs?: number;
  lease?: Lease;
  leaseExpiresAtMs?: number;
  /** The SQS message that now carries the task (a redelivery, or a re-sent copy). */
  message?: { messageId: string; receiptHandle: string };
  /** null removes the outbox marker. */
  outbox?: Outbox | null;
  /** The lease token of the report that makes this change (SUCCESS, CANCEL by the worker). */
  reportLease?: bigint;
  /** The flow-control slots a lease takes (tasks/flow-slots.ts); the write fails with SlotsFull if one is full. */
  takeSlots?: readonly Slot[];
}

/** The task with `change` applied; every other field (the state too) as it was. */
export function applyChange<T extends TaskRecord>(task: T, change: TaskChange): T {
  return {
    ...task,
    output: change.output ?? task.output,
    retryCount: change.retryCount ?? task.retryCount,
    notBeforeMs: change.notBeforeMs ?? task.notBeforeMs,
    lease: leaseAfter(task.lease, change),
    outbox: change.outbox === null ? undefined : (change.outbox ?? task.outbox),
    reportLease: change.reportLease ?? task.reportLease,
  };
}

/**
 * The task after transition `name` with `change`, written at `updateTime`. Throws when
 * the state machine does not allow the transition from the task's state (a bug: the
 * rules picked it), before anything is written.
 */
export function applyTransition<T extends TaskRecord>(task: T, name: TransitionName, change: TaskChange, updateTime: string): T {
  const rule = TRANSITIONS[name];
  if (!(rule.from as readonly string[]).includes(task.state)) {
    throw new Error(`transition ${name} is not allowed from ${task.state} (task ${task.id})`);
  }
  return { ...applyChange(task, change), state: rule.to, updateTime, heldSlots: slotsAfter(task, rule.to, change) };
}

/** The slots a task holds after a transition to `to`: the ones its lease took; none once it leaves PROCEEDING. */
export function slotsAfter(task: TaskRecord, to: TaskRecord["state"], change: TaskChange): readonly string[] | undefined {
  if (to !== "PROCEEDING") return undefined;
  if (change.takeSlots?.length) return change.takeSlots.map((slot) => slot.id);
  return task.heldSlots;
}

/** A redelivered message of a lease that is still valid: the lease stays, with the message's new receipt handle. */
export function receiptRenewal(task: TaskRecord, receiptHandle: string): TaskChange {
  return task.lease ? { message: { messageId: task.lease.messageId, receiptHandle } } : {};
}

/** A new lease replaces the old one; a new expiry or message updates the lease the task has (none: stays none). */
function leaseAfter(lease: Lease | undefined, change: TaskChange): Lease | undefined {
  if (change.lease) return change.lease;
  if (!lease || (change.leaseExpiresAtMs === undefined && !change.message)) return lease;
  return {
    ...lease,
    expiresAtMs: change.leaseExpiresAtMs ?? lease.expiresAtMs,
    messageId: change.message?.messageId ?? lease.messageId,
    receiptHandle: change.message?.receiptHandle ?? lease.receiptHandle,
  };
}
