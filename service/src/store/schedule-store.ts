// Recurring schedules in the tasks table (SPEC §7.1). One item per schedule,
// `SC#<name>`; a Template Input larger than 1 KiB lives in `SI#<name>`, so a tick's
// update rewrites only the small schedule item. Schedules are found through the
// sparse index byOutboxDue, in a partition of their own (SCHEDULE_INDEX_SHARD):
// `outboxDueAt` is the next tick, so "which schedules are due" is one query, and a
// paused schedule sits at PAUSED_DUE_AT (never due, still listed). Every change is
// conditional on the version read, so replicas never apply two ticks of one read.
import { randomUUID } from "node:crypto";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { BatchGetCommand, GetCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { ScheduleSpec } from "../tasks/schedule-rules.js";
import { StaleSchedule, type ScheduleRepository, type StoredSchedule } from "../core/schedule-repository.js";
import { INDEXES, INLINE_PAYLOAD_MAX_BYTES, PARTITION_KEY, SCHEDULE_INDEX_SHARD } from "./table-definition.js";
import { UpdateBuilder } from "./update-builder.js";

/** A paused schedule's place in the index: after every real time, so it is never due. */
export const PAUSED_DUE_AT = Number.MAX_SAFE_INTEGER;

const S = {
  name: "scheduleName",
  cron: "cron",
  timeZone: "timeZone",
  channel: "channel",
  input: "input",
  inputExternal: "inputExternal",
  owner: "owner",
  retryMaxLimit: "retryMaxLimit",
  priority: "priority",
  concurrencyKey: "concurrencyKey",
  paused: "paused",
  nextRunAt: "nextRunAt",
  lastRunAt: "lastRunAt",
  createTime: "createTime",
  version: "version",
  incarnation: "incarnation",
  advancedAt: "advancedAt",
  shard: "outboxShard",
  dueAt: "outboxDueAt",
  data: "data",
} as const;

const scheduleKey = (name: string) => `SC#${name}`;
const inputKey = (name: string) => `SI#${name}`;

export class ScheduleStore implements ScheduleRepository {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Creates or replaces the schedule; keeps its CreateTime and LastRunTime. Returns it as written. */
  async put(spec: ScheduleSpec, nextRunAtMs: number | undefined, nowIso: string, ownedBy?: readonly bigint[]): Promise<StoredSchedule> {
    const external = Buffer.byteLength(spec.template.input, "utf8") > INLINE_PAYLOAD_MAX_BYTES;
    const update = new UpdateBuilder()
      .set(S.name, spec.name)
      .set(S.cron, spec.cron)
      .set(S.timeZone, spec.timeZone)
      .set(S.channel, spec.template.channel)
      .set(S.owner, spec.template.owner)
      .set(S.retryMaxLimit, spec.template.retryMaxLimit)
      .set(S.priority, spec.template.priority)
      .set(S.paused, spec.paused)
      .set(S.shard, SCHEDULE_INDEX_SHARD)
      .set(S.dueAt, nextRunAtMs ?? PAUSED_DUE_AT)
      .setIfAbsent(S.createTime, nowIso)
      .set(S.advancedAt, Date.parse(nowIso))
      // A schedule made anew after a delete is another incarnation: a tick read from the old one cannot move it.
      .setIfAbsent(S.incarnation, randomUUID())
      .add(S.version, 1n);
    if (nextRunAtMs === undefined) update.remove(S.nextRunAt);
    else update.set(S.nextRunAt, nextRunAtMs);
    if (spec.template.concurrencyKey === "") update.remove(S.concurrencyKey);
    else update.set(S.concurrencyKey, spec.template.concurrencyKey);
    if (external) update.set(S.inputExternal, true).remove(S.input);
    else update.set(S.input, spec.template.input).remove(S.inputExternal);
    // A token scoped to owners may replace only its owners' schedules (or make a new one).
    if (ownedBy) update.when((b) => `attribute_not_exists(${b.name(PARTITION_KEY)}) OR ${b.name(S.owner)} IN (${ownedBy.map((owner) => b.value(owner)).join(", ")})`);
    const key = { [PARTITION_KEY]: scheduleKey(spec.name) };
    const input = { [PARTITION_KEY]: inputKey(spec.name) };
    try {
      // The schedule and its large Input (or the removal of an earlier one) in one write.
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            { Update: { TableName: this.tableName, Key: key, ...update.expression() } },
            external
              ? { Put: { TableName: this.tableName, Item: { ...input, [S.data]: spec.template.input } } }
              : { Delete: { TableName: this.tableName, Key: input } },
          ],
        }),
      );
    } catch (error) {
      if (conditionFailedFirst(error)) throw new StaleSchedule("the schedule name belongs to another owner");
      throw error;
    }
    // The fields this put does not set (createTime, the last run, the incarnation) are read back; what it set is
    // answered as it wrote it, even if a concurrent put of the same name has replaced it since (its own answer says so).
    const read = await this.get(spec.name);
    if (!read) throw new StaleSchedule("the schedule was deleted while it was being written");
    return { ...read, name: spec.name, cron: spec.cron, timeZone: spec.timeZone, template: { ...spec.template }, paused: spec.paused, nextRunAtMs };
  }

  /** Deletes the schedule and its large Input in one write; false when there was none. */
  async delete(name: string): Promise<boolean> {
    try {
      await this.db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Delete: {
                TableName: this.tableName,
                Key: { [PARTITION_KEY]: scheduleKey(name) },
                ConditionExpression: "attribute_exists(#pk)",
                ExpressionAttributeNames: { "#pk": PARTITION_KEY },
              },
            },
            { Delete: { TableName: this.tableName, Key: { [PARTITION_KEY]: inputKey(name) } } },
          ],
        }),
      );
      return true;
    } catch (error) {
      if (conditionFailedFirst(error)) return false;
      throw error;
    }
  }

  /** The schedule with its Template Input (consistent read). */
  async get(name: string): Promise<StoredSchedule | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: scheduleKey(name) }, ConsistentRead: true }));
    if (!Item) return undefined;
    return decodeSchedule(Item, Item[S.inputExternal] === true ? await this.externalInput(name) : undefined);
  }

  /** Names of schedules whose next tick is at or before `nowMs` (the index may lag: re-read before acting). */
  async dueNames(nowMs: number, limit: number): Promise<string[]> {
    const { Items = [] } = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: INDEXES.byOutboxDue.name,
        KeyConditionExpression: "#shard = :shard AND #due <= :now",
        ExpressionAttributeNames: { "#shard": S.shard, "#due": S.dueAt },
        ExpressionAttributeValues: { ":shard": SCHEDULE_INDEX_SHARD, ":now": nowMs },
        Limit: limit,
      }),
    );
    return Items.map((item) => String(item[PARTITION_KEY]).slice(3));
  }

  /** Every schedule (without large Template Inputs: those show empty), by name. */
  async list(): Promise<StoredSchedule[]> {
    const keys: string[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: INDEXES.byOutboxDue.name,
          KeyConditionExpression: "#shard = :shard",
          ExpressionAttributeNames: { "#shard": S.shard },
          ExpressionAttributeValues: { ":shard": SCHEDULE_INDEX_SHARD },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) keys.push(String(item[PARTITION_KEY]));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    const schedules: StoredSchedule[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      let request: Record<string, { Keys: Record<string, unknown>[]; ConsistentRead?: boolean }> | undefined = {
        [this.tableName]: { Keys: keys.slice(i, i + 100).map((key) => ({ [PARTITION_KEY]: key })) },
      };
      while (request && Object.keys(request).length > 0) {
        const answer = await this.db.send(new BatchGetCommand({ RequestItems: request }));
        for (const item of answer.Responses?.[this.tableName] ?? []) schedules.push(decodeSchedule(item, undefined));
        request = answer.UnprocessedKeys as typeof request;
      }
    }
    return schedules.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Records that `tickMs` fired and moves the schedule to `nextRunAtMs`, if it is still as read (else StaleSchedule). */
  async advance(schedule: StoredSchedule, tickMs: number, nextRunAtMs: number | undefined, nowMs: number): Promise<void> {
    const update = new UpdateBuilder()
      .set(S.lastRunAt, tickMs)
      .set(S.advancedAt, nowMs)
      .set(S.dueAt, nextRunAtMs ?? PAUSED_DUE_AT)
      .add(S.version, 1n)
      .when((b) => `${b.name(S.version)} = ${b.value(schedule.version)} AND ${b.name(S.incarnation)} = ${b.value(schedule.incarnation)}`);
    if (nextRunAtMs === undefined) update.remove(S.nextRunAt);
    else update.set(S.nextRunAt, nextRunAtMs);
    try {
      await this.db.send(new UpdateCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: scheduleKey(schedule.name) }, ...update.expression() }));
    } catch (error) {
      if ((error as { name?: string }).name === "ConditionalCheckFailedException") throw new StaleSchedule("the schedule changed since it was read");
      throw error;
    }
  }

  private async externalInput(name: string): Promise<string> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: inputKey(name) }, ConsistentRead: true }));
    return (Item?.[S.data] as string | undefined) ?? "";
  }
}

function decodeSchedule(item: Record<string, unknown>, externalInput: string | undefined): StoredSchedule {
  const optionalMs = (value: unknown) => (value === undefined || value === null ? undefined : Number(value as bigint));
  return {
    name: item[S.name] as string,
    cron: item[S.cron] as string,
    timeZone: (item[S.timeZone] as string | undefined) ?? "",
    template: {
      channel: item[S.channel] as string,
      input: item[S.inputExternal] === true ? (externalInput ?? "") : ((item[S.input] as string | undefined) ?? ""),
      owner: BigInt(item[S.owner] as bigint),
      retryMaxLimit: BigInt(item[S.retryMaxLimit] as bigint),
      priority: Number((item[S.priority] as bigint | undefined) ?? 1n),
      concurrencyKey: (item[S.concurrencyKey] as string | undefined) ?? "",
    },
    paused: item[S.paused] === true,
    nextRunAtMs: optionalMs(item[S.nextRunAt]),
    lastRunAtMs: optionalMs(item[S.lastRunAt]),
    createTime: item[S.createTime] as string,
    version: BigInt(item[S.version] as bigint),
    incarnation: (item[S.incarnation] as string | undefined) ?? "",
    advancedAtMs: optionalMs(item[S.advancedAt]) ?? 0,
  };
}

/** A transaction cancelled because its first item's condition failed. */
function conditionFailedFirst(error: unknown): boolean {
  if ((error as { name?: string })?.name !== "TransactionCanceledException") return false;
  return (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons?.[0]?.Code === "ConditionalCheckFailed";
}
