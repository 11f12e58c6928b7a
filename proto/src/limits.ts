// Limits both sides of the wire know (SPEC §3).

/** The largest Input or Output: 256 KiB of UTF-8. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** The UTF-8 size of a payload, or 0 when it is certainly under the limit (cheap: a UTF-16 unit is at most 3 bytes). */
export function payloadBytes(value: string): number {
  return value.length * 3 <= MAX_PAYLOAD_BYTES ? 0 : Buffer.byteLength(value, "utf8");
}

/** Whether a payload is over MAX_PAYLOAD_BYTES. */
export function payloadTooLarge(value: string): boolean {
  return payloadBytes(value) > MAX_PAYLOAD_BYTES;
}
