// The migration of a table of an earlier version to the owner shards (README
// "Upgrading"; service/src/migration/). The earlier layout is made here as it was: a
// table with the old index `byOwner` (owner, id) and no `byOwnerShard`, task items
// without `ownerKey`, and owners' counters already counting those tasks (the earlier
// create transaction wrote them). Its tasks are real ones, in every state, made by a
// server of this version on a table of its own and copied over without `ownerKey`.
//
// Then, as an operator would: a server of this version starts on the old table (on
// the emulators it adds the missing index itself, as CDK does with
// `-c legacyOwnerIndex=true`), `npm run migrate` backfills, and the old index is
// dropped. Checked: pages list the old tasks once the backfill is done, newest first;
// Total never changes (the backfill's writes are not counted by the table stream
// function) and counts a new task once; the old tasks go on through their states
// (delivery, the lease of a running task, a chain, a cancel); a second run writes
// nothing.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CreateTableCommand, DescribeTableCommand, type DynamoDBClient, waitUntilTableExists } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backfillOwnerKeys } from "../service/src/migration/owner-shards.js";
import { A } from "../service/src/store/item-codec.js";
import { createTableInput, INDEXES, LEGACY_INDEXES, TASK_KEY_PREFIX } from "../service/src/store/table-definition.js";
import { requireBuild } from "./harness/build.js";
import { ReceiveStream, ReportStream, ReportState, type WireTask } from "./support/client.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const owner = (BigInt(`0x${randomBytes(7).toString("hex")}`) + 2n ** 60n).toString();

let source: TestServer | undefined;
let server: TestServer;
let oldTable: string;
/** The owner's tasks by role, as created on the source table. */
const tasks: Record<string, WireTask> = {};
let ownerIds: string[] = [];

const byIdDescending = (a: string, b: string) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0);

beforeAll(async () => {
  source = await startTestServer({ channels: ["default"] });
  const { api } = source;
  const worker = new ReceiveStream(api, "default");
  const reports = new ReportStream(api);
  /** Creates a task and has the worker lease it (one credit, one task: the only one in the queue). */
  const leased = async (input: string, extra: Record<string, unknown> = {}) => {
    const task = await api.create({ Channel: "default", Owner: owner, Input: input, ...extra });
    worker.credit(1);
    const delivered = await worker.next();
    expect(delivered.ID).toBe(task.ID);
    return delivered;
  };
  try {
    const succeeded = await leased("will succeed");
    expect((await reports.report(succeeded.ID, ReportState.SUCCESS, "done", succeeded.LeaseToken)).State).toBe("200");
    // Two attempts (RetryMaxLimit 1), both failed: FAILURE.
    const failed = await leased("will fail", { RetryMaxLimit: "1" });
    expect((await reports.report(failed.ID, ReportState.FAILURE, "broke", failed.LeaseToken)).State).toBe("200");
    worker.credit(1);
    const again = await worker.next();
    expect(again.ID).toBe(failed.ID);
    expect((await reports.report(again.ID, ReportState.FAILURE, "broke again", again.LeaseToken)).State).toBe("200");
    const cancelled = await api.create({ Channel: "default", Owner: owner, Input: "cancelled" });
    expect((await api.cancel(cancelled.ID)).State).toBe("200");
    // A running chain head (leased, its lease token held by "its worker") with a successor waiting for it.
    const head = await leased("x".repeat(3_000)); // a large Input: kept in its own item
    const successor = await api.create({ Channel: "default", Owner: owner, Input: "after the head", Prior: head.ID });
    const waiting = await api.create({ Channel: "default", Owner: owner, Input: "waiting" });
    const toCancel = await api.create({ Channel: "default", Owner: owner, Input: "to cancel after the migration" });
    Object.assign(tasks, { succeeded, failed, cancelled, head, successor, waiting, toCancel });
    ownerIds = Object.values(tasks).map((task) => task.ID).sort(byIdDescending);
    // The counters are the earlier layout's too: wait until they count every task.
    await eventually(async () => (await api.queryByOwner(owner, "1", "0")).Total === String(ownerIds.length));
  } finally {
    worker.end();
    reports.end();
  }
  await source.stop();

  // The earlier layout: the old owner index instead of the owner shards, no ownerKey on task items.
  oldTable = `${source.settings.tableName}-v1`;
  const input = createTableInput(oldTable);
  input.GlobalSecondaryIndexes = [
    ...(input.GlobalSecondaryIndexes ?? []).filter((index) => index.IndexName !== INDEXES.byOwnerShard.name),
    {
      IndexName: LEGACY_INDEXES.byOwner.name,
      KeySchema: [
        { AttributeName: LEGACY_INDEXES.byOwner.partitionKey.name, KeyType: "HASH" },
        { AttributeName: LEGACY_INDEXES.byOwner.sortKey.name, KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: "KEYS_ONLY" },
    },
  ];
  input.AttributeDefinitions = [
    ...(input.AttributeDefinitions ?? []).filter((attribute) => attribute.AttributeName !== A.ownerKey),
    { AttributeName: LEGACY_INDEXES.byOwner.partitionKey.name, AttributeType: LEGACY_INDEXES.byOwner.partitionKey.type },
  ];
  const raw = source.dynamo as unknown as DynamoDBClient;
  await raw.send(new CreateTableCommand(input));
  await waitUntilTableExists({ client: raw, maxWaitTime: 60 }, { TableName: oldTable });
  const { Items = [] } = await source.dynamo.send(new ScanCommand({ TableName: source.settings.tableName, ConsistentRead: true }));
  const copied = Items.filter((item) => !String(item.pk).startsWith("S#")).map((item) => {
    const { [A.ownerKey]: _ownerKey, ...rest } = item;
    return rest;
  });
  for (let start = 0; start < copied.length; start += 25) {
    await source.dynamo.send(
      new BatchWriteCommand({ RequestItems: { [oldTable]: copied.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } })) } }),
    );
  }

  // A server of this version on the old table (and the same queues).
  server = await startTestServer({ tableName: oldTable, queuePrefix: source.settings.queuePrefix, channels: ["default"] });
}, 120_000);

afterAll(async () => {
  await source?.stop();
  await server?.stop();
});

async function indexNames(): Promise<string[]> {
  const { Table } = await (server.dynamo as unknown as DynamoDBClient).send(new DescribeTableCommand({ TableName: oldTable }));
  return (Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName ?? "");
}

async function ownerKeyOf(id: string): Promise<unknown> {
  const { Item } = await server.dynamo.send(new GetCommand({ TableName: oldTable, Key: { pk: `${TASK_KEY_PREFIX}${id}` }, ConsistentRead: true }));
  return Item?.[A.ownerKey];
}

function migrate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [`${ROOT}/service/dist/migration/main.js`, "--table", oldTable, ...args], {
    encoding: "utf8",
    env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("migrating a table of the earlier layout to the owner shards", () => {
  it("the server adds the new index beside the old one; Total counts the old tasks; pages list them only after the backfill", async () => {
    expect(await indexNames()).toEqual(expect.arrayContaining([INDEXES.byOwnerShard.name, LEGACY_INDEXES.byOwner.name]));
    const before = await server.api.queryByOwner(owner, "100", "0");
    expect(before).toMatchObject({ State: "200", Total: String(ownerIds.length), Data: [] });
    for (const id of ownerIds) expect(await ownerKeyOf(id)).toBeUndefined();
  });

  it("backfills ownerKey on every task item, once; then pages list every task newest first", async () => {
    const result = await backfillOwnerKeys(server.dynamo, oldTable, { segments: 3, concurrency: 2 });
    expect(result).toEqual({ found: ownerIds.length, updated: ownerIds.length, skipped: 0 });
    for (const id of ownerIds) expect(await ownerKeyOf(id)).toMatch(new RegExp(`^${owner}#\\d+$`));
    const page = await eventually(async () => {
      const answer = await server.api.queryByOwner(owner, "100", "0");
      return answer.Data.length === ownerIds.length ? answer : undefined;
    });
    expect(page.Total).toBe(String(ownerIds.length));
    expect(page.Data.map((task) => task.ID)).toEqual(ownerIds);
    const second = await server.api.queryByOwner(owner, "3", "3");
    expect(second.Data.map((task) => task.ID)).toEqual(ownerIds.slice(3, 6));
  });

  it("npm run migrate again writes nothing (prints what it did as JSON)", () => {
    requireBuild("npm run migrate");
    const run = migrate();
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split("\n").at(-1) ?? "")).toEqual({ table: oldTable, found: 0, updated: 0, skipped: 0 });
  });

  it("Total is not moved by the backfill, and counts a task created now exactly once", async () => {
    const created = await server.api.create({ Channel: "default", Owner: owner, Input: "created after the migration" });
    await eventually(async () => (await server.api.queryByOwner(owner, "1", "0")).Total === String(ownerIds.length + 1));
    // The reader handles the stream in order: the backfill's records came before this INSERT, none was counted.
    expect(server.stream?.stats.counted).toBe(1);
    ownerIds = [created.ID, ...ownerIds];
    expect((await server.api.queryByOwner(owner, "1", "0")).Data.map((task) => task.ID)).toEqual([created.ID]);
  });

  it("the old tasks go on: a running task's lease holds, its successor runs, a waiting task is delivered, a cancel works", async () => {
    const { head, successor, waiting, toCancel } = tasks as Record<string, WireTask>;
    expect((await server.api.cancel(toCancel!.ID)).State).toBe("200");
    const reports = new ReportStream(server.api);
    const worker = new ReceiveStream(server.api, "default");
    try {
      // The head's worker reports with the lease it got before the migration (fencing carried over).
      expect((await reports.report(head!.ID, ReportState.SUCCESS, "head done", head!.LeaseToken)).State).toBe("200");
      const delivered: WireTask[] = [];
      worker.credit(3);
      // The waiting task, the successor (queued once the head succeeded) and the task created after the migration.
      for (let i = 0; i < 3; i++) delivered.push(await worker.next(15_000));
      expect(delivered.map((task) => task.ID).sort(byIdDescending)).toEqual([waiting!.ID, successor!.ID, ownerIds[0]!].sort(byIdDescending));
      for (const task of delivered) expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
      expect(await worker.nothingWithin(1_500)).toBe(true);
    } finally {
      worker.end();
      reports.end();
    }
    const states = Object.fromEntries(
      await Promise.all(Object.entries(tasks).map(async ([role, task]) => [role, (await server.api.get(task.ID)).State] as const)),
    );
    expect(states).toEqual({
      succeeded: "SUCCESS",
      failed: "FAILURE",
      cancelled: "CANCEL",
      head: "SUCCESS",
      successor: "SUCCESS",
      waiting: "SUCCESS",
      toCancel: "CANCEL",
    });
    expect((await server.api.get(head!.ID)).Input).toBe("x".repeat(3_000));
  });

  it("npm run migrate -- --drop-legacy-index removes the old index; pages and Total stay", async () => {
    const run = migrate("--drop-legacy-index");
    expect(run.status, run.stderr).toBe(0);
    await eventually(async () => !(await indexNames()).includes(LEGACY_INDEXES.byOwner.name), 30_000, 500);
    expect((await indexNames()).sort()).toEqual(Object.values(INDEXES).map((index) => index.name).sort());
    const page = await server.api.queryByOwner(owner, "100", "0");
    expect(page.Total).toBe(String(ownerIds.length));
    expect(page.Data.map((task) => task.ID)).toEqual(ownerIds);
  });
});
