// uint64 values (IDs, Owner, counts) travel as decimal strings (proto-loader's
// `longs: String`) and are bigint inside the server: never a JS number (SPEC §2).

export const MAX_UINT64 = (1n << 64n) - 1n;

/** A uint64 from its decimal string (at most 20 digits, at most 2^64-1); undefined when it is not one. */
export function parseUint64(value: string): bigint | undefined {
  if (!/^\d{1,20}$/.test(value)) return undefined;
  const parsed = BigInt(value);
  return parsed > MAX_UINT64 ? undefined : parsed;
}

/** Whether a bigint fits a uint64. */
export function isUint64(value: bigint): boolean {
  return value >= 0n && value <= MAX_UINT64;
}
