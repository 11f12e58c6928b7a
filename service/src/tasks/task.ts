// The task as the server sees it. uint64 values are bigint, never number (SPEC §2).
// Its states are the protocol's (@queues/protocol), under the server's names.
import type { TaskState } from "@queues/protocol";

export { FINAL_STATES, isFinal, TASK_STATES as TaskStates, type TaskState } from "@queues/protocol";

/** The lease a worker holds while the task is PROCEEDING (kept after it ends, for acks). */
export interface Lease {
  /** 63 random bits, new with every delivery (ids.ts newLeaseToken); conditional writes compare it to fence out stale actors. */
  token: bigint;
  messageId: string;
  receiptHandle: string;
  expiresAtMs: number;
  /** When this delivery started (epoch ms); absent on leases written before it was recorded. */
  startedAtMs?: number | undefined;
}

/**
 * The transactional-outbox marker (SPEC §4), on the task item itself, so written in
 * the same write as the task. On a queued task (WAITING or PROCEEDING) it stays until
 * the task is final and is its watchdog: its SQS message may never have been sent,
 * or may be lost later (dead-letter queue, retention), and the sweeper sends a copy
 * when the message is overdue.
 * On a final task with a successor: the chain follow-up (queue the successor, or cancel
 * the rest of the chain) may not have happened yet.
 */
export interface Outbox {
  /** When the sweeper should look at the task (epoch ms). */
  dueAtMs: number;
  /** How many times the sweeper has already acted; spaces out repeated re-sends. */
  sweeps: number;
  /**
   * A parked marker (a task scheduled further ahead than SQS can delay a message):
   * it sits in one of the parking shards with dueAtMs = the task's RunAt, its message
   * not sent yet; the sweeper's look-ahead sends the message, delayed, when RunAt is
   * near (core/parked-tasks.ts), and treats the marker as overdue `graceMs` after it.
   */
  parked?: boolean;
}

export interface TaskRecord {
  id: bigint;
  owner: bigint;
  channel: string;
  state: TaskState;
  hashCode: string;
  input: string;
  output: string;
  retryCount: bigint;
  retryMaxLimit: bigint;
  prior: bigint;
  next: bigint;
  createTime: string;
  updateTime: string;
  /** WAITING for its Prior to succeed: not queued, never leased. */
  awaitsPrior: boolean;
  /** The successor was created with an empty Input and takes this task's Output. */
  nextTakesOutput: boolean;
  /** Not delivered before this (epoch ms): RunAt, then the end of each retry backoff; an early copy of the message waits. */
  notBeforeMs: number;
  /** Task.RunAt as asked (epoch ms), shown on queries; 0: not scheduled. */
  runAtMs: number;
  /** Task.Priority: its channel's priority level, 1 (the highest) to the channel's `priorities`. */
  priority: number;
  /** Task.ConcurrencyKey ("" : none): a channel with concurrencyPerKey runs at most that many of one key at once. */
  concurrencyKey: string;
  /** Task.TraceParent: the W3C traceparent of the call that created it ("" : none). */
  traceParent?: string | undefined;
  /** The flow-control slots (tasks/flow-slots.ts) this PROCEEDING task holds; given back when it leaves PROCEEDING. */
  heldSlots?: readonly string[] | undefined;
  lease: Lease | undefined;
  outbox: Outbox | undefined;
  /**
   * The lease token of the report that made the task SUCCESS or CANCEL (0: a report
   * without a token); undefined when no report did (CancelTaskByID, a chain) or the
   * item predates this field. Tells a worker's repeat of its own result from a result
   * someone else recorded.
   */
  reportLease?: bigint | undefined;
}
