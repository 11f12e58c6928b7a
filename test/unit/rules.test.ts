// Input rules of SPEC §3 (service/tasks/rules.ts): every bad value is a 400 whose
// Message names the field and the rule; uint64 never passes through a JS number.
import { describe, expect, it } from "vitest";
import {
  checkHashCode,
  checkPayload,
  page,
  reportKind,
  requireId,
  uint64,
  validateNewTask,
  type WireTaskFields,
} from "../../service/src/tasks/rules.js";
import { Rejection } from "../../service/src/tasks/status.js";
import { rejectionOf } from "../support/rejection.js";

const MAX_U64 = "18446744073709551615";
const LIMIT = 256 * 1024;
const CHANNELS = { names: new Set(["default", "other"]) as ReadonlySet<string>, levelsOf: (channel: string) => (channel === "other" ? 3 : 1) };
const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

function expect400(fn: () => unknown, ...mentions: string[]): Rejection {
  const rejection = rejectionOf(fn);
  expect(rejection.status).toBe(400);
  for (const mention of mentions) expect(rejection.message).toContain(mention);
  return rejection;
}

/** A UTF-8 string of exactly `bytes` bytes mixing 1-, 2-, 3- and 4-byte characters. */
function utf8OfBytes(bytes: number): string {
  const unit = "a\u00e9\u20ac\u{1F600}"; // 1 + 2 + 3 + 4 = 10 bytes
  const text = unit.repeat(Math.floor(bytes / 10)) + "b".repeat(bytes % 10);
  expect(Buffer.byteLength(text, "utf8")).toBe(bytes);
  return text;
}

function wire(overrides: Partial<WireTaskFields> = {}): WireTaskFields {
  return { Next: "0", Prior: "0", Owner: "1", Input: "", Channel: "default", HashCode: "", RetryMaxLimit: "0", ...overrides };
}

describe("uint64", () => {
  it("parses 0 and the empty string as 0", () => {
    expect(uint64("0", "ID")).toBe(0n);
    expect(uint64("", "ID")).toBe(0n);
    expect(uint64(undefined, "ID")).toBe(0n);
  });

  it("parses 2^64-1 exactly, and values above 2^53 without rounding", () => {
    expect(uint64(MAX_U64, "ID")).toBe(2n ** 64n - 1n);
    expect(uint64("9007199254740993", "ID")).toBe(2n ** 53n + 1n);
  });

  it("2^64 is 400 naming the field", () => {
    expect400(() => uint64("18446744073709551616", "Owner"), "Owner");
    expect400(() => uint64("99999999999999999999", "Owner"), "Owner");
  });

  for (const garbage of ["-1", "1.5", "1e3", "0x10", "abc", " 1", "1 ", "+1", "123456789012345678901"]) {
    it(`${JSON.stringify(garbage)} is 400`, () => {
      expect400(() => uint64(garbage, "Limit"), "Limit", "unsigned 64-bit");
    });
  }
});

describe("requireId", () => {
  it("0 and empty are 400", () => {
    expect400(() => requireId("0"), "ID");
    expect400(() => requireId(""), "ID");
    expect400(() => requireId(undefined, "Prior"), "Prior");
  });

  it("returns the ID as a bigint, up to 2^64-1", () => {
    expect(requireId("1")).toBe(1n);
    expect(requireId(MAX_U64)).toBe(2n ** 64n - 1n);
  });

  it("garbage is 400", () => {
    expect400(() => requireId("x"), "ID");
  });
});

describe("checkPayload", () => {
  it("accepts exactly 256 KiB, ASCII and multi-byte", () => {
    expect(() => checkPayload("a".repeat(LIMIT), "Input")).not.toThrow();
    expect(() => checkPayload(utf8OfBytes(LIMIT), "Output")).not.toThrow();
    expect(() => checkPayload("", "Input")).not.toThrow();
  });

  it("rejects 256 KiB + 1 with a Message naming the field and the limit", () => {
    const ascii = expect400(() => checkPayload("a".repeat(LIMIT + 1), "Input"), "Input", String(LIMIT));
    expect(ascii.message).toContain(String(LIMIT + 1));
    expect400(() => checkPayload(utf8OfBytes(LIMIT + 1), "Output"), "Output", String(LIMIT));
  });

  it("counts UTF-8 bytes, not characters", () => {
    // 65 537 four-byte characters = 262 148 bytes, far fewer characters than the limit.
    expect400(() => checkPayload("\u{1F600}".repeat(LIMIT / 4 + 1), "Input"), "Input");
    expect(() => checkPayload("\u{1F600}".repeat(LIMIT / 4), "Input")).not.toThrow();
  });
});

describe("checkHashCode", () => {
  it("accepts 1 to 128 characters of [A-Za-z0-9._:-]", () => {
    for (const good of ["a", "A-z_0.9:x", "x".repeat(128), "order:2026-01-01.42"]) expect(() => checkHashCode(good)).not.toThrow();
  });

  for (const bad of ["", "x".repeat(129), "has space", "slash/", "é", "a+b", "a\nb", "emoji\u{1F600}"]) {
    it(`rejects ${JSON.stringify(bad.slice(0, 20))}${bad.length > 20 ? "..." : ""}`, () => {
      expect400(() => checkHashCode(bad), "HashCode");
    });
  }

  it("a huge HashCode gets a short Message", () => {
    const rejection = expect400(() => checkHashCode("!".repeat(100_000)), "HashCode");
    expect(rejection.message.length).toBeLessThan(300);
  });
});

describe("validateNewTask", () => {
  it("fills in the defaults", () => {
    expect(validateNewTask(wire({ Owner: MAX_U64, Input: "x" }), CHANNELS, NOW)).toEqual({
      owner: 2n ** 64n - 1n,
      channel: "default",
      input: "x",
      hashCode: "",
      retryMaxLimit: 3n,
      prior: 0n,
      runAtMs: 0,
      priority: 1,
      concurrencyKey: "",
    });
  });

  it("Priority: 0 is the channel's middle level, above its levels is 400; ConcurrencyKey as HashCode's alphabet", () => {
    expect(validateNewTask(wire({ Channel: "other" }), CHANNELS, NOW).priority).toBe(2); // 3 levels: ceil(3 / 2)
    expect(validateNewTask(wire({ Channel: "other", Priority: "1" }), CHANNELS, NOW).priority).toBe(1);
    expect(validateNewTask(wire({ Channel: "other", Priority: "3" }), CHANNELS, NOW).priority).toBe(3);
    expect400(() => validateNewTask(wire({ Channel: "other", Priority: "4" }), CHANNELS, NOW), "Priority", "3 levels");
    expect(validateNewTask(wire({ Priority: "1" }), CHANNELS, NOW).priority).toBe(1);
    expect400(() => validateNewTask(wire({ Priority: "2" }), CHANNELS, NOW), "Priority", "no priorities");
    expect400(() => validateNewTask(wire({ Priority: "-1" }), CHANNELS, NOW), "Priority");
    expect(validateNewTask(wire({ ConcurrencyKey: "customer:42" }), CHANNELS, NOW).concurrencyKey).toBe("customer:42");
    for (const key of ["a b", "x".repeat(129), "ключ", "a/b"]) expect400(() => validateNewTask(wire({ ConcurrencyKey: key }), CHANNELS, NOW), "ConcurrencyKey");
  });

  it("a missing Task is 400", () => {
    expect400(() => validateNewTask(null, CHANNELS, NOW), "Task");
    expect400(() => validateNewTask(undefined, CHANNELS, NOW), "Task");
  });

  it("a non-zero Next is 400", () => {
    expect400(() => validateNewTask(wire({ Next: "5" }), CHANNELS, NOW), "Next");
  });

  it("an empty or unknown Channel is 400", () => {
    expect400(() => validateNewTask(wire({ Channel: "" }), CHANNELS, NOW), "Channel");
    const unknown = expect400(() => validateNewTask(wire({ Channel: "nope" }), CHANNELS, NOW), "Channel", "nope");
    expect(unknown.message).toContain("default");
  });

  it("an oversized Input is 400", () => {
    expect400(() => validateNewTask(wire({ Input: "a".repeat(LIMIT + 1) }), CHANNELS, NOW), "Input");
    expect(validateNewTask(wire({ Input: "a".repeat(LIMIT) }), CHANNELS, NOW).input.length).toBe(LIMIT);
  });

  it("a bad HashCode is 400; a good one is kept", () => {
    expect400(() => validateNewTask(wire({ HashCode: "bad code" }), CHANNELS, NOW), "HashCode");
    expect(validateNewTask(wire({ HashCode: "key-1" }), CHANNELS, NOW).hashCode).toBe("key-1");
  });

  it("RetryMaxLimit: 0 → 3, 100 kept, 101 → 400", () => {
    expect(validateNewTask(wire({ RetryMaxLimit: "0" }), CHANNELS, NOW).retryMaxLimit).toBe(3n);
    expect(validateNewTask(wire({ RetryMaxLimit: "1" }), CHANNELS, NOW).retryMaxLimit).toBe(1n);
    expect(validateNewTask(wire({ RetryMaxLimit: "100" }), CHANNELS, NOW).retryMaxLimit).toBe(100n);
    expect400(() => validateNewTask(wire({ RetryMaxLimit: "101" }), CHANNELS, NOW), "RetryMaxLimit", "100");
    expect400(() => validateNewTask(wire({ RetryMaxLimit: MAX_U64 }), CHANNELS, NOW), "RetryMaxLimit");
  });

  it("bad uint64 in Owner or Prior is 400 naming the field", () => {
    expect400(() => validateNewTask(wire({ Owner: "-3" }), CHANNELS, NOW), "Owner");
    expect400(() => validateNewTask(wire({ Prior: "18446744073709551616" }), CHANNELS, NOW), "Prior");
  });

  it("keeps Prior and Owner exactly", () => {
    const parsed = validateNewTask(wire({ Prior: "9007199254740993", Owner: "9007199254740995" }), CHANNELS, NOW);
    expect(parsed.prior).toBe(9007199254740993n);
    expect(parsed.owner).toBe(9007199254740995n);
  });
});

describe("page", () => {
  it("Limit 0 means 20, values over 100 are clamped to 100", () => {
    expect(page(0n, 0n)).toEqual({ limit: 20n, offset: 0n });
    expect(page(150n, 7n)).toEqual({ limit: 100n, offset: 7n });
    expect(page(2n ** 64n - 1n, 0n).limit).toBe(100n);
    expect(page(1n, 0n).limit).toBe(1n);
    expect(page(100n, 0n).limit).toBe(100n);
  });
});

describe("reportKind", () => {
  it("maps 1, 2, 4, 6", () => {
    expect(reportKind(1n)).toBe("SUCCESS");
    expect(reportKind(2n)).toBe("FAILURE");
    expect(reportKind(4n)).toBe("CANCEL");
    expect(reportKind(6n)).toBe("PROCEEDING");
  });

  for (const code of [0n, 3n, 5n, 7n, 200n, 2n ** 64n - 1n]) {
    it(`${code} is 400 with a Message listing the valid codes`, () => {
      const rejection = expect400(() => reportKind(code), String(code));
      for (const valid of ["1", "2", "4", "6"]) expect(rejection.message).toContain(valid);
    });
  }
});
