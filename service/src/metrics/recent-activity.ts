// The console's "last 5 minutes / last hour" numbers per channel: tasks created,
// succeeded and failed, in one-minute buckets over the last hour, kept in memory by
// this server (each replica counts what it did; the CloudWatch dashboard sums the
// replicas). Memory is fixed: 60 buckets per configured channel.

export type ActivityKind = "created" | "succeeded" | "failed";
export const ACTIVITY_KINDS: readonly ActivityKind[] = ["created", "succeeded", "failed"];

const MINUTE_MS = 60_000;
export const ACTIVITY_MINUTES = 60;

interface Bucket {
  minute: number;
  created: number;
  succeeded: number;
  failed: number;
}

export class RecentActivity {
  private readonly channels = new Map<string, Bucket[]>();

  constructor(private readonly now: () => number = Date.now) {}

  record(channel: string, kind: ActivityKind): void {
    const minute = Math.floor(this.now() / MINUTE_MS);
    let buckets = this.channels.get(channel);
    if (!buckets) this.channels.set(channel, (buckets = []));
    const slot = minute % ACTIVITY_MINUTES;
    const bucket = buckets[slot];
    if (bucket?.minute === minute) bucket[kind] += 1;
    else buckets[slot] = { minute, created: 0, succeeded: 0, failed: 0, [kind]: 1 };
  }

  /** Per minute, oldest first, the last `minutes` minutes (this one included). */
  series(channel: string, minutes = ACTIVITY_MINUTES): Record<ActivityKind, number[]> {
    const now = Math.floor(this.now() / MINUTE_MS);
    const buckets = this.channels.get(channel) ?? [];
    const series: Record<ActivityKind, number[]> = { created: [], succeeded: [], failed: [] };
    for (let minute = now - minutes + 1; minute <= now; minute++) {
      const bucket = buckets[((minute % ACTIVITY_MINUTES) + ACTIVITY_MINUTES) % ACTIVITY_MINUTES];
      for (const kind of ACTIVITY_KINDS) series[kind].push(bucket?.minute === minute ? bucket[kind] : 0);
    }
    return series;
  }

  /** Totals over the last `minutes` minutes. */
  totals(channel: string, minutes: number): Record<ActivityKind, number> {
    const series = this.series(channel, minutes);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    return { created: sum(series.created), succeeded: sum(series.succeeded), failed: sum(series.failed) };
  }
}
