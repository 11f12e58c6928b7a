// THE definition of a channel's queues: one SQS queue per priority level (one level
// unless the channel sets `priorities`) plus one dead-letter queue per channel, which
// every level's redrive policy points to. The local emulators, LocalStack
// provisioning and the CDK stack all use it.
import type { ChannelConfig } from "../config/channels.js";

/** SQS's maximum: a task may wait in a backlog for two weeks before SQS drops it. */
export const MESSAGE_RETENTION_SECONDS = 14 * 24 * 60 * 60;
/** SQS's maximum long-poll wait: an idle channel costs 3 ReceiveMessage calls a minute per replica. */
export const LONG_POLL_SECONDS = 20;

export interface QueueNames {
  queue: string;
  deadLetter: string;
}

/** Queue names used where the names are ours to choose (emulators, LocalStack); `level` 1 is the channel's own queue. */
export function queueNames(prefix: string, channel: string, level = 1): QueueNames {
  return { queue: `${prefix}-${levelQueueKey(channel, level)}`, deadLetter: `${prefix}-${channel}-dlq` };
}

/**
 * The key of a priority level's queue, in QUEUES_QUEUE_URLS and in queue names: the
 * channel's name for level 1 (so a channel that gains levels keeps its queue, whose
 * messages are then of the highest level), `<channel>-p<level>` for the others.
 */
export function levelQueueKey(channel: string, level: number): string {
  return level === 1 ? channel : `${channel}-p${level}`;
}

/** The levels of a channel, highest first: 1 .. priorities. */
export function channelLevels(channel: Pick<ChannelConfig, "priorities">): number[] {
  return Array.from({ length: channel.priorities }, (_, index) => index + 1);
}

/** A channel's queue pair, whatever creates it (CDK, the emulators, LocalStack). */
export interface ChannelQueueDefinition {
  /** The lease: how long a delivered task stays hidden without a heartbeat. */
  visibilityTimeoutSeconds: number;
  messageRetentionSeconds: number;
  receiveWaitSeconds: number;
  /** Receives before SQS moves a message to the dead-letter queue (a backstop). */
  maxReceiveCount: number;
  deadLetterRetentionSeconds: number;
}

export function channelQueueDefinition(channel: ChannelConfig): ChannelQueueDefinition {
  return {
    visibilityTimeoutSeconds: channel.visibilityTimeoutSeconds,
    messageRetentionSeconds: MESSAGE_RETENTION_SECONDS,
    receiveWaitSeconds: LONG_POLL_SECONDS,
    maxReceiveCount: channel.maxReceiveCount,
    deadLetterRetentionSeconds: MESSAGE_RETENTION_SECONDS,
  };
}

/** CreateQueue attributes of the channel queue (emulators, LocalStack). */
export function queueAttributes(channel: ChannelConfig, deadLetterArn: string): Record<string, string> {
  const definition = channelQueueDefinition(channel);
  return {
    VisibilityTimeout: String(definition.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(definition.messageRetentionSeconds),
    ReceiveMessageWaitTimeSeconds: String(definition.receiveWaitSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: definition.maxReceiveCount }),
  };
}

/** CreateQueue attributes of the channel's dead-letter queue. */
export function deadLetterAttributes(channel: ChannelConfig): Record<string, string> {
  return { MessageRetentionPeriod: String(channelQueueDefinition(channel).deadLetterRetentionSeconds) };
}
