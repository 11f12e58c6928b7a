// rateLimitPerSecond (SPEC §7.2): the deliveries of a channel share one budget per
// second across every replica. The budget of each one-second window lives in the
// table (core's RateBudgets; store/rate-budget-store.ts): a poller takes permits
// from the current window with one conditional write before it receives messages,
// and gives back the ones it did not use (fewer messages came, or a message was a
// duplicate) while the window lasts. With the window spent it waits for the next
// one: a waiting credit is answered as soon as the budget allows. Replicas share the
// budget whatever their number, since the count is in the table, not in memory.
import { randomUUID } from "node:crypto";
import { msToNextWindow, rateWindowOf, windowBudget } from "../tasks/rate-windows.js";

/** Too late in a second to take its permits: the poll waits for the next second. */
const LATE_IN_WINDOW_MS = 250;

/** The table's side: the permits taken in one window of one channel. */
export interface RateBudgets {
  /** Takes up to `wanted` permits of the window if `budget` allows; returns how many it took (0: the window is spent). */
  take(channel: string, window: number, budget: number, wanted: number): Promise<number>;
  /** Returns unused permits to the window (a no-op once the window is over); `id` makes a repeat of the same give-back a no-op. */
  giveBack(channel: string, window: number, count: number, id: string): Promise<void>;
}

/** Permits granted for now, or (granted 0) how long to wait for the next window. */
export interface Grant {
  granted: number;
  window: number;
  waitMs: number;
}

export class RateLimiter {
  constructor(
    private readonly budgets: RateBudgets,
    private readonly channel: string,
    private readonly ratePerSecond: number,
    private readonly now: () => number,
  ) {}

  async take(wanted: number): Promise<Grant> {
    const now = this.now();
    // Permits are for this second only: taken in its last moments, a poll would spend
    // them in the next one, where they can no longer be given back (and are lost).
    if (msToNextWindow(now) < LATE_IN_WINDOW_MS) return { granted: 0, window: rateWindowOf(now), waitMs: msToNextWindow(now) + Math.floor(Math.random() * 20) };
    const window = rateWindowOf(now);
    const budget = windowBudget(this.ratePerSecond, window);
    const granted = budget === 0 ? 0 : await this.budgets.take(this.channel, window, budget, wanted);
    // A little spread, so replicas waiting for the next window do not all write at its first millisecond.
    return { granted, window, waitMs: granted > 0 ? 0 : msToNextWindow(now) + Math.floor(Math.random() * 20) };
  }

  /** Permits of `grant` that were not used; given back only while their window lasts. */
  async giveBack(grant: Grant, unused: number): Promise<void> {
    if (unused <= 0 || rateWindowOf(this.now()) !== grant.window) return;
    await this.budgets.giveBack(this.channel, grant.window, unused, randomUUID());
  }
}
