// The Prometheus metrics (task-metrics.ts) as CloudWatch Embedded Metric Format lines
// (QUEUES_EMF_NAMESPACE): every QUEUES_EMF_INTERVAL_MS, one JSON line per channel on
// stdout, which the ECS awslogs driver sends to CloudWatch Logs, where the metrics are
// extracted (no PutMetricData call, no IAM right: the log group is all it takes).
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
//
// The values are read from the prom-client registry, not from core: counters as the
// interval's increase, gauges as they are, the two histograms as the interval's
// average (their sum and count increases). The lines carry the channel's name and
// numbers, never task data. They are written with process.stdout.write, beside
// pino's lines and not through pino: an EMF line is a JSON object whose root holds
// `_aws` and the values, and nothing of pino's (level, time, msg) belongs there.
// A line of a few hundred bytes is one write, below the pipe's atomic size, so it
// never lands inside a log line.
import type { Logger } from "pino";
import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";
import { RepeatingPass } from "../core/repeating-pass.js";
import { EMF_DIMENSION, EMF_METRICS, type EmfMetricKey } from "./emf-names.js";

type Snapshot = readonly MetricObjectWithValues<MetricValue<string>>[];

/** The Prometheus families read, by what they become. */
export const PROMETHEUS_SOURCES = {
  counters: {
    created: "queues_tasks_created_total",
    delivered: "queues_tasks_delivered_total",
    succeeded: "queues_tasks_succeeded_total",
    failed: "queues_tasks_failed_total",
    cancelled: "queues_tasks_cancelled_total",
    retried: "queues_tasks_retried_total",
    leasesExpired: "queues_leases_expired_total",
  },
  histograms: { queueWait: "queues_queue_wait_seconds", runTime: "queues_run_seconds" },
  gauges: { backlog: "queues_backlog", inFlight: "queues_in_flight", creditsWaiting: "queues_credits_waiting" },
} as const;

type CounterKey = keyof typeof PROMETHEUS_SOURCES.counters;
type HistogramKey = keyof typeof PROMETHEUS_SOURCES.histograms;
type GaugeKey = keyof typeof PROMETHEUS_SOURCES.gauges;
/** The families that cost nothing to read (no SQS call): all but the backlog and in-flight gauges. */
const LOCAL_FAMILIES = [
  ...Object.values(PROMETHEUS_SOURCES.counters),
  ...Object.values(PROMETHEUS_SOURCES.histograms),
  PROMETHEUS_SOURCES.gauges.creditsWaiting,
];
const ALL_FAMILIES = [...LOCAL_FAMILIES, PROMETHEUS_SOURCES.gauges.backlog, PROMETHEUS_SOURCES.gauges.inFlight];

/** One channel's cumulative counts since the replica started (what the next interval's increase is taken from). */
export interface ChannelTotals {
  counters: Record<CounterKey, number>;
  /** Seconds observed and observations, over every label but the channel. */
  histograms: Record<HistogramKey, { sum: number; count: number }>;
  /** Absent when the family could not be read (the SQS counts, in an SQS outage or at shutdown). */
  gauges: Partial<Record<GaugeKey, number>>;
}

/** An EMF document: `_aws` and, at the root, the dimension and one number per metric. */
export interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: "Count" | "Milliseconds" }[] }[];
  };
  [member: string]: unknown;
}

/** Each channel's totals in a snapshot of the registry (getMetricsAsJSON's shape); a channel nothing happened to has zeros. */
export function channelTotals(snapshot: Snapshot, channels: readonly string[]): Map<string, ChannelTotals> {
  const totals = new Map<string, ChannelTotals>(
    channels.map((channel) => [
      channel,
      {
        counters: { created: 0, delivered: 0, succeeded: 0, failed: 0, cancelled: 0, retried: 0, leasesExpired: 0 },
        histograms: { queueWait: { sum: 0, count: 0 }, runTime: { sum: 0, count: 0 } },
        gauges: {},
      },
    ]),
  );
  const families = new Map(snapshot.map((family) => [family.name, family]));
  const samples = (name: string) => (families.get(name)?.values ?? []) as (MetricValue<string> & { metricName?: string })[];
  const channelOf = (sample: MetricValue<string>) => totals.get(String(sample.labels.channel));
  for (const [key, name] of Object.entries(PROMETHEUS_SOURCES.counters) as [CounterKey, string][]) {
    for (const sample of samples(name)) {
      const channel = channelOf(sample);
      if (channel) channel.counters[key] += sample.value;
    }
  }
  for (const [key, name] of Object.entries(PROMETHEUS_SOURCES.histograms) as [HistogramKey, string][]) {
    for (const sample of samples(name)) {
      const channel = channelOf(sample);
      if (!channel) continue;
      if (sample.metricName === `${name}_sum`) channel.histograms[key].sum += sample.value;
      else if (sample.metricName === `${name}_count`) channel.histograms[key].count += sample.value;
    }
  }
  for (const [key, name] of Object.entries(PROMETHEUS_SOURCES.gauges) as [GaugeKey, string][]) {
    if (!families.has(name)) continue;
    for (const channel of totals.values()) channel.gauges[key] = 0;
    for (const sample of samples(name)) {
      const channel = channelOf(sample);
      if (channel) channel.gauges[key] = sample.value;
    }
  }
  return totals;
}

/**
 * The EMF document of one channel for the interval from `previous` (undefined: the
 * replica's start, when every count was 0) to `current`.
 */
export function emfDocument(options: {
  namespace: string;
  channel: string;
  timestamp: number;
  current: ChannelTotals;
  previous: ChannelTotals | undefined;
}): EmfDocument {
  const { current, previous } = options;
  const metrics: { Name: string; Unit: "Count" | "Milliseconds" }[] = [];
  const values: Record<string, number> = {};
  const put = (key: EmfMetricKey, value: number, unit: "Count" | "Milliseconds") => {
    metrics.push({ Name: EMF_METRICS[key], Unit: unit });
    values[EMF_METRICS[key]] = value;
  };
  // A counter never goes down within a process; max(0, ...) keeps a bad snapshot from writing a negative count.
  const increase = (now: number, before: number | undefined) => Math.max(0, now - (before ?? 0));
  for (const key of Object.keys(PROMETHEUS_SOURCES.counters) as CounterKey[]) {
    put(key, increase(current.counters[key], previous?.counters[key]), "Count");
  }
  for (const key of Object.keys(PROMETHEUS_SOURCES.gauges) as GaugeKey[]) {
    const value = current.gauges[key];
    if (value !== undefined) put(key, value, "Count");
  }
  for (const key of Object.keys(PROMETHEUS_SOURCES.histograms) as HistogramKey[]) {
    const count = increase(current.histograms[key].count, previous?.histograms[key].count);
    const seconds = increase(current.histograms[key].sum, previous?.histograms[key].sum);
    // No observation in the interval: no value (an average of nothing is not 0 ms).
    if (count > 0) put(key, Math.round((seconds / count) * 1000 * 1000) / 1000, "Milliseconds");
  }
  return {
    _aws: {
      Timestamp: options.timestamp,
      CloudWatchMetrics: [{ Namespace: options.namespace, Dimensions: [[EMF_DIMENSION]], Metrics: metrics }],
    },
    [EMF_DIMENSION]: options.channel,
    ...values,
  };
}

export interface EmfPublisherOptions {
  namespace: string;
  intervalMs: number;
  /** The channels to write a line for (every one, also when nothing happened: a 0 is data, a gap is not). */
  channels: () => readonly string[];
  log: Logger;
  /** Where a line goes (default: process.stdout). */
  write?: (line: string) => void;
  /** Epoch ms of the lines' Timestamp (default: Date.now; not the server's test clock). */
  now?: () => number;
}

export class EmfPublisher {
  private readonly loop: RepeatingPass;
  private readonly write: (line: string) => void;
  private readonly now: () => number;
  /** The totals the last lines were written at, by channel. */
  private previous = new Map<string, ChannelTotals>();
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly registry: Registry,
    private readonly options: EmfPublisherOptions,
  ) {
    this.write = options.write ?? ((line) => void process.stdout.write(line));
    this.now = options.now ?? Date.now;
    this.loop = new RepeatingPass(() => this.publishOnce(), options.intervalMs, options.log, "writing the EMF metric lines failed; will try again");
  }

  start(): void {
    this.loop.start();
  }

  /**
   * Stops the timer and writes the last (partial) interval's counts, so that a replica
   * scaled in or replaced loses none; without the backlog and in-flight gauges (an SQS
   * call at shutdown; the other replicas report them).
   */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await this.loop.stop();
      await this.publishOnce({ sqsGauges: false }).catch((error: unknown) => this.options.log.warn({ err: error }, "writing the last EMF metric lines failed"));
    })();
    return this.stopped;
  }

  /** Writes one line per channel; returns how many. */
  async publishOnce(options: { sqsGauges?: boolean } = {}): Promise<number> {
    const names = options.sqsGauges === false ? LOCAL_FAMILIES : ALL_FAMILIES;
    // One family at a time, so that an SQS outage (the backlog gauges) leaves out only those.
    const read = await Promise.allSettled(names.map((name) => this.registry.getSingleMetric(name)?.get()));
    const snapshot = read.flatMap((result) => (result.status === "fulfilled" && result.value ? [result.value] : []));
    const failed = read.flatMap((result, index) => (result.status === "rejected" ? [names[index]] : []));
    if (failed.length > 0) this.options.log.warn({ metrics: failed }, "EMF lines written without these metrics: reading them failed");
    const channels = this.options.channels();
    const totals = channelTotals(snapshot, channels);
    const timestamp = this.now();
    let lines = 0;
    for (const channel of channels) {
      const current = totals.get(channel) as ChannelTotals;
      const document = emfDocument({ namespace: this.options.namespace, channel, timestamp, current, previous: this.previous.get(channel) });
      this.write(`${JSON.stringify(document)}\n`);
      lines++;
    }
    this.previous = totals;
    return lines;
  }
}
