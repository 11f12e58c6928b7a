// The table stream function: what happens to a batch of records of the tasks table's
// stream, on AWS (lambda/table-stream.ts, a Lambda on the stream) and locally
// (local/stream-runner.ts, a reader of DynamoDB Local's stream) alike.
//
// - Owner counts. A task created (INSERT of a task item with `ownerKey`) adds 1 to its
//   owner's Total, a task removed by TTL subtracts 1. QueryTaskByOwner's Total is the
//   sum of the owner's OWNER_COUNTER_SHARDS counter items, so it includes a task once
//   the stream has delivered its record here (a second or so later).
// - Channel activity. A task created, and a task written into SUCCESS or FAILURE, add
//   1 to its channel's count of that kind in that minute (`AC#<channel>#<hour>#<shard>`
//   items, one attribute per kind and minute): the console's "last 5 minutes / hour",
//   over every replica. They are written in the same transactions as the owner counts,
//   so they are exactly once too.
// - Expired tasks. When TTL removes a task item (only with a task retention), the
//   task's other items go too: a caller's HashCode guard (if it still names this task)
//   and the payload items. Deleting is idempotent; nothing else marks it done.
//
// Exactly once per record, although a stream delivers a batch again after any failure
// (Lambda's retries, a crash): the records are counted in *parts*, each counted by ONE
// TransactWriteItems that creates the part's marker item `S#<eventID of its first
// record>` (condition: it does not exist; it records the part's last sequence number
// and expires by TTL after a day) and ADDs each owner's delta to one counter item.
// When a marker exists already, its part was counted: its records are skipped up to
// the last sequence number it names, and counting goes on after them. A part holds at
// most MAX_OWNERS_PER_PART owners and channel-hours together (a transaction has at
// most 100 items), so a batch with more is counted in several parts, one marker each.
//
// This holds as long as every delivery of records starts at the first record of a
// part or at a record never counted, which is what both deliverers do: Lambda retries
// a batch from its first record, or from the record the handler reports as failed
// (always the first record of a part not counted), and never bisects a batch (the
// event source mapping must not set BisectBatchOnFunctionError); the local reader
// hands over what it read and reads on after it, and a restarted reader starts at
// the shard's oldest record. One deliverer per stream: two readers of one stream
// would cut different parts out of the same records.
import { createHash } from "node:crypto";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { BatchWriteCommand, DeleteCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { forEachBounded } from "../core/for-each-bounded.js";
import { A } from "../store/item-codec.js";
import { UpdateBuilder } from "../store/update-builder.js";
import { ACTIVITY_SHARDS, itemKey, OWNER_COUNTER_SHARDS, PARTITION_KEY, STREAM_MARKER_TTL_SECONDS, TTL_ATTRIBUTE } from "../store/table-definition.js";
import { taskIdOfGeneratedHashCode } from "../tasks/ids.js";
import { streamEventOf, type ExpiredTask, type StreamEvent, type StreamRecord } from "./stream-records.js";

/** A transaction has at most 100 items: the marker, one counter item per owner and one activity item per channel and hour. */
export const MAX_OWNERS_PER_PART = 99;

/** How long a channel's activity item is kept after its hour (the console shows the last one). */
const ACTIVITY_TTL_SECONDS = 3 * 3600;

/** The marker's attribute that names the last record its part counted. */
export const MARKER_LAST_SEQUENCE = "lastSequence";

const CONFLICT_RETRIES = 8;
const DELETE_CONCURRENCY = 16;

export interface StreamBatchResult {
  /** Records counted now (tasks created or expired), in parts this call committed. */
  counted: number;
  /** Records of parts counted before (a batch delivered again): not counted twice. */
  alreadyCounted: number;
  /** Records that mean nothing for the counts (updates, deletes by a user, other items). */
  ignored: number;
  /** Expired tasks whose items were cleaned up. */
  expired: number;
  /** Transactions committed (parts counted now). */
  parts: number;
  /**
   * The first record not done, when a part failed (empty: the whole batch is done). A
   * Lambda returns it (ReportBatchItemFailures) and the stream delivers again from it.
   */
  batchItemFailures: { itemIdentifier: string }[];
  /** What failed, if anything. */
  error?: unknown;
}

interface Entry {
  record: StreamRecord;
  sequence: bigint;
  event: StreamEvent | undefined;
}

/** Records entries[start..end] (both events), counted by one transaction. */
interface Part {
  start: number;
  end: number;
  deltas: Map<bigint, bigint>;
  expired: ExpiredTask[];
  /** Per channel and hour (`<channel>\u0000<hour>`): the counts to add, by attribute (`created_<minute of the hour>`...). */
  activity: Map<string, { channel: string; hour: number; adds: Map<string, bigint> }>;
}

/**
 * Counts a batch of one stream shard's records (in stream order) and cleans up the
 * expired tasks among them; see the top of this file for why it is exactly once. Stops
 * at the first part that fails and reports its first record.
 */
export async function processStreamBatch(
  db: DynamoDBDocumentClient,
  tableName: string,
  records: readonly StreamRecord[],
  nowMs: () => number = Date.now,
): Promise<StreamBatchResult> {
  const result: StreamBatchResult = { counted: 0, alreadyCounted: 0, ignored: 0, expired: 0, parts: 0, batchItemFailures: [] };
  const entries: Entry[] = records.map((record) => ({ record, sequence: sequenceOf(record), event: streamEventOf(record) }));
  let at = 0;
  while (at < entries.length) {
    const part = nextPart(entries, at);
    // Records before the part's first event mean nothing.
    result.ignored += (part?.start ?? entries.length) - at;
    if (!part) break;
    try {
      // Cleanup first: a committed marker then also says its expired tasks are cleaned up.
      await cleanUpExpiredTasks(db, tableName, part.expired);
      const committed = await commitPart(db, tableName, entries, part, nowMs());
      if (committed === true) {
        result.parts += 1;
        result.expired += part.expired.length;
        for (let index = part.start; index <= part.end; index++) {
          if ((entries[index] as Entry).event) result.counted += 1;
          else result.ignored += 1;
        }
        at = part.end + 1;
      } else {
        // Counted before, up to the marker's last record (maybe more or fewer records than this part).
        let next = part.start;
        while (next < entries.length && (entries[next] as Entry).sequence <= committed.lastSequence) {
          if ((entries[next] as Entry).event) result.alreadyCounted += 1;
          else result.ignored += 1;
          next += 1;
        }
        if (next === part.start) throw new Error(`stream marker of record ${part.start} names an earlier record`);
        at = next;
      }
    } catch (error) {
      result.error = error;
      result.batchItemFailures.push({ itemIdentifier: (entries[part.start] as Entry).record.dynamodb?.SequenceNumber ?? "" });
      break;
    }
  }
  return result;
}

/** The part that starts at the first event at or after `from`: as many records as fit MAX_OWNERS_PER_PART owners. */
function nextPart(entries: readonly Entry[], from: number): Part | undefined {
  let start = from;
  while (start < entries.length && !(entries[start] as Entry).event) start += 1;
  if (start >= entries.length) return undefined;
  const part: Part = { start, end: start, deltas: new Map(), expired: [], activity: new Map() };
  for (let index = start; index < entries.length; index++) {
    const event = (entries[index] as Entry).event;
    if (!event) continue;
    const owner = event.kind === "finished" ? undefined : event.owner;
    const activity = event.kind === "expired" ? undefined : event.activity;
    const hour = activity ? Math.floor(activity.minute / 60) : 0;
    const activityKey = activity ? `${activity.channel}\u0000${hour}` : undefined;
    const newItems = (owner !== undefined && !part.deltas.has(owner) ? 1 : 0) + (activityKey !== undefined && !part.activity.has(activityKey) ? 1 : 0);
    if (newItems > 0 && part.deltas.size + part.activity.size + newItems > MAX_OWNERS_PER_PART) break;
    if (event.kind !== "finished") part.deltas.set(event.owner, (part.deltas.get(event.owner) ?? 0n) + (event.kind === "created" ? 1n : -1n));
    if (event.kind === "expired") part.expired.push(event.task);
    if (activity && activityKey) {
      let item = part.activity.get(activityKey);
      if (!item) part.activity.set(activityKey, (item = { channel: activity.channel, hour, adds: new Map() }));
      const attribute = `${activity.kind}_${activity.minute % 60}`;
      item.adds.set(attribute, (item.adds.get(attribute) ?? 0n) + 1n);
    }
    // A part ends at its last event: the records after it belong to whatever comes next.
    part.end = index;
  }
  return part;
}

/** Writes the part's marker and counts in one transaction: true, or the marker that was there already. */
async function commitPart(
  db: DynamoDBDocumentClient,
  tableName: string,
  entries: readonly Entry[],
  part: Part,
  nowMs: number,
): Promise<true | { lastSequence: bigint }> {
  const markerKey = itemKey.streamMarker(eventIdOf((entries[part.start] as Entry).record));
  // One counter item per owner per part; parts of different shards (concurrent Lambdas) spread over the shards.
  const counterShard = hashOf(markerKey) % OWNER_COUNTER_SHARDS;
  const counts = [...part.deltas].filter(([, delta]) => delta !== 0n);
  const items: NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]["TransactItems"]> = [
    {
      // An Update that creates the item: the function's role may update and delete, not put.
      Update: {
        TableName: tableName,
        Key: { [PARTITION_KEY]: markerKey },
        UpdateExpression: "SET #last = :last, #ttl = :ttl",
        ConditionExpression: "attribute_not_exists(#pk)",
        ExpressionAttributeNames: { "#pk": PARTITION_KEY, "#last": MARKER_LAST_SEQUENCE, "#ttl": TTL_ATTRIBUTE },
        ExpressionAttributeValues: {
          ":last": String((entries[part.end] as Entry).sequence),
          ":ttl": Math.floor(nowMs / 1000) + STREAM_MARKER_TTL_SECONDS,
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    ...counts.map(([owner, delta]) => ({
      Update: {
        TableName: tableName,
        Key: { [PARTITION_KEY]: itemKey.ownerCounter(owner, counterShard) },
        UpdateExpression: "ADD #count :delta",
        ExpressionAttributeNames: { "#count": "count" },
        ExpressionAttributeValues: { ":delta": delta },
      },
    })),
    // The channels' per-minute activity (the console's last hour), one item per channel and hour in this part.
    ...[...part.activity.values()].map(({ channel, hour, adds }) => {
      const update = new UpdateBuilder().set(TTL_ATTRIBUTE, (hour + 1) * 3600 + ACTIVITY_TTL_SECONDS);
      for (const [attribute, count] of adds) update.add(attribute, count);
      return { Update: { TableName: tableName, Key: { [PARTITION_KEY]: itemKey.activity(channel, hour, counterShard % ACTIVITY_SHARDS) }, ...update.expression() } };
    }),
  ];
  for (let attempt = 1; ; attempt++) {
    try {
      await db.send(new TransactWriteCommand({ TransactItems: items }));
      return true;
    } catch (error) {
      const reasons = (error as { name?: string; CancellationReasons?: { Code?: string; Item?: Record<string, AttributeValue> }[] }).CancellationReasons;
      const marker = reasons?.[0];
      if ((error as Error).name === "TransactionCanceledException" && marker?.Code === "ConditionalCheckFailed") {
        // Delivered again: the marker says how far the part it started was counted.
        const last = marker.Item?.[MARKER_LAST_SEQUENCE]?.S;
        if (last === undefined) throw new Error(`stream marker ${markerKey} has no ${MARKER_LAST_SEQUENCE}`, { cause: error });
        return { lastSequence: BigInt(last) };
      }
      // A concurrent transaction on the same counter item (another shard's part, an old server's create): try again.
      const conflict =
        (error as Error).name === "TransactionConflictException" || (reasons?.some((reason) => reason.Code === "TransactionConflict") ?? false);
      if (!conflict || attempt >= CONFLICT_RETRIES) throw error;
      await sleep(Math.random() * 25 * attempt);
    }
  }
}

/**
 * Deletes what an expired task leaves behind: a caller's HashCode guard, only while it
 * still names this task (a generated HashCode has none), and the payload items (which
 * exist only for Inputs / Outputs over 1 KiB; deleting a missing item is a no-op).
 */
export async function cleanUpExpiredTasks(db: DynamoDBDocumentClient, tableName: string, tasks: readonly ExpiredTask[]): Promise<void> {
  if (tasks.length === 0) return;
  const guards = tasks.filter((task) => taskIdOfGeneratedHashCode(task.hashCode) !== task.id);
  await forEachBounded(guards, DELETE_CONCURRENCY, async (task) => {
    try {
      await db.send(
        new DeleteCommand({
          TableName: tableName,
          Key: { [PARTITION_KEY]: itemKey.hashCode(task.hashCode) },
          ConditionExpression: "#id = :id",
          ExpressionAttributeNames: { "#id": A.id },
          ExpressionAttributeValues: { ":id": task.id },
        }),
      );
    } catch (error) {
      // Gone already (an earlier delivery), or the HashCode names another task now.
      if ((error as Error).name !== "ConditionalCheckFailedException") throw error;
    }
  });
  const payloadKeys = tasks.flatMap((task) => [itemKey.input(task.id), itemKey.output(task.id)]);
  const chunks: string[][] = [];
  for (let start = 0; start < payloadKeys.length; start += 25) chunks.push(payloadKeys.slice(start, start + 25));
  await forEachBounded(chunks, DELETE_CONCURRENCY, (keys) => deleteAll(db, tableName, keys));
}

/** BatchWriteItem deletes, retrying what DynamoDB left unprocessed. */
async function deleteAll(db: DynamoDBDocumentClient, tableName: string, keys: string[]): Promise<void> {
  let pending: unknown[] = keys.map((key) => ({ DeleteRequest: { Key: { [PARTITION_KEY]: key } } }));
  for (let round = 0; pending.length > 0; round++) {
    if (round > 10) throw new Error(`BatchWriteItem left ${pending.length} deletes unprocessed after 10 rounds`);
    if (round > 0) await sleep(Math.min(1_000, 20 * 2 ** round));
    const { UnprocessedItems } = await db.send(
      new BatchWriteCommand({ RequestItems: { [tableName]: pending as { DeleteRequest: { Key: Record<string, unknown> } }[] } }),
    );
    pending = UnprocessedItems?.[tableName] ?? [];
  }
}

function sequenceOf(record: StreamRecord): bigint {
  const sequence = record.dynamodb?.SequenceNumber;
  if (!sequence || !/^\d+$/.test(sequence)) throw new Error(`stream record ${record.eventID ?? "?"} has no sequence number`);
  return BigInt(sequence);
}

function eventIdOf(record: StreamRecord): string {
  if (!record.eventID) throw new Error(`stream record ${record.dynamodb?.SequenceNumber ?? "?"} has no eventID`);
  return record.eventID;
}

function hashOf(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0);
}


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
