// Task retention (QUEUES_TASK_RETENTION_DAYS, CDK context taskRetentionDays): a final
// task gets DynamoDB's TTL attribute; when TTL deletes it, the cleanup Lambda removes
// the task's HashCode guard (a caller's HashCode) and payload items and keeps the
// owner's Total exact, once.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expiredTaskOf, handler, type StreamRecord } from "../service/src/lambda/expired-task-cleanup.js";
import { TTL_ATTRIBUTE } from "../service/src/store/table-definition.js";
import { cleanUpExpiredTask } from "../service/src/store/expired-task-cleanup.js";
import { createDocumentClient } from "../service/src/store/dynamo-client.js";
import { CLEANUP_TABLE_ACTIONS } from "../infra/src/constructs/expired-task-cleanup.js";
import { ReportState } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { startTestServer, type TestServer } from "./support/harness.js";
import { removeSynthOutputs, synth } from "./infra/support.js";

const DAY_SECONDS = 86_400;
let server: TestServer;
const streams = new OpenStreams(() => server);

beforeAll(async () => {
  server = await startTestServer({ settings: { taskRetentionDays: 7 } });
  process.env.QUEUES_TABLE = server.settings.tableName;
});
afterAll(async () => {
  await streams.closeAll(server);
  await server?.stop();
});

async function item(pk: string): Promise<Record<string, unknown> | undefined> {
  const { Item } = await server.dynamo.send(new GetCommand({ TableName: server.settings.tableName, Key: { pk }, ConsistentRead: true }));
  return Item;
}

/** What DynamoDB's TTL does: deletes the item; returns the stream record it produces. */
async function expire(id: string): Promise<StreamRecord> {
  const old = await item(`T#${id}`);
  if (!old) throw new Error(`no task ${id}`);
  await server.dynamo.send(new DeleteCommand({ TableName: server.settings.tableName, Key: { pk: `T#${id}` } }));
  return {
    eventName: "REMOVE",
    userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" },
    dynamodb: { OldImage: marshall(old) },
  };
}

describe("task retention", () => {
  it("sets the TTL attribute when a task becomes final, not before", async () => {
    const task = await server.api.create({ Channel: "default", Input: "keep me a week" });
    expect((await item(`T#${task.ID}`))?.[TTL_ATTRIBUTE]).toBeUndefined();
    const worker = streams.worker("default").credit();
    expect((await worker.next()).ID).toBe(task.ID);
    expect((await item(`T#${task.ID}`))?.[TTL_ATTRIBUTE]).toBeUndefined();
    expect((await streams.reporter().report(task.ID, ReportState.SUCCESS, "done")).State).toBe("200");
    const expiresAt = Number((await item(`T#${task.ID}`))?.[TTL_ATTRIBUTE]);
    const expected = Math.floor(Date.now() / 1000) + 7 * DAY_SECONDS;
    expect(Math.abs(expiresAt - expected)).toBeLessThan(60);

    const cancelled = await server.api.create({ Channel: "other", Input: "cancel me" });
    expect((await server.api.cancel(cancelled.ID)).State).toBe("200");
    expect(Number((await item(`T#${cancelled.ID}`))?.[TTL_ATTRIBUTE])).toBeGreaterThan(expected - 60);
  });

  it("cleans up an expired task's guard and payload items and its owner's count, exactly once", async () => {
    const owner = (2n ** 60n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const big = "x".repeat(5_000);
    const gone = await server.api.create({ Channel: "other", Input: big, Owner: owner, HashCode: `retention-${owner}` });
    const kept = await server.api.create({ Channel: "other", Input: "stays", Owner: owner });
    expect((await server.api.cancel(gone.ID)).State).toBe("200");
    expect((await server.api.queryByOwner(owner)).Total).toBe("2");
    expect(await item(`I#${gone.ID}`)).toBeDefined();

    const record = await expire(gone.ID);
    expect(expiredTaskOf(record)).toEqual({ id: BigInt(gone.ID), owner: BigInt(owner), hashCode: gone.HashCode });
    expect(await handler({ Records: [record] })).toEqual({ cleaned: 1, skipped: 0, batchItemFailures: [] });

    expect(await item(`H#${gone.HashCode}`)).toBeUndefined();
    expect(await item(`I#${gone.ID}`)).toBeUndefined();
    expect((await server.api.queryByHashCode(gone.HashCode)).State).toBe("404");
    const page = await server.api.queryByOwner(owner);
    expect(page.Total).toBe("1");
    expect(page.Data.map((task) => task.ID)).toEqual([kept.ID]);

    // Stream records may come twice: the second delivery changes nothing.
    expect(await handler({ Records: [record] })).toEqual({ cleaned: 0, skipped: 1, batchItemFailures: [] });
    expect((await server.api.queryByOwner(owner)).Total).toBe("1");
    // The HashCode is free again.
    expect((await server.api.createTask({ Channel: "other", HashCode: gone.HashCode, Owner: owner })).State).toBe("200");
  });

  it("the deployed function (the esbuild bundle `cdk synth` makes) does the same cleanup", async () => {
    const { template, outdir } = synth({ taskRetentionDays: 30 });
    const [fn] = Object.values(template.findResources("AWS::Lambda::Function")) as { Properties: { Handler: string; Code: { S3Key: string } } }[];
    expect(fn?.Properties.Handler).toBe("index.handler");
    // The function's code is the file asset whose zip the template names.
    const assets = JSON.parse(readFileSync(join(outdir, "Queues.assets.json"), "utf8")) as {
      files: Record<string, { source: { path: string }; destinations: Record<string, { objectKey: string }> }>;
    };
    const asset = Object.values(assets.files).find((file) => Object.values(file.destinations).some((d) => d.objectKey === fn?.Properties.Code.S3Key));
    const bundle = createRequire(import.meta.url)(join(outdir, asset?.source.path as string, "index.js")) as { handler: typeof handler };

    const owner = (2n ** 61n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const task = await server.api.create({ Channel: "other", Input: "y".repeat(2_000), Owner: owner });
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const record = await expire(task.ID);
    expect(await bundle.handler({ Records: [record] })).toEqual({ cleaned: 1, skipped: 0, batchItemFailures: [] });
    // A generated HashCode has no guard item: a marker that expires by itself makes the cleanup happen once.
    expect(await item(`H#${task.HashCode}`)).toBeUndefined();
    expect(Number((await item(`E#${task.ID}`))?.[TTL_ATTRIBUTE])).toBeGreaterThan(Date.now() / 1000 + 6 * DAY_SECONDS);
    expect(await item(`I#${task.ID}`)).toBeUndefined();
    expect((await server.api.queryByOwner(owner)).Total).toBe("0");
    expect(await bundle.handler({ Records: [record] })).toEqual({ cleaned: 0, skipped: 1, batchItemFailures: [] });
    removeSynthOutputs();
  });

  it("still deletes the payload items when an earlier run stopped after its transaction", async () => {
    const owner = (2n ** 59n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const task = await server.api.create({ Channel: "other", Input: "z".repeat(3_000), Owner: owner });
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const record = await expire(task.ID);
    // The earlier run's transaction: the once-only marker written (a generated HashCode has no guard), count decremented; then it died.
    await server.dynamo.send(new PutCommand({ TableName: server.settings.tableName, Item: { pk: `E#${task.ID}` } }));
    await server.dynamo.send(
      new UpdateCommand({
        TableName: server.settings.tableName,
        Key: { pk: `C#${owner}#0` },
        UpdateExpression: "ADD #count :minusOne",
        ExpressionAttributeNames: { "#count": "count" },
        ExpressionAttributeValues: { ":minusOne": -1 },
      }),
    );
    expect(await item(`I#${task.ID}`)).toBeDefined();
    expect(await handler({ Records: [record] })).toEqual({ cleaned: 0, skipped: 1, batchItemFailures: [] });
    expect(await item(`I#${task.ID}`)).toBeUndefined();
    expect((await server.api.queryByOwner(owner)).Total).toBe("0");
  });

  it("makes only the calls the deployed function's role allows (least privilege: no PutItem)", async () => {
    const db = createDocumentClient();
    const actions = new Set<string>();
    const iamAction = { Put: "dynamodb:PutItem", Update: "dynamodb:UpdateItem", Delete: "dynamodb:DeleteItem", ConditionCheck: "dynamodb:ConditionCheckItem" };
    (db.middlewareStack as unknown as { add(middleware: unknown, options: object): void }).add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: Record<string, unknown> }) => {
        const command = (context.commandName ?? "").replace(/Command$/, "");
        if (command === "TransactWriteItems") {
          for (const entry of args.input?.TransactItems as Record<string, unknown>[]) {
            for (const kind of Object.keys(entry)) actions.add(iamAction[kind as keyof typeof iamAction] ?? kind);
          }
        } else actions.add(`dynamodb:${command}`);
        return next(args);
      },
      { step: "initialize", name: "recordActions" },
    );
    try {
      for (const hashCode of [undefined, `least-${randomBytes(4).toString("hex")}`]) {
        const task = await server.api.create({ Channel: "other", Input: "w".repeat(2_000), ...(hashCode ? { HashCode: hashCode } : {}) });
        expect((await server.api.cancel(task.ID)).State).toBe("200");
        const expired = expiredTaskOf(await expire(task.ID));
        expect(await cleanUpExpiredTask(db, server.settings.tableName, expired as NonNullable<typeof expired>)).toBe("cleaned");
      }
    } finally {
      db.destroy();
    }
    expect([...actions].filter((action) => !CLEANUP_TABLE_ACTIONS.includes(action))).toEqual([]);
  });

  it("reports the first record that fails, and stops there, so the stream retries from it in order", async () => {
    const task = await server.api.create({ Channel: "other", Input: "fails" });
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    const record = { ...(await expire(task.ID)) };
    record.dynamodb = { ...record.dynamodb, SequenceNumber: "4100000000000000000001" };
    const later = { ...record, dynamodb: { ...record.dynamodb, SequenceNumber: "4100000000000000000002" } };
    process.env.QUEUES_TABLE = `missing-${Date.now()}`;
    try {
      expect(await handler({ Records: [record, later] })).toEqual({
        cleaned: 0,
        skipped: 0,
        batchItemFailures: [{ itemIdentifier: "4100000000000000000001" }],
      });
    } finally {
      process.env.QUEUES_TABLE = server.settings.tableName;
    }
    // The retry (same records) succeeds.
    expect(await handler({ Records: [record, later] })).toEqual({ cleaned: 1, skipped: 1, batchItemFailures: [] });
  });

  it("ignores stream records that are not TTL removals of task items", async () => {
    const task = await server.api.create({ Channel: "other", Input: "not expired", HashCode: `kept-${randomBytes(4).toString("hex")}` });
    const image = marshall((await item(`T#${task.ID}`)) as Record<string, unknown>);
    const records: StreamRecord[] = [
      { eventName: "REMOVE", userIdentity: undefined, dynamodb: { OldImage: image } }, // deleted by a user, not by TTL
      { eventName: "MODIFY", userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" }, dynamodb: { OldImage: image } },
      { eventName: "REMOVE", userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" }, dynamodb: { OldImage: marshall({ pk: `H#${task.HashCode}`, id: 1 }) } },
    ];
    expect(await handler({ Records: records })).toEqual({ cleaned: 0, skipped: 3, batchItemFailures: [] });
    expect(await item(`H#${task.HashCode}`)).toBeDefined();
    expect(await item(`E#${task.ID}`)).toBeUndefined();
  });
});
