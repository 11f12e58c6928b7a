// The backend usage counters (GET /usage; `npm run bench` turns them into cost per
// task): DynamoDB capacity units as DynamoDB reports them, indexes included, and SQS
// requests by action; and the partition-load counter (GET/POST/DELETE
// /usage/partitions): those units per partition key value of the table and its indexes.
import { PutCommand, TransactWriteCommand, GetCommand, UpdateCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../service/src/local/free-port.js";
import { BackendUsage, type UsageSnapshot } from "../service/src/metrics/backend-usage.js";
import type { PartitionFamilyLoad, PartitionLoadSnapshot } from "../service/src/metrics/partition-load.js";
import { createDocumentClient } from "../service/src/store/dynamo-client.js";
import { startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ settings: { httpPort: 0 } });
});
afterAll(async () => server?.stop());

describe("backend usage", () => {
  it("counts capacity units per call, indexes included, and 2 per item of a transaction", async () => {
    const usage = new BackendUsage();
    const db = createDocumentClient();
    usage.attachDynamoDb(db);
    const table = server.settings.tableName;
    try {
      // A task-shaped item with both index keys: 1 unit for the table, 1 for each index.
      await db.send(new PutCommand({ TableName: table, Item: { pk: "T#1", id: 1n, ownerKey: "5#0", outboxShard: 1, outboxDueAt: 1 } }));
      let snapshot = usage.snapshot();
      expect(snapshot.dynamodb).toMatchObject({ calls: 1, writeUnits: 3, readUnits: 0, byOperation: { PutItem: { calls: 1, units: 3 } } });
      // Three items without index keys: 2 units each, whatever the emulator reports.
      await db.send(
        new TransactWriteCommand({
          TransactItems: ["X#1", "X#2", "X#3"].map((pk) => ({ Put: { TableName: table, Item: { pk } } })),
        }),
      );
      snapshot = usage.snapshot();
      expect(snapshot.dynamodb.byOperation.TransactWriteItems).toEqual({ calls: 1, units: 6 });
      await db.send(new GetCommand({ TableName: table, Key: { pk: "T#1" }, ConsistentRead: true }));
      expect(usage.snapshot().dynamodb).toMatchObject({ calls: 3, readUnits: 1, writeUnits: 9 });
      // A write whose condition fails is billed too (at least 1 unit) though it reports nothing.
      await expect(
        db.send(new PutCommand({ TableName: table, Item: { pk: "T#1" }, ConditionExpression: "attribute_not_exists(pk)" })),
      ).rejects.toThrow();
      expect(usage.snapshot().dynamodb).toMatchObject({ calls: 4, writeUnits: 10 });
    } finally {
      db.destroy();
    }
  });

  it("counts every attempt of an SQS call (SQS bills each request)", async () => {
    const usage = new BackendUsage();
    const port = await freePort(); // nothing listens there
    const sqs = new SQSClient({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 2, useQueueUrlAsEndpoint: false });
    usage.attachSqs(sqs);
    try {
      await expect(sqs.send(new GetQueueUrlCommand({ QueueName: "nowhere" }))).rejects.toThrow();
    } finally {
      sqs.destroy();
    }
    expect(usage.snapshot().sqs).toEqual({ requests: 2, byAction: { GetQueueUrl: 2 } });
  });

  it("the server serves its counters at GET /usage: a task's create shows up as DynamoDB units and an SQS send", async () => {
    const read = async () => (await (await fetch(`http://127.0.0.1:${server.app.httpPort}/usage`)).json()) as UsageSnapshot;
    const before = await read();
    expect((await server.api.createTask({ Channel: "default", Input: "counted" })).State).toBe("200");
    const after = await read();
    expect(after.dynamodb.writeUnits).toBeGreaterThan(before.dynamodb.writeUnits);
    // The usual create is one conditional PutItem.
    expect((after.dynamodb.byOperation.PutItem?.calls ?? 0) - (before.dynamodb.byOperation.PutItem?.calls ?? 0)).toBe(1);
    expect((after.sqs.byAction.SendMessageBatch ?? 0) - (before.sqs.byAction.SendMessageBatch ?? 0)).toBe(1);
    expect(after.cpuMicros).toBeGreaterThan(before.cpuMicros);
  });

  it("counts units per partition key while a window is open: table keys by item, index keys by the entries that enter and leave them", async () => {
    const usage = new BackendUsage();
    const db = createDocumentClient();
    usage.attachDynamoDb(db);
    const table = server.settings.tableName;
    try {
      await db.send(new PutCommand({ TableName: table, Item: { pk: "T#7", id: 7n, ownerKey: "6#0", outboxShard: 1, outboxDueAt: 1 } }));
      expect(usage.partitions.snapshot().families).toEqual([]); // off until started
      usage.partitions.start();
      await db.send(new PutCommand({ TableName: table, Item: { pk: "T#8", id: 8n, ownerKey: "6#3", outboxShard: 3, outboxDueAt: 1 } }));
      // The marker moves to another shard: it leaves shard 3 and enters shard 5 (1 unit each).
      const move = { "#shard": "outboxShard", "#due": "outboxDueAt" };
      await db.send(new UpdateCommand({ TableName: table, Key: { pk: "T#8" }, UpdateExpression: "SET #shard = :s, #due = :d", ExpressionAttributeNames: move, ExpressionAttributeValues: { ":s": 5, ":d": 2 } }));
      // The removal goes to the shard the item was written with.
      await db.send(new UpdateCommand({ TableName: table, Key: { pk: "T#8" }, UpdateExpression: "REMOVE #shard, #due", ExpressionAttributeNames: move }));
      await db.send(new QueryCommand({ TableName: table, IndexName: "byOutboxDue", KeyConditionExpression: "#shard = :s", ExpressionAttributeNames: { "#shard": "outboxShard" }, ExpressionAttributeValues: { ":s": 5 } }));
      await db.send(
        new TransactWriteCommand({
          TransactItems: ["C#6#0", "C#6#1"].map((pk) => ({ Update: { TableName: table, Key: { pk }, UpdateExpression: "ADD #c :one", ExpressionAttributeNames: { "#c": "count" }, ExpressionAttributeValues: { ":one": 1n } } })),
        }),
      );
      // An item written before the window: its marker's removal has no known shard.
      await db.send(new UpdateCommand({ TableName: table, Key: { pk: "T#7" }, UpdateExpression: "REMOVE #shard, #due", ExpressionAttributeNames: move }));
      const snapshot = usage.partitions.snapshot();
      const family = (space: string, name: string) => snapshot.families.find((entry) => entry.space === space && entry.family === name);
      expect(family("table", "T#")).toMatchObject({ wru: 4, writes: 4, writeKeys: 2, hottestWrite: { key: "T#8", units: 3, events: 3 } });
      expect(family("table", "C#")).toMatchObject({ wru: 4, writes: 2, writeKeys: 2, hottestWrite: { units: 2, events: 1 } });
      expect(family("byOwnerShard", "*")).toMatchObject({ attribute: "ownerKey", wru: 1, writes: 1, writeKeys: 1, hottestWrite: { key: "6#3", units: 1 } });
      const outbox = family("byOutboxDue", "*") as PartitionFamilyLoad;
      // Shard 3: entered and left (2 units, 1 event); shard 5: entered and left (2 units, 1 event), then read.
      expect(outbox).toMatchObject({ attribute: "outboxShard", wru: 4, writes: 2, writeKeys: 2, reads: 1, readKeys: 1, hottestRead: { key: "5" } });
      expect(outbox.hottestWrite?.units).toBe(2);
      expect(snapshot.unattributed.wru).toBe(1);
      usage.partitions.reset();
      expect(usage.partitions.snapshot()).toMatchObject({ counting: false, families: [] });
    } finally {
      db.destroy();
    }
  });

  it("the server counts per partition key between POST and DELETE /usage/partitions", async () => {
    const url = `http://127.0.0.1:${server.app.httpPort}/usage/partitions`;
    const read = async () => (await (await fetch(url)).json()) as PartitionLoadSnapshot;
    expect((await fetch(url, { method: "POST" })).status).toBe(204);
    expect((await server.api.createTask({ Channel: "default", Input: "counted", Owner: "12" })).State).toBe("200");
    const snapshot = await read();
    expect(snapshot.counting).toBe(true);
    expect(snapshot.families.find((entry) => entry.family === "T#")?.wru).toBeGreaterThanOrEqual(1);
    expect(snapshot.families.find((entry) => entry.space === "byOwnerShard")?.hottestWrite?.key).toMatch(/^12#\d+$/);
    expect((await fetch(url, { method: "DELETE" })).status).toBe(204);
    expect(await read()).toMatchObject({ counting: false, families: [] });
    expect((await fetch(url, { method: "PUT" })).status).toBe(405);
  });
});
