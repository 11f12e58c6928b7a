// The alarms an operator needs: per channel, a message in the dead-letter queue
// (something the server could not handle at all) and a backlog whose oldest message
// is too old (workers missing or too slow); and errors of the expired-task cleanup.
import { Duration } from "aws-cdk-lib";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as actions from "aws-cdk-lib/aws-cloudwatch-actions";
import type * as lambda from "aws-cdk-lib/aws-lambda";
import * as sns from "aws-cdk-lib/aws-sns";
import type * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import type { ChannelQueue } from "./channel-queues.js";

export interface AlarmsProps {
  channels: ChannelQueue[];
  oldestMessageAlarmSeconds: number;
  cleanup: { function: lambda.IFunction; failedRecords: sqs.IQueue } | undefined;
  /** Alarms notify this topic when given. */
  topicArn: string | undefined;
}

export class Alarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const topic = props.topicArn ? sns.Topic.fromTopicArn(this, "Topic", props.topicArn) : undefined;
    const add = (alarm: cloudwatch.Alarm) => {
      if (topic) alarm.addAlarmAction(new actions.SnsAction(topic));
      this.alarms.push(alarm);
    };
    for (const { channel, queue, deadLetterQueue } of props.channels) {
      const scope = new Construct(this, channel.name);
      add(
        deadLetterQueue
          .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM })
          .createAlarm(scope, "DeadLetters", {
            alarmDescription: `Channel ${channel.name}: messages in the dead-letter queue. The server could not handle them; inspect and redrive (SQS StartMessageMoveTask).`,
            threshold: 0,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
      );
      add(
        queue
          .metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: cloudwatch.Stats.MAXIMUM })
          .createAlarm(scope, "OldestMessage", {
            alarmDescription: `Channel ${channel.name}: the oldest waiting task is older than ${props.oldestMessageAlarmSeconds} s. Are its workers connected and keeping up?`,
            threshold: props.oldestMessageAlarmSeconds,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 5,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
      );
    }
    if (props.cleanup) {
      add(
        props.cleanup.function.metricErrors({ period: Duration.minutes(5) }).createAlarm(this, "CleanupErrors", {
          alarmDescription: "The expired-task cleanup failed; it retries, but look at its logs.",
          threshold: 0,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        }),
      );
      add(
        props.cleanup.failedRecords
          .metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: cloudwatch.Stats.MAXIMUM })
          .createAlarm(this, "CleanupGaveUp", {
            alarmDescription: "Expired tasks whose cleanup failed after every retry: their HashCode guards and owner counts need fixing (see the records in the queue).",
            threshold: 0,
            comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluationPeriods: 1,
            treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
          }),
      );
    }
  }
}
