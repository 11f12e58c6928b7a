// When DynamoDB's TTL deletes a final task item (only with a configured retention),
// the task's other items must go too, and the owner's exact count must drop by one.
// A Lambda on the table's stream calls this once per expired task. Stream records
// can be delivered more than once, so it is idempotent: the HashCode guard is deleted
// in the same transaction as the count is decremented, on the condition that the guard
// still points at this task; a repeated call finds it gone and does nothing.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { A } from "./item-codec.js";
import { itemKey, OWNER_COUNTER_SHARDS, PARTITION_KEY } from "./table-definition.js";

export interface ExpiredTask {
  id: bigint;
  owner: bigint;
  hashCode: string;
}

export async function cleanUpExpiredTask(db: DynamoDBDocumentClient, tableName: string, task: ExpiredTask): Promise<"cleaned" | "already cleaned"> {
  let outcome: "cleaned" | "already cleaned" = "cleaned";
  try {
    await db.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Delete: {
              TableName: tableName,
              Key: { [PARTITION_KEY]: itemKey.hashCode(task.hashCode) },
              ConditionExpression: "#id = :id",
              ExpressionAttributeNames: { "#id": A.id },
              ExpressionAttributeValues: { ":id": task.id },
            },
          },
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
