// The Lambda behind the table's stream (deployed only when a task retention is
// configured): for every task item that DynamoDB's TTL removed, cleans up the task's
// other items and its owner's count. The event source mapping already filters for
// TTL removals of task items; the checks here keep a mis-filtered record harmless.
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { createDocumentClient } from "../store/dynamo-client.js";
import { cleanUpExpiredTask } from "../store/expired-task-cleanup.js";
import { A } from "../store/item-codec.js";
import { PARTITION_KEY, TASK_KEY_PREFIX } from "../store/table-definition.js";

/** The parts of a DynamoDB stream record this needs. */
export interface StreamRecord {
  eventName?: string;
  userIdentity?: { type?: string; principalId?: string };
  dynamodb?: { OldImage?: Record<string, AttributeValue>; SequenceNumber?: string };
}

export interface CleanupResult {
  cleaned: number;
  skipped: number;
  /** Records to retry (the event source mapping reports batch item failures): the first failed one and all after it. */
  batchItemFailures: { itemIdentifier: string }[];
}

const db = createDocumentClient();

export async function handler(event: { Records?: StreamRecord[] }): Promise<CleanupResult> {
  const tableName = process.env.QUEUES_TABLE;
  if (!tableName) throw new Error("QUEUES_TABLE is not set");
  const result: CleanupResult = { cleaned: 0, skipped: 0, batchItemFailures: [] };
  for (const record of event.Records ?? []) {
    const task = expiredTaskOf(record);
    try {
      if (!task || (await cleanUpExpiredTask(db, tableName, task)) === "already cleaned") result.skipped += 1;
      else result.cleaned += 1;
    } catch (error) {
      // Stream records are retried from the first failure on, in order.
      console.error(JSON.stringify({ taskId: String(task?.id), error: String(error) }));
      result.batchItemFailures.push({ itemIdentifier: record.dynamodb?.SequenceNumber ?? "" });
      break;
    }
  }
  console.log(JSON.stringify({ cleaned: result.cleaned, skipped: result.skipped, failed: result.batchItemFailures.length }));
  return result;
}

/** The task a TTL removal record is about; undefined for any other record. */
export function expiredTaskOf(record: StreamRecord): { id: bigint; owner: bigint; hashCode: string } | undefined {
  const byTtl = record.eventName === "REMOVE" && record.userIdentity?.type === "Service" && record.userIdentity.principalId === "dynamodb.amazonaws.com";
  const image = record.dynamodb?.OldImage;
  if (!byTtl || !image) return undefined;
  const item = unmarshall(image, { wrapNumbers: (value: string) => BigInt(value) });
  if (typeof item[PARTITION_KEY] !== "string" || !item[PARTITION_KEY].startsWith(TASK_KEY_PREFIX)) return undefined;
  return { id: item[A.id] as bigint, owner: item[A.owner] as bigint, hashCode: item[A.hashCode] as string };
}
