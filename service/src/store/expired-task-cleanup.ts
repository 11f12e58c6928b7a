// When DynamoDB's TTL deletes a final task item (only with a configured retention),
// the task's other items must go too, and the owner's exact count must drop by one.
// A Lambda on the table's stream calls this once per expired task. Stream records
// can be delivered more than once, so it is idempotent: in the same transaction as the
// count is decremented, a caller's HashCode guard is deleted on the condition that it
// still points at this task, or (a generated HashCode has no guard) a marker item is
// created on the condition that it does not exist yet; a repeated call fails that
// condition and does nothing. The marker expires by TTL a week later.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { A } from "./item-codec.js";
import { itemKey, OWNER_COUNTER_SHARDS, PARTITION_KEY, TTL_ATTRIBUTE } from "./table-definition.js";
import { taskIdOfGeneratedHashCode } from "../tasks/ids.js";

const MARKER_DAYS = 7;

export interface ExpiredTask {
  id: bigint;
  owner: bigint;
  hashCode: string;
}

export async function cleanUpExpiredTask(
  db: DynamoDBDocumentClient,
  tableName: string,
  task: ExpiredTask,
  nowMs = Date.now(),
): Promise<"cleaned" | "already cleaned"> {
  let outcome: "cleaned" | "already cleaned" = "cleaned";
  const onceOnly =
    taskIdOfGeneratedHashCode(task.hashCode) === task.id
      ? {
          // An Update that creates the item: the function's role may update and delete, not put.
          Update: {
            TableName: tableName,
            Key: { [PARTITION_KEY]: itemKey.expiredTask(task.id) },
            UpdateExpression: "SET #ttl = :ttl",
            ConditionExpression: "attribute_not_exists(#pk)",
            ExpressionAttributeNames: { "#pk": PARTITION_KEY, "#ttl": TTL_ATTRIBUTE },
            ExpressionAttributeValues: { ":ttl": Math.floor(nowMs / 1000) + MARKER_DAYS * 86_400 },
          },
        }
      : {
          Delete: {
            TableName: tableName,
            Key: { [PARTITION_KEY]: itemKey.hashCode(task.hashCode) },
            ConditionExpression: "#id = :id",
            ExpressionAttributeNames: { "#id": A.id },
            ExpressionAttributeValues: { ":id": task.id },
          },
        };
  try {
    await db.send(
      new TransactWriteCommand({
        TransactItems: [
          onceOnly,
          {
            // Any shard will do: Total is the sum of all of them.
            Update: {
              TableName: tableName,
              Key: { [PARTITION_KEY]: itemKey.ownerCounter(task.owner, Number(task.id % BigInt(OWNER_COUNTER_SHARDS))) },
              UpdateExpression: "ADD #count :minusOne",
              ExpressionAttributeNames: { "#count": "count" },
              ExpressionAttributeValues: { ":minusOne": -1n },
            },
          },
        ],
      }),
    );
  } catch (error) {
    const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons;
    if ((error as Error).name !== "TransactionCanceledException" || reasons?.[0]?.Code !== "ConditionalCheckFailed") throw error;
    outcome = "already cleaned";
  }
  // Also after "already cleaned": an earlier run may have failed right here. Payload items
  // exist only for Inputs / Outputs over 1 KiB; deleting a missing item is a no-op.
  await Promise.all(
    [itemKey.input(task.id), itemKey.output(task.id)].map((pk) => db.send(new DeleteCommand({ TableName: tableName, Key: { [PARTITION_KEY]: pk } }))),
  );
  return outcome;
}
