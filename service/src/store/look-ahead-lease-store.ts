// The look-ahead's leases in the tasks table (core/look-ahead-leases.ts): one small
// item `LA#<shard>` per parking shard, with its holder, the lease's end (epoch ms, the
// holder's clock) and the shard's cursor. Every write is one conditional UpdateItem
// of that item (1 write unit); a claim that finds the lease held returns the holder's
// lease end from the failed condition (ReturnValuesOnConditionCheckFailure), so the
// claimer waits for it without reading the item.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { LeaseClaim, LookAheadLeases } from "../core/look-ahead-leases.js";
import type { ParkedPosition } from "../core/task-repository.js";
import { itemKey, PARTITION_KEY } from "./table-definition.js";
import { UpdateBuilder } from "./update-builder.js";

const L = { holder: "holder", leaseUntil: "leaseUntil", cursorDueAt: "cursorDueAt", cursorKey: "cursorKey" } as const;

export class LookAheadLeaseStore implements LookAheadLeases {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async claim(shard: number, holder: string, nowMs: number, untilMs: number): Promise<LeaseClaim> {
    const update = new UpdateBuilder()
      .set(L.holder, holder)
      .set(L.leaseUntil, untilMs)
      .when((b) => `attribute_not_exists(${b.name(PARTITION_KEY)}) OR ${b.name(L.holder)} = ${b.value(holder)} OR ${b.name(L.leaseUntil)} < ${b.value(nowMs)}`);
    try {
      const answer = await this.db.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: itemKey.lookAheadLease(shard) },
          ...update.expression(),
          ReturnValues: "ALL_NEW",
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return { held: true, cursor: cursorOf(answer.Attributes ?? {}) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const item = heldItem(error);
      return { held: false, heldUntilMs: Number(item[L.leaseUntil] ?? 0) };
    }
  }

  async renew(shard: number, holder: string, cursor: ParkedPosition, untilMs: number): Promise<boolean> {
    return this.writeHeld(shard, holder, cursor, untilMs);
  }

  async release(shard: number, holder: string, cursor: ParkedPosition): Promise<void> {
    await this.writeHeld(shard, holder, cursor, 0);
  }

  /** Writes the cursor and the lease's end, on condition that `holder` holds the lease. */
  private async writeHeld(shard: number, holder: string, cursor: ParkedPosition, untilMs: number): Promise<boolean> {
    const update = new UpdateBuilder().set(L.leaseUntil, untilMs).set(L.cursorDueAt, cursor.dueAtMs);
    if (cursor.key === undefined) update.remove(L.cursorKey);
    else update.set(L.cursorKey, cursor.key);
    update.when((b) => `${b.name(L.holder)} = ${b.value(holder)}`);
    try {
      await this.db.send(new UpdateCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: itemKey.lookAheadLease(shard) }, ...update.expression() }));
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw error;
    }
  }
}

function cursorOf(item: Record<string, unknown>): ParkedPosition | undefined {
  if (item[L.cursorDueAt] === undefined) return undefined;
  const key = item[L.cursorKey];
  return { dueAtMs: Number(item[L.cursorDueAt]), ...(typeof key === "string" ? { key } : {}) };
}

function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === "ConditionalCheckFailedException";
}

/** The item a failed condition returned (the document client leaves it in DynamoDB's attribute-value form). */
function heldItem(error: unknown): Record<string, unknown> {
  const item = (error as { Item?: Record<string, AttributeValue> }).Item;
  return item ? unmarshall(item) : {};
}
