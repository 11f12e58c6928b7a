// A channel's activity of the last hour (the console's "created / succeeded / failed in
// the last 5 minutes and hour"), as the table stream function counted it from the
// table's stream (stream/table-stream.ts): tasks of every replica, each counted once.
// Items `AC#<channel>#<hour>#<shard>` hold one attribute per kind and minute of the
// hour; the last 60 minutes span two hours, so a channel's read is 2 x ACTIVITY_SHARDS
// small items (eventually consistent: 0.5 read unit each), whatever the task rate.
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { batchGetItems } from "./batch-get.js";
import { ACTIVITY_SHARDS, itemKey } from "./table-definition.js";

export type ActivityKind = "created" | "succeeded" | "failed";
export const ACTIVITY_KINDS: readonly ActivityKind[] = ["created", "succeeded", "failed"];
export type ActivitySeries = Record<ActivityKind, number[]>;

/** The minutes a series covers (this one included). */
export const ACTIVITY_MINUTES = 60;

export class ActivityStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** Per channel, per minute, oldest first: the last ACTIVITY_MINUTES minutes up to `nowMs`. */
  async lastHour(channels: readonly string[], nowMs: number): Promise<Map<string, ActivitySeries>> {
    const minute = Math.floor(nowMs / 60_000);
    const hours = [Math.floor((minute - ACTIVITY_MINUTES + 1) / 60), Math.floor(minute / 60)].filter((hour, index, all) => all.indexOf(hour) === index);
    const keys = channels.flatMap((channel) => hours.flatMap((hour) => Array.from({ length: ACTIVITY_SHARDS }, (_, shard) => itemKey.activity(channel, hour, shard))));
    const items = await this.read(keys);
    const series = new Map<string, ActivitySeries>();
    for (const channel of channels) {
      const counts: ActivitySeries = { created: [], succeeded: [], failed: [] };
      for (let at = minute - ACTIVITY_MINUTES + 1; at <= minute; at++) {
        const hour = Math.floor(at / 60);
        for (const kind of ACTIVITY_KINDS) {
          let count = 0;
          for (let shard = 0; shard < ACTIVITY_SHARDS; shard++) count += Number(items.get(itemKey.activity(channel, hour, shard))?.[`${kind}_${at % 60}`] ?? 0);
          counts[kind].push(count);
        }
      }
      series.set(channel, counts);
    }
    return series;
  }

  /** Eventually consistent: the console's numbers may lag the stream by a moment anyway. */
  private read(keys: string[]): Promise<Map<string, Record<string, unknown>>> {
    return batchGetItems(this.db, this.tableName, keys, { consistent: false });
  }
}

/** Totals over the last `minutes` minutes of a series. */
export function totalsOf(series: ActivitySeries, minutes: number): Record<ActivityKind, number> {
  const sum = (values: number[]) => values.slice(-minutes).reduce((a, b) => a + b, 0);
  return { created: sum(series.created), succeeded: sum(series.succeeded), failed: sum(series.failed) };
}
