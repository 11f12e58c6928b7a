// What the use cases need from the task store, and the conflicts it reports. Every
// write to a task is conditional: on the version it was read at (a change since then
// is StaleTask, carrying the task as it is now), or, for the writes made without a
// read, on exactly the case in which the rules would pick them (UNREAD_PRECONDITIONS
// in tasks/state-machine.ts). The DynamoDB store (store/task-store.ts) implements it;
// the unit tests run the use cases on an in-memory one with the same semantics.
import type { TransitionName } from "../tasks/state-machine.js";
import type { TaskChange } from "../tasks/apply-change.js";
import type { Outbox, TaskRecord } from "../tasks/task.js";
import type { TaskScope } from "../tasks/scope.js";

/** A task as read from the repository, with the version every write on it is conditioned on. */
export interface StoredTask extends TaskRecord {
  version: bigint;
  /** The id of the last state change written (`<transition>.<random>`). */
  lastWrite: string | undefined;
  /** Input / Output live apart from the task (too large); a read without payloads shows them empty. */
  inputExternal: boolean;
  outputExternal: boolean;
}

/** The task changed since it was read; `current` is how it is now (undefined: gone). */
export class StaleTask extends Error {
  constructor(readonly current: StoredTask | undefined) {
    super("task changed since it was read");
  }
}

/** A lease did not fit: the flow-control slot `slotId` (the channel's maxInFlight, or a key's concurrencyPerKey) is full. */
export class SlotsFull extends Error {
  constructor(readonly slotId: string) {
    super(`flow-control slot ${slotId} is full`);
  }
}

/** A caller's HashCode (idempotency key) is already taken by another task. */
export class DuplicateHashCode extends Error {}

/** The new task's ID is already taken (two replicas drew the same ID): retry with a fresh one. */
export class IdTaken extends Error {}

/** A transition written without a read: the task as written, or (its precondition did not hold) as it is. */
export type UnreadWrite = { written: StoredTask } | { current: StoredTask | undefined };

/** The due outbox markers found in one shard, earliest due first. */
export interface DueOutboxShard {
  shard: number;
  ids: bigint[];
}

/** A place in a parking shard: after the marker of `key` at `dueAtMs`, or (no key) from `dueAtMs` on. */
export interface ParkedPosition {
  dueAtMs: number;
  key?: string;
}

/** Parked markers read from one parking shard, earliest RunAt first, and where to go on. */
export interface ParkedPage {
  ids: bigint[];
  next: ParkedPosition;
}

export interface Link {
  prior: StoredTask;
  /** The new task has an empty Input and will receive the Prior's Output. */
  takesOutput: boolean;
}

export interface TaskRepository {
  // ----- reads (strongly consistent) -----

  /** The task; with `withPayloads`, its large Input / Output too. */
  getTask(id: bigint, withPayloads?: boolean): Promise<StoredTask | undefined>;
  /** Fills in Input / Output that live apart from the task. */
  withPayloads(task: StoredTask): Promise<StoredTask>;
  /** The task with this HashCode, with payloads. */
  findByHashCode(hashCode: string): Promise<StoredTask | undefined>;
  /** The task ID a caller's HashCode is taken by (a generated one is not looked up here). */
  findIdByHashCode(hashCode: string): Promise<bigint | undefined>;
  /** Number of the owner's tasks: exact, but it may lag a create by a moment (counted from the table's stream). */
  countOwnerTasks(owner: bigint): Promise<bigint>;
  /** IDs of the owner's tasks, newest first, skipping `offset`; stops (rejects) once `signal` is aborted. */
  ownerTaskIds(owner: bigint, offset: bigint, limit: bigint, signal?: AbortSignal): Promise<bigint[]>;
  /** The channel's newest FAILURE tasks, newest first (up to `limit`; large payloads not read). */
  recentFailures(channel: string, limit: number): Promise<StoredTask[]>;
  /** Tasks by ID with payloads, in the order asked; missing ones are skipped. */
  getTasks(ids: bigint[]): Promise<StoredTask[]>;
  /**
   * Like getTasks, but stops before the task that would take the answer past
   * `maxBytes` (answerBytes of each; the first task is always taken): `cut` says
   * whether it stopped early. Large payloads are read a few tasks at a time, so a
   * page of large tasks never holds much more than `maxBytes` in memory.
   */
  getTasksUpTo(ids: bigint[], maxBytes: number): Promise<{ tasks: StoredTask[]; cut: boolean }>;
  /** How many shards outbox markers are spread over (0 to outboxShards - 1). */
  readonly outboxShards: number;
  /** IDs of tasks whose outbox marker is due, at most `limitPerShard` from each shard asked for (may lag: re-read before acting). */
  dueOutboxTaskIds(shards: readonly number[], limitPerShard: number): Promise<DueOutboxShard[]>;
  /** The shards parked markers live in (tasks scheduled further ahead than SQS delays a message). */
  readonly parkedShards: readonly number[];
  /** Parked markers of `shard` due after `after` and at most `untilMs` (may lag: re-read before acting). */
  parkedTaskIds(shard: number, after: ParkedPosition, untilMs: number, limit: number): Promise<ParkedPage>;

  // ----- writes -----

  /**
   * Writes a new task (and, for a chain, the link on its Prior) atomically. Throws
   * DuplicateHashCode, IdTaken, or StaleTask when the Prior changed since it was read.
   * A write whose answer was lost and that is retried is recognised as this create's
   * (never IdTaken, never a second task). The owner's Total may count the new task a
   * moment later (countOwnerTasks).
   */
  create(task: TaskRecord, link?: Link): Promise<void>;
  /**
   * Applies a transition of the state machine to the task as it was read (StaleTask
   * if its version changed). Returns the task as written (tasks/apply-change.ts).
   */
  transition(task: StoredTask, name: TransitionName, change?: TaskChange): Promise<StoredTask>;
  /** `lease` to this message, if decideDelivery would lease; one conditional write, no read. */
  leaseUnread(id: bigint, message: { messageId: string; receiptHandle: string }, leaseMs: number): Promise<UnreadWrite>;
  /**
   * `succeed`, if decideReport(SUCCESS) would, the task has no Next and it is in the
   * reporter's `scope` (a scoped token); one conditional write, no read. An Output (or
   * a scope) the repository cannot write that way (too large) comes back as `current`:
   * the task, read, for the rules to decide on.
   */
  succeedUnread(id: bigint, output: string, leaseToken: bigint, scope?: TaskScope): Promise<UnreadWrite>;
  /**
   * The `queue` transition of a successor whose Prior succeeded, conditioned on the
   * successor still waiting for its Prior (not on a version), so a repeated follow-up
   * is harmless. The piped Output becomes its Input if that is empty. Returns the task
   * as written, or undefined when there was nothing to do.
   */
  queueSuccessor(id: bigint, pipedInput: string | undefined, outbox: Outbox): Promise<StoredTask | undefined>;
  /** Moves the outbox marker (to a parking shard with `parked`), conditional on the version read: only one sweeper acts on it now. */
  claimOutbox(task: StoredTask, dueAtMs: number, sweeps: number, parked?: boolean): Promise<StoredTask>;
  /** Removes the outbox marker, conditional on the version read. */
  clearOutbox(task: StoredTask): Promise<StoredTask>;
  /** A redelivered message of a lease that is still valid: keep the lease, take the new receipt handle. */
  renewReceiptHandle(task: StoredTask, receiptHandle: string): Promise<StoredTask>;
}
