// The task state machine: every state, every transition, and the rules that pick
// one. Pure: no I/O. The DynamoDB store turns each transition into a conditional
// write whose condition is the `from` states below (plus the lease token it read),
// so concurrent replicas can never apply two transitions to the same observation.
//
//              create (Prior unfinished: waits unqueued)
//                 |
//                 v          queue (Prior succeeded)
//   +--------> WAITING  <-------------------------------- (unqueued WAITING)
//   |             |    \
//   |  retry      | lease  \ cancel
//   |  handBack   v         \
//   +------ PROCEEDING ----> CANCEL  (cancel, giveUp)
//            |    |   \
//  heartbeat-+    |    \ fail (no attempts left)
//         succeed |     \
//                 v      v
//              SUCCESS  FAILURE
//
// SUCCESS, FAILURE and CANCEL are final: no transition leaves them.
import type { TaskRecord, TaskState } from "./task.js";
import { isFinal } from "./task.js";
import { conflict, notFound } from "./status.js";
import type { ReportKind } from "./rules.js";

interface TransitionRule {
  from: readonly TaskState[];
  to: TaskState;
  /** Why it happens; shown in logs. */
  what: string;
}

export const TRANSITIONS = {
  queue: { from: ["WAITING"], to: "WAITING", what: "its Prior succeeded: the task is queued" },
  lease: { from: ["WAITING"], to: "PROCEEDING", what: "delivered to a worker" },
  handBack: { from: ["PROCEEDING"], to: "WAITING", what: "leased but its worker left before delivery: no attempt counted" },
  heartbeat: { from: ["PROCEEDING"], to: "PROCEEDING", what: "worker heartbeat: lease extended" },
  succeed: { from: ["PROCEEDING"], to: "SUCCESS", what: "worker reported SUCCESS" },
  retry: { from: ["PROCEEDING"], to: "WAITING", what: "attempt failed (report or lease expiry); retried after a backoff" },
  fail: { from: ["PROCEEDING"], to: "FAILURE", what: "attempt failed and no attempts remain" },
  giveUp: { from: ["PROCEEDING"], to: "CANCEL", what: "worker reported CANCEL: do not retry" },
  cancel: { from: ["WAITING", "PROCEEDING"], to: "CANCEL", what: "cancelled by CancelTaskByID or by its chain" },
} as const satisfies Record<string, TransitionRule>;

export type TransitionName = keyof typeof TRANSITIONS;

export interface RetryPolicy {
  /** Backoff before retry n (n = 1, 2, ...) is baseMs * 2^(n-1), capped at maxMs, with jitter. */
  baseMs: number;
  maxMs: number;
}

export type FailedAttempt =
  | { transition: "retry"; retryCount: bigint; backoffMs: number }
  | { transition: "fail"; retryCount: bigint };

/**
 * A failed attempt (FAILURE report or lease expiry): RetryCount + 1, then retry if
 * attempts remain. A task is attempted at most 1 + RetryMaxLimit times, so after the
 * last one RetryCount = 1 + RetryMaxLimit.
 */
export function afterFailedAttempt(task: TaskRecord, policy: RetryPolicy, random: () => number = Math.random): FailedAttempt {
  const retryCount = task.retryCount + 1n;
  if (retryCount > task.retryMaxLimit) return { transition: "fail", retryCount };
  return { transition: "retry", retryCount, backoffMs: backoffMs(retryCount, policy, random) };
}

/** Exponential backoff with "equal jitter": a random point in the upper half of the step. */
export function backoffMs(retry: bigint, policy: RetryPolicy, random: () => number = Math.random): number {
  const exponent = Math.min(Number(retry > 64n ? 64n : retry) - 1, 40);
  const step = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(step / 2 + random() * (step / 2));
}

export type ReportDecision =
  | { transition: "succeed" | "giveUp" | "heartbeat" }
  | FailedAttempt
  /** A repeat of a report that already took effect under the same lease: nothing to write. */
  | { transition: "none"; message: string };

/**
 * ReportTaskResult on a task: only a PROCEEDING task takes reports (404 / 409 otherwise).
 * With a lease token (fencing, an addition to the seed), a report for an older lease is
 * 409, and a repeat of one that already took effect under this lease is answered 200
 * without writing (a worker re-sends reports whose answer it lost).
 */
export function decideReport(task: TaskRecord | undefined, id: bigint, kind: ReportKind, policy: RetryPolicy, leaseToken = 0n): ReportDecision {
  if (!task) throw notFound(`Task ${id} does not exist`);
  if (leaseToken !== 0n) {
    const current = task.lease?.token ?? 0n;
    if (current !== leaseToken) {
      // The current lease's token is never told: it is what lets its holder report.
      throw conflict(`Task ${id} was delivered again since lease ${leaseToken}; this report is stale`);
    }
    const repeat = alreadyRecorded(task, kind, leaseToken);
    if (repeat) return { transition: "none", message: repeat };
  }
  if (task.state !== "PROCEEDING") throw conflict(notProceedingMessage(task));
  switch (kind) {
    case "SUCCESS":
      return { transition: "succeed" };
    case "CANCEL":
      return { transition: "giveUp" };
    case "PROCEEDING":
      return { transition: "heartbeat" };
    case "FAILURE":
      return afterFailedAttempt(task, policy);
  }
}

/**
 * What a report of `kind` under the task's current lease (`leaseToken`) already did, if
 * this lease's holder did it. A SUCCESS or CANCEL recorded by someone else under the
 * same lease (a report without a token, CancelTaskByID) is not this worker's result: it
 * gets the 409 of a final task. (A SUCCESS item without `reportLease` predates the
 * field and was written by a report, so it counts as a repeat.)
 */
function alreadyRecorded(task: TaskRecord, kind: ReportKind, leaseToken: bigint): string | undefined {
  const byThisLease = task.reportLease === leaseToken;
  if (kind === "SUCCESS" && task.state === "SUCCESS" && (byThisLease || task.reportLease === undefined)) return `Already recorded: task ${task.id} succeeded`;
  if (kind === "CANCEL" && task.state === "CANCEL" && byThisLease) return `Already recorded: task ${task.id} is cancelled`;
  // The lease ended in a failed attempt (this report, or its expiry): the attempt is counted either way.
  if (kind === "FAILURE" && (task.state === "FAILURE" || task.state === "WAITING")) return `Already recorded: this attempt of task ${task.id} failed`;
  return undefined;
}

export function notProceedingMessage(task: TaskRecord): string {
  if (task.state === "CANCEL") return `Task ${task.id} was cancelled; stop working on it`;
  if (isFinal(task.state)) return `Task ${task.id} is already ${task.state}; a final task never changes`;
  return `Task ${task.id} is not leased (WAITING): its lease expired or it was never delivered`;
}

/**
 * Transitions the store may write without reading the task first: one conditional
 * write whose condition is exactly the case in which the decide function below picks
 * the transition (so the hot path costs one write and no read). When the condition
 * does not hold, the write returns the task as it is, and the decide function runs on
 * that as usual. test/store-preconditions.test.ts checks each against its decide function.
 */
export const UNREAD_PRECONDITIONS = {
  /** decideDelivery → "lease". */
  lease: "WAITING, not waiting for its Prior, and: this message carries its lease, or its RunAt / retry backoff is over (or it has none); and its lease token is not the one drawn for this lease",
  /** decideReport(SUCCESS) → "succeed", for a task without Next (a Next needs the chain's outbox marker). */
  succeed:
    "PROCEEDING, no Next, holding no flow-control slots, the report's lease token (when it has one) is the task's, and the task is in the reporter's scope (when its token is scoped)",
} as const satisfies Partial<Record<TransitionName, string>>;

export type DeliveryDecision =
  /** Hand the task to a worker: WAITING → PROCEEDING. */
  | { action: "lease" }
  /** Delete the message; it must never reach a worker. */
  | { action: "drop"; reason: string }
  /** The lease ran out without a report (SQS redelivered the message, or the sweeper sent a copy). */
  | { action: "expire" }
  /** Redelivered although our lease is still valid (a heartbeat raced the timeout): keep the lease. */
  | { action: "renew"; remainingMs: number }
  /** Arrived before the task's RunAt (a clock ahead of the sender's): hide the message until then. */
  | { action: "defer"; remainingMs: number };

/**
 * What to do with an SQS message for a task. Only a conditional WAITING → PROCEEDING
 * update makes a delivery, so duplicates, cancelled and missing tasks are dropped.
 */
export function decideDelivery(task: TaskRecord | undefined, messageId: string, nowMs: number): DeliveryDecision {
  if (!task) return { action: "drop", reason: "no such task" };
  if (isFinal(task.state)) return { action: "drop", reason: `task is ${task.state}` };
  if (task.awaitsPrior) return { action: "drop", reason: "task waits for its Prior" };
  const ourMessage = task.lease?.messageId === messageId;
  if (task.state === "PROCEEDING") {
    const remainingMs = (task.lease?.expiresAtMs ?? 0) - nowMs;
    if (remainingMs <= 0) return { action: "expire" }; // our message, or a copy the sweeper sent when ours went missing
    return ourMessage ? { action: "renew", remainingMs } : { action: "drop", reason: "duplicate message of a leased task" };
  }
  // WAITING and queued. A second copy (sent by the sweeper) must not cut a retry backoff short.
  if (!ourMessage && task.lease && task.notBeforeMs > nowMs) return { action: "drop", reason: "duplicate message during a retry backoff" };
  // Never delivered before its RunAt: a message that comes early waits (it may be the only one).
  if (!task.lease && task.notBeforeMs > nowMs) return { action: "defer", remainingMs: task.notBeforeMs - nowMs };
  return { action: "lease" };
}

/** SQS delays a message at most 15 minutes (DelaySeconds 900). */
export const MAX_SQS_DELAY_MS = 900_000;

/**
 * How a task that may be delivered at `notBeforeMs` reaches its queue when it is
 * queued at `nowMs`: sent now, delayed by whole seconds rounded up (never early), or,
 * further ahead than SQS delays a message, parked: not sent until the sweeper's
 * look-ahead finds it near its time.
 */
export function dispatchOf(notBeforeMs: number, nowMs: number): { send: true; delaySeconds: number } | { send: false } {
  const aheadMs = notBeforeMs - nowMs;
  if (aheadMs <= 0) return { send: true, delaySeconds: 0 };
  if (aheadMs > MAX_SQS_DELAY_MS) return { send: false };
  return { send: true, delaySeconds: Math.ceil(aheadMs / 1000) };
}

export type SweepDecision =
  /** Final with a successor: run the chain follow-up (it clears the marker). */
  | { action: "followUp" }
  /** Its message should have been received by now and was not: send a copy. */
  | { action: "resend" }
  /** Nothing is overdue yet: look again then. */
  | { action: "watch"; untilMs: number }
  /** Scheduled further ahead than SQS delays a message and not sent: park the marker at its RunAt (the look-ahead sends it). */
  | { action: "park"; untilMs: number }
  /** Nothing to watch (the task waits for its Prior, whose own marker covers it). */
  | { action: "clear" };

/**
 * The sweeper's rule for a task whose outbox marker is due. The marker stays on every
 * queued task until it is final, so a task whose SQS message is lost (never sent, moved
 * to the dead-letter queue, expired) is found: its message is expected back at the end
 * of its lease or retry backoff, and `graceMs` after that a copy is sent. A copy is
 * harmless: only a conditional write leases, and a copy that finds the lease run out
 * counts the failed attempt (decideDelivery).
 */
export function decideSweep(task: TaskRecord, nowMs: number, graceMs: number): SweepDecision {
  if (isFinal(task.state)) return { action: "followUp" };
  if (task.awaitsPrior) return { action: "clear" };
  if (task.state === "WAITING" && !task.lease && !task.outbox?.parked && task.notBeforeMs - nowMs > MAX_SQS_DELAY_MS) {
    return { action: "park", untilMs: task.notBeforeMs };
  }
  const expectedAtMs = task.state === "PROCEEDING" ? (task.lease?.expiresAtMs ?? 0) : task.notBeforeMs;
  if (expectedAtMs + graceMs > nowMs) return { action: "watch", untilMs: expectedAtMs + graceMs };
  return { action: "resend" };
}

export type LinkDecision = "awaitPrior" | "queueNow";

/** CreateTask with a Prior: the Prior must exist, have no Next, and be able to succeed. */
export function decideLink(prior: TaskRecord | undefined, priorId: bigint): LinkDecision {
  if (!prior) throw notFound(`Prior task ${priorId} does not exist`);
  if (prior.next !== 0n) throw conflict(`Prior task ${priorId} already has a Next (${prior.next}); chains are linear`);
  if (prior.state === "FAILURE" || prior.state === "CANCEL") {
    throw conflict(`Prior task ${priorId} is ${prior.state}; a task after it could never run`);
  }
  return prior.state === "SUCCESS" ? "queueNow" : "awaitPrior";
}

/** CancelTaskByID: only a task that is not final can be cancelled. */
export function decideCancel(task: TaskRecord | undefined, id: bigint): "cancel" {
  if (!task) throw notFound(`Task ${id} does not exist`);
  if (isFinal(task.state)) throw conflict(`Task ${id} is already ${task.state}; a final task cannot be cancelled`, [task]);
  return "cancel";
}

export type FollowUp = "queueNext" | "cancelNext" | "none";

/** What a final task owes its successor: SUCCESS queues it, FAILURE and CANCEL cancel the rest of the chain. */
export function followUp(task: TaskRecord): FollowUp {
  if (task.next === 0n || !isFinal(task.state)) return "none";
  return task.state === "SUCCESS" ? "queueNext" : "cancelNext";
}
