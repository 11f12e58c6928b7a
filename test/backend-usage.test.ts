// The backend usage counters (GET /usage; `npm run bench` turns them into cost per
// task): DynamoDB capacity units as DynamoDB reports them, indexes included, and SQS
// requests by action.
import { PutCommand, TransactWriteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { GetQueueUrlCommand, SQSClient } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../service/src/local/free-port.js";
import { BackendUsage, type UsageSnapshot } from "../service/src/metrics/backend-usage.js";
import { createDocumentClient } from "../service/src/store/dynamo-client.js";
import { startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ settings: { healthHttpPort: 0 } });
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
      await db.send(new PutCommand({ TableName: table, Item: { pk: "T#1", id: 1n, owner: 5n, outboxShard: 1, outboxDueAt: 1 } }));
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
    const read = async () => (await (await fetch(`http://127.0.0.1:${server.app.healthHttpPort}/usage`)).json()) as UsageSnapshot;
    const before = await read();
    expect((await server.api.createTask({ Channel: "default", Input: "counted" })).State).toBe("200");
    const after = await read();
    expect(after.dynamodb.writeUnits).toBeGreaterThan(before.dynamodb.writeUnits);
    expect((after.dynamodb.byOperation.TransactWriteItems?.calls ?? 0) - (before.dynamodb.byOperation.TransactWriteItems?.calls ?? 0)).toBe(1);
    expect((after.sqs.byAction.SendMessageBatch ?? 0) - (before.sqs.byAction.SendMessageBatch ?? 0)).toBe(1);
    expect(after.cpuMicros).toBeGreaterThan(before.cpuMicros);
  });
});
