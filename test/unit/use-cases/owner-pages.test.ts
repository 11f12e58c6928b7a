// QueryTaskByOwner's rules that need an owner with very many tasks (TaskService.listByOwner
// on the in-memory backends): the deepest Offset, and an Offset past the end.
import { describe, expect, it } from "vitest";
import { MAX_OFFSET } from "../../../service/src/tasks/rules.js";
import { MemoryCore, rejection } from "../../support/memory-context.js";

/** An owner said to have `total` tasks, with the index reads counted. */
function ownerWith(total: bigint) {
  const core = new MemoryCore();
  let indexReads = 0;
  core.store.countOwnerTasks = async () => total;
  const read = core.store.ownerTaskIds.bind(core.store);
  core.store.ownerTaskIds = async (...args) => ((indexReads += 1), read(...args));
  return { core, indexReads: () => indexReads };
}

describe("QueryTaskByOwner pages", () => {
  it("an Offset within the owner's tasks but deeper than MAX_OFFSET is 400, read nothing", async () => {
    const { core, indexReads } = ownerWith(MAX_OFFSET * 3n);
    const error = await rejection(core.tasks.listByOwner(7n, { offset: MAX_OFFSET + 1n, limit: 20n }));
    expect(error.status).toBe(400);
    expect(error.message).toBe(`Offset is ${MAX_OFFSET + 1n}; pages go down to Offset ${MAX_OFFSET} (a deeper page would read all the index entries before it)`);
    expect(indexReads()).toBe(0);
    // MAX_OFFSET itself is read.
    expect(await core.tasks.listByOwner(7n, { offset: MAX_OFFSET, limit: 20n })).toMatchObject({ total: MAX_OFFSET * 3n, cut: false });
    expect(indexReads()).toBe(1);
  });

  it("an Offset at or past Total is an empty page with Total, however deep (SPEC §3), without reading the index", async () => {
    const { core, indexReads } = ownerWith(5n);
    for (const offset of [5n, MAX_OFFSET + 1n, 2n ** 64n - 1n]) {
      expect(await core.tasks.listByOwner(7n, { offset, limit: 20n })).toEqual({ total: 5n, tasks: [], cut: false });
    }
    expect(indexReads()).toBe(0);
  });

  it("stops reading the index once the call's signal is aborted (its deadline answer went out)", async () => {
    const { core } = ownerWith(50n);
    const stop = new AbortController();
    stop.abort(new Error("the call's deadline answer went out"));
    await expect(core.tasks.listByOwner(7n, { offset: 10n, limit: 20n }, stop.signal)).rejects.toThrow("the call's deadline answer went out");
  });
});
