// One SQS queue and one dead-letter queue per channel, from THE channel queue
// definition the server and the emulators use (service/queue/queue-definition.ts).
import { Duration, RemovalPolicy } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { channelQueueDefinition, type ChannelConfig } from "@queues/server/definitions";

export interface ChannelQueue {
  readonly channel: ChannelConfig;
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
}

export interface ChannelQueuesProps {
  /** The channels (cdk.json context.channels, parsed): one queue and one dead-letter queue each. */
  readonly channels: readonly ChannelConfig[];
  /**
   * Delete the queues with the stack (and when a channel leaves cdk.json). Kept
   * otherwise, as the table is: a task's message outlives a mistaken destroy.
   * @default false - the queues and dead-letter queues are kept
   */
  readonly destroyOnDelete?: boolean;
}

export class ChannelQueues extends Construct {
  readonly channels: ChannelQueue[];

  constructor(scope: Construct, id: string, props: ChannelQueuesProps) {
    super(scope, id);
    const removalPolicy = props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    this.channels = props.channels.map((channel) => {
      const definition = channelQueueDefinition(channel);
      // The channel name is the construct id: adding or removing one channel never renames another's queues.
      const scope = new Construct(this, channel.name);
      const deadLetterQueue = new sqs.Queue(scope, "DeadLetterQueue", {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.seconds(definition.deadLetterRetentionSeconds),
        removalPolicy,
      });
      const queue = new sqs.Queue(scope, "Queue", {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        visibilityTimeout: Duration.seconds(definition.visibilityTimeoutSeconds),
        retentionPeriod: Duration.seconds(definition.messageRetentionSeconds),
        receiveMessageWaitTime: Duration.seconds(definition.receiveWaitSeconds),
        deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
        removalPolicy,
      });
      return { channel, queue, deadLetterQueue };
    });
  }
}
