// The shared long poll of one channel inside one replica. Every credit of every
// worker stream on this channel waits here; one ReceiveMessage long poll serves
// them all, so SQS calls follow the task rate, not the number of workers (an idle
// channel costs 3 calls a minute per priority level). When a poll comes back full
// its level has a backlog, and up to MAX_PARALLEL_POLLS polls run at once until it
// is drained.
//
// Priorities (SPEC §7.2): while no level has a known backlog, each level's queue has
// its own long poll, so a task of any level is seen at once. Among backlogged levels
// the polls are shared by smooth weighted round robin: every lower backlogged level
// gets LOWER_LEVEL_SHARE of them (4 %: above SPEC's 2 % floor) and the highest
// backlogged level the rest (at least 84 % with 5 levels: above SPEC's 80 %); one
// poll in PROBE_EVERY looks at a level without a known backlog. Every poll but the
// idle long polls reserves its credits, so no message is received for nobody.
import type { Logger } from "pino";
import type { TaskRecord } from "../tasks/task.js";
import type { DeliveryHandler, ReceivedMessage } from "../core/task-queues.js";
import type { StoredTask } from "../core/task-repository.js";
import type { ChannelQueue } from "./channel-queue.js";
import { LONG_POLL_SECONDS } from "./queue-definition.js";
import type { Grant, RateLimiter } from "../core/rate-limiter.js";

/**
 * The wait of a rate-limited channel's polls (permits are taken for the current second
 * before the poll: a long poll would spend them in a later one), and of the backlog
 * polls of a channel with priority levels. 1 s, not 0: a short poll samples only some
 * of SQS's servers and may come back empty from a queue with messages.
 */
const SHORT_WAIT_SECONDS = 1;

/** A worker stream waiting for tasks; it holds one entry in the poller per credit. */
export interface Consumer {
  readonly open: boolean;
  /** Hands a leased task to the worker; false if the worker is gone. */
  deliver(task: TaskRecord): boolean;
}

const MAX_BATCH = 10;
const MAX_PARALLEL_POLLS = 4;
const MAX_ERROR_BACKOFF_MS = 10_000;
/** The share of the backlog polls each backlogged level below the highest backlogged one gets. */
export const LOWER_LEVEL_SHARE = 0.04;
/** While a level is backlogged, one poll in this many probes a level without a known backlog. */
const PROBE_EVERY = 10;

/** A level's long poll while none is backlogged; a backlogged level's poll; a probe of a level not known to be. */
type PollKind = "watch" | "backlog" | "probe";

export class ChannelPoller {
  /** One entry per outstanding credit, oldest first. */
  private readonly waiting: Consumer[] = [];
  /** Messages asked for by the backlog polls in flight (so parallel polls never over-receive). */
  private requested = 0;
  /** Polls in flight: all of them, and those of backlogged levels. */
  private polls = 0;
  private backlogPolls = 0;
  /** Backlog polls started (every PROBE_EVERY-th is a probe), and the level probed last. */
  private backlogPollCount = 0;
  private lastProbe = -1;
  /** Per level (index 0: level 1): polls in flight, and whether its last poll came back full (a backlog). */
  private readonly levelPolls: number[];
  private readonly backlogged: boolean[];
  /** The smooth weighted round robin's running scores, per level. */
  private readonly scores: number[];
  /** Deliveries and releases not yet finished (stop waits for them). */
  private inFlight = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private settled: (() => void) | undefined;
  private readonly polling = new AbortController();

  constructor(
    readonly queue: ChannelQueue,
    private readonly handler: DeliveryHandler,
    private readonly log: Logger,
    /** The channel's shared budget (rateLimitPerSecond); undefined: not rate limited. */
    private readonly limiter?: RateLimiter,
  ) {
    const levels = queue.levels.length;
    this.levelPolls = Array<number>(levels).fill(0);
    this.backlogged = Array<boolean>(levels).fill(false);
    this.scores = Array<number>(levels).fill(0);
  }

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
    // The channel's maxInFlight is full: receiving now would only hold tasks back again.
    const pauseMs = this.handler.pauseMs(this.queue);
    if (pauseMs > 0) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.pump();
      }, pauseMs);
      return;
    }
    if (!this.backlogged.includes(true)) {
      // No known backlog: every level has its own long poll while credits wait. They
      // reserve no credits: when tasks arrive on several levels at once, the extra
      // messages are released (once: that level is then known to be backlogged).
      for (let index = 0; index < this.levelPolls.length; index++) {
        if (this.waiting.length === 0) return;
        if (this.levelPolls[index] === 0) this.startPoll(index, Math.min(MAX_BATCH, this.waiting.length), "watch");
      }
      return;
    }
    // Backlogged levels: up to MAX_PARALLEL_POLLS polls for the credits not yet asked
    // for, each of the level the weights pick; every PROBE_EVERY-th one probes a level
    // without a known backlog instead, so a task of a higher level is seen while a lower
    // one is busy.
    while (this.backlogPolls < MAX_PARALLEL_POLLS) {
      const free = this.waiting.length - this.requested;
      if (free <= 0) return;
      const probe = ++this.backlogPollCount % PROBE_EVERY === 0 ? this.nextProbe() : undefined;
      const index = probe ?? this.pickBacklogged();
      if (index === undefined) return;
      this.startPoll(index, Math.min(MAX_BATCH, free), probe === undefined ? "backlog" : "probe");
    }
  }

  private startPoll(index: number, max: number, kind: PollKind): void {
    const reserved = kind === "watch" ? 0 : max;
    this.requested += reserved;
    this.polls += 1;
    if (kind !== "watch") this.backlogPolls += 1;
    this.levelPolls[index] = (this.levelPolls[index] ?? 0) + 1;
    void this.poll(index, max, reserved, kind);
  }

  /** The next level without a known backlog and without a poll in flight, in turn; undefined: none. */
  private nextProbe(): number | undefined {
    const levels = this.levelPolls.length;
    for (let step = 1; step <= levels; step++) {
      const index = (this.lastProbe + step) % levels;
      if (!this.backlogged[index] && this.levelPolls[index] === 0) {
        this.lastProbe = index;
        return index;
      }
    }
    return undefined;
  }

  /** How long a poll waits for messages (seconds). */
  private waitSeconds(kind: PollKind): number {
    // A probe holds the credits it reserved: it must not wait on an empty level (a short
    // poll samples only some of SQS's servers, so a probe may miss a task; the next finds it).
    if (kind === "probe") return 0;
    // A backlog poll of one of several levels: a level just drained must not hold its credits from the others.
    if (this.limiter || (kind === "backlog" && this.levelPolls.length > 1)) return SHORT_WAIT_SECONDS;
    return LONG_POLL_SECONDS;
  }

  /** Smooth weighted round robin over the backlogged levels (the highest one weighs the most); undefined: none. */
  private pickBacklogged(): number | undefined {
    const backlogged = this.backlogged.flatMap((isBacklogged, index) => (isBacklogged ? [index] : []));
    if (backlogged.length === 0) return undefined;
    if (backlogged.length === 1) return backlogged[0];
    const lower = LOWER_LEVEL_SHARE;
    const weights = backlogged.map((_, rank) => (rank === 0 ? 1 - lower * (backlogged.length - 1) : lower));
    let best = 0;
    backlogged.forEach((index, rank) => {
      this.scores[index] = (this.scores[index] ?? 0) + (weights[rank] as number);
      if ((this.scores[index] as number) > (this.scores[backlogged[best] as number] as number)) best = rank;
    });
    const picked = backlogged[best] as number;
    this.scores[picked] = (this.scores[picked] as number) - 1;
    return picked;
  }

  private async poll(index: number, max: number, reserved: number, kind: PollKind): Promise<void> {
    let messages: ReceivedMessage[] = [];
    let grant: Grant | undefined;
    try {
      let asking = max;
      if (this.limiter) {
        grant = await this.limiter.take(max);
        asking = grant.granted;
        // The second's budget is spent: this poll ends after waiting for the next one, and the credits are polled for again.
        if (asking === 0) await this.pause(grant.waitMs);
      }
      if (asking > 0) {
        messages = await this.queue.receive(index + 1, asking, this.waitSeconds(kind), this.polling.signal);
        // With messages, the outage is over only once their tasks can be leased (dispatch).
        if (messages.length === 0) this.failures = 0;
        this.backlogged[index] = messages.length === asking;
      }
    } catch (error) {
      this.backOffAfter(error, this.limiter && !grant ? "taking the channel's rate budget failed" : "SQS receive failed");
    } finally {
      this.requested -= reserved;
      this.polls -= 1;
      if (kind !== "watch") this.backlogPolls -= 1;
      this.levelPolls[index] = (this.levelPolls[index] ?? 1) - 1;
    }
    if (grant) this.giveBack(grant.granted - messages.length);
    for (const message of messages) {
      const consumer = this.stopped ? undefined : this.takeCredit();
      this.track(consumer ? this.dispatch(message, consumer, grant) : this.release(message, grant));
    }
    this.pump();
    this.checkSettled();
  }

  /** Waits `ms`, or less if the poller stops. */
  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const signal = this.polling.signal;
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Permits not used (fewer messages than asked for, a message that was no delivery) go back to the channel's bucket. */
  private giveBack(unused: number): void {
    if (!this.limiter || unused <= 0) return;
    this.limiter.giveBack(unused).catch((error: unknown) => {
      this.log.debug({ err: error, channel: this.queue.name }, "could not give back unused rate permits (the bucket refills at its rate anyway)");
    });
  }

  /**
   * A failed receive, or a message whose task could not be leased (DynamoDB down): the
   * next poll waits, exponentially longer, so an outage is not a hot loop that also
   * burns the messages' receive counts.
   */
  private backOffAfter(error: unknown, what: string): void {
    if (this.stopped) return;
    this.failures += 1;
    this.backlogged.fill(false);
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

  private async dispatch(message: ReceivedMessage, consumer: Consumer, grant?: Grant): Promise<void> {
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
        if (grant) this.giveBack(1);
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
  private async release(message: ReceivedMessage, grant?: Grant): Promise<void> {
    if (grant) this.giveBack(1);
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
