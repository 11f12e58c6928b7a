// rateLimitPerSecond (SPEC §7.2): the deliveries of a channel share one budget
// across every replica, a token bucket kept in the table (tasks/rate-allowance.ts
// for the arithmetic; core's RateBudgets, store/rate-budget-store.ts for the item).
// A poller takes permits with one conditional write before it receives messages,
// and gives back the ones it did not use (fewer messages came, or a message was a
// duplicate). With no permit free it waits until one is: a waiting credit is
// answered as soon as the budget allows. Replicas share the budget whatever their
// number, since the bucket is in the table, not in memory.
//
// Within a replica the takes of a channel's polls go one at a time and skip the
// write when the bucket, as last seen, has no permit free: a replica writes about
// once per permit batch, not once per poll. (That is only about cost: what is
// allowed is decided by the conditional write.)
import { randomUUID } from "node:crypto";
import { permitsFree, rateAllowance, usUntilFree, type RateAllowance } from "../tasks/rate-allowance.js";

/** The table's side: the channel's bucket. Times are microseconds since the epoch. */
export interface RateBudgets {
  /**
   * Takes up to `wanted` permits at `now` if the bucket allows; `known` is the bucket's
   * state (`tat`) as last seen, a hint. Returns how many it took (0: none free) and the
   * state after the take, or as found.
   */
  take(channel: string, allowance: RateAllowance, wanted: number, now: number, known: number | undefined): Promise<{ granted: number; tat: number | undefined }>;
  /** Returns `us` worth of unused permits to the bucket; `id` makes a repeat of the same give-back a no-op. */
  giveBack(channel: string, us: number, id: string): Promise<void>;
}

/** Permits granted for now, or (granted 0) how long to wait until one is free. */
export interface Grant {
  granted: number;
  waitMs: number;
}

/** Replicas waiting for the same permit do not all write in the same millisecond. */
const WAIT_SPREAD_MS = 10;

export class RateLimiter {
  private readonly allowance: RateAllowance;
  /** Permits a take waits for: a tenth of a second's worth (at least 1), so a fast channel writes once per batch, not per permit. */
  private readonly batch: number;
  /** The bucket's state as last seen by this replica. */
  private known: number | undefined;
  /** The takes of this replica, one at a time. */
  private takes: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly budgets: RateBudgets,
    private readonly channel: string,
    ratePerSecond: number,
    /** Milliseconds since the epoch. */
    private readonly now: () => number,
  ) {
    this.allowance = rateAllowance(ratePerSecond);
    this.batch = Math.max(1, Math.ceil(this.allowance.capacity / 10));
  }

  take(wanted: number): Promise<Grant> {
    const grant = this.takes.then(() => this.takeNow(wanted));
    this.takes = grant.catch(() => undefined);
    return grant;
  }

  /** Permits taken and not used go back to the bucket. */
  async giveBack(unused: number): Promise<void> {
    if (unused <= 0) return;
    const us = unused * this.allowance.intervalUs;
    if (this.known !== undefined) this.known -= us;
    await this.budgets.giveBack(this.channel, us, randomUUID());
  }

  private async takeNow(wanted: number): Promise<Grant> {
    const now = this.now() * 1000;
    const least = Math.min(wanted, this.batch);
    if (permitsFree(this.allowance, this.known, now) < least) return { granted: 0, waitMs: this.waitMs(now, least) };
    const { granted, tat } = await this.budgets.take(this.channel, this.allowance, wanted, now, this.known);
    this.known = tat;
    return { granted, waitMs: granted > 0 ? 0 : this.waitMs(now, least) };
  }

  private waitMs(now: number, count: number): number {
    return Math.ceil(usUntilFree(this.allowance, this.known, now, count) / 1000) + 1 + Math.floor(Math.random() * WAIT_SPREAD_MS);
  }
}
