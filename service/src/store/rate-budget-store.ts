// The budgets of rate-limited channels in the tasks table (core/rate-limiter.ts):
// one small item `RL#<channel>#<window>` per channel and one-second window, holding
// the permits taken (`used`); it expires by TTL a minute later. Taking permits is
// one conditional UpdateItem (ADD, "used + k stays within the budget"); a refused
// take learns from the failed condition how many are left and takes those. One write
// serves up to 10 deliveries (a poll's batch), so a channel limited to 1,000 a
// second writes its window item about 100-200 times a second, within a partition's
// 1,000.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { RateBudgets } from "../core/rate-limiter.js";
import { itemKey, PARTITION_KEY, TTL_ATTRIBUTE } from "./table-definition.js";
import { UpdateBuilder } from "./update-builder.js";

const USED = "used";
const LAST_GIVE_BACK = "lastGiveBack";
/** How long a window's item stays (it is read only during its own second). */
const WINDOW_ITEM_TTL_SECONDS = 60;

export class RateBudgetStore implements RateBudgets {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async take(channel: string, window: number, budget: number, wanted: number): Promise<number> {
    let asking = Math.min(wanted, budget);
    // At most twice: the full ask, then what the failed condition says is left.
    for (let attempt = 0; attempt < 2 && asking > 0; attempt++) {
      const update = new UpdateBuilder()
        .add(USED, BigInt(asking))
        .set(TTL_ATTRIBUTE, window + WINDOW_ITEM_TTL_SECONDS)
        .when((b) => `attribute_not_exists(${b.name(USED)}) OR ${b.name(USED)} <= ${b.value(budget - asking)}`);
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { [PARTITION_KEY]: itemKey.rateWindow(channel, window) },
            ...update.expression(),
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return asking;
      } catch (error) {
        if ((error as { name?: string })?.name !== "ConditionalCheckFailedException") throw error;
        const old = (error as { Item?: Record<string, AttributeValue> }).Item;
        const used = old ? Number(unmarshall(old)[USED] ?? 0) : 0;
        asking = Math.min(wanted, budget - used);
      }
    }
    return 0;
  }

  async giveBack(channel: string, window: number, count: number, id: string): Promise<void> {
    // The SDK repeats a write whose answer was lost: the give-back's id makes the repeat fail its condition.
    const update = new UpdateBuilder()
      .add(USED, BigInt(-count))
      .set(LAST_GIVE_BACK, id)
      .when((b) => `${b.name(USED)} >= ${b.value(count)}`)
      .when((b) => `attribute_not_exists(${b.name(LAST_GIVE_BACK)}) OR ${b.name(LAST_GIVE_BACK)} <> ${b.value(id)}`);
    try {
      await this.db.send(
        new UpdateCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: itemKey.rateWindow(channel, window) }, ...update.expression() }),
      );
    } catch (error) {
      if ((error as { name?: string })?.name !== "ConditionalCheckFailedException") throw error;
    }
  }
}
