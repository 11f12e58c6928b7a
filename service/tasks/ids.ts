// Task IDs and generated hash codes.
import { randomBytes, randomInt } from "node:crypto";

/**
 * IDs are Snowflake-style: milliseconds since 2024-01-01 in the high bits, then 10
 * bits chosen at random per process, then a 12-bit per-millisecond sequence. They
 * are > 0, increase with creation time (so "newest first" is "ID descending") and
 * need no central counter. Two replicas that drew the same 10 bits could collide in
 * the same millisecond; the create transaction puts the task item only if its key
 * is new, and a collision is retried with a fresh ID. Present-day IDs are above
 * 2^58, so every ID exercises the no-JS-number path.
 */
const EPOCH_MS = 1_704_067_200_000n;
const NODE_BITS = 10n;
const SEQUENCE_BITS = 12n;
const MAX_SEQUENCE = (1n << SEQUENCE_BITS) - 1n;

export class IdGenerator {
  private readonly node: bigint;
  private lastMs = 0n;
  private sequence = 0n;

  constructor(node = BigInt(randomInt(1 << Number(NODE_BITS))), private readonly now = () => Date.now()) {
    this.node = node;
  }

  next(): bigint {
    // Never go backwards, even when the wall clock does.
    let ms = BigInt(this.now());
    if (ms < this.lastMs) ms = this.lastMs;
    if (ms === this.lastMs) {
      if (this.sequence === MAX_SEQUENCE) {
        ms += 1n; // borrow the next millisecond rather than spin
        this.sequence = 0n;
      } else {
        this.sequence += 1n;
      }
    } else {
      this.sequence = 0n;
    }
    this.lastMs = ms;
    return ((ms - EPOCH_MS) << (NODE_BITS + SEQUENCE_BITS)) | (this.node << SEQUENCE_BITS) | this.sequence;
  }
}

/** 20 URL-safe characters from 15 crypto-random bytes (120 bits). */
export function generateHashCode(): string {
  return randomBytes(15).toString("base64url");
}
