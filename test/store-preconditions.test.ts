// The transitions the store writes without reading the task (UNREAD_PRECONDITIONS in
// the state machine) must happen exactly when the state machine's decide functions
// pick them: every combination of the fields those rules look at is written to
// DynamoDB Local, and the conditional write's outcome is compared with the rule's.
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeNewTask, A } from "../service/src/store/item-codec.js";
import { itemKey, PARTITION_KEY } from "../service/src/store/table-definition.js";
import { decideDelivery, decideReport } from "../service/src/tasks/state-machine.js";
import { visible, type TaskScope } from "../service/src/tasks/scope.js";
import { TaskStates, type TaskRecord, type TaskState } from "../service/src/tasks/task.js";
import { startTestServer, type TestServer } from "./support/harness.js";
import { expectDistinctLeaseTokens } from "./support/lease-tokens.js";

let server: TestServer;
let nextId = 1_000_000n;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server?.stop());

type LeaseCase = "none" | "ours" | "other";
interface Case {
  state: TaskState;
  awaitsPrior: boolean;
  lease: LeaseCase;
  notBefore: "none" | "past" | "future";
  next: bigint;
}

const OUR_MESSAGE = "m-ours";
const LEASE_TOKEN = 7n;

function cases(): Case[] {
  const all: Case[] = [];
  for (const state of TaskStates)
    for (const awaitsPrior of [false, true])
      for (const lease of ["none", "ours", "other"] as const)
        for (const notBefore of ["none", "past", "future"] as const)
          for (const next of [0n, 42n]) all.push({ state, awaitsPrior, lease, notBefore, next });
  return all;
}

/** Writes a task item in the given situation; returns the task as the rules see it. */
async function writeTask(c: Case): Promise<TaskRecord> {
  const now = Date.now();
  const id = nextId++;
  const task: TaskRecord = {
    id,
    owner: 1n,
    channel: "default",
    state: c.state,
    hashCode: `pre-${id}`,
    input: "x",
    output: "",
    retryCount: 0n,
    retryMaxLimit: 3n,
    prior: 0n,
    next: c.next,
    createTime: new Date(now).toISOString(),
    updateTime: new Date(now).toISOString(),
    awaitsPrior: c.awaitsPrior,
    nextTakesOutput: false,
    notBeforeMs: c.notBefore === "none" ? 0 : c.notBefore === "past" ? now - 60_000 : now + 60_000,
    runAtMs: 0,
    priority: 1,
    concurrencyKey: "",
    lease:
      c.lease === "none"
        ? undefined
        : { token: LEASE_TOKEN, messageId: c.lease === "ours" ? OUR_MESSAGE : "m-other", receiptHandle: "rh", expiresAtMs: now + 60_000 },
    outbox: undefined,
  };
  const item = encodeNewTask(task, 0);
  if (task.next !== 0n) item[A.next] = task.next;
  if (task.notBeforeMs) item[A.notBeforeAt] = task.notBeforeMs;
  if (task.lease) {
    item[A.leaseToken] = task.lease.token;
    item[A.messageId] = task.lease.messageId;
    item[A.receiptHandle] = task.lease.receiptHandle;
    item[A.leaseExpiresAt] = task.lease.expiresAtMs;
  }
  await server.dynamo.send(new PutCommand({ TableName: server.settings.tableName, Item: item }));
  expect(item[PARTITION_KEY]).toBe(itemKey.task(id));
  return task;
}

/** Runs `work` on every item, at most `limit` at once (hundreds of writes at once time out on a loaded machine). */
async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i] as T);
      }
    }),
  );
  return results;
}

const describeCase = (c: Case) => JSON.stringify(c, (_, value: unknown) => (typeof value === "bigint" ? String(value) : value));

describe("transitions written without a read happen exactly when the rules pick them", () => {
  it("lease: decideDelivery → lease", async () => {
    const store = server.app.ctx.store;
    const results = await mapLimit(cases(), 16, async (c) => {
      const task = await writeTask(c);
      const expected = decideDelivery(task, OUR_MESSAGE, Date.now()).action === "lease";
      const outcome = await store.leaseUnread(task.id, { messageId: OUR_MESSAGE, receiptHandle: "rh-new" }, 30_000);
      const written = "written" in outcome;
      if (written) {
        expect(outcome.written).toMatchObject({ state: "PROCEEDING", lease: { messageId: OUR_MESSAGE, receiptHandle: "rh-new" } });
        // A new random token: never the one it replaces.
        expectDistinctLeaseTokens(...(task.lease ? [task.lease.token] : []), outcome.written.lease?.token);
      } else {
        expect(outcome.current?.state).toBe(task.state); // unchanged, and handed back for the rules to decide
      }
      return { c: describeCase(c), expected, written };
    });
    expect(results.filter((r) => r.expected !== r.written)).toEqual([]);
    expect(results.some((r) => r.written)).toBe(true);
  });

  it("succeed: decideReport(SUCCESS) → succeed, for tasks without Next, fenced or not", async () => {
    const store = server.app.ctx.store;
    const policy = { baseMs: 1_000, maxMs: 10_000 };
    const runs = cases().flatMap((c) => [0n, LEASE_TOKEN, LEASE_TOKEN + 5n].map((token) => ({ c, token })));
    const results = await mapLimit(runs, 16, async ({ c, token }) => {
      const task = await writeTask(c);
      let expected: boolean;
      try {
        expected = decideReport(task, task.id, "SUCCESS", policy, token).transition === "succeed" && task.next === 0n;
      } catch {
        expected = false;
      }
      const outcome = await store.succeedUnread(task.id, "out", token);
      const written = "written" in outcome;
      if (written) expect(outcome.written).toMatchObject({ state: "SUCCESS", output: "out", outbox: undefined });
      return { c: `${describeCase(c)} token ${token}`, expected, written };
    });
    expect(results.filter((r) => r.expected !== r.written)).toEqual([]);
    expect(results.some((r) => r.written)).toBe(true);
  });

  it("succeed for a reporter with a scoped token: only on a task in its scope (its channels, its owners)", async () => {
    const store = server.app.ctx.store;
    const policy = { baseMs: 1_000, maxMs: 10_000 };
    const scopes: (TaskScope | undefined)[] = [
      undefined,
      { channels: new Set(["default"]) },
      { channels: new Set(["other", "default"]) },
      { channels: new Set(["other"]) },
      { owners: new Set([1n, 5n]) },
      { owners: new Set([2n]) },
      // More than DynamoDB's IN takes: decided on a read, with the same outcome.
      { channels: new Set(["default", ...Array.from({ length: 120 }, (_, i) => `c${i}`)]) },
      { owners: new Set(Array.from({ length: 120 }, (_, i) => BigInt(i + 2))) },
    ];
    const runs = cases()
      .filter((c) => c.state === "PROCEEDING" && c.next === 0n)
      .flatMap((c) => scopes.flatMap((scope) => [0n, LEASE_TOKEN].map((token) => ({ c, scope, token }))));
    const results = await mapLimit(runs, 16, async ({ c, scope, token }) => {
      const task = await writeTask(c);
      let expected: boolean;
      try {
        expected = decideReport(visible(scope, task), task.id, "SUCCESS", policy, token).transition === "succeed";
      } catch {
        expected = false;
      }
      const outcome = await store.succeedUnread(task.id, "out", token, scope);
      const written = "written" in outcome;
      if (!written) expect(outcome.current?.state).toBe("PROCEEDING");
      return { c: `${describeCase(c)} token ${token} scope ${JSON.stringify(scope, (_, value: unknown) => (value instanceof Set ? [...value].map(String) : typeof value === "bigint" ? String(value) : value))}`, expected, written, large: (scope?.owners?.size ?? scope?.channels?.size ?? 0) > 100 };
    });
    // The unread write happens exactly when the rules pick it; a scope too large for one condition is always left to the read.
    expect(results.filter((r) => !r.large && r.expected !== r.written)).toEqual([]);
    expect(results.filter((r) => r.large && r.written)).toEqual([]);
    expect(results.some((r) => r.written)).toBe(true);
    expect(results.some((r) => !r.large && r.expected === false)).toBe(true);
  });

  it("a missing task is not created by a write without a read", async () => {
    const store = server.app.ctx.store;
    expect(await store.leaseUnread(99n, { messageId: "m", receiptHandle: "rh" }, 1_000)).toEqual({ current: undefined });
    expect(await store.succeedUnread(99n, "out", 0n)).toEqual({ current: undefined });
    expect(await store.getTask(99n)).toBeUndefined();
  });
});
