// The checks the option compilers (compileConnectionOptions, compileBackoffOptions,
// compileWorkerOptions) share: a missing option takes its default, a bad one is a
// RangeError that names the option, the rule and the value, thrown at construction.

/** The longest delay a Node timer takes (about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `value`, or `fallback` when it is left out (undefined or null); throws when it is not a finite number that `valid` accepts. */
export function numberOption(name: string, value: number | null | undefined, fallback: number, rule: string, valid: (value: number) => boolean): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || !valid(value)) throw optionError(name, rule, value);
  return value;
}

/** A duration in ms from `min` to MAX_TIMER_MS (`fallback` when left out). */
export function durationOption(name: string, value: number | null | undefined, fallback: number, min: number): number {
  return numberOption(name, value, fallback, `a number of ms from ${min} to ${MAX_TIMER_MS}`, (ms) => ms >= min && ms <= MAX_TIMER_MS);
}

export function optionError(name: string, rule: string, value: unknown): RangeError {
  return new RangeError(`${name} must be ${rule}, got ${typeof value === "string" ? JSON.stringify(value) : String(value)}`);
}
