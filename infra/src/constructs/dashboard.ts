// The CloudWatch dashboard of the servers' metrics, and the metrics themselves. The
// servers write them as Embedded Metric Format log lines (QUEUES_EMF_NAMESPACE, see
// service/src/metrics/emf-publisher.ts): CloudWatch Logs extracts them from the log
// group, so they need no IAM right and no PutMetricData call. One row per channel:
// backlog and in flight, tasks created / succeeded / failed per period, queue wait
// and run time, and the "backlog per waiting credit" a worker fleet can scale on.
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import { Construct } from "constructs";
import { DEFAULT_METRICS_NAMESPACE, EMF_DIMENSION, EMF_METRICS } from "@queues/server/definitions";

/** The servers write their lines every minute (QUEUES_EMF_INTERVAL_MS): CloudWatch's standard resolution. */
const ONE_MINUTE = Duration.minutes(1);

/**
 * Tasks waiting per credit a worker is waiting with: the channel's backlog (the same
 * on every replica: its Maximum) over the credits waiting on all replicas (their
 * Sum). With no credit waiting (every worker busy, or none connected) it is the
 * backlog plus one, never 0: 0 means nothing waits and workers have credits to
 * spare (scale in), 1 that every worker is busy and nothing waits, more that tasks
 * wait (scale out; also from zero workers).
 */
export const BACKLOG_PER_CREDIT_EXPRESSION = "IF(credits > 0, backlog / credits, backlog + 1)";

export interface MetricOptions {
  /** @default "Queues" (the stack's `metricsNamespace`) */
  readonly namespace?: string;
  /** @default one minute */
  readonly period?: Duration;
}

/** One of a channel's metrics. Counts: Sum; Backlog, InFlight: Maximum (every replica writes the same); CreditsWaiting: Sum; timings: Average. */
export function channelMetric(channel: string, metric: keyof typeof EMF_METRICS, options: MetricOptions & { readonly statistic?: string } = {}): cloudwatch.Metric {
  const statistic =
    options.statistic ??
    (metric === "backlog" || metric === "inFlight" ? cloudwatch.Stats.MAXIMUM : metric === "queueWait" || metric === "runTime" ? cloudwatch.Stats.AVERAGE : cloudwatch.Stats.SUM);
  return new cloudwatch.Metric({
    namespace: options.namespace ?? DEFAULT_METRICS_NAMESPACE,
    metricName: EMF_METRICS[metric],
    dimensionsMap: { [EMF_DIMENSION]: channel },
    statistic,
    period: options.period ?? ONE_MINUTE,
  });
}

/** The channel's backlog per waiting credit (BACKLOG_PER_CREDIT_EXPRESSION), for a dashboard, an alarm or a worker fleet's step scaling. */
export function backlogPerWaitingCredit(channel: string, options: MetricOptions = {}): cloudwatch.MathExpression {
  const period = options.period ?? ONE_MINUTE;
  return new cloudwatch.MathExpression({
    expression: BACKLOG_PER_CREDIT_EXPRESSION,
    usingMetrics: {
      backlog: channelMetric(channel, "backlog", { ...options, period, statistic: cloudwatch.Stats.MAXIMUM }),
      credits: channelMetric(channel, "creditsWaiting", { ...options, period, statistic: cloudwatch.Stats.SUM }),
    },
    label: `${channel}: backlog per waiting credit`,
    period,
  });
}

export interface QueuesDashboardProps {
  /** The channels' names: a row each. */
  readonly channels: readonly string[];
  /** @default "Queues" */
  readonly namespace?: string;
}

export class QueuesDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: QueuesDashboardProps) {
    super(scope, id);
    const namespace = props.namespace ?? DEFAULT_METRICS_NAMESPACE;
    const metric = (channel: string, key: keyof typeof EMF_METRICS, label: string) => channelMetric(channel, key, { namespace }).with({ label });
    this.dashboard = new cloudwatch.Dashboard(this, "Dashboard", {
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: [
          `# Queues`,
          `Per channel, from the servers' Embedded Metric Format log lines (namespace \`${namespace}\`, dimension \`${EMF_DIMENSION}\`), written by every replica once a minute.`,
          `Backlog and in flight are SQS's approximate counts; **backlog per waiting credit** is \`${BACKLOG_PER_CREDIT_EXPRESSION}\` (0: nothing waits and workers have credits to spare; 1: every worker busy; more: tasks wait, add workers).`,
        ].join("\n\n"),
        width: 24,
        height: 3,
      }),
    );
    for (const channel of props.channels) {
      this.dashboard.addWidgets(
        new cloudwatch.GraphWidget({
          title: `${channel}: backlog and in flight`,
          left: [metric(channel, "backlog", "Backlog"), metric(channel, "inFlight", "In flight")],
          leftYAxis: { min: 0 },
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: tasks created, succeeded, failed`,
          left: [metric(channel, "created", "Created"), metric(channel, "succeeded", "Succeeded"), metric(channel, "failed", "Failed")],
          leftYAxis: { min: 0 },
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: queue wait and run time (ms)`,
          left: [metric(channel, "queueWait", "Queue wait (average)"), metric(channel, "runTime", "Run time (average)")],
          leftYAxis: { min: 0 },
          width: 6,
        }),
        new cloudwatch.GraphWidget({
          title: `${channel}: backlog per waiting credit`,
          left: [backlogPerWaitingCredit(channel, { namespace })],
          right: [metric(channel, "creditsWaiting", "Credits waiting (all replicas)")],
          leftYAxis: { min: 0 },
          rightYAxis: { min: 0 },
          width: 6,
        }),
      );
    }
  }
}
