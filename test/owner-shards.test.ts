// QueryTaskByOwner over the owner's shards (README "QueryTaskByOwner"): one owner's
// index entries are spread over OWNER_SHARDS `ownerKey` partitions of the index
// byOwnerShard, so that no partition key takes all of one owner's writes, and a page
// merges them, newest first. The tasks are created on two replicas (their IDs carry
// different random bits); the test checks on the stored items that every shard holds
// some, then that every page is exactly the slice of the owner's IDs in descending
// order that SPEC §3 asks for (Limit 0 → 20, Limit over 100 → 100, Offset paging,
// Offset past the end). Total is counted from the table's stream and may lag a create
// by up to 2 s: the pages are checked against it once it has caught up.
import { randomBytes } from "node:crypto";
import { BatchGetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { INDEXES, OWNER_SHARDS, ownerKeyOf, ownerKeyOfShard } from "../service/src/store/table-definition.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;
let replica: TestServer;

const owner = (BigInt(`0x${randomBytes(7).toString("hex")}`) + 2n ** 62n).toString();
/** The owner's task IDs, newest (highest) first. */
let ids: string[] = [];
/** At least this many tasks; more if the first ones did not reach every shard yet. */
const AT_LEAST = 150;

const byIdDescending = (a: string, b: string) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0);

beforeAll(async () => {
  server = await startTestServer({ channels: ["default"] });
  replica = await startTestServer({ replicaOf: server });
  // Batches of 10 creates at once, alternating replicas, until every shard has tasks (the shard is a hash of the ID).
  const created: string[] = [];
  const shards = new Set<string>();
  while (created.length < AT_LEAST || shards.size < OWNER_SHARDS) {
    if (created.length >= 1_000) throw new Error(`1,000 tasks reached only ${shards.size} of ${OWNER_SHARDS} owner shards`);
    const batch = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? server : replica).api.create({ Channel: "default", Owner: owner, Input: `task ${created.length + i}` })),
    );
    for (const task of batch) {
      created.push(task.ID);
      shards.add(ownerKeyOf(BigInt(owner), BigInt(task.ID)));
    }
  }
  ids = created.sort(byIdDescending);
  expect(new Set(ids).size).toBe(ids.length);
});

afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

/** The owner's Total, once it counts every task created (the stream counts them within about 2 s). */
async function settledTotal(): Promise<string> {
  let total = "";
  await eventually(async () => {
    total = (await server.api.queryByOwner(owner, "1", "0")).Total;
    return total === String(ids.length);
  }, 10_000).catch(() => undefined); // the assertion below says what it was
  expect(total).toBe(String(ids.length));
  return total;
}

describe("one owner's tasks over the owner shards", () => {
  it("are spread over every one of the 16 shards: each task item carries its ownerKey, and each shard's index partition lists its tasks", async () => {
    expect(OWNER_SHARDS).toBe(16);
    // The task items as stored (consistent reads), 100 at a time.
    const items: Record<string, unknown>[] = [];
    for (let start = 0; start < ids.length; start += 100) {
      const keys = ids.slice(start, start + 100).map((id) => ({ pk: `T#${id}` }));
      const result = await server.dynamo.send(new BatchGetCommand({ RequestItems: { [server.settings.tableName]: { Keys: keys, ConsistentRead: true } } }));
      items.push(...(result.Responses?.[server.settings.tableName] ?? []));
      expect(result.UnprocessedKeys?.[server.settings.tableName]).toBeUndefined();
    }
    expect(items).toHaveLength(ids.length);
    const perShard = new Map<string, string[]>();
    for (const item of items) {
      const id = String(item.id);
      expect(item.ownerKey).toBe(ownerKeyOf(BigInt(owner), BigInt(id)));
      perShard.set(item.ownerKey as string, [...(perShard.get(item.ownerKey as string) ?? []), id]);
    }
    const allShards = Array.from({ length: OWNER_SHARDS }, (_, shard) => ownerKeyOfShard(BigInt(owner), shard));
    expect([...perShard.keys()].sort()).toEqual([...allShards].sort());
    // No shard holds most of them (a hash of the ID, not the ID's low bits, picks the shard).
    for (const [key, shardIds] of perShard) expect(shardIds.length, key).toBeLessThan(ids.length / 4);

    // Each shard is its own partition of the index, newest first.
    for (const key of allShards) {
      const listed = await eventually(async () => {
        const page = await server.dynamo.send(
          new QueryCommand({
            TableName: server.settings.tableName,
            IndexName: INDEXES.byOwnerShard.name,
            KeyConditionExpression: "ownerKey = :key",
            ExpressionAttributeValues: { ":key": key },
            ScanIndexForward: false,
          }),
        );
        const found = (page.Items ?? []).map((item) => String(item.id));
        return found.length === perShard.get(key)?.length ? found : undefined;
      });
      expect(listed).toEqual([...(perShard.get(key) ?? [])].sort(byIdDescending));
    }
  });

  it("QueryTaskByOwner lists them newest first across the shards: ID descending, exactly", async () => {
    await settledTotal();
    const first = await server.api.queryByOwner(owner, "100", "0");
    expect(first).toMatchObject({ State: "200", Total: String(ids.length) });
    expect(first.Data.map((task) => task.ID)).toEqual(ids.slice(0, 100));
    for (const task of first.Data) expect(task.Owner).toBe(owner);
    const rest = await replica.api.queryByOwner(owner, "100", "100");
    expect(rest.Data.map((task) => task.ID)).toEqual(ids.slice(100, 200));
  });

  it("uses a Limit of 20 when Limit is 0", async () => {
    const total = await settledTotal();
    for (const offset of ["0", "33"]) {
      const page = await server.api.queryByOwner(owner, "0", offset);
      expect(page).toMatchObject({ State: "200", Total: total });
      expect(page.Data.map((task) => task.ID)).toEqual(ids.slice(Number(offset), Number(offset) + 20));
    }
  });

  it("clamps a Limit over 100 to 100", async () => {
    const total = await settledTotal();
    for (const limit of ["101", "5000", "18446744073709551615"]) {
      const page = await server.api.queryByOwner(owner, limit, "1");
      expect(page).toMatchObject({ State: "200", Total: total });
      expect(page.Data.map((task) => task.ID)).toEqual(ids.slice(1, 101));
    }
  });

  it("pages with Offset: the pages are disjoint and together are every task, in order", async () => {
    const total = await settledTotal();
    for (const limit of [1, 13, 100]) {
      const pages: string[][] = [];
      for (let offset = 0; offset < ids.length; offset += limit) {
        const page = await (pages.length % 2 === 0 ? server : replica).api.queryByOwner(owner, String(limit), String(offset));
        expect(page).toMatchObject({ State: "200", Total: total });
        expect(page.Data).toHaveLength(Math.min(limit, ids.length - offset));
        pages.push(page.Data.map((task) => task.ID));
        if (limit === 1 && offset === 20) offset = ids.length - 2; // one ID at a time: the first 21, then the last one
      }
      const seen = pages.flat();
      expect(new Set(seen).size, `Limit ${limit}: disjoint`).toBe(seen.length);
      if (limit === 1) expect(seen).toEqual([...ids.slice(0, 21), ids.at(-1)]);
      else expect(seen, `Limit ${limit}: complete and in order`).toEqual(ids);
    }
  });

  it("answers an empty page with the right Total for an Offset at or past the end", async () => {
    const total = await settledTotal();
    for (const offset of [String(ids.length), String(ids.length + 1), "1000000", "18446744073709551615"]) {
      const page = await server.api.queryByOwner(owner, "10", offset);
      expect(page).toMatchObject({ State: "200", Total: total, Data: [] });
    }
    const last = await server.api.queryByOwner(owner, "10", String(ids.length - 1));
    expect(last.Data.map((task) => task.ID)).toEqual([ids.at(-1)]);
  });
});
