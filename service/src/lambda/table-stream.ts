// The Lambda on the tasks table's stream (always deployed): counts owners' tasks
// (QueryTaskByOwner's Total) and cleans up expired tasks, exactly once per record
// (stream/table-stream.ts). The event source mapping passes only INSERTs of new-layout
// task items and TTL removals of task items; the checks there keep any other record
// harmless. A part that fails is reported (ReportBatchItemFailures) and the stream
// delivers again from its first record, in order.
import { createDocumentClient } from "../store/dynamo-client.js";
import { processStreamBatch } from "../stream/table-stream.js";
import type { StreamRecord } from "../stream/stream-records.js";

export type { StreamRecord } from "../stream/stream-records.js";

export interface TableStreamResult {
  counted: number;
  alreadyCounted: number;
  ignored: number;
  expired: number;
  /** The first record not done (the stream retries from it, in order); empty when all are. */
  batchItemFailures: { itemIdentifier: string }[];
}

const db = createDocumentClient();

export async function handler(event: { Records?: StreamRecord[] }): Promise<TableStreamResult> {
  const tableName = process.env.QUEUES_TABLE;
  if (!tableName) throw new Error("QUEUES_TABLE is not set");
  const { error, parts, ...result } = await processStreamBatch(db, tableName, event.Records ?? []);
  if (error !== undefined) console.error(JSON.stringify({ failedAt: result.batchItemFailures[0]?.itemIdentifier, error: String(error) }));
  console.log(JSON.stringify({ ...result, parts, failed: result.batchItemFailures.length }));
  return result;
}
