// The values the fuzzer feeds into fields: the edges of every type (0, 1, 2^53+1,
// 2^64-1; empty, huge, unicode, control characters; Input sizes around the 256 KiB
// limit), the channel and HashCode rules' edges, bytes that are not UTF-8, and what
// earlier answers taught (real IDs, HashCodes and leases, so 200/404/409 paths run).
// Also the channels the fuzzed server serves, and Task.Priority / Task.ConcurrencyKey
// values around the flow-control rules (SPEC §7.2).
import type { ChannelEntry } from "../../service/src/config/channels.js";
import type { Random } from "./fuzz-random.js";
import { MAX_UINT64 } from "./fuzz-wire.js";

const KiB = 1024;
const PAYLOAD_LIMIT = 256 * KiB;

/** A bounded pool of things earlier answers returned; newest replace oldest. */
export class Ring<T> {
  private readonly items: T[] = [];
  private next = 0;

  constructor(private readonly capacity = 256) {}

  add(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else this.items[this.next++ % this.capacity] = item;
  }

  get size(): number {
    return this.items.length;
  }

  pick(rng: Random): T | undefined {
    return this.items.length === 0 ? undefined : rng.pick(this.items);
  }
}

/** What the server told us so far (real task IDs, HashCodes, delivered leases). */
export class Known {
  readonly ids = new Ring<string>();
  readonly hashCodes = new Ring<string>();
  readonly leases = new Ring<{ id: string; token: string }>();
}

/** Built once: a long string is expensive to make 100,000 times. */
const BIG_STRINGS = (() => {
  const ascii = (bytes: number) => "x".repeat(bytes);
  return [
    ascii(PAYLOAD_LIMIT - 1),
    ascii(PAYLOAD_LIMIT),
    ascii(PAYLOAD_LIMIT + 1),
    ascii(300 * KiB),
    // 2-byte characters: 131,073 of them are 262,146 bytes (over the limit) but fewer UTF-16 units.
    "é".repeat(PAYLOAD_LIMIT / 2 + 1),
    // 4-byte characters exactly at the limit.
    "😀".repeat(PAYLOAD_LIMIT / 4),
  ];
})();

const MEDIUM_STRINGS = ["y".repeat(4 * KiB), "z".repeat(64 * KiB), "ü".repeat(20_000)];

const ODD_STRINGS = [
  "ünïcødé ✓",
  "🎉🎉🎉",
  "\u0000",
  "a\u0000b",
  "\u0001\u0002\u007f",
  "\u202etxt.exe",
  "\uFEFF",
  "\uFFFD",
  " ",
  "\n\r\t",
  '{"$ne": null}',
  "'; DROP TABLE tasks; --",
  "${jndi:ldap://x}",
  "%s%n%x",
  "../../../../etc/passwd",
  "null",
  "undefined",
  "__proto__",
  "constructor",
  "0",
  "-1",
  "18446744073709551616",
];

const ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const HASH_CODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";

export function randomText(rng: Random, length: number, alphabet = ASCII): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[rng.int(0, alphabet.length - 1)];
  return out;
}

/** Any string field. `big` raises the odds of payload-sized strings (Input, Output). */
export function pickString(rng: Random, big = false): string {
  return rng.weighted<() => string>([
    [30, () => ""],
    [22, () => randomText(rng, rng.int(1, 24))],
    [18, () => rng.pick(ODD_STRINGS)],
    [big ? 6 : 2, () => rng.pick(MEDIUM_STRINGS)],
    [big ? 3 : 0.5, () => rng.pick(BIG_STRINGS)],
  ])();
}

/** uint64 fields as decimal strings (how proto-loader with longs: String carries them). */
export function pickUint64(rng: Random, known?: Known): string {
  const real = known?.ids.pick(rng);
  return rng.weighted<() => string>([
    [18, () => "0"],
    [10, () => "1"],
    [8, () => String(rng.int(2, 1000))],
    [8, () => String(2n ** 53n + 1n)],
    [4, () => String(2n ** 63n - 1n)],
    [4, () => String(2n ** 63n)],
    [14, () => String(MAX_UINT64)],
    [3, () => String(MAX_UINT64 - 1n)],
    [10, () => String(rng.uint64())],
    [real ? 21 : 0, () => real ?? "0"],
  ])();
}

/**
 * The fuzzed server's channels (fuzz-server.ts provisions them): two plain ones, and
 * "ranked" with every flow-control option, so creates meet the Priority (levels 1-3,
 * 0 the middle one) and ConcurrencyKey rules and deliveries go through the limits.
 * Limits high enough that receive streams still get tasks.
 */
export const FUZZ_CHANNELS: readonly ChannelEntry[] = [
  "default",
  "other",
  { name: "ranked", priorities: 3, concurrencyPerKey: 2, maxInFlight: 20, rateLimitPerSecond: 50 },
];

export const CONFIGURED_CHANNELS: readonly string[] = FUZZ_CHANNELS.map((entry) => (typeof entry === "string" ? entry : entry.name));

/** A configured channel's priority levels (1: no priorities); undefined for a channel the server does not serve. */
export function priorityLevels(channel: string): number | undefined {
  const entry = FUZZ_CHANNELS.find((candidate) => (typeof candidate === "string" ? candidate : candidate.name) === channel);
  if (entry === undefined) return undefined;
  return typeof entry === "string" ? 1 : (entry.priorities ?? 1);
}

/** Task.ConcurrencyKey's rule (SPEC §7.2): empty (no key) or 1-128 of [A-Za-z0-9._:-]. */
export const CONCURRENCY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Task.Priority as the request object carries it (a decimal string): the levels and
 * their edges, then values no channel has: 2^32, 2^53+1, 2^63, 2^64-1, and strings the
 * encoder wraps into a uint64 (negative: 2^64-n; 2^64 and above: modulo 2^64). The
 * judge goes by what the server decodes (fuzz-judge.ts).
 */
export function pickPriority(rng: Random): string {
  return rng.weighted<() => string>([
    [12, () => "0"],
    [10, () => "1"],
    [8, () => "2"],
    [8, () => "3"],
    [6, () => "4"],
    [3, () => "5"],
    [2, () => "6"],
    [2, () => String(rng.int(7, 1000))],
    [2, () => String(2n ** 32n)],
    [2, () => String(2n ** 32n + 1n)],
    [2, () => String(2n ** 53n + 1n)],
    [2, () => String(2n ** 63n)],
    [4, () => String(MAX_UINT64)],
    [2, () => String(rng.uint64())],
    [3, () => rng.pick(["-1", "-2", "-3", "-18446744073709551615"])],
    [3, () => rng.pick(["18446744073709551616", "18446744073709551617", "18446744073709551619", "99999999999999999999999"])],
  ])();
}

/** A few keys reused often, so a channel's concurrencyPerKey is actually reached. */
const POOLED_KEYS = ["tenant-1", "tenant-2", "user:42", "a", "x.y_z-9"];

/** Task.ConcurrencyKey: valid keys (pooled, random, exactly 128), then 129 and more, bad characters, unicode, control characters. */
export function pickConcurrencyKey(rng: Random): string {
  return rng.weighted<() => string>([
    [20, () => ""],
    [16, () => rng.pick(POOLED_KEYS)],
    [10, () => randomText(rng, rng.int(1, 40), HASH_CODE_CHARS)],
    [4, () => randomText(rng, 128, HASH_CODE_CHARS)],
    [4, () => randomText(rng, 129, HASH_CODE_CHARS)],
    [2, () => randomText(rng, rng.int(130, 1000), HASH_CODE_CHARS)],
    [10, () => rng.pick(["has space", "slash/es", "semi;colon", "tab\t", "new\nline", "*", "%", "a\u0000", "tenant 1", "a,b", "quote\"", "back\\slash", "+", "=", "@home"])],
    [8, () => rng.pick(["ümlaut", "emoji🎉", "键", "ключ", "é".repeat(64), "😀".repeat(32), "\u202ertl", "\uFEFFbom", "tenant-1\u200b"])],
    [4, () => rng.pick(ODD_STRINGS)],
    [0.5, () => rng.pick(BIG_STRINGS)],
  ])();
}

export function pickChannel(rng: Random): string {
  return rng.weighted<() => string>([
    [40, () => "default"],
    [15, () => "other"],
    [12, () => "ranked"],
    // The queue names of ranked's lower levels: queues, not channels.
    [2, () => rng.pick(["ranked-p2", "ranked-p3", "ranked-p1"])],
    [10, () => ""],
    [8, () => "nope"],
    [4, () => rng.pick(["Default", "DEFAULT", " default", "default ", "default\u0000", "defaułt"])],
    [3, () => "a".repeat(65)],
    [3, () => "c".repeat(64)],
    [6, () => rng.pick(ODD_STRINGS)],
    [0.5, () => rng.pick(BIG_STRINGS)],
    [5, () => randomText(rng, rng.int(1, 10))],
  ])();
}

export function pickHashCode(rng: Random, known: Known): string {
  const real = known.hashCodes.pick(rng);
  return rng.weighted<() => string>([
    [28, () => ""],
    [22, () => randomText(rng, rng.int(1, 40), HASH_CODE_CHARS)],
    [real ? 20 : 0, () => real ?? ""],
    [3, () => randomText(rng, 128, HASH_CODE_CHARS)],
    [4, () => randomText(rng, 129, HASH_CODE_CHARS)],
    [10, () => rng.pick(["has space", "slash/es", "ümlaut", "emoji🎉", "semi;colon", "tab\t", "*", "%", "a\u0000"])],
    [5, () => rng.pick(ODD_STRINGS)],
    [0.5, () => rng.pick(BIG_STRINGS)],
  ])();
}

/** Byte sequences that are not UTF-8: stray continuation bytes, overlongs, surrogates, > U+10FFFF, cut sequences. */
const INVALID_UTF8: readonly number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0x80],
  [0xc0, 0xaf],
  [0xc3, 0x28],
  [0xe2, 0x28, 0xa1],
  [0xe2, 0x82],
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xf0, 0x28, 0x8c, 0xbc],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];

/** A string field's bytes that are (usually) not valid UTF-8, around a plausible value. */
export function invalidUtf8Around(rng: Random, plausible: string): Buffer {
  const bad = Buffer.from(rng.pick(INVALID_UTF8));
  const text = Buffer.from(plausible, "utf8");
  const at = rng.int(0, text.length);
  return rng.weighted<() => Buffer>([
    [4, () => Buffer.concat([text.subarray(0, at), bad, text.subarray(at)])],
    [2, () => bad],
    [1, () => Buffer.concat(Array.from({ length: rng.int(2, 200) }, () => Buffer.from(rng.pick(INVALID_UTF8))))],
  ])();
}

/** A printable x-request-id (header) that is sometimes outside the server's accepted pattern. */
export function pickRequestId(rng: Random): string {
  return rng.weighted<() => string>([
    [3, () => randomText(rng, rng.int(1, 64), HASH_CODE_CHARS)],
    [1, () => randomText(rng, rng.int(65, 200), HASH_CODE_CHARS)],
    [1, () => randomText(rng, rng.int(1, 40)).trim() || "x"],
  ])();
}
