// The budget of a rate-limited channel (SPEC §7.2 rateLimitPerSecond), as pure
// arithmetic: the generic cell rate algorithm (GCRA), a token bucket kept as one
// number. Permits come every `intervalUs` (10^6 / rate, rounded up); the bucket
// holds at most `capacity` of them, one second's worth (ceil(rate), at least 1). The
// state is the theoretical arrival time `tat`: the instant at which the bucket would
// be full again. Taking k permits at `now` moves it to max(tat, now) + k·interval
// and is allowed while that stays within capacity·interval of now.
//
// So any span of L seconds starts at most capacity + rate·L deliveries (a burst is
// never more than one second's worth), and permits not taken when they came are not
// lost: they wait in the bucket, up to one second's worth. A poll that runs late (a
// slow backend, a busy replica) takes them when it comes, so every 10 s keep
// rate × 10 deliveries as long as workers wait.
//
// Times are integer microseconds since the epoch (the table keeps integers exact).

export interface RateAllowance {
  readonly intervalUs: number;
  readonly capacity: number;
  /** capacity · interval: how far ahead of now `tat` may be after a take. */
  readonly toleranceUs: number;
}

/** A `tat` further ahead than this was written by a clock far ahead of ours: it is not trusted. */
export const SKEWED_TAT_US = 10_000_000;

export function rateAllowance(ratePerSecond: number): RateAllowance {
  const intervalUs = Math.ceil(1_000_000 / ratePerSecond);
  const capacity = Math.max(1, Math.ceil(ratePerSecond));
  return { intervalUs, capacity, toleranceUs: capacity * intervalUs };
}

/** Where the next take starts from: `tat`, unless the bucket is full (tat passed or unknown) or tat is not to be trusted. */
export function takeStart(tat: number | undefined, now: number): number {
  return tat === undefined || tat < now || tat > now + SKEWED_TAT_US ? now : tat;
}

/** How many permits are free at `now` given `tat` (undefined: none taken yet, the bucket is full). */
export function permitsFree(allowance: RateAllowance, tat: number | undefined, now: number): number {
  return Math.max(0, Math.floor((now + allowance.toleranceUs - takeStart(tat, now)) / allowance.intervalUs));
}

/** Microseconds from `now` until `count` permits are free (0: they are). */
export function usUntilFree(allowance: RateAllowance, tat: number | undefined, now: number, count: number): number {
  return Math.max(0, takeStart(tat, now) + count * allowance.intervalUs - allowance.toleranceUs - now);
}
