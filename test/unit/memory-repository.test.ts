// The in-memory repository the use-case tests run on (test/support/memory-repository.ts)
// keeps the DynamoDB store's conditional semantics: the same rules as
// test/store-preconditions.test.ts proves for the store, checked here for it.
import { describe, expect, it } from "vitest";
import { DuplicateHashCode, IdTaken, StaleTask, type StoredTask } from "../../service/src/core/task-repository.js";
import { generateHashCode } from "../../service/src/tasks/ids.js";
import { decideDelivery, decideReport } from "../../service/src/tasks/state-machine.js";
import { TaskStates, type TaskRecord } from "../../service/src/tasks/task.js";
import { MemoryRepository } from "../support/memory-repository.js";
import { expectDistinctLeaseTokens } from "../support/lease-tokens.js";

const NOW = 1_800_000_000_000;
const OURS = "m-ours";
const TOKEN = 7n;

function record(overrides: Partial<TaskRecord> = {}): TaskRecord {
  const at = new Date(NOW).toISOString();
  const fields = { id: 1n, owner: 1n, channel: "default", state: "WAITING", hashCode: "h-1", input: "x", output: "", retryCount: 0n, retryMaxLimit: 3n } as const;
  const links = { prior: 0n, next: 0n, awaitsPrior: false, nextTakesOutput: false };
  return { ...fields, ...links, createTime: at, updateTime: at, notBeforeMs: 0,
      runAtMs: 0, priority: 1, concurrencyKey: "", lease: undefined, outbox: undefined, ...overrides };
}

/** Every combination of the fields the unread preconditions look at. */
const situations: Partial<TaskRecord>[] = TaskStates.flatMap((state) =>
  [false, true].flatMap((awaitsPrior) =>
    [undefined, OURS, "m-other"].flatMap((messageId) =>
      [0, NOW - 1, NOW + 1].flatMap((notBeforeMs) =>
        [0n, 42n].map((next) => {
          const lease = messageId === undefined ? undefined : { token: TOKEN, messageId, receiptHandle: "rh", expiresAtMs: NOW + 60_000 };
          return { state, awaitsPrior, notBeforeMs, next, lease };
        }),
      ),
    ),
  ),
);

async function thrown(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (error: unknown) => error);
}

describe("the in-memory repository", () => {
  it("leaseUnread writes exactly when decideDelivery leases", async () => {
    const mismatches = [];
    for (const situation of situations) {
      const store = new MemoryRepository(() => NOW);
      const task = store.seed(record(situation));
      const outcome = await store.leaseUnread(task.id, { messageId: OURS, receiptHandle: "rh-new" }, 30_000);
      const expected = decideDelivery(task, OURS, NOW).action === "lease";
      if (("written" in outcome) !== expected) mismatches.push(situation);
      if ("written" in outcome) {
        expect(outcome.written).toMatchObject({ state: "PROCEEDING", version: 2n, lease: { receiptHandle: "rh-new", expiresAtMs: NOW + 30_000 } });
        // A new random token, as the store draws: never the one it replaces.
        expectDistinctLeaseTokens(...(task.lease ? [task.lease.token] : []), outcome.written.lease?.token);
      }
      else expect(outcome.current).toEqual(task);
    }
    expect(mismatches).toEqual([]);
  });

  it("succeedUnread writes exactly when decideReport(SUCCESS) succeeds on a task without Next, fenced or not", async () => {
    const mismatches = [];
    for (const situation of situations) {
      for (const token of [0n, TOKEN, TOKEN + 1n]) {
        const store = new MemoryRepository(() => NOW);
        const task = store.seed(record(situation));
        let expected: boolean;
        try {
          expected = decideReport(task, task.id, "SUCCESS", { baseMs: 1, maxMs: 1 }, token).transition === "succeed" && task.next === 0n;
        } catch {
          expected = false;
        }
        const outcome = await store.succeedUnread(task.id, "out", token);
        if (("written" in outcome) !== expected) mismatches.push({ situation, token });
        if ("written" in outcome) expect(outcome.written).toMatchObject({ state: "SUCCESS", output: "out", outbox: undefined, reportLease: token });
      }
    }
    expect(mismatches).toEqual([]);
  });

  it("writes without a read never create a task; a large Output is answered with the task, read", async () => {
    const store = new MemoryRepository(() => NOW);
    expect(await store.leaseUnread(9n, { messageId: "m", receiptHandle: "rh" }, 1)).toEqual({ current: undefined });
    expect(await store.succeedUnread(9n, "out", 0n)).toEqual({ current: undefined });
    const task = store.seed(record({ state: "PROCEEDING" }));
    expect(await store.succeedUnread(task.id, "o".repeat(2_000), 0n)).toEqual({ current: task });
  });

  it("a write on a version that is no longer current is StaleTask carrying the task as it is", async () => {
    const store = new MemoryRepository(() => NOW);
    const read = store.seed(record());
    const leased = await store.transition(read, "lease", { lease: { token: 1n, messageId: "m", receiptHandle: "rh", expiresAtMs: NOW + 1 } });
    expect(leased).toMatchObject({ state: "PROCEEDING", version: 2n, lastWrite: expect.stringMatching(/^lease\./) });
    for (const write of [() => store.transition(read, "cancel"), () => store.claimOutbox(read, NOW, 1), () => store.clearOutbox(read), () => store.renewReceiptHandle(read, "x")]) {
      const error = await thrown(write());
      expect(error).toBeInstanceOf(StaleTask);
      expect((error as StaleTask).current).toEqual(leased);
    }
    expect(await thrown(store.transition({ ...read, id: 5n }, "cancel"))).toMatchObject({ current: undefined });
    // A transition the state machine does not allow is a bug: refused before anything is written.
    expect(await thrown(store.transition(leased, "lease"))).toMatchObject({ message: expect.stringMatching(/not allowed from PROCEEDING/) });
    expect(store.peek(read.id)).toEqual(leased);
  });

  it("the bookkeeping writes move the version but not lastWrite", async () => {
    const store = new MemoryRepository(() => NOW);
    const task = await store.transition(store.seed(record()), "cancel");
    const claimed = await store.claimOutbox(task, NOW + 5, 2);
    expect(claimed).toMatchObject({ version: task.version + 1n, lastWrite: task.lastWrite, outbox: { dueAtMs: NOW + 5, sweeps: 2 } });
    expect(await store.clearOutbox(claimed)).toEqual({ ...claimed, version: claimed.version + 1n, outbox: undefined });
    expect(store.peek(task.id)).toMatchObject({ version: claimed.version + 1n, outbox: undefined });
  });

  it("create: a caller's HashCode is unique, an ID is taken once, a link needs the Prior's version as read", async () => {
    const store = new MemoryRepository(() => NOW);
    await store.create(record({ id: 1n, hashCode: "key" }));
    // A create writes its own write id, as the store's does (a lost answer is recognised by it).
    expect(store.peek(1n)?.lastWrite).toMatch(/^create\./);
    expect(await thrown(store.create(record({ id: 2n, hashCode: "key" })))).toBeInstanceOf(DuplicateHashCode);
    expect(await thrown(store.create(record({ id: 1n, hashCode: "other" })))).toBeInstanceOf(IdTaken);
    expect(await store.findIdByHashCode("key")).toBe(1n);
    // A generated HashCode names its task: no guard.
    const generated = generateHashCode(3n);
    await store.create(record({ id: 3n, hashCode: generated }));
    expect(await store.findIdByHashCode(generated)).toBeUndefined();
    expect((await store.findByHashCode(generated))?.id).toBe(3n);

    const prior = (await store.getTask(1n)) as StoredTask;
    await store.create(record({ id: 4n, hashCode: "h-4", prior: 1n, awaitsPrior: true }), { prior, takesOutput: true });
    expect(await store.getTask(1n)).toMatchObject({ next: 4n, nextTakesOutput: true, version: 2n });
    const stale = await thrown(store.create(record({ id: 5n, hashCode: "h-5", prior: 1n }), { prior, takesOutput: false }));
    expect(stale).toBeInstanceOf(StaleTask);
    expect((stale as StaleTask).current).toMatchObject({ id: 1n, version: 2n });
    expect(store.peek(5n)).toBeUndefined();
    expect(await store.countOwnerTasks(1n)).toBe(3n);
    expect(await store.ownerTaskIds(1n, 1n, 5n)).toEqual([3n, 1n]);
  });

  it("keeps a large Input or Output apart: a read without payloads shows it empty", async () => {
    const store = new MemoryRepository(() => NOW);
    const large = "L".repeat(2_000);
    await store.create(record({ input: large }));
    const read = (await store.getTask(1n)) as StoredTask;
    expect(read).toMatchObject({ input: "", inputExternal: true });
    expect((await store.withPayloads(read)).input).toBe(large);
    expect((await store.getTasks([1n, 2n])).map((task) => task.input)).toEqual([large]);
  });
});
