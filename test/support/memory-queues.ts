// In-memory channel queues (core's TaskQueues) for the unit tests of the use cases: a
// small model of an SQS queue on the tests' clock. A send makes a message; `receive`
// hands out the visible ones, each time with a new receipt handle, and hides them for
// the lease; `changeVisibility` moves a message's visibility; `delete` removes the
// message whose current receipt handle it names (a stale handle deletes nothing).
// Every call is recorded; faults are injected per call (`failNext`).
import type { QueuedTask, ReceivedMessage, SendOptions, TaskQueue, TaskQueues } from "../../service/src/core/task-queues.js";
import type { SlotLimits } from "../../service/src/tasks/flow-slots.js";
import { checkChannel } from "../../service/src/tasks/rules.js";

export type QueueOp = "send" | "delete" | "changeVisibility" | "length";

export interface QueueCall {
  op: QueueOp;
  taskId?: bigint;
  receiptHandle?: string;
  seconds?: number;
  copy?: boolean;
  held?: number;
}

interface Message {
  messageId: string;
  taskId: bigint;
  receiptHandle: string;
  visibleAtMs: number;
  copy: boolean;
  held: number;
}

let counter = 0;

export class MemoryQueue implements TaskQueue {
  readonly calls: QueueCall[] = [];
  private readonly messages: Message[] = [];
  private readonly failures: { op: QueueOp; error: Error }[] = [];

  constructor(
    readonly name: string,
    readonly leaseMs: number,
    private readonly now: () => number,
    readonly limits: SlotLimits = {},
  ) {}

  async send(task: QueuedTask, options: SendOptions = {}): Promise<void> {
    const { delaySeconds = 0, copy = false, held = 0 } = options;
    const taskId = task.id;
    this.enter({ op: "send", taskId, ...(delaySeconds ? { seconds: delaySeconds } : {}), ...(copy ? { copy } : {}), ...(held ? { held } : {}) });
    this.messages.push({ messageId: `m-${++counter}`, taskId, receiptHandle: "", visibleAtMs: this.now() + delaySeconds * 1000, copy, held });
  }

  async delete(receiptHandle: string): Promise<void> {
    this.enter({ op: "delete", receiptHandle });
    const message = this.byHandle(receiptHandle);
    if (message) this.messages.splice(this.messages.indexOf(message), 1);
  }

  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    this.enter({ op: "changeVisibility", receiptHandle, seconds });
    const message = this.byHandle(receiptHandle);
    if (message) message.visibleAtMs = this.now() + seconds * 1000;
  }

  /** Visible and delayed messages, as SQS counts them (not the ones in flight). */
  async length(): Promise<bigint> {
    this.enter({ op: "length" });
    return BigInt(this.messages.filter((message) => message.receiptHandle === "" || message.visibleAtMs <= this.now()).length);
  }

  // ----- for the tests -----

  /** Receives up to `max` visible messages (oldest first) and hides them for the lease. */
  receive(max = 10): ReceivedMessage[] {
    return this.messages
      .filter((message) => message.visibleAtMs <= this.now())
      .slice(0, max)
      .map((message) => this.handOut(message));
  }

  /** Receives the first visible message of `taskId` (throws if there is none). */
  receiveTask(taskId: bigint): ReceivedMessage {
    const message = this.messages.find((candidate) => candidate.taskId === taskId && candidate.visibleAtMs <= this.now());
    if (!message) throw new Error(`no visible message of task ${taskId}`);
    return this.handOut(message);
  }

  /** The task IDs of the messages in the queue (visible or not), oldest first. */
  taskIds(): bigint[] {
    return this.messages.map((message) => message.taskId);
  }

  /** When the message with this receipt handle becomes visible again (undefined: deleted). */
  visibleAt(receiptHandle: string): number | undefined {
    return this.byHandle(receiptHandle)?.visibleAtMs;
  }

  /** The calls of one kind. */
  callsOf(op: QueueOp): QueueCall[] {
    return this.calls.filter((call) => call.op === op);
  }

  /** The next call of `op` fails with `error` (and does nothing). */
  failNext(op: QueueOp, error: Error = new Error(`injected SQS ${op} failure`)): void {
    this.failures.push({ op, error });
  }

  private enter(call: QueueCall): void {
    this.calls.push(call);
    const failure = this.failures.find((candidate) => candidate.op === call.op);
    if (!failure) return;
    this.failures.splice(this.failures.indexOf(failure), 1);
    throw failure.error;
  }

  /** A receive of the message: a new receipt handle, hidden for the lease. */
  private handOut(message: Message): ReceivedMessage {
    message.receiptHandle = `rh-${++counter}`;
    message.visibleAtMs = this.now() + this.leaseMs;
    return {
      messageId: message.messageId,
      receiptHandle: message.receiptHandle,
      taskId: message.taskId,
      ...(message.copy ? { copy: true } : {}),
      ...(message.held ? { held: message.held } : {}),
    };
  }

  private byHandle(receiptHandle: string): Message | undefined {
    return receiptHandle === "" ? undefined : this.messages.find((message) => message.receiptHandle === receiptHandle);
  }
}

export class MemoryQueues implements TaskQueues {
  private readonly queues = new Map<string, MemoryQueue>();

  constructor(channels: { name: string; leaseMs: number; limits?: SlotLimits }[], now: () => number) {
    for (const { name, leaseMs, limits } of channels) this.queues.set(name, new MemoryQueue(name, leaseMs, now, limits));
  }

  /** The channel's queue; 400 for a channel that is not configured (as the SQS one). */
  get(name: string): MemoryQueue {
    checkChannel(name, new Set(this.queues.keys()));
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`channel ${name} passed the check but has no queue`);
    return queue;
  }
}
