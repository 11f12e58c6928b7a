// What both sides of the wire know (@queues/protocol): the payload limit, the task
// states, the report codes and uint64 parsing. The server, the client SDK and the CLI
// all read these, so they cannot drift apart.
import { describe, expect, it } from "vitest";
import {
  FINAL_STATES,
  isFinal,
  isUint64,
  MAX_PAYLOAD_BYTES,
  MAX_UINT64,
  parseUint64,
  payloadBytes,
  payloadOverLimit,
  payloadTooLarge,
  REPORT_CODES,
  reportKindOf,
  TASK_STATES,
} from "@queues/protocol";
import * as client from "@queues/client";

describe("the payload limit", () => {
  it("is 256 KiB of UTF-8", () => {
    expect(MAX_PAYLOAD_BYTES).toBe(262_144);
    expect(payloadBytes("a\u00e9\u20ac\u{1F600}")).toBe(10);
  });

  it("payloadOverLimit says the size of a payload over it, and nothing for one that fits", () => {
    expect(payloadOverLimit("")).toBeUndefined();
    expect(payloadOverLimit("a".repeat(MAX_PAYLOAD_BYTES))).toBeUndefined();
    expect(payloadOverLimit("a".repeat(MAX_PAYLOAD_BYTES + 1))).toBe(MAX_PAYLOAD_BYTES + 1);
    // Fewer characters than the limit, more bytes: the limit is in bytes.
    expect(payloadOverLimit("\u20ac".repeat(MAX_PAYLOAD_BYTES / 2))).toBe((MAX_PAYLOAD_BYTES / 2) * 3);
    expect(payloadOverLimit("\u{1F600}".repeat(MAX_PAYLOAD_BYTES / 4))).toBeUndefined();
    expect(payloadTooLarge("\u{1F600}".repeat(MAX_PAYLOAD_BYTES / 4 + 1))).toBe(true);
    expect(payloadTooLarge("x".repeat(300_000))).toBe(true);
    expect(payloadTooLarge("x")).toBe(false);
  });
});

describe("task states and report codes", () => {
  it("are the five states, three of them final", () => {
    expect([...TASK_STATES]).toEqual(["WAITING", "PROCEEDING", "SUCCESS", "FAILURE", "CANCEL"]);
    expect([...FINAL_STATES].sort()).toEqual(["CANCEL", "FAILURE", "SUCCESS"]);
    expect(TASK_STATES.filter(isFinal)).toEqual(["SUCCESS", "FAILURE", "CANCEL"]);
    expect(isFinal("UNKNOWN")).toBe(false);
  });

  it("map each report code to its kind, whatever form the number takes", () => {
    expect(REPORT_CODES).toEqual({ SUCCESS: 1, FAILURE: 2, CANCEL: 4, PROCEEDING: 6 });
    for (const [kind, code] of Object.entries(REPORT_CODES)) {
      expect(reportKindOf(code)).toBe(kind);
      expect(reportKindOf(BigInt(code))).toBe(kind);
      expect(reportKindOf(String(code))).toBe(kind);
    }
    for (const code of [0, 3, 5, 7, 200, "x", ""]) expect(reportKindOf(code)).toBeUndefined();
  });
});

describe("uint64", () => {
  it("parses 1 to 20 decimal digits up to 2^64-1", () => {
    expect(MAX_UINT64).toBe(2n ** 64n - 1n);
    expect(parseUint64("0")).toBe(0n);
    expect(parseUint64("9007199254740993")).toBe(2n ** 53n + 1n);
    expect(parseUint64("18446744073709551615")).toBe(MAX_UINT64);
    for (const bad of ["", "-1", "1.5", "1e3", " 1", "0x10", "18446744073709551616", "99999999999999999999", "1".repeat(21)]) {
      expect(parseUint64(bad), bad).toBeUndefined();
    }
    expect(isUint64(0n)).toBe(true);
    expect(isUint64(MAX_UINT64)).toBe(true);
    expect(isUint64(-1n)).toBe(false);
    expect(isUint64(MAX_UINT64 + 1n)).toBe(false);
  });
});

describe("the client SDK passes the protocol's facts on", () => {
  it("re-exports them, so the CLI needs no other package", () => {
    expect(client.MAX_PAYLOAD_BYTES).toBe(MAX_PAYLOAD_BYTES);
    expect(client.isFinal).toBe(isFinal);
    expect(client.parseUint64).toBe(parseUint64);
    expect(client.GrpcStatus.UNAVAILABLE).toBe(14);
  });
});
