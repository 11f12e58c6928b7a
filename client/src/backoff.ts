// Reconnect delays: exponential, capped, with jitter so that many workers that lost
// the same server do not all come back in the same millisecond.
export interface BackoffOptions {
  /** The first delay, ms (default 200). */
  initialMs?: number;
  /** The cap, ms (default 10 000). */
  maxMs?: number;
}

export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = options.initialMs ?? 200;
    this.maxMs = options.maxMs ?? 10_000;
  }

  /** The next delay: a random point in the upper half of initial · 2^attempt, capped. */
  next(): number {
    const step = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(step / 2 + this.random() * (step / 2));
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
