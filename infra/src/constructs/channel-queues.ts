// Per channel, one SQS queue per priority level (one level unless the channel sets
// `priorities`) and one dead-letter queue that every level redrives to, from THE
// channel queue definition the server and the emulators use
// (service/queue/queue-definition.ts). Or, for the channels named in `existing`, the
// queues a destroyed stack kept, adopted by name (README "Keeping data across a destroy").
import { ArnFormat, Aws, Duration, RemovalPolicy, Stack, Tags } from "aws-cdk-lib";
import * as iam from "aws-cdk-lib/aws-iam";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { channelLevels, channelQueueDefinition, levelQueueKey, type ChannelConfig } from "@queues/server/definitions";
import { KEPT_RESOURCE_TAGS } from "./task-table.js";

export interface ChannelQueue {
  readonly channel: ChannelConfig;
  /** The channel's queue: its level 1 (the highest priority), and its only queue without `priorities`. */
  readonly queue: sqs.IQueue;
  /**
   * Every level's queue, highest first: index 0 is level 1 (`queue`), index i is level
   * i + 1 (`levelQueueKey(channel, i + 1)` in QUEUES_QUEUE_URLS). One entry without `priorities`.
   */
  readonly levelQueues: readonly sqs.IQueue[];
  /** The one dead-letter queue of every level. */
  readonly deadLetterQueue: sqs.IQueue;
  /** The queues were adopted (existing), not created by this stack. */
  readonly adopted: boolean;
}

/** The names of a channel's kept queues to adopt (the existingQueues context option, parsed). */
export interface ExistingChannelQueues {
  readonly queue: string;
  readonly deadLetterQueue: string;
  /** The queues of levels 2 .. priorities, in that order (exactly priorities - 1 of them). */
  readonly levelQueues?: readonly string[];
}

export interface ChannelQueuesProps {
  /** The channels (cdk.json context.channels, parsed): one queue per priority level and one dead-letter queue each. */
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
   * (it puts back their TLS-only policy, which went with the destroyed stack). A
   * channel with `priorities` above 1 lists its level queues too.
   * @default - every channel gets new queues
   */
  readonly existing?: Readonly<Record<string, ExistingChannelQueues>>;
}

/** The values of the kept queues' KEPT_RESOURCE_TAGS.resource tag: the keys of the existingQueues option. */
export const QUEUE_RESOURCE_TAG = { queue: "queue", deadLetterQueue: "deadLetterQueue", levelQueues: "levelQueues" } as const;

/**
 * The construct id of a level's queue under its channel: "Queue" for level 1 (the id a
 * channel's queue always had, so a channel that gains levels keeps its queue and its
 * logical id), "Queue-p<level>" for the others.
 */
export function levelQueueId(level: number): string {
  return level === 1 ? "Queue" : `Queue-p${level}`;
}

export class ChannelQueues extends Construct {
  readonly channels: ChannelQueue[];

  constructor(scope: Construct, id: string, props: ChannelQueuesProps) {
    super(scope, id);
    const removalPolicy = props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    this.channels = props.channels.map((channel) => {
      // The channel name is the construct id: adding or removing one channel never renames another's queues.
      const scope = new Construct(this, channel.name);
      const levels = channelLevels(channel);
      const existing = props.existing?.[channel.name];
      if (existing) {
        const levelNames = [existing.queue, ...(existing.levelQueues ?? [])];
        // infra/src/config.ts checks this for the context option; a construct user may not have.
        if (levelNames.length !== levels.length) {
          throw new Error(`Channel ${channel.name} has ${levels.length} priority level(s): adopting it takes ${levels.length - 1} levelQueues, got ${levelNames.length - 1}`);
        }
        const levelQueues = levels.map((level, index) => adopt(scope, levelQueueId(level), levelNames[index] as string));
        const deadLetterQueue = adopt(scope, "DeadLetterQueue", existing.deadLetterQueue);
        // The destroyed stack's queue policies (TLS only) went with it: the same policy again.
        const adoptedQueues = [...levelQueues, deadLetterQueue];
        const policy = new sqs.QueuePolicy(scope, "TlsOnlyPolicy", { queues: adoptedQueues });
        policy.document.addStatements(
          new iam.PolicyStatement({
            effect: iam.Effect.DENY,
            principals: [new iam.AnyPrincipal()],
            actions: ["sqs:*"],
            resources: adoptedQueues.map((queue) => queue.queueArn),
            conditions: { Bool: { "aws:SecureTransport": "false" } },
          }),
        );
        return { channel, queue: levelQueues[0] as sqs.IQueue, levelQueues, deadLetterQueue, adopted: true };
      }
      const definition = channelQueueDefinition(channel);
      const deadLetterQueue = new sqs.Queue(scope, "DeadLetterQueue", {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.seconds(definition.deadLetterRetentionSeconds),
        removalPolicy,
      });
      // Tags survive a destroy: they name each kept queue's channel and role (and level) when the outputs are gone.
      const tag = (created: sqs.Queue, role: string, level?: number) => {
        Tags.of(created).add(KEPT_RESOURCE_TAGS.stack, Stack.of(this).stackName);
        Tags.of(created).add(KEPT_RESOURCE_TAGS.channel, channel.name);
        Tags.of(created).add(KEPT_RESOURCE_TAGS.resource, role);
        if (level !== undefined) Tags.of(created).add(KEPT_RESOURCE_TAGS.level, String(level));
      };
      tag(deadLetterQueue, QUEUE_RESOURCE_TAG.deadLetterQueue);
      // Every level the same queue (the one definition), each redriving to the channel's one dead-letter queue.
      const levelQueues = levels.map((level) => {
        const queue = new sqs.Queue(scope, levelQueueId(level), {
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          visibilityTimeout: Duration.seconds(definition.visibilityTimeoutSeconds),
          retentionPeriod: Duration.seconds(definition.messageRetentionSeconds),
          receiveMessageWaitTime: Duration.seconds(definition.receiveWaitSeconds),
          deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
          removalPolicy,
        });
        // Level 1 is tagged as the channel's queue always was (so its tags do not change when a channel gains levels).
        if (level === 1) tag(queue, QUEUE_RESOURCE_TAG.queue);
        else tag(queue, QUEUE_RESOURCE_TAG.levelQueues, level);
        return queue;
      });
      return { channel, queue: levelQueues[0] as sqs.IQueue, levelQueues, deadLetterQueue, adopted: false };
    });
  }
}

/** The key of each of a channel's level queues in QUEUES_QUEUE_URLS (`levelQueueKey`), with the queue, highest level first. */
export function levelQueuesByKey(channel: ChannelQueue): [key: string, queue: sqs.IQueue, level: number][] {
  return channel.levelQueues.map((queue, index) => [levelQueueKey(channel.channel.name, index + 1), queue, index + 1]);
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
