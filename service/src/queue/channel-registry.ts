// The configured channels of this replica: each one's queue and, once a worker asks
// for its tasks, its shared poller, which hands the messages it receives to the
// delivery handler (core/delivery.ts).
import type { Logger } from "pino";
import type { DeliveryHandler } from "../core/task-queues.js";
import type { ChannelQueue } from "./channel-queue.js";
import type { ChannelQueues } from "./channel-queues.js";
import { ChannelPoller } from "./channel-poller.js";
import type { ChannelCatalog } from "../tasks/rules.js";
import { RateLimiter, type RateBudgets } from "../core/rate-limiter.js";

export class ChannelRegistry implements ChannelCatalog {
  private readonly pollers = new Map<string, ChannelPoller>();
  readonly names: ReadonlySet<string>;

  constructor(
    private readonly queues: ChannelQueues,
    private readonly handler: DeliveryHandler,
    private readonly log: Logger,
    /** The budgets of rate-limited channels (rateLimitPerSecond), and the clock their seconds are read from. */
    private readonly rates?: { budgets: RateBudgets; now: () => number },
  ) {
    this.names = queues.names;
  }

  /** The channel's queue; 400 for a channel that is not configured. */
  get(name: string): ChannelQueue {
    return this.queues.get(name);
  }

  /** The channel's priority levels (1: none); 400 for a channel that is not configured. */
  levelsOf(name: string): number {
    return this.get(name).config.priorities;
  }

  poller(name: string): ChannelPoller {
    const queue = this.get(name);
    let poller = this.pollers.get(name);
    if (!poller) {
      const rate = queue.config.rateLimitPerSecond;
      const limiter = rate !== undefined && this.rates ? new RateLimiter(this.rates.budgets, name, rate, this.rates.now) : undefined;
      poller = new ChannelPoller(queue, this.handler, this.log, limiter);
      this.pollers.set(name, poller);
    }
    return poller;
  }

  /** Credits waiting for a task of the channel on this replica. */
  creditsWaiting(name: string): number {
    return this.pollers.get(name)?.outstandingCredits ?? 0;
  }

  activePollers(): ChannelPoller[] {
    return [...this.pollers.values()];
  }
}
