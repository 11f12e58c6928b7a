// The budget of a rate-limited channel (SPEC §7.2 rateLimitPerSecond), as pure
// arithmetic: time is cut into one-second windows, and window w may start
// floor(rate * (w + 1)) - floor(rate * w) deliveries. Over any n whole seconds that
// is rate * n within 1, a burst never exceeds one second's worth (ceil(rate)), and a
// rate below 1 gives a delivery every 1 / rate seconds (0.5: every other window).

/** The window of an instant: its epoch second. */
export function rateWindowOf(nowMs: number): number {
  return Math.floor(nowMs / 1000);
}

/** Deliveries window `window` may start at `rate` a second. */
export function windowBudget(rate: number, window: number): number {
  return Math.floor(rate * (window + 1)) - Math.floor(rate * window);
}

/** Milliseconds from `nowMs` until the next window starts. */
export function msToNextWindow(nowMs: number): number {
  return 1000 - (nowMs % 1000);
}
