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

/** Attributes of the channel queue. The visibility timeout is the lease. */
export function queueAttributes(channel: ChannelConfig, deadLetterArn: string): Record<string, string> {
  return {
    VisibilityTimeout: String(channel.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(MESSAGE_RETENTION_SECONDS),
    ReceiveMessageWaitTimeSeconds: String(LONG_POLL_SECONDS),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetterArn, maxReceiveCount: channel.maxReceiveCount }),
  };
}

export function deadLetterAttributes(): Record<string, string> {
  return { MessageRetentionPeriod: String(MESSAGE_RETENTION_SECONDS) };
}
