// The shared long poll of one channel inside one replica. Every credit of every
// worker stream on this channel waits here; one ReceiveMessage long poll serves
// them all, so SQS calls follow the task rate, not the number of workers (an idle
// channel costs 3 calls a minute). When a poll comes back full there is a backlog,
// and up to MAX_PARALLEL_POLLS polls run at once until it is drained.
import type { Logger } from "pino";
import type { TaskRecord } from "../tasks/task.js";
import type { DeliveryHandler, ReceivedMessage } from "../core/task-queues.js";
import type { StoredTask } from "../core/task-repository.js";
import type { ChannelQueue } from "./channel-queue.js";
import { LONG_POLL_SECONDS } from "./queue-definition.js";

/** A worker stream waiting for tasks; it holds one entry in the poller per credit. */
export interface Consumer {
  readonly open: boolean;
  /** Hands a leased task to the worker; false if the worker is gone. */
  deliver(task: TaskRecord): boolean;
}

const MAX_BATCH = 10;
const MAX_PARALLEL_POLLS = 4;
const MAX_ERROR_BACKOFF_MS = 10_000;

export class ChannelPoller {
  /** One entry per outstanding credit, oldest first. */
  private readonly waiting: Consumer[] = [];
  /** Messages asked for by the polls in flight (so parallel polls never over-receive). */
  private requested = 0;
  private polls = 0;
  /** Deliveries and releases not yet finished (stop waits for them). */
  private inFlight = 0;
  private backlog = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private settled: (() => void) | undefined;
  private readonly polling = new AbortController();

  constructor(
    readonly queue: ChannelQueue,
    private readonly handler: DeliveryHandler,
    private readonly log: Logger,
  ) {}

  get outstandingCredits(): number {
    return this.waiting.length;
  }

  addCredit(consumer: Consumer): void {
    this.waiting.push(consumer);
    this.pump();
  }

  /** The consumer's stream closed: forget its credits (tasks in flight to it are handed back). */
  dropConsumer(consumer: Consumer): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) if (this.waiting[i] === consumer) this.waiting.splice(i, 1);
  }

  /**
   * Stops polling at once (no new polls, no new credits served); resolves when the
   * polls in flight have returned and their messages were delivered or released.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.polls === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => (this.settled = resolve));
  }

  /**
   * Abandons the long polls in flight (a shutdown that ran out of time). A message
   * SQS handed out in that instant stays hidden until its visibility timeout and then
   * comes back: delayed, never lost.
   */
  abortPolls(): void {
    this.polling.abort();
  }

  private pump(): void {
    if (this.stopped || this.retryTimer) return;
    const desired = this.backlog ? MAX_PARALLEL_POLLS : 1;
    while (this.polls < desired) {
      const free = this.waiting.length - this.requested;
      if (free <= 0) return;
      const max = Math.min(MAX_BATCH, free);
      this.requested += max;
      this.polls += 1;
      void this.poll(max);
    }
  }

  private async poll(max: number): Promise<void> {
    let messages: ReceivedMessage[] = [];
    try {
      messages = await this.queue.receive(max, LONG_POLL_SECONDS, this.polling.signal);
      // With messages, the outage is over only once their tasks can be leased (dispatch).
      if (messages.length === 0) this.failures = 0;
      this.backlog = messages.length === max;
    } catch (error) {
      this.backOffAfter(error, "SQS receive failed");
    } finally {
      this.requested -= max;
      this.polls -= 1;
    }
    for (const message of messages) {
      const consumer = this.stopped ? undefined : this.takeCredit();
      this.track(consumer ? this.dispatch(message, consumer) : this.release(message));
    }
    this.pump();
    this.checkSettled();
  }

  /**
   * A failed receive, or a message whose task could not be leased (DynamoDB down): the
   * next poll waits, exponentially longer, so an outage is not a hot loop that also
   * burns the messages' receive counts.
   */
  private backOffAfter(error: unknown, what: string): void {
    if (this.stopped) return;
    this.failures += 1;
    this.backlog = false;
    const delay = Math.min(MAX_ERROR_BACKOFF_MS, 250 * 2 ** this.failures);
    if (this.failures === 1 || this.failures % 20 === 0) {
      this.log.warn({ err: error, channel: this.queue.name, retryInMs: delay }, `${what}; polling again later`);
    }
    this.retryTimer ??= setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, delay);
  }

  private track(work: Promise<void>): void {
    this.inFlight += 1;
    void work.finally(() => {
      this.inFlight -= 1;
      this.checkSettled();
    });
  }

  private async dispatch(message: ReceivedMessage, consumer: Consumer): Promise<void> {
    try {
      let task: StoredTask | undefined;
      try {
        task = await this.handler.lease(this.queue, message);
        this.failures = 0;
      } catch (error) {
        // The message stays hidden until its visibility timeout, then comes back.
        this.backOffAfter(error, `could not lease the task of message ${message.messageId}`);
      }
      if (!task) {
        if (consumer.open && !this.stopped) this.waiting.unshift(consumer);
        this.pump();
        return;
      }
      if (consumer.deliver(task)) return;
      const other = this.stopped ? undefined : this.takeCredit();
      if (other?.deliver(task)) return;
      await this.handler.handBack(this.queue, task);
    } catch (error) {
      this.log.error({ err: error, channel: this.queue.name, messageId: message.messageId }, "delivery failed");
    }
  }

  /** A message nobody is waiting for any more: make it visible again at once. */
  private async release(message: ReceivedMessage): Promise<void> {
    try {
      await this.queue.changeVisibility(message.receiptHandle, 0);
    } catch (error) {
      this.log.warn({ err: error, channel: this.queue.name, messageId: message.messageId }, "could not release a message");
    }
  }

  private takeCredit(): Consumer | undefined {
    while (this.waiting.length > 0) {
      const consumer = this.waiting.shift() as Consumer;
      if (consumer.open) return consumer;
    }
    return undefined;
  }

  private checkSettled(): void {
    if (this.stopped && this.polls === 0 && this.inFlight === 0 && this.settled) {
      const settled = this.settled;
      this.settled = undefined;
      settled();
    }
  }
}
