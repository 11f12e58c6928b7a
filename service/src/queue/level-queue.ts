// One SQS queue of a channel (one per priority level, channel-queue.ts): the few
// calls the server makes on it. A message body is the task ID in decimal; everything
// else about the task lives in DynamoDB. Sends and deletes go out in batches when
// several are due at once (request-batcher.ts).
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type BatchResultErrorEntry,
} from "@aws-sdk/client-sqs";
import type { ChannelConfig } from "../config/channels.js";
import type { ReceivedMessage } from "../core/task-queues.js";
import type { SqsClients } from "./sqs-client.js";
import { RequestBatcher, type BatchEntryResult } from "./request-batcher.js";

/** SQS caps a visibility timeout at 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;

/** The message attribute that marks a copy (core/task-queues.ts ReceivedMessage.copy). */
export const COPY_ATTRIBUTE = "QueuesCopy";
/** The message attribute that counts how often a task was held back by a full flow-control slot (ReceivedMessage.held). */
export const HELD_ATTRIBUTE = "QueuesHeld";

/** Attributes, not body changes: a server of an earlier version takes such a message as an ordinary one. */
function messageAttributes(message: OutgoingMessage): Record<string, { DataType: string; StringValue: string }> | undefined {
  const attributes: Record<string, { DataType: string; StringValue: string }> = {};
  if (message.copy) attributes[COPY_ATTRIBUTE] = { DataType: "String", StringValue: "1" };
  if (message.held > 0) attributes[HELD_ATTRIBUTE] = { DataType: "Number", StringValue: String(message.held) };
  return Object.keys(attributes).length > 0 ? attributes : undefined;
}

/** One message to send: the task's ID, a delay, whether it is a copy, and its SQS fair-queue group (fairness "owner"). */
export interface OutgoingMessage {
  taskId: bigint;
  delaySeconds: number;
  copy: boolean;
  /** The times its task was held back by a full flow-control slot (0: never). */
  held: number;
  groupId?: string | undefined;
}

export class LevelQueue {
  private resolvedUrl: string | undefined;
  private readonly sends = new RequestBatcher<OutgoingMessage>(async (entries) => {
    const { Successful = [], Failed = [] } = await this.clients.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: await this.url(),
        Entries: entries.map(({ id, value }) => ({
          Id: id,
          MessageBody: value.taskId.toString(),
          DelaySeconds: value.delaySeconds || undefined,
          // SQS fair queues: a standard queue takes a MessageGroupId and keeps one group's backlog from holding up the others.
          MessageGroupId: value.groupId,
          MessageAttributes: messageAttributes(value),
        })),
      }),
    );
    return batchResults(Successful, Failed);
  });
  private readonly deletes = new RequestBatcher<string>(async (entries) => {
    const { Successful = [], Failed = [] } = await this.clients.sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: await this.url(), Entries: entries.map(({ id, value }) => ({ Id: id, ReceiptHandle: value })) }),
    );
    return batchResults(Successful, Failed);
  });

  constructor(
    private readonly clients: SqsClients,
    readonly config: ChannelConfig,
    /** The queue URL if known (from CDK), else the queue name to resolve it by. */
    private readonly location: { url: string } | { name: string },
  ) {
    if ("url" in location) this.resolvedUrl = location.url;
  }

  async url(): Promise<string> {
    if (this.resolvedUrl) return this.resolvedUrl;
    const name = (this.location as { name: string }).name;
    const { QueueUrl } = await this.clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`SQS returned no URL for queue ${name}`);
    this.resolvedUrl = QueueUrl;
    return QueueUrl;
  }

  send(message: OutgoingMessage): Promise<void> {
    return this.sends.add(message);
  }

  /** A long poll; `signal` abandons it (only when a shutdown runs out of time). */
  async receive(max: number, waitSeconds: number, signal?: AbortSignal): Promise<ReceivedMessage[]> {
    const { Messages } = await this.clients.poll.send(
      new ReceiveMessageCommand({
        QueueUrl: await this.url(),
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.config.visibilityTimeoutSeconds,
        MessageAttributeNames: [COPY_ATTRIBUTE, HELD_ATTRIBUTE],
      }),
      { abortSignal: signal },
    );
    return (Messages ?? []).map((message) => ({
      messageId: message.MessageId ?? "",
      receiptHandle: message.ReceiptHandle ?? "",
      taskId: /^\d{1,20}$/.test(message.Body ?? "") ? BigInt(message.Body as string) : undefined,
      copy: message.MessageAttributes?.[COPY_ATTRIBUTE] !== undefined,
      held: Number(message.MessageAttributes?.[HELD_ATTRIBUTE]?.StringValue ?? 0) || 0,
    }));
  }

  delete(receiptHandle: string): Promise<void> {
    return this.deletes.add(receiptHandle);
  }

  /** Hides (or, with 0, releases) a received message: the lease, a heartbeat, a retry backoff. */
  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const timeout = Math.max(0, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(seconds)));
    await this.clients.sqs.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: await this.url(), ReceiptHandle: receiptHandle, VisibilityTimeout: timeout }),
    );
  }

  /** The queue exists and answers (the health check's probe). */
  async probe(): Promise<void> {
    await this.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await this.url(), AttributeNames: ["QueueArn"] }));
  }

  /** Waiting (visible + delayed) and in-flight (received, not deleted) messages, approximate, as SQS reports them. */
  async counts(): Promise<{ waiting: number; inFlight: number }> {
    const { Attributes } = await this.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: await this.url(),
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    const number = (name: string) => Number(Attributes?.[name as keyof typeof Attributes] ?? "0");
    return { waiting: number("ApproximateNumberOfMessages") + number("ApproximateNumberOfMessagesDelayed"), inFlight: number("ApproximateNumberOfMessagesNotVisible") };
  }

  /** Tasks waiting to be delivered: visible plus delayed messages (approximate, as SQS reports it). */
  async length(): Promise<bigint> {
    const { Attributes } = await this.clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: await this.url(),
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
      }),
    );
    return BigInt(Attributes?.ApproximateNumberOfMessages ?? "0") + BigInt(Attributes?.ApproximateNumberOfMessagesDelayed ?? "0");
  }
}

/** A batch call's answer per entry; a refused entry's error is named by SQS's code and tagged as SQS's. */
function batchResults(successful: { Id?: string }[], failed: BatchResultErrorEntry[]): BatchEntryResult[] {
  return [
    ...successful.map((entry) => ({ id: entry.Id ?? "" })),
    ...failed.map((entry) => ({
      id: entry.Id ?? "",
      error: Object.assign(new Error(`SQS refused the entry: ${entry.Code ?? "unknown"} ${entry.Message ?? ""}`.trim()), {
        name: entry.Code ?? "BatchEntryFailed",
        $backend: "SQS",
      }),
      retryable: entry.SenderFault === false,
    })),
  ];
}
