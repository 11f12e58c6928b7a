// Task retention (QUEUES_TASK_RETENTION_DAYS, CDK context taskRetentionDays): a final
// task gets DynamoDB's TTL attribute; when TTL deletes it, the table stream function
// (the Lambda on the table's stream) removes the task's HashCode guard (a caller's
// HashCode) and payload items and takes it off its owner's Total, once.
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { DeleteCommand, GetCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { handler, type StreamRecord } from "../service/src/lambda/table-stream.js";
import { itemKey, TTL_ATTRIBUTE } from "../service/src/store/table-definition.js";
import { streamEventOf } from "../service/src/stream/stream-records.js";
import { processStreamBatch } from "../service/src/stream/table-stream.js";
import { createDocumentClient } from "../service/src/store/dynamo-client.js";
import { STREAM_FUNCTION_TABLE_ACTIONS } from "../infra/src/constructs/table-stream-function.js";
import { ReportState } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";
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

let sequence = BigInt(Date.now()) * 1_000n;

/** A stream record as Lambda delivers it (DynamoDB Local's TTL does not delete, and its stream names no TTL service). */
function streamRecord(eventName: string, images: { OldImage?: Record<string, unknown>; NewImage?: Record<string, unknown> }, byTtl: boolean): StreamRecord {
  sequence += 1n;
  const pk = (images.OldImage ?? images.NewImage)?.pk;
  return {
    eventID: randomUUID(),
    eventName,
    ...(byTtl ? { userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" } } : {}),
    dynamodb: {
      Keys: marshall({ pk }),
      ...(images.OldImage ? { OldImage: marshall(images.OldImage) } : {}),
      ...(images.NewImage ? { NewImage: marshall(images.NewImage) } : {}),
      SequenceNumber: String(sequence).padStart(21, "0"),
    },
  };
}

/** What DynamoDB's TTL does: deletes the item; returns the stream record it produces. */
async function expire(id: string): Promise<StreamRecord> {
  const old = await item(`T#${id}`);
  if (!old) throw new Error(`no task ${id}`);
  await server.dynamo.send(new DeleteCommand({ TableName: server.settings.tableName, Key: { pk: `T#${id}` } }));
  return streamRecord("REMOVE", { OldImage: old }, true);
}

/** The owner's Total once the table's stream has counted the tasks created (the local reader runs beside the server). */
async function totalOf(owner: string, expected: string): Promise<string> {
  await eventually(async () => (await server.api.queryByOwner(owner)).Total === expected);
  return expected;
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
    await totalOf(owner, "2");
    expect(await item(`I#${gone.ID}`)).toBeDefined();

    const record = await expire(gone.ID);
    expect(streamEventOf(record)).toEqual({ kind: "expired", owner: BigInt(owner), task: { id: BigInt(gone.ID), owner: BigInt(owner), hashCode: gone.HashCode } });
    expect(await handler({ Records: [record] })).toEqual({ counted: 1, alreadyCounted: 0, ignored: 0, expired: 1, batchItemFailures: [] });

    expect(await item(`H#${gone.HashCode}`)).toBeUndefined();
    expect(await item(`I#${gone.ID}`)).toBeUndefined();
    expect((await server.api.queryByHashCode(gone.HashCode)).State).toBe("404");
    const page = await server.api.queryByOwner(owner);
    expect(page.Total).toBe("1");
    expect(page.Data.map((task) => task.ID)).toEqual([kept.ID]);

    // Stream records may come twice: the second delivery changes nothing.
    expect(await handler({ Records: [record] })).toEqual({ counted: 0, alreadyCounted: 1, ignored: 0, expired: 0, batchItemFailures: [] });
    expect((await server.api.queryByOwner(owner)).Total).toBe("1");
    // The HashCode is free again.
    expect((await server.api.createTask({ Channel: "other", HashCode: gone.HashCode, Owner: owner })).State).toBe("200");
    await totalOf(owner, "2");
  });

  it("the deployed function (the esbuild bundle `cdk synth` makes) does the same cleanup", async () => {
    const { template, outdir } = synth({ taskRetentionDays: 30 });
    // The function the table's stream feeds (the stack has others, e.g. the default security group's custom resource).
    const [mapping] = Object.values(template.findResources("AWS::Lambda::EventSourceMapping")) as { Properties: { FunctionName: { Ref: string } } }[];
    const functions = template.findResources("AWS::Lambda::Function") as Record<string, { Properties: { Handler: string; Code: { S3Key: string } } }>;
    const fn = functions[mapping?.Properties.FunctionName.Ref as string];
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
    await totalOf(owner, "1");
    const record = await expire(task.ID);
    expect(await bundle.handler({ Records: [record] })).toEqual({ counted: 1, alreadyCounted: 0, ignored: 0, expired: 1, batchItemFailures: [] });
    // The record's part is marked counted, by a marker that expires by itself after a day.
    expect(Number((await item(itemKey.streamMarker(record.eventID as string)))?.[TTL_ATTRIBUTE])).toBeGreaterThan(Date.now() / 1000 + DAY_SECONDS - 60);
    expect(await item(`I#${task.ID}`)).toBeUndefined();
    expect((await server.api.queryByOwner(owner)).Total).toBe("0");
    expect(await bundle.handler({ Records: [record] })).toEqual({ counted: 0, alreadyCounted: 1, ignored: 0, expired: 0, batchItemFailures: [] });
    // It counts created tasks too: a new task item's INSERT.
    const insert = streamRecord("INSERT", { NewImage: { pk: `T#${task.ID}9`, id: BigInt(`${task.ID}9`), owner: BigInt(owner), ownerKey: `${owner}#0`, hashCode: "x" } }, false);
    expect(await bundle.handler({ Records: [insert] })).toMatchObject({ counted: 1, batchItemFailures: [] });
    expect((await server.api.queryByOwner(owner)).Total).toBe("1");
    removeSynthOutputs();
  });

  it("still deletes the payload items when an earlier delivery stopped after its cleanup began", async () => {
    const owner = (2n ** 59n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const task = await server.api.create({ Channel: "other", Input: "z".repeat(3_000), Owner: owner, HashCode: `half-${randomBytes(4).toString("hex")}` });
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    await totalOf(owner, "1");
    const record = await expire(task.ID);
    // The earlier delivery deleted the guard, then died: nothing counted, the payload still there.
    await server.dynamo.send(new DeleteCommand({ TableName: server.settings.tableName, Key: { pk: `H#${task.HashCode}` } }));
    expect(await item(`I#${task.ID}`)).toBeDefined();
    expect(await handler({ Records: [record] })).toEqual({ counted: 1, alreadyCounted: 0, ignored: 0, expired: 1, batchItemFailures: [] });
    expect(await item(`I#${task.ID}`)).toBeUndefined();
    expect((await server.api.queryByOwner(owner)).Total).toBe("0");
  });

  it("makes only the calls the deployed function's role allows (least privilege: no PutItem, no read)", async () => {
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
      const records: StreamRecord[] = [];
      for (const hashCode of [undefined, `least-${randomBytes(4).toString("hex")}`]) {
        const task = await server.api.create({ Channel: "other", Input: "w".repeat(2_000), ...(hashCode ? { HashCode: hashCode } : {}) });
        expect((await server.api.cancel(task.ID)).State).toBe("200");
        const old = await item(`T#${task.ID}`);
        records.push(streamRecord("INSERT", { NewImage: old as Record<string, unknown> }, false), await expire(task.ID));
      }
      expect(await processStreamBatch(db, server.settings.tableName, records)).toMatchObject({ counted: 4, expired: 2, batchItemFailures: [] });
      // Delivered again: the marker's condition fails, and nothing else is read.
      expect(await processStreamBatch(db, server.settings.tableName, records)).toMatchObject({ alreadyCounted: 4, batchItemFailures: [] });
    } finally {
      db.destroy();
    }
    expect([...actions].sort()).toEqual(["dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:UpdateItem"]);
    expect([...actions].filter((action) => !STREAM_FUNCTION_TABLE_ACTIONS.includes(action))).toEqual([]);
  });

  it("reports the first record not done, and stops there, so the stream retries from it in order", async () => {
    const owner = (2n ** 58n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const task = await server.api.create({ Channel: "other", Input: "fails", Owner: owner });
    expect((await server.api.cancel(task.ID)).State).toBe("200");
    await totalOf(owner, "1");
    const record = await expire(task.ID);
    const other = streamRecord("REMOVE", { OldImage: { pk: "T#1", id: 1n, owner: BigInt(owner) + 1n, hashCode: "gone" } }, true);
    process.env.QUEUES_TABLE = `missing-${Date.now()}`;
    try {
      expect(await handler({ Records: [record, other] })).toEqual({
        counted: 0,
        alreadyCounted: 0,
        ignored: 0,
        expired: 0,
        batchItemFailures: [{ itemIdentifier: record.dynamodb?.SequenceNumber }],
      });
    } finally {
      process.env.QUEUES_TABLE = server.settings.tableName;
    }
    // The retry (same records) succeeds.
    expect(await handler({ Records: [record, other] })).toEqual({ counted: 2, alreadyCounted: 0, ignored: 0, expired: 2, batchItemFailures: [] });
    expect((await server.api.queryByOwner(owner)).Total).toBe("0");
  });

  it("ignores stream records that are neither a new task nor a TTL removal of a task item", async () => {
    const owner = (2n ** 57n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const task = await server.api.create({ Channel: "other", Input: "not expired", HashCode: `kept-${randomBytes(4).toString("hex")}`, Owner: owner });
    await totalOf(owner, "1");
    const image = (await item(`T#${task.ID}`)) as Record<string, unknown>;
    const { ownerKey: _, ...oldLayout } = image;
    const records: StreamRecord[] = [
      streamRecord("REMOVE", { OldImage: image }, false), // deleted by a user, not by TTL
      streamRecord("MODIFY", { OldImage: image, NewImage: image }, true),
      streamRecord("REMOVE", { OldImage: { pk: `H#${task.HashCode}`, id: BigInt(task.ID) } }, true),
      streamRecord("INSERT", { NewImage: oldLayout }, false), // an old server's create: counted in its transaction
    ];
    expect(await handler({ Records: records })).toEqual({ counted: 0, alreadyCounted: 0, ignored: 4, expired: 0, batchItemFailures: [] });
    expect(await item(`H#${task.HashCode}`)).toBeDefined();
    expect(await item(itemKey.streamMarker(records[0]?.eventID as string))).toBeUndefined();
    expect((await server.api.queryByOwner(owner)).Total).toBe("1");
  });
});
