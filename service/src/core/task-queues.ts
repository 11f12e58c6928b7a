// What the use cases need from the channels' queues, and the port through which a
// channel's poller hands core the messages it received. A message body is the task
// ID; everything else about the task lives in the repository. The SQS queues
// (queue/channel-queues.ts) implement it; the unit tests use in-memory ones.
import type { StoredTask } from "./task-repository.js";
import type { TaskRecord } from "../tasks/task.js";
import type { SlotLimits } from "../tasks/flow-slots.js";

/** What a task's message is made from: its ID, and where and how it is sent (its priority level; its Owner for fairness). */
export type QueuedTask = Pick<TaskRecord, "id" | "owner" | "priority">;

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  /** undefined when the body is not a task ID (such a message is deleted). */
  taskId: bigint | undefined;
  /**
   * A copy (the sweeper's re-send, or a scheduled task's message from the look-ahead,
   * which every replica sends): its task is read before anything is written, so a
   * copy that finds its task taken costs a read, not a failed conditional write.
   */
  copy?: boolean;
  /** How many times the task was held back by a full flow-control slot before this message (0: never). */
  held?: number;
}

/** How a message is sent. */
export interface SendOptions {
  /** Hidden for this long first (0 to 900). */
  delaySeconds?: number;
  /** See ReceivedMessage.copy. */
  copy?: boolean;
  /** The times the task was held back by a full flow-control slot (ReceivedMessage.held). */
  held?: number;
}

/** One channel's queue. */
export interface TaskQueue {
  /** The channel's name. */
  readonly name: string;
  /** The lease a delivery gets (the channel's visibility timeout), in milliseconds. */
  readonly leaseMs: number;
  /** The channel's maxInFlight / concurrencyPerKey (tasks/flow-slots.ts). */
  readonly limits: SlotLimits;
  /** Sends the task's message. */
  send(task: QueuedTask, options?: SendOptions): Promise<void>;
  delete(receiptHandle: string): Promise<void>;
  /** Hides (or, with 0, releases) a received message: the lease, a heartbeat, a retry backoff. */
  changeVisibility(receiptHandle: string, seconds: number): Promise<void>;
  /** Tasks waiting to be delivered (approximate). */
  length(): Promise<bigint>;
}

/** The configured channels. */
export interface TaskQueues {
  /** The channel's queue; 400 for a channel that is not configured. */
  get(channel: string): TaskQueue;
}

/** How a received message becomes a delivery (core/delivery.ts); the channel poller calls it. */
export interface DeliveryHandler {
  /** Leases the message's task (WAITING → PROCEEDING), or handles and drops the message: undefined. */
  lease(queue: TaskQueue, message: ReceivedMessage): Promise<StoredTask | undefined>;
  /** Undoes a lease whose worker left before the task was handed over, and releases the message. */
  handBack(queue: TaskQueue, task: StoredTask): Promise<void>;
  /** How long the channel's poller should wait before receiving again (its maxInFlight is full); 0: go on. */
  pauseMs(queue: TaskQueue): number;
}
