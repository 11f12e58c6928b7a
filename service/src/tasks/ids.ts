// Task IDs and generated hash codes.
import { randomBytes, randomInt } from "node:crypto";

/**
 * IDs are Snowflake-style: milliseconds since 2024-01-01 in the high bits, then 10
 * bits chosen at random per process, then a 12-bit per-millisecond sequence. They
 * are > 0, increase with creation time (so "newest first" is "ID descending") and
 * need no central counter. Two replicas that drew the same 10 bits could collide in
 * the same millisecond; the create puts the task item only if its key is new, and
 * a collision is retried with a fresh ID. Present-day IDs are above
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

const GENERATED_HASH_CODE = /^([A-Za-z0-9_-]{11})~[A-Za-z0-9_-]{8}$/;

/**
 * A generated HashCode: 20 URL-safe characters, the task's ID (11 characters of
 * base64url), "~", then 48 crypto-random bits (8 characters). "~" never appears in a
 * caller's HashCode ([A-Za-z0-9._:-]), so a generated code can never collide with a
 * caller's key, and it is unique because its task ID is. So it needs no uniqueness
 * guard item (the create stays a single PutItem of the task), and a lookup reads
 * the task it names directly.
 */
export function generateHashCode(taskId: bigint): string {
  const id = Buffer.alloc(8);
  id.writeBigUInt64BE(taskId);
  return `${id.toString("base64url")}~${randomBytes(6).toString("base64url")}`;
}

/** The task ID a generated HashCode names; undefined for a caller's key (or anything else). */
export function taskIdOfGeneratedHashCode(hashCode: string): bigint | undefined {
  const encoded = GENERATED_HASH_CODE.exec(hashCode)?.[1];
  if (encoded === undefined) return undefined;
  const id = Buffer.from(encoded, "base64url");
  // 11 characters carry 66 bits: only the canonical spelling of 8 bytes counts.
  if (id.length !== 8 || id.toString("base64url") !== encoded) return undefined;
  return id.readBigUInt64BE();
}

/** The largest lease token: tokens are 63-bit, so they fit a signed 64-bit integer in any client language. */
export const MAX_LEASE_TOKEN = (1n << 63n) - 1n;

/**
 * A fresh lease token for a delivery: 63 crypto-random bits, never 0 (0 on a report
 * means "no token") and never `previous` (the token of the lease it replaces), so a
 * report carrying an older delivery's token is always told apart. Unguessable: a
 * worker token scoped to channels must send it with every report, so only the worker
 * the task was delivered to can report on it.
 */
export function newLeaseToken(previous?: bigint): bigint {
  for (;;) {
    const token = randomBytes(8).readBigUInt64BE() & MAX_LEASE_TOKEN;
    if (token !== 0n && token !== previous) return token;
  }
}
