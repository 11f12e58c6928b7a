// tasks/apply-change.ts: the task a store answers with after writing a transition.
import { describe, expect, it } from "vitest";
import { applyChange, applyTransition, receiptRenewal } from "../../service/src/tasks/apply-change.js";
import type { TaskRecord } from "../../service/src/tasks/task.js";

const AT = "2027-01-15T08:00:00.000Z";
const LEASE = { token: 3n, messageId: "m-1", receiptHandle: "rh-1", expiresAtMs: 1_000 };

const leased: TaskRecord = {
  id: 9n,
  owner: 1n,
  channel: "default",
  state: "PROCEEDING",
  hashCode: "h",
  input: "in",
  output: "",
  retryCount: 1n,
  retryMaxLimit: 3n,
  prior: 0n,
  next: 0n,
  createTime: "2027-01-01T00:00:00.000Z",
  updateTime: "2027-01-01T00:00:00.000Z",
  awaitsPrior: false,
  nextTakesOutput: false,
  notBeforeMs: 0,
      runAtMs: 0,
  priority: 1,
  concurrencyKey: "",
  lease: LEASE,
  outbox: { dueAtMs: 5_000, sweeps: 0 },
};

describe("applyTransition", () => {
  it("sets the transition's state and the update time, and only the fields the change names", () => {
    const after = applyTransition(leased, "retry", { output: "no", retryCount: 2n, notBeforeMs: 7_000 }, AT);
    expect(after).toEqual({ ...leased, state: "WAITING", updateTime: AT, output: "no", retryCount: 2n, notBeforeMs: 7_000 });
  });

  it("refuses a transition the state machine does not allow from the task's state", () => {
    expect(() => applyTransition(leased, "lease", {}, AT)).toThrow("transition lease is not allowed from PROCEEDING (task 9)");
    expect(() => applyTransition({ ...leased, state: "SUCCESS" }, "cancel", {}, AT)).toThrow(/not allowed from SUCCESS/);
  });

  it("keeps the rest of the record, extra fields (a stored version) included", () => {
    const stored = { ...leased, version: 4n };
    expect(applyTransition(stored, "succeed", { output: "ok", outbox: null, reportLease: 3n }, AT)).toEqual({
      ...stored,
      state: "SUCCESS",
      updateTime: AT,
      output: "ok",
      outbox: undefined,
      reportLease: 3n,
    });
  });
});

describe("applyChange", () => {
  it("a new lease replaces the old one; a new expiry or message updates it", () => {
    const lease = { token: 4n, messageId: "m-2", receiptHandle: "rh-2", expiresAtMs: 9_000 };
    expect(applyChange(leased, { lease }).lease).toEqual(lease);
    expect(applyChange(leased, { leaseExpiresAtMs: 2_000 }).lease).toEqual({ ...LEASE, expiresAtMs: 2_000 });
    expect(applyChange(leased, { message: { messageId: "m-9", receiptHandle: "rh-9" } }).lease).toEqual({ ...LEASE, messageId: "m-9", receiptHandle: "rh-9" });
  });

  it("a task without a lease gets none from a new expiry or message", () => {
    expect(applyChange({ ...leased, lease: undefined }, { leaseExpiresAtMs: 2_000, message: { messageId: "m", receiptHandle: "rh" } }).lease).toBeUndefined();
  });

  it("outbox: null removes the marker, a marker replaces it, undefined keeps it", () => {
    expect(applyChange(leased, { outbox: null }).outbox).toBeUndefined();
    expect(applyChange(leased, { outbox: { dueAtMs: 1, sweeps: 2 } }).outbox).toEqual({ dueAtMs: 1, sweeps: 2 });
    expect(applyChange(leased, {}).outbox).toBe(leased.outbox);
    expect(applyChange(leased, {})).toEqual(leased);
  });

  it("a receipt renewal keeps the lease with the message's new receipt handle", () => {
    expect(applyChange(leased, receiptRenewal(leased, "rh-new")).lease).toEqual({ ...LEASE, receiptHandle: "rh-new" });
    expect(receiptRenewal({ ...leased, lease: undefined }, "rh-new")).toEqual({});
  });
});
