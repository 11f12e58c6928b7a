// Limits both sides of the wire know (SPEC §3).

/** The largest Input or Output (also a heartbeat's progress): 256 KiB of UTF-8. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** The UTF-8 size of a payload, in bytes. */
export function payloadBytes(value: string): number {
  return Buffer.byteLength(value, "utf8");
}

/**
 * The UTF-8 size of a payload that is over MAX_PAYLOAD_BYTES, or undefined when it fits.
 * Cheap for most payloads: a UTF-16 unit is at most 3 bytes of UTF-8, so a short string is
 * not measured at all.
 */
export function payloadOverLimit(value: string): number | undefined {
  if (value.length * 3 <= MAX_PAYLOAD_BYTES) return undefined;
  const bytes = payloadBytes(value);
  return bytes > MAX_PAYLOAD_BYTES ? bytes : undefined;
}

/** Whether a payload is over MAX_PAYLOAD_BYTES. */
export function payloadTooLarge(value: string): boolean {
  return payloadOverLimit(value) !== undefined;
}
