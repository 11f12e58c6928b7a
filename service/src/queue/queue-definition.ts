// THE definition of a channel's queues: one SQS queue plus a dead-letter queue per
// channel. The local emulators, LocalStack provisioning and the CDK stack all use it.
import type { ChannelConfig } from "../config/channels.js";

/** SQS's maximum: a task may wait in a backlog for two weeks before SQS drops it. */
export const MESSAGE_RETENTION_SECONDS = 14 * 24 * 60 * 60;
/** SQS's maximum long-poll wait: an idle channel costs 3 ReceiveMessage calls a minute per replica. */
export const LONG_POLL_SECONDS = 20;

export interface QueueNames {
  queue: string;
  deadLetter: string;
}

/** Queue names used where the names are ours to choose (emulators, LocalStack). */
export function queueNames(prefix: string, channel: string): QueueNames {
  return { queue: `${prefix}-${channel}`, deadLetter: `${prefix}-${channel}-dlq` };
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
