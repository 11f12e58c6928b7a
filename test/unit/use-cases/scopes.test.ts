// Scoped tokens in the use cases (tasks/scope.ts), on the in-memory backends: a task
// outside the caller's scope is answered exactly as an absent one (same State, same
// Message), and nothing is written for it; an unscoped caller is unaffected.
import { describe, expect, it } from "vitest";
import { reportResult } from "../../../service/src/core/reports.js";
import type { StoredTask } from "../../../service/src/core/task-repository.js";
import type { ReportKind } from "../../../service/src/tasks/rules.js";
import type { TaskScope } from "../../../service/src/tasks/scope.js";
import { MemoryCore, rejection } from "../../support/memory-context.js";
import { expectLeaseToken } from "../../support/lease-tokens.js";

const OWNER_42: TaskScope = { owners: new Set([42n]) };
const DEFAULT_CHANNEL: TaskScope = { channels: new Set(["default"]) };

/** The State and Message of a rejected use case. */
async function answerOf(promise: Promise<unknown>): Promise<[number, string]> {
  const refused = await rejection(promise);
  return [refused.status, refused.message];
}

describe("a producer scoped to owners", () => {
  it("reads its owners' tasks by ID and HashCode; another owner's are 404 with an absent task's Message", async () => {
    const core = new MemoryCore();
    const mine = await core.create({ owner: 42n });
    const theirs = await core.create({ owner: 7n, hashCode: "theirs-1" });
    expect((await core.tasks.getById(mine.id, OWNER_42)).id).toBe(mine.id);
    expect((await core.tasks.getByHashCode(mine.hashCode, OWNER_42)).id).toBe(mine.id);
    const missingId = theirs.id + 1_000n;
    expect(await answerOf(core.tasks.getById(theirs.id, OWNER_42))).toEqual([404, `Task ${theirs.id} does not exist`]);
    expect((await answerOf(core.tasks.getById(missingId, OWNER_42)))[1]).toBe(`Task ${missingId} does not exist`);
    expect(await answerOf(core.tasks.getByHashCode("nobody-has-it", OWNER_42))).toEqual([404, `No task has HashCode "nobody-has-it"`]);
    expect(await answerOf(core.tasks.getByHashCode("theirs-1", OWNER_42))).toEqual([404, `No task has HashCode "theirs-1"`]);
    const generated = await core.create({ owner: 7n });
    expect(await answerOf(core.tasks.getByHashCode(generated.hashCode, OWNER_42))).toEqual([404, `No task has HashCode "${generated.hashCode}"`]);
    // Unscoped: everything, as before.
    expect((await core.tasks.getById(theirs.id)).id).toBe(theirs.id);
  });

  it("lists its owners' tasks; another owner reads as an owner without tasks, without reading anything", async () => {
    const core = new MemoryCore();
    for (const owner of [42n, 42n, 7n]) await core.create({ owner });
    const page = { limit: 20n, offset: 0n };
    expect((await core.tasks.listByOwner(42n, page, undefined, OWNER_42)).total).toBe(2n);
    const calls = core.watchCalls();
    expect(await core.tasks.listByOwner(7n, page, undefined, OWNER_42)).toEqual({ total: 0n, tasks: [], cut: false });
    expect(await core.tasks.listByOwner(7n, { limit: 20n, offset: 5n }, undefined, OWNER_42)).toEqual(await core.tasks.listByOwner(99n, { limit: 20n, offset: 5n }));
    expect(calls()).toEqual(["countOwnerTasks"]); // the last call: owner 99, unscoped
    expect((await core.tasks.listByOwner(7n, page)).total).toBe(1n);
    // A scope of channels cannot limit an owner's page (the Authorizer refuses such callers before).
    await expect(core.tasks.listByOwner(42n, page, undefined, DEFAULT_CHANNEL)).rejects.toThrow(/cannot be limited to channels/);
  });

  it("cancels its owners' tasks; another owner's is 404 and stays as it was", async () => {
    const core = new MemoryCore();
    const theirs = await core.create({ owner: 7n });
    const calls = core.watchCalls();
    expect(await answerOf(core.tasks.cancel(theirs.id, OWNER_42))).toEqual([404, `Task ${theirs.id} does not exist`]);
    expect(calls()).toEqual(["getTask"]);
    expect(core.task(theirs.id).state).toBe("WAITING");
    const mine = await core.create({ owner: 42n });
    expect(await core.tasks.cancel(mine.id, OWNER_42)).toMatchObject({ tasks: [{ id: mine.id, state: "CANCEL" }], hidden: 0 });
  });

  it("cancelling its task cancels the rest of the chain whoever owns it, but shows only its owners' tasks", async () => {
    const core = new MemoryCore();
    const head = await core.create({ owner: 42n });
    const other = await core.create({ owner: 7n, prior: head.id }); // linked by an unscoped producer
    const last = await core.create({ owner: 42n, prior: other.id });
    const result = await core.tasks.cancel(head.id, OWNER_42);
    expect(result.tasks.map((task) => task.id)).toEqual([head.id, last.id]);
    expect(result.hidden).toBe(1);
    expect([core.task(head.id).state, core.task(other.id).state, core.task(last.id).state]).toEqual(["CANCEL", "CANCEL", "CANCEL"]);
  });

  it("HashCodes on create: a generated one of another owner's task reads as naming no task (400); a caller's key is unique across owners (409)", async () => {
    const core = new MemoryCore();
    const theirs = await core.create({ owner: 7n });
    await core.create({ owner: 7n, hashCode: "shared-key" });
    const request = { owner: 42n, channel: "default", input: "", hashCode: "", retryMaxLimit: 3n, prior: 0n, runAtMs: 0, priority: 1, concurrencyKey: "" };
    const asMissing = await answerOf(core.tasks.create({ ...request, hashCode: theirs.hashCode }, () => {}, OWNER_42));
    expect(asMissing[0]).toBe(400);
    expect(asMissing[1]).toMatch(/has the form of a generated one \(with "~"\) but names no task/);
    expect(await answerOf(core.tasks.create({ ...request, hashCode: theirs.hashCode }))).toEqual([409, `A task with HashCode "${theirs.hashCode}" already exists; nothing was created`]);
    // A caller's key: one task per key, whoever owns it; the answer names only the key the caller sent.
    const taken = await rejection(core.tasks.create({ ...request, hashCode: "shared-key" }, () => {}, OWNER_42));
    expect([taken.status, taken.data]).toEqual([409, "shared-key"]);
    expect(await answerOf(core.tasks.getByHashCode("shared-key", OWNER_42))).toEqual([404, `No task has HashCode "shared-key"`]);
  });

  it("a Prior of another owner is 404, as a missing Prior is; nothing is created or linked", async () => {
    const core = new MemoryCore();
    const theirs = await core.create({ owner: 7n });
    const request = { owner: 42n, channel: "default", input: "", hashCode: "", retryMaxLimit: 3n, prior: theirs.id, runAtMs: 0, priority: 1, concurrencyKey: "" };
    expect(await answerOf(core.tasks.create(request, () => {}, OWNER_42))).toEqual([404, `Prior task ${theirs.id} does not exist`]);
    expect(core.task(theirs.id).next).toBe(0n);
    const mine = await core.create({ owner: 42n });
    const hashCode = await core.tasks.create({ ...request, prior: mine.id }, () => {}, OWNER_42);
    expect((await core.tasks.getByHashCode(hashCode, OWNER_42)).prior).toBe(mine.id);
  });
});

describe("a worker scoped to channels", () => {
  const report = (core: MemoryCore, task: StoredTask, kind: ReportKind, scope: TaskScope) =>
    reportResult(core.ctx, task.id, kind, "out", expectLeaseToken(task.lease?.token), scope);

  it("reports on its channels' tasks; another channel's is 404 as an absent task, for every code, and nothing is written", async () => {
    const core = new MemoryCore();
    const other = await core.lease((await core.create({ channel: "other" })).id);
    const before = core.task(other.id);
    for (const kind of ["SUCCESS", "FAILURE", "CANCEL", "PROCEEDING"] as const) {
      expect(await answerOf(report(core, other, kind, DEFAULT_CHANNEL)), kind).toEqual([404, `Task ${other.id} does not exist`]);
    }
    expect(core.task(other.id)).toEqual(before);
    // The same report without the scope acts.
    expect((await report(core, other, "SUCCESS", { channels: new Set(["other"]) })).message).toBe("Task succeeded");
    const mine = await core.lease((await core.create()).id);
    expect((await report(core, mine, "PROCEEDING", DEFAULT_CHANNEL)).message).toMatch(/^Lease extended/);
    expect((await report(core, mine, "SUCCESS", DEFAULT_CHANNEL)).message).toBe("Task succeeded");
  });

  it("the SUCCESS written without a read is conditioned on the scope too", async () => {
    const core = new MemoryCore();
    const other = await core.lease((await core.create({ channel: "other" })).id);
    const outcome = await core.store.succeedUnread(other.id, "out", expectLeaseToken(other.lease?.token), DEFAULT_CHANNEL);
    expect(outcome).toEqual({ current: core.task(other.id) });
    expect(core.task(other.id).state).toBe("PROCEEDING");
    const ownersOnly = await core.store.succeedUnread(other.id, "out", expectLeaseToken(other.lease?.token), { owners: new Set([1n]) });
    expect("written" in ownersOnly).toBe(true);
  });
});
