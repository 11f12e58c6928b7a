// The migration from the owner index of earlier versions (`byOwner`: the owner as
// partition key, every task of an owner under one key) to the owner shards
// (`byOwnerShard`: `ownerKey` = `<owner>#<shard>`, table-definition.ts). A server of
// this version writes `ownerKey` on every task it creates; this backfill writes it on
// the task items made before, so that QueryTaskByOwner pages list them too:
//
// 1. deploy this version with the new index beside the old one (CDK:
//    `-c legacyOwnerIndex=true`; the emulators and LocalStack add it by themselves);
// 2. run the backfill (`npm run migrate -- --table <name>`), as often as wanted;
// 3. deploy again without `legacyOwnerIndex`: the old index is dropped.
//
// Counts are not touched: a task made before was counted by its create transaction,
// and the table stream function counts only new-layout creates (an INSERT carrying
// `ownerKey`); the backfill's writes are MODIFYs, which it ignores.
//
// Each item gets one UpdateItem with the condition "it exists and has no ownerKey
// yet": a task removed meanwhile (TTL) is not brought back as a stub, a task that has
// its key is left alone, and running the backfill again (or in parallel) writes
// nothing twice. The write touches neither `version` nor `lastWrite`, so it never
// fails a server's conditional write of the same task.
import { ScanCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { forEachBounded } from "../core/for-each-bounded.js";
import { A } from "../store/item-codec.js";
import { ownerKeyOf, PARTITION_KEY, TASK_KEY_PREFIX } from "../store/table-definition.js";

export interface BackfillOptions {
  /**
   * Parallel Scan segments (each read by one loop).
   * @default 4
   */
  readonly segments?: number;
  /**
   * Updates in flight per segment.
   * @default 8
   */
  readonly concurrency?: number;
  /** Called after each Scan page with the running totals. */
  readonly onProgress?: (progress: BackfillResult) => void;
}

export interface BackfillResult {
  /** Task items without `ownerKey` that the Scan found. */
  found: number;
  /** Items this run gave their `ownerKey`. */
  updated: number;
  /** Items that had it by the time of the write (another run) or were gone (expired). */
  skipped: number;
}

/** Writes `ownerKey` on every task item of the table that has none. */
export async function backfillOwnerKeys(db: DynamoDBDocumentClient, tableName: string, options: BackfillOptions = {}): Promise<BackfillResult> {
  const segments = options.segments ?? 4;
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(segments) || segments < 1 || segments > 1_000_000) throw new RangeError("segments must be a whole number from 1 to 1,000,000");
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency must be a whole number of at least 1");
  const result: BackfillResult = { found: 0, updated: 0, skipped: 0 };
  await Promise.all(
    Array.from({ length: segments }, async (_, segment) => {
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await db.send(
          new ScanCommand({
            TableName: tableName,
            Segment: segment,
            TotalSegments: segments,
            FilterExpression: "begins_with(#pk, :task) AND attribute_not_exists(#ownerKey)",
            ProjectionExpression: "#pk, #id, #owner",
            ExpressionAttributeNames: { "#pk": PARTITION_KEY, "#ownerKey": A.ownerKey, "#id": A.id, "#owner": A.owner },
            ExpressionAttributeValues: { ":task": TASK_KEY_PREFIX },
            ExclusiveStartKey: startKey,
          }),
        );
        const items = page.Items ?? [];
        result.found += items.length;
        await forEachBounded(items, concurrency, async (item) => {
          (await setOwnerKey(db, tableName, item)) ? (result.updated += 1) : (result.skipped += 1);
        });
        options.onProgress?.({ ...result });
        startKey = page.LastEvaluatedKey;
      } while (startKey);
    }),
  );
  return result;
}

/** true: written; false: the item has its key already or is gone. */
async function setOwnerKey(db: DynamoDBDocumentClient, tableName: string, item: Record<string, unknown>): Promise<boolean> {
  const id = item[A.id];
  const owner = item[A.owner];
  if (typeof id !== "bigint" || typeof owner !== "bigint") {
    throw new Error(`task item ${String(item[PARTITION_KEY])} has no numeric id and owner (is this a Queues table?)`);
  }
  try {
    await db.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { [PARTITION_KEY]: item[PARTITION_KEY] },
        UpdateExpression: "SET #ownerKey = :ownerKey",
        ConditionExpression: "attribute_exists(#pk) AND attribute_not_exists(#ownerKey)",
        ExpressionAttributeNames: { "#pk": PARTITION_KEY, "#ownerKey": A.ownerKey },
        ExpressionAttributeValues: { ":ownerKey": ownerKeyOf(owner, id) },
      }),
    );
    return true;
  } catch (error) {
    if ((error as Error).name === "ConditionalCheckFailedException") return false;
    throw error;
  }
}
