// The task state machine (service/tasks/state-machine.ts): every transition, the
// retry rule, the backoff, and each decision function, checked against SPEC §2-§3.
import { describe, expect, it } from "vitest";
import {
  afterFailedAttempt,
  backoffMs,
  decideCancel,
  decideDelivery,
  decideLink,
  decideReport,
  decideSweep,
  followUp,
  TRANSITIONS,
  type RetryPolicy,
} from "../../service/src/tasks/state-machine.js";
import { Status } from "../../service/src/tasks/status.js";
import { FINAL_STATES, isFinal, TaskStates, type TaskRecord, type TaskState } from "../../service/src/tasks/task.js";
import { rejectionOf } from "../support/rejection.js";

const NOW = 1_800_000_000_000;
const POLICY: RetryPolicy = { baseMs: 1_000, maxMs: 60_000 };

function task(overrides: Partial<TaskRecord> = {}): TaskRecord {
  return {
    id: 2n ** 60n + 5n,
    owner: 7n,
    channel: "default",
    state: "WAITING",
    hashCode: "hash-1",
    input: "in",
    output: "",
    retryCount: 0n,
    retryMaxLimit: 3n,
    prior: 0n,
    next: 0n,
    createTime: "2026-01-01T00:00:00.000Z",
    updateTime: "2026-01-01T00:00:00.000Z",
    awaitsPrior: false,
    nextTakesOutput: false,
    notBeforeMs: 0,
    runAtMs: 0,
    priority: 1,
    concurrencyKey: "",
    lease: undefined,
    outbox: undefined,
    ...overrides,
  };
}

function leased(overrides: Partial<TaskRecord> = {}, expiresAtMs = NOW + 10_000, messageId = "m-1"): TaskRecord {
  return task({
    state: "PROCEEDING",
    lease: { token: 1n, messageId, receiptHandle: "rh-1", expiresAtMs },
    ...overrides,
  });
}

describe("SPEC §2 response State table", () => {
  it("Status has exactly the codes of the table", () => {
    expect(Status).toEqual({ OK: 200, INVALID: 400, NOT_FOUND: 404, CONFLICT: 409, INTERNAL: 500, UNAVAILABLE: 503 });
  });

  it("task states are WAITING, PROCEEDING and the three final states", () => {
    expect([...TaskStates].sort()).toEqual(["CANCEL", "FAILURE", "PROCEEDING", "SUCCESS", "WAITING"]);
    expect([...FINAL_STATES].sort()).toEqual(["CANCEL", "FAILURE", "SUCCESS"]);
    expect(isFinal("WAITING")).toBe(false);
    expect(isFinal("PROCEEDING")).toBe(false);
    for (const state of ["SUCCESS", "FAILURE", "CANCEL"] as const) expect(isFinal(state)).toBe(true);
  });
});

describe("TRANSITIONS", () => {
  const expected: Record<string, { from: TaskState[]; to: TaskState }> = {
    queue: { from: ["WAITING"], to: "WAITING" },
    lease: { from: ["WAITING"], to: "PROCEEDING" },
    handBack: { from: ["PROCEEDING"], to: "WAITING" },
    heartbeat: { from: ["PROCEEDING"], to: "PROCEEDING" },
    succeed: { from: ["PROCEEDING"], to: "SUCCESS" },
    retry: { from: ["PROCEEDING"], to: "WAITING" },
    fail: { from: ["PROCEEDING"], to: "FAILURE" },
    giveUp: { from: ["PROCEEDING"], to: "CANCEL" },
    cancel: { from: ["WAITING", "PROCEEDING"], to: "CANCEL" },
  };

  it("lists exactly the expected transitions", () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual(Object.keys(expected).sort());
  });

  for (const [name, rule] of Object.entries(expected)) {
    it(`${name}: ${rule.from.join("|")} → ${rule.to}`, () => {
      const actual = TRANSITIONS[name as keyof typeof TRANSITIONS];
      expect([...actual.from].sort()).toEqual([...rule.from].sort());
      expect(actual.to).toBe(rule.to);
      expect(actual.what.length).toBeGreaterThan(0);
    });
  }

  it("no transition leaves a final state", () => {
    for (const rule of Object.values(TRANSITIONS)) {
      for (const from of rule.from) expect(isFinal(from)).toBe(false);
    }
  });
});

describe("afterFailedAttempt", () => {
  it("increments RetryCount and retries while attempts remain", () => {
    const decision = afterFailedAttempt(leased({ retryCount: 0n, retryMaxLimit: 3n }), POLICY, () => 0.5);
    expect(decision.transition).toBe("retry");
    expect(decision.retryCount).toBe(1n);
    if (decision.transition === "retry") expect(decision.backoffMs).toBe(750);
  });

  it("fails after the last attempt with RetryCount = 1 + RetryMaxLimit", () => {
    expect(afterFailedAttempt(leased({ retryCount: 2n, retryMaxLimit: 3n }), POLICY)).toMatchObject({ transition: "retry", retryCount: 3n });
    expect(afterFailedAttempt(leased({ retryCount: 3n, retryMaxLimit: 3n }), POLICY)).toEqual({ transition: "fail", retryCount: 4n });
  });

  for (const limit of [1n, 3n, 100n]) {
    it(`a task with RetryMaxLimit ${limit} is attempted exactly ${1n + limit} times`, () => {
      let current = leased({ retryMaxLimit: limit });
      let attempts = 0n;
      for (;;) {
        attempts += 1n;
        const decision = afterFailedAttempt(current, POLICY, () => 0);
        if (decision.transition === "fail") {
          expect(decision.retryCount).toBe(1n + limit);
          break;
        }
        expect(decision.retryCount).toBe(attempts);
        current = leased({ retryMaxLimit: limit, retryCount: decision.retryCount });
        expect(attempts).toBeLessThanOrEqual(1n + limit);
      }
      expect(attempts).toBe(1n + limit);
    });
  }
});

describe("backoffMs", () => {
  it("doubles per retry (random = 1 gives the full step)", () => {
    expect([1n, 2n, 3n, 4n, 5n].map((n) => backoffMs(n, POLICY, () => 1))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000]);
  });

  it("is capped at maxMs", () => {
    expect(backoffMs(7n, POLICY, () => 1)).toBe(60_000);
    expect(backoffMs(100n, POLICY, () => 1)).toBe(60_000);
    expect(backoffMs(2n ** 63n, POLICY, () => 1)).toBe(60_000);
  });

  it("jitter stays within [step/2, step]", () => {
    for (const retry of [1n, 2n, 3n, 6n, 10n]) {
      const step = Math.min(POLICY.maxMs, POLICY.baseMs * 2 ** Number(retry - 1n));
      expect(backoffMs(retry, POLICY, () => 0)).toBe(step / 2);
      expect(backoffMs(retry, POLICY, () => 0.999999)).toBeLessThanOrEqual(step);
      for (let i = 0; i < 200; i++) {
        const value = backoffMs(retry, POLICY);
        expect(value).toBeGreaterThanOrEqual(step / 2);
        expect(value).toBeLessThanOrEqual(step);
      }
    }
  });

  it("base 0 means no backoff", () => {
    const zero = { baseMs: 0, maxMs: 60_000 };
    for (const retry of [1n, 5n, 50n]) {
      expect(backoffMs(retry, zero, () => 1)).toBe(0);
      expect(backoffMs(retry, zero)).toBe(0);
    }
  });
});

describe("decideReport", () => {
  const id = 42n;

  it("404 for a missing task, Message names the ID", () => {
    const rejection = rejectionOf(() => decideReport(undefined, id, "SUCCESS", POLICY));
    expect(rejection.status).toBe(404);
    expect(rejection.message).toContain("42");
  });

  for (const state of ["WAITING", "SUCCESS", "FAILURE"] as const) {
    it(`409 for a ${state} task`, () => {
      const rejection = rejectionOf(() => decideReport(task({ id, state }), id, "SUCCESS", POLICY));
      expect(rejection.status).toBe(409);
      expect(rejection.message).toContain("42");
      expect(rejection.message).toContain(state);
    });
  }

  it("409 for a cancelled task says it was cancelled", () => {
    for (const kind of ["SUCCESS", "FAILURE", "CANCEL", "PROCEEDING"] as const) {
      const rejection = rejectionOf(() => decideReport(task({ id, state: "CANCEL" }), id, kind, POLICY));
      expect(rejection.status).toBe(409);
      expect(rejection.message.toLowerCase()).toContain("cancelled");
    }
  });

  it("maps each report code on a PROCEEDING task", () => {
    const current = leased({ id });
    expect(decideReport(current, id, "SUCCESS", POLICY)).toEqual({ transition: "succeed" });
    expect(decideReport(current, id, "CANCEL", POLICY)).toEqual({ transition: "giveUp" });
    expect(decideReport(current, id, "PROCEEDING", POLICY)).toEqual({ transition: "heartbeat" });
    expect(decideReport(current, id, "FAILURE", POLICY)).toMatchObject({ transition: "retry", retryCount: 1n });
    expect(decideReport(leased({ id, retryCount: 3n }), id, "FAILURE", POLICY)).toEqual({ transition: "fail", retryCount: 4n });
  });

  it("with a lease token, only the lease holder's own SUCCESS or CANCEL is a repeat; one recorded by someone else is 409", () => {
    const final = (state: TaskState, reportLease: bigint | undefined) => leased({ id, state, reportLease });
    // Written by this lease's report: a repeat.
    expect(decideReport(final("SUCCESS", 1n), id, "SUCCESS", POLICY, 1n)).toMatchObject({ transition: "none" });
    expect(decideReport(final("CANCEL", 1n), id, "CANCEL", POLICY, 1n)).toMatchObject({ transition: "none" });
    // Written by a report without a token (0) under this lease, or by CancelTaskByID (undefined): not this worker's.
    expect(rejectionOf(() => decideReport(final("SUCCESS", 0n), id, "SUCCESS", POLICY, 1n)).status).toBe(409);
    expect(rejectionOf(() => decideReport(final("CANCEL", 0n), id, "CANCEL", POLICY, 1n)).status).toBe(409);
    expect(rejectionOf(() => decideReport(final("CANCEL", undefined), id, "CANCEL", POLICY, 1n)).status).toBe(409);
    // A SUCCESS item without the field predates it; only a report can write SUCCESS, so it counts as a repeat.
    expect(decideReport(final("SUCCESS", undefined), id, "SUCCESS", POLICY, 1n)).toMatchObject({ transition: "none" });
    // A failed attempt is counted once whoever counted it (a report, or the lease's expiry).
    expect(decideReport(final("WAITING", undefined), id, "FAILURE", POLICY, 1n)).toMatchObject({ transition: "none" });
  });
});

describe("decideDelivery", () => {
  it("drops a message whose task is missing", () => {
    expect(decideDelivery(undefined, "m-1", NOW)).toMatchObject({ action: "drop" });
  });

  for (const state of ["SUCCESS", "FAILURE", "CANCEL"] as const) {
    it(`drops a message of a ${state} task, even our own`, () => {
      expect(decideDelivery(task({ state, lease: { token: 1n, messageId: "m-1", receiptHandle: "r", expiresAtMs: NOW + 1000 } }), "m-1", NOW)).toMatchObject({
        action: "drop",
      });
    });
  }

  it("drops a message of a task that waits for its Prior", () => {
    expect(decideDelivery(task({ awaitsPrior: true }), "m-1", NOW)).toMatchObject({ action: "drop" });
  });

  it("leases a queued WAITING task", () => {
    expect(decideDelivery(task(), "m-1", NOW)).toEqual({ action: "lease" });
  });

  it("PROCEEDING: another message while the lease is valid is a duplicate and is dropped", () => {
    expect(decideDelivery(leased({}, NOW + 10_000, "m-1"), "m-2", NOW)).toMatchObject({ action: "drop" });
  });

  it("PROCEEDING: another message after the lease ran out expires it (the sweeper's copy of a lost message)", () => {
    expect(decideDelivery(leased({}, NOW - 10_000, "m-1"), "m-2", NOW)).toEqual({ action: "expire" });
  });

  it("PROCEEDING: our own message while the lease is valid renews it with the remaining time", () => {
    expect(decideDelivery(leased({}, NOW + 7_000, "m-1"), "m-1", NOW)).toEqual({ action: "renew", remainingMs: 7_000 });
  });

  it("PROCEEDING: our own message after the lease ran out expires it", () => {
    expect(decideDelivery(leased({}, NOW - 1, "m-1"), "m-1", NOW)).toEqual({ action: "expire" });
    expect(decideDelivery(leased({}, NOW, "m-1"), "m-1", NOW)).toEqual({ action: "expire" });
  });

  it("WAITING in a retry backoff: a different copy is dropped, our own message leases", () => {
    const backingOff = task({
      retryCount: 1n,
      notBeforeMs: NOW + 5_000,
      lease: { token: 1n, messageId: "m-1", receiptHandle: "r", expiresAtMs: NOW - 1_000 },
    });
    expect(decideDelivery(backingOff, "m-2", NOW)).toMatchObject({ action: "drop" });
    expect(decideDelivery(backingOff, "m-1", NOW)).toEqual({ action: "lease" });
  });

  it("WAITING after the backoff: any copy leases", () => {
    const retried = task({
      retryCount: 1n,
      notBeforeMs: NOW - 1,
      lease: { token: 1n, messageId: "m-1", receiptHandle: "r", expiresAtMs: NOW - 1_000 },
    });
    expect(decideDelivery(retried, "m-2", NOW)).toEqual({ action: "lease" });
  });
});

describe("decideLink", () => {
  it("404 when the Prior does not exist", () => {
    const rejection = rejectionOf(() => decideLink(undefined, 9n));
    expect(rejection.status).toBe(404);
    expect(rejection.message).toContain("9");
  });

  it("409 when the Prior already has a Next", () => {
    const rejection = rejectionOf(() => decideLink(task({ id: 9n, next: 10n }), 9n));
    expect(rejection.status).toBe(409);
    expect(rejection.message).toContain("10");
  });

  for (const state of ["FAILURE", "CANCEL"] as const) {
    it(`409 when the Prior is ${state}`, () => {
      const rejection = rejectionOf(() => decideLink(task({ id: 9n, state }), 9n));
      expect(rejection.status).toBe(409);
      expect(rejection.message).toContain(state);
    });
  }

  it("queues at once after a successful Prior, waits otherwise", () => {
    expect(decideLink(task({ state: "SUCCESS" }), 9n)).toBe("queueNow");
    expect(decideLink(task({ state: "WAITING" }), 9n)).toBe("awaitPrior");
    expect(decideLink(leased(), 9n)).toBe("awaitPrior");
  });
});

describe("decideCancel", () => {
  it("404 for a missing task", () => {
    expect(rejectionOf(() => decideCancel(undefined, 5n)).status).toBe(404);
  });

  for (const state of ["SUCCESS", "FAILURE", "CANCEL"] as const) {
    it(`409 with Data = [task] for a ${state} task`, () => {
      const final = task({ id: 5n, state });
      const rejection = rejectionOf(() => decideCancel(final, 5n));
      expect(rejection.status).toBe(409);
      expect(rejection.data).toEqual([final]);
      expect(rejection.message).toContain(state);
    });
  }

  it("cancels WAITING and PROCEEDING tasks", () => {
    expect(decideCancel(task(), 5n)).toBe("cancel");
    expect(decideCancel(leased(), 5n)).toBe("cancel");
  });
});

describe("followUp", () => {
  it("nothing without a Next or before the task is final", () => {
    expect(followUp(task({ state: "SUCCESS", next: 0n }))).toBe("none");
    expect(followUp(task({ state: "WAITING", next: 3n }))).toBe("none");
    expect(followUp(leased({ next: 3n }))).toBe("none");
  });

  it("SUCCESS queues the Next; FAILURE and CANCEL cancel it", () => {
    expect(followUp(task({ state: "SUCCESS", next: 3n }))).toBe("queueNext");
    expect(followUp(task({ state: "FAILURE", next: 3n }))).toBe("cancelNext");
    expect(followUp(task({ state: "CANCEL", next: 3n }))).toBe("cancelNext");
  });
});

describe("decideSweep (the outbox marker as a watchdog)", () => {
  const GRACE = 60_000;

  it("runs the follow-up of a final task", () => {
    for (const state of ["SUCCESS", "FAILURE", "CANCEL"] as const) expect(decideSweep(task({ state, next: 9n }), NOW, GRACE)).toEqual({ action: "followUp" });
  });

  it("clears the marker of a task that waits for its Prior", () => {
    expect(decideSweep(task({ awaitsPrior: true }), NOW, GRACE)).toEqual({ action: "clear" });
  });

  it("sends a copy for a queued task that was never leased", () => {
    expect(decideSweep(task(), NOW, GRACE)).toEqual({ action: "resend" });
  });

  it("watches a leased task until its lease has been over for the grace period, then sends a copy", () => {
    expect(decideSweep(leased({}, NOW + 5_000), NOW, GRACE)).toEqual({ action: "watch", untilMs: NOW + 5_000 + GRACE });
    expect(decideSweep(leased({}, NOW - GRACE + 1), NOW, GRACE)).toEqual({ action: "watch", untilMs: NOW + 1 });
    expect(decideSweep(leased({}, NOW - GRACE), NOW, GRACE)).toEqual({ action: "resend" });
  });

  it("watches a task in a retry backoff until the backoff has been over for the grace period, then sends a copy", () => {
    const backingOff = (notBeforeMs: number) =>
      task({ retryCount: 1n, notBeforeMs, lease: { token: 1n, messageId: "m-1", receiptHandle: "rh-1", expiresAtMs: NOW - 100_000 } });
    expect(decideSweep(backingOff(NOW + 30_000), NOW, GRACE)).toEqual({ action: "watch", untilMs: NOW + 30_000 + GRACE });
    expect(decideSweep(backingOff(NOW - GRACE), NOW, GRACE)).toEqual({ action: "resend" });
  });
});
