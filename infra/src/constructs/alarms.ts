// The alarms an operator needs: fewer healthy servers than desiredCount; State-500
// answers (bugs, counted from the servers' log lines); per channel, a message in the
// dead-letter queue (something the server could not handle at all), a dead letter near
// its expiry, and, per priority level's queue, a backlog whose oldest message is too old
// (workers missing or too slow); and errors of the table stream function.
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as logs from "aws-cdk-lib/aws-logs";
import * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { channelQueueDefinition, UNEXPECTED_ERROR_LOG_MESSAGE } from "@queues/server/definitions";
import { CONFIG_DEFAULTS } from "../config.js";
import { levelQueuesByKey, type ChannelQueue } from "./channel-queues.js";

export interface AlarmsProps {
  /** The channel queues to watch. */
  readonly channels: readonly ChannelQueue[];
  /**
   * The "oldest waiting task" alarm fires when the oldest message of a channel's queue (of one of its priority levels) is older than this.
   * @default 3600
   */
  readonly oldestMessageAlarmSeconds?: number;
  /**
   * The table stream function to watch (its errors and the records it gave up on).
   * @default - no alarms on it
   */
  readonly streamFunction?: { readonly function: lambda.IFunction; readonly failedRecords: sqs.IQueue };
  /**
   * The servers: fewer healthy ones behind the load balancer than `desiredCount` for 3
   * minutes, and any State-500 answer in their logs, raise an alarm.
   * @default - no alarms on the servers
   */
  readonly servers?: { readonly targetGroup: elbv2.NetworkTargetGroup; readonly logGroup: logs.ILogGroup; readonly desiredCount: number };
  /**
   * Every alarm notifies this SNS topic.
   * @default - the alarms notify nobody (they still show in the CloudWatch console)
   */
  readonly topicArn?: string;
  /**
   * The namespace of the State-500 count (the servers' other metrics are there too).
   * @default "Queues"
   */
  readonly metricsNamespace?: string;
}

/** What one alarm watches: "above `threshold` for `evaluationPeriods` periods", missing data not breaching. */
export interface ThresholdAlarm {
  readonly metric: cloudwatch.IMetric;
  readonly description: string;
  /** @default 0 (any at all) */
  readonly threshold?: number;
  /** @default 1 */
  readonly evaluationPeriods?: number;
  /** @default "above" the threshold */
  readonly when?: "above" | "below";
  /** @default NOT_BREACHING */
  readonly treatMissingData?: cloudwatch.TreatMissingData;
}

export class Alarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  private readonly topic: sns.ITopic | undefined;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    this.topic = props.topicArn ? sns.Topic.fromTopicArn(this, "Topic", props.topicArn) : undefined;
    const oldestSeconds = props.oldestMessageAlarmSeconds ?? CONFIG_DEFAULTS.oldestMessageAlarmSeconds;
    const maxPerMinute = { period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM };
    for (const channelQueue of props.channels) {
      const { channel, deadLetterQueue } = channelQueue;
      const scope = new Construct(this, channel.name);
      this.add(scope, "DeadLetters", {
        metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible(maxPerMinute),
        description: `Channel ${channel.name}: messages in the dead-letter queue. The server could not handle them; inspect and redrive (SQS StartMessageMoveTask).`,
      });
      const deadLetterRetention = channelQueueDefinition(channel).deadLetterRetentionSeconds;
      this.add(scope, "DeadLetterAge", {
        metric: deadLetterQueue.metricApproximateAgeOfOldestMessage(maxPerMinute),
        description: `Channel ${channel.name}: a dead letter is older than half the dead-letter queue's retention (${deadLetterRetention / 2} s); SQS deletes it at ${deadLetterRetention} s. Redrive or inspect it before then.`,
        threshold: deadLetterRetention / 2,
      });
      // One per priority level's queue (level 1 keeps the id the channel's alarm always had).
      for (const [, queue, level] of levelQueuesByKey(channelQueue)) {
        const where = channelQueue.levelQueues.length > 1 ? `Channel ${channel.name}, priority level ${level}` : `Channel ${channel.name}`;
        this.add(scope, level === 1 ? "OldestMessage" : `OldestMessage-p${level}`, {
          metric: queue.metricApproximateAgeOfOldestMessage(maxPerMinute),
          description: `${where}: the oldest waiting task is older than ${oldestSeconds} s. Are its workers connected and keeping up?`,
          threshold: oldestSeconds,
          evaluationPeriods: 5,
        });
      }
    }
    if (props.servers) {
      const { targetGroup, logGroup, desiredCount } = props.servers;
      this.add(this, "HealthyServers", {
        metric: targetGroup.metrics.healthyHostCount({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MINIMUM }),
        description: `Fewer than ${desiredCount} healthy servers behind the load balancer for 3 minutes (none: workers cannot connect). Look at the ECS service's events and the servers' logs.`,
        threshold: desiredCount,
        when: "below",
        evaluationPeriods: 3,
        // No data points: no healthy server reported at all.
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      });
      const serverErrors = new logs.MetricFilter(this, "ServerErrorLines", {
        logGroup,
        filterPattern: logs.FilterPattern.stringValue("$.msg", "=", UNEXPECTED_ERROR_LOG_MESSAGE),
        metricNamespace: props.metricsNamespace ?? CONFIG_DEFAULTS.metricsNamespace,
        metricName: "ServerErrors",
        metricValue: "1",
      });
      this.add(this, "ServerErrors", {
        metric: serverErrors.metric({ period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM }),
        description: `A server answered State 500 (an unexpected error: a bug). Its log line ("${UNEXPECTED_ERROR_LOG_MESSAGE}") carries the request id the caller got.`,
      });
    }
    if (props.streamFunction) {
      this.add(this, "StreamFunctionErrors", {
        metric: props.streamFunction.function.metricErrors({ period: Duration.minutes(5) }),
        description: "The table stream function failed (owners' Totals lag meanwhile); it retries, but look at its logs.",
      });
      this.add(this, "StreamFunctionGaveUp", {
        metric: props.streamFunction.failedRecords.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM }),
        description:
          "Stream records the table stream function gave up on after every retry: their owners' Totals are off by them, and expired tasks among them keep their HashCode guards and payload items (see the records in the queue).",
      });
    }
  }

  /** One alarm, wired to the topic when there is one. */
  add(scope: Construct, id: string, alarm: ThresholdAlarm): cloudwatch.Alarm {
    const created = new cloudwatch.Alarm(scope, id, {
      metric: alarm.metric,
      alarmDescription: alarm.description,
      threshold: alarm.threshold ?? 0,
      comparisonOperator:
        alarm.when === "below" ? cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD : cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: alarm.evaluationPeriods ?? 1,
      treatMissingData: alarm.treatMissingData ?? cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    if (this.topic) created.addAlarmAction(new actions.SnsAction(this.topic));
    this.alarms.push(created);
    return created;
  }
}
