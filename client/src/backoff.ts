// Reconnect delays: exponential, capped, with jitter so that many workers that lost
// the same server do not all come back in the same millisecond.
import { durationOption } from "./option-rules.js";

export interface BackoffOptions {
  /**
   * The first delay, in ms: a number from 1 to 2^31-1, at most `maxMs`.
   * @default 200 (or `maxMs` when that is smaller)
   */
  initialMs?: number;
  /**
   * The cap of every delay, in ms: a number from 1 to 2^31-1.
   * @default 10_000
   */
  maxMs?: number;
}

/** BackoffOptions with their defaults filled in and checked (compileBackoffOptions). */
export interface CompiledBackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF_INITIAL_MS = 200;
export const DEFAULT_BACKOFF_MAX_MS = 10_000;

/** Fills in the defaults of `options` and checks them; `name` is the option's name in an error ("reconnect"). */
export function compileBackoffOptions(options: BackoffOptions | undefined, name = "reconnect"): CompiledBackoffOptions {
  const maxMs = durationOption(`${name}.maxMs`, options?.maxMs, DEFAULT_BACKOFF_MAX_MS, 1);
  const initialMs = durationOption(`${name}.initialMs`, options?.initialMs, Math.min(DEFAULT_BACKOFF_INITIAL_MS, maxMs), 1);
  if (initialMs > maxMs) throw new RangeError(`${name}.initialMs (${initialMs}) must not be above ${name}.maxMs (${maxMs})`);
  return { initialMs, maxMs };
}

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: CompiledBackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay: a random point in the upper half of initial · 2^attempt, capped. */
  next(): number {
    const step = Math.min(this.options.maxMs, this.options.initialMs * 2 ** Math.min(this.attempt, 30));
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
