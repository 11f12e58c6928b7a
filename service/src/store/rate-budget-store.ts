// The budgets of rate-limited channels in the tasks table (core/rate-limiter.ts):
// one small item `RL#<channel>` per channel holding its token bucket as one number,
// `tat` (tasks/rate-allowance.ts). Taking permits is one conditional UpdateItem:
// - the bucket is full (tat passed, or no item yet): SET tat = now + k·interval,
//   if tat is still in the past;
// - otherwise: ADD k·interval to tat, if tat + k·interval stays within one second's
//   worth of now (concurrent takes of other replicas may land in between: the
//   condition holds or not on the value it finds);
// - a tat far ahead (a clock far ahead wrote it) is reset, if it is still that value.
// A refused take learns the item from the failed condition and tries again with
// what it found. One write serves up to 10 deliveries (a poll's batch), so a channel
// limited to 5,000 a second writes its item about 500-1,000 times a second, within a
// partition's 1,000 write units.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import type { RateBudgets } from "../core/rate-limiter.js";
import { permitsFree, SKEWED_TAT_US, type RateAllowance } from "../tasks/rate-allowance.js";
import { itemKey, PARTITION_KEY } from "./table-definition.js";
import { UpdateBuilder } from "./update-builder.js";

const TAT = "tat";
const LAST_GIVE_BACK = "lastGiveBack";
/** A full ask, then up to two more with what the failed conditions showed. */
const ATTEMPTS = 3;

export class RateBudgetStore implements RateBudgets {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async take(channel: string, allowance: RateAllowance, wanted: number, now: number, known: number | undefined): Promise<{ granted: number; tat: number | undefined }> {
    let tat = known;
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const asking = Math.min(wanted, permitsFree(allowance, tat, now));
      if (asking === 0) return { granted: 0, tat };
      const step = asking * allowance.intervalUs;
      const update = new UpdateBuilder();
      if (tat === undefined || tat < now) {
        update.set(TAT, BigInt(now + step)).when((b) => `attribute_not_exists(${b.name(TAT)}) OR ${b.name(TAT)} < ${b.value(BigInt(now))}`);
      } else if (tat > now + SKEWED_TAT_US) {
        update.set(TAT, BigInt(now + step)).when((b) => `${b.name(TAT)} = ${b.value(BigInt(tat as number))}`);
      } else {
        update
          .add(TAT, BigInt(step))
          .when((b) => `${b.name(TAT)} BETWEEN ${b.value(BigInt(now))} AND ${b.value(BigInt(now + allowance.toleranceUs - step))}`);
      }
      try {
        const answer = await this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { [PARTITION_KEY]: itemKey.rateBucket(channel) },
            ...update.expression(),
            ReturnValues: "UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        );
        return { granted: asking, tat: Number(answer.Attributes?.[TAT] ?? now + step) };
      } catch (error) {
        if ((error as { name?: string })?.name !== "ConditionalCheckFailedException") throw error;
        const old = (error as { Item?: Record<string, AttributeValue> }).Item;
        const found = old ? unmarshall(old, { wrapNumbers: true })[TAT] : undefined;
        tat = found === undefined ? undefined : Number((found as { value: string }).value);
      }
    }
    return { granted: 0, tat };
  }

  async giveBack(channel: string, us: number, id: string): Promise<void> {
    // The SDK repeats a write whose answer was lost: the give-back's id makes the repeat fail its condition.
    const update = new UpdateBuilder()
      .add(TAT, BigInt(-us))
      .set(LAST_GIVE_BACK, id)
      .when((b) => `attribute_exists(${b.name(TAT)})`)
      .when((b) => `attribute_not_exists(${b.name(LAST_GIVE_BACK)}) OR ${b.name(LAST_GIVE_BACK)} <> ${b.value(id)}`);
    try {
      await this.db.send(new UpdateCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: itemKey.rateBucket(channel) }, ...update.expression() }));
    } catch (error) {
      if ((error as { name?: string })?.name !== "ConditionalCheckFailedException") throw error;
    }
  }
}
