// QueryTaskByOwner's page over the owner's shards (TaskStore.ownerTaskIds): the
// merged answer must be exactly the owner's IDs newest first, whatever way the tasks
// are spread over the shards (evenly, all in one, skewed), for any Offset and Limit.
// The index is played by a fake DynamoDB client that answers the store's queries
// from sorted lists and counts the keys it reads.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { describe, expect, it } from "vitest";
import { TaskStore } from "../../service/src/store/task-store.js";
import { INDEXES, OWNER_SHARDS, ownerKeyOfShard } from "../../service/src/store/table-definition.js";

const OWNER = 77n;

/** A fake of the byOwnerShard index: ownerKey → IDs; answers descending Queries with Limit and paging. */
class FakeIndex {
  readonly queries: { key: string; limit: number; returned: number }[] = [];

  constructor(private readonly byKey: Map<string, bigint[]>) {}

  get client(): DynamoDBDocumentClient {
    return { send: async (command: unknown) => this.answer(command) } as unknown as DynamoDBDocumentClient;
  }

  private answer(command: unknown) {
    if (!(command instanceof QueryCommand)) throw new Error("only Query is expected");
    const input = command.input;
    expect(input.IndexName).toBe(INDEXES.byOwnerShard.name);
    expect(input.ScanIndexForward).toBe(false);
    const key = String(input.ExpressionAttributeValues?.[":key"]);
    const ids = [...(this.byKey.get(key) ?? [])].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    const after = input.ExclusiveStartKey?.id as bigint | undefined;
    const from = after === undefined ? 0 : ids.findIndex((id) => id < after);
    const limit = input.Limit ?? 1000;
    expect(limit).toBeGreaterThan(0);
    const page = from < 0 ? [] : ids.slice(from, from + limit);
    this.queries.push({ key, limit, returned: page.length });
    const more = from >= 0 && from + page.length < ids.length;
    return { Items: page.map((id) => ({ id, pk: `T#${id}`, ownerKey: key })), LastEvaluatedKey: more ? { id: page.at(-1) } : undefined };
  }

  get keysRead(): number {
    return this.queries.reduce((sum, query) => sum + query.returned, 0);
  }
}

/** `count` IDs (descending order known), placed in shards by `place`. */
function spread(count: number, place: (i: number) => number): { ids: bigint[]; index: FakeIndex } {
  const byKey = new Map<string, bigint[]>();
  const ids: bigint[] = [];
  for (let i = 0; i < count; i++) {
    const id = 1_000_000n + BigInt(i) * 7n;
    ids.push(id);
    const key = ownerKeyOfShard(OWNER, place(i));
    byKey.set(key, [...(byKey.get(key) ?? []), id]);
  }
  return { ids: ids.reverse(), index: new FakeIndex(byKey) };
}

const layouts: Record<string, (i: number) => number> = {
  "round robin": (i) => i % OWNER_SHARDS,
  "all in one shard": () => 11,
  "newest in one shard, older spread": (i) => (i >= 150 ? 3 : i % OWNER_SHARDS),
  "two shards": (i) => (i % 5 === 0 ? 0 : 15),
  "pseudo-random": (i) => (i * 2654435761) % OWNER_SHARDS,
};

describe("TaskStore.ownerTaskIds: the owner's shards merged newest first", () => {
  for (const [name, place] of Object.entries(layouts)) {
    it(`is exact for every Offset and Limit (${name})`, async () => {
      const { ids, index } = spread(200, place);
      const store = new TaskStore(index.client, "tasks");
      for (const limit of [1n, 3n, 20n, 100n]) {
        for (const offset of [0n, 1n, 19n, 20n, 57n, 150n, 199n, 200n, 250n]) {
          const page = await store.ownerTaskIds(OWNER, offset, limit);
          expect(page, `offset ${offset} limit ${limit}`).toEqual(ids.slice(Number(offset), Number(offset + limit)));
        }
      }
    });
  }

  it("an owner with no tasks: an empty page", async () => {
    const { index } = spread(0, () => 0);
    expect(await new TaskStore(index.client, "tasks").ownerTaskIds(OWNER, 0n, 20n)).toEqual([]);
  });

  it("Offset 0 is one round of one small query per shard when the tasks are spread", async () => {
    const { ids, index } = spread(5_000, layouts["pseudo-random"] as (i: number) => number);
    const store = new TaskStore(index.client, "tasks");
    expect(await store.ownerTaskIds(OWNER, 0n, 20n)).toEqual(ids.slice(0, 20));
    expect(index.queries).toHaveLength(OWNER_SHARDS);
    expect(new Set(index.queries.map((query) => query.key)).size).toBe(OWNER_SHARDS);
    expect(index.keysRead).toBeLessThanOrEqual(OWNER_SHARDS * 6);
  });

  it("a deep Offset reads about 1.25 times Offset + Limit keys in all, not 16 times", async () => {
    const { ids, index } = spread(5_000, layouts["pseudo-random"] as (i: number) => number);
    const store = new TaskStore(index.client, "tasks");
    expect(await store.ownerTaskIds(OWNER, 3_000n, 100n)).toEqual(ids.slice(3_000, 3_100));
    expect(index.keysRead).toBeLessThanOrEqual(Math.ceil(3_100 * 1.25) + OWNER_SHARDS * 5);
    expect(index.keysRead).toBeGreaterThanOrEqual(3_100);
  });
});

describe("TaskStore.ownerTaskIds and the call's signal", () => {
  it("reads nothing once the signal is aborted, and stops between rounds when it is aborted meanwhile", async () => {
    const { index } = spread(2_000, layouts["all in one shard"] as (i: number) => number);
    const store = new TaskStore(index.client, "t");
    const aborted = new AbortController();
    aborted.abort(new Error("deadline"));
    await expect(store.ownerTaskIds(OWNER, 1_500n, 20n, aborted.signal)).rejects.toThrow("deadline");
    expect(index.queries).toHaveLength(0);
    // Aborted while the first query is answered: the shards' next queries do not go out.
    const stop = new AbortController();
    const client = index.client;
    const aborting = {
      send: async (command: unknown) => {
        const answer = await client.send(command as never);
        stop.abort(new Error("deadline"));
        return answer;
      },
    } as unknown as typeof client;
    await expect(new TaskStore(aborting, "t").ownerTaskIds(OWNER, 1_500n, 20n, stop.signal)).rejects.toThrow("deadline");
    // The first round sent one query per shard (all at once); the one shard holding the tasks would need
    // many more pages of 1,000 for Offset 1,500, and none went out.
    expect(index.queries).toHaveLength(16);
  });
});

