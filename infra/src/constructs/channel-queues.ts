// One SQS queue and one dead-letter queue per channel, from THE channel queue
// definition the server and the emulators use (service/queue/queue-definition.ts).
// Or, for the channels named in `existing`, the queues a destroyed stack kept,
// adopted by name (README "Keeping data across a destroy").
import { ArnFormat, Aws, Duration, RemovalPolicy, Stack, Tags } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { channelQueueDefinition, type ChannelConfig } from "@queues/server/definitions";
import { KEPT_RESOURCE_TAGS } from "./task-table.js";

export interface ChannelQueue {
  readonly channel: ChannelConfig;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  /** The queues were adopted (existing), not created by this stack. */
  readonly adopted: boolean;
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
  /**
   * Adopt these existing queues (a destroyed stack kept them), by channel name: no
   * queue is created for these channels, and the stack never changes or deletes them
   * (it puts back their TLS-only policy, which went with the destroyed stack).
   * @default - every channel gets new queues
   */
  readonly existing?: Readonly<Record<string, { readonly queue: string; readonly deadLetterQueue: string }>>;
}

/** The values of the kept queues' KEPT_RESOURCE_TAGS.resource tag: the keys of the existingQueues option. */
export const QUEUE_RESOURCE_TAG = { queue: "queue", deadLetterQueue: "deadLetterQueue" } as const;

export class ChannelQueues extends Construct {
  readonly channels: ChannelQueue[];

  constructor(scope: Construct, id: string, props: ChannelQueuesProps) {
    super(scope, id);
    const removalPolicy = props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    this.channels = props.channels.map((channel) => {
      // The channel name is the construct id: adding or removing one channel never renames another's queues.
      const scope = new Construct(this, channel.name);
      const existing = props.existing?.[channel.name];
      if (existing) {
        const queue = adopt(scope, "Queue", existing.queue);
        const deadLetterQueue = adopt(scope, "DeadLetterQueue", existing.deadLetterQueue);
        // The destroyed stack's queue policies (TLS only) went with it: the same policy again.
        const policy = new sqs.QueuePolicy(scope, "TlsOnlyPolicy", { queues: [queue, deadLetterQueue] });
        policy.document.addStatements(
          new iam.PolicyStatement({
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ["sqs:*"],
            resources: [queue.queueArn, deadLetterQueue.queueArn],
            conditions: { Bool: { "aws:SecureTransport": "false" } },
          }),
        );
        return { channel, queue, deadLetterQueue, adopted: true };
      }
      const definition = channelQueueDefinition(channel);
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
      // Tags survive a destroy: they name each kept queue's channel and role when the outputs are gone.
      for (const [created, role] of [
        [queue, QUEUE_RESOURCE_TAG.queue],
        [deadLetterQueue, QUEUE_RESOURCE_TAG.deadLetterQueue],
      ] as const) {
        Tags.of(created).add(KEPT_RESOURCE_TAGS.stack, Stack.of(this).stackName);
        Tags.of(created).add(KEPT_RESOURCE_TAGS.channel, channel.name);
        Tags.of(created).add(KEPT_RESOURCE_TAGS.resource, role);
      }
      return { channel, queue, deadLetterQueue, adopted: false };
    });
  }
}

/** An existing queue of this stack's account and region, by name. */
function adopt(scope: Construct, id: string, queueName: string): sqs.IQueue {
  const stack = Stack.of(scope);
  return sqs.Queue.fromQueueAttributes(scope, id, {
    queueName,
    queueArn: stack.formatArn({ service: "sqs", resource: queueName, arnFormat: ArnFormat.NO_RESOURCE_NAME }),
    queueUrl: `https://sqs.${Aws.REGION}.${Aws.URL_SUFFIX}/${Aws.ACCOUNT_ID}/${queueName}`,
  });
}
