// What a delivery's LeaseToken must be: 63 crypto-random bits, never 0 (0 on a report
// means "no token"), new with every delivery (service/src/tasks/ids.ts newLeaseToken).
import { expect } from "vitest";

export const LEASE_TOKEN_LIMIT = 2n ** 63n;

/** Checks a LeaseToken (a wire decimal string or a bigint) is one: a nonzero decimal below 2^63. Returns it as a bigint. */
export function expectLeaseToken(token: string | bigint | undefined): bigint {
  const text = String(token);
  expect(text, "a LeaseToken is a decimal without leading zeros").toMatch(/^[1-9]\d{0,18}$/);
  const value = BigInt(text);
  expect(value > 0n && value < LEASE_TOKEN_LIMIT, `LeaseToken ${text} is in 1..2^63-1`).toBe(true);
  return value;
}

/** Checks every token is a LeaseToken and no two are the same (each delivery draws a new one). */
export function expectDistinctLeaseTokens(...tokens: (string | bigint | undefined)[]): void {
  const values = tokens.map(expectLeaseToken);
  expect(new Set(values).size, `LeaseTokens ${values.join(", ")} differ`).toBe(values.length);
}
