// BatchGetItem of any number of keys of the one table: 100 keys a request, the keys
// DynamoDB leaves unprocessed (throttling, the 16 MB answer limit) asked again with a
// growing pause (up to 1 s), up to 11 times. Items are answered by their partition key.
import { BatchGetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { PARTITION_KEY } from "./table-definition.js";

/** Keys one BatchGetItem request may carry. */
const KEYS_PER_REQUEST = 100;
/** Requests again for keys left unprocessed, at most (about 7 s of pauses in all). */
const MAX_RETRIES = 11;

export type StoredItem = Record<string, unknown>;

export async function batchGetItems(
  db: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly string[],
  options: { consistent: boolean },
): Promise<Map<string, StoredItem>> {
  const found = new Map<string, StoredItem>();
  for (let start = 0; start < keys.length; start += KEYS_PER_REQUEST) {
    let pending: StoredItem[] = keys.slice(start, start + KEYS_PER_REQUEST).map((key) => ({ [PARTITION_KEY]: key }));
    for (let round = 0; pending.length > 0; round++) {
      if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 20 * 2 ** round)));
      const result = await db.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: options.consistent } } }));
      for (const item of result.Responses?.[tableName] ?? []) found.set(item[PARTITION_KEY] as string, item);
      pending = (result.UnprocessedKeys?.[tableName]?.Keys as StoredItem[] | undefined) ?? [];
      if (pending.length > 0 && round >= MAX_RETRIES) throw new Error(`BatchGetItem left keys unprocessed after ${MAX_RETRIES} retries`);
    }
  }
  return found;
}
