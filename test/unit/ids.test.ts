// Task IDs and generated HashCodes (service/tasks/ids.ts): IDs are > 0, strictly
// increasing (even within one millisecond or when the clock steps back), beyond
// 2^53 and inside the signed 63-bit range; HashCodes are 20 URL-safe characters.
import { describe, expect, it } from "vitest";
import { generateHashCode, IdGenerator, newLeaseToken, taskIdOfGeneratedHashCode } from "../../service/src/tasks/ids.js";
import { HASH_CODE_PATTERN } from "../../service/src/tasks/rules.js";

const TWO_POW_53 = 2n ** 53n;
const TWO_POW_63 = 2n ** 63n;

function expectStrictlyIncreasing(ids: bigint[]): void {
  for (let i = 1; i < ids.length; i++) {
    if (!((ids[i] as bigint) > (ids[i - 1] as bigint))) {
      throw new Error(`ID ${i} (${ids[i]}) is not greater than ID ${i - 1} (${ids[i - 1]})`);
    }
  }
}

function expectInRange(ids: bigint[]): void {
  for (const id of ids) {
    expect(id > TWO_POW_53).toBe(true);
    expect(id < TWO_POW_63).toBe(true);
  }
}

describe("IdGenerator", () => {
  it("is strictly increasing over many calls on the real clock", () => {
    const generator = new IdGenerator();
    const ids = Array.from({ length: 50_000 }, () => generator.next());
    expectStrictlyIncreasing(ids);
    expectInRange(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("is strictly increasing within one millisecond, past the per-millisecond sequence", () => {
    const generator = new IdGenerator(5n, () => 1_800_000_000_000);
    const ids = Array.from({ length: 10_000 }, () => generator.next());
    expectStrictlyIncreasing(ids);
    expectInRange(ids);
  });

  it("is strictly increasing when the clock goes backwards", () => {
    const times = [1_800_000_000_000, 1_800_000_000_500, 1_800_000_000_100, 1_799_999_000_000, 1_800_000_000_500, 1_800_000_000_501];
    let index = 0;
    const generator = new IdGenerator(1023n, () => times[Math.min(index++, times.length - 1)] as number);
    const ids = Array.from({ length: 200 }, () => generator.next());
    expectStrictlyIncreasing(ids);
    expectInRange(ids);
  });

  it("later creation time means a larger ID across generators (newest first = ID descending)", () => {
    const early = new IdGenerator(1023n, () => 1_800_000_000_000).next();
    const late = new IdGenerator(0n, () => 1_800_000_000_001).next();
    expect(late > early).toBe(true);
  });

  it("two generators with different node bits never collide in the same millisecond", () => {
    const a = new IdGenerator(1n, () => 1_800_000_000_000);
    const b = new IdGenerator(2n, () => 1_800_000_000_000);
    const ids = [...Array.from({ length: 1000 }, () => a.next()), ...Array.from({ length: 1000 }, () => b.next())];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("present-day IDs need more than 53 bits", () => {
    const generator = new IdGenerator();
    const id = generator.next();
    expect(id > TWO_POW_53).toBe(true);
    // The next ID in the same millisecond differs only in its lowest bit: a JS number cannot tell them apart.
    const now = Date.now();
    const fixed = new IdGenerator(3n, () => now);
    const first = fixed.next();
    const second = fixed.next();
    expect(second - first).toBe(1n);
    expect(Number(first)).toBe(Number(second));
  });
});

describe("generateHashCode", () => {
  const ids = new IdGenerator();

  it("20 URL-safe characters, never a valid caller's HashCode (it has a ~)", () => {
    for (let i = 0; i < 1000; i++) {
      const code = generateHashCode(ids.next());
      expect(code).toMatch(/^[A-Za-z0-9_~-]{20}$/);
      expect(HASH_CODE_PATTERN.test(code)).toBe(false);
    }
  });

  it("names its task's ID, also at the ends of the uint64 range", () => {
    for (const id of [1n, 2n ** 53n + 1n, ids.next(), 2n ** 64n - 1n]) {
      expect(taskIdOfGeneratedHashCode(generateHashCode(id))).toBe(id);
    }
  });

  it("distinct for one ID: 48 random bits follow it", () => {
    const id = ids.next();
    const codes = new Set(Array.from({ length: 20_000 }, () => generateHashCode(id)));
    expect(codes.size).toBe(20_000);
  });

  it("names no task for a caller's key or a malformed code", () => {
    for (const code of ["job-1", "AAAAAAAAAAA-AAAAAAAA", "AAAAAAAAAAB~AAAAAAAA", "AAAAAAAAAA~AAAAAAAAA", "AAAAAAAAAAA~AAAAAAA", ""]) {
      expect(taskIdOfGeneratedHashCode(code)).toBeUndefined();
    }
  });
});

describe("newLeaseToken", () => {
  it("draws 63 random bits: never 0, below 2^63, never the token it replaces, and no repeats over many draws", () => {
    const tokens = Array.from({ length: 20_000 }, () => newLeaseToken());
    for (const token of tokens) expect(token > 0n && token < TWO_POW_63).toBe(true);
    expect(new Set(tokens).size).toBe(tokens.length);
    // Spread over the whole range: some above 2^62 and some above 2^53 (a JS number would lose them).
    expect(tokens.some((token) => token >= 2n ** 62n)).toBe(true);
    expect(tokens.filter((token) => token > TWO_POW_53).length).toBeGreaterThan(tokens.length * 0.99);
    for (const previous of tokens.slice(0, 1_000)) expect(newLeaseToken(previous)).not.toBe(previous);
  });
});
