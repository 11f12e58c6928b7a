// One channel's SQS queue: the few calls the server makes on it. A message body is
// the task ID in decimal; everything else about the task lives in DynamoDB.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import type { ChannelConfig } from "../config/channels.js";
import type { SqsClients } from "./sqs-client.js";

export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  /** undefined when the body is not a task ID (such a message is deleted). */
  taskId: bigint | undefined;
}

/** SQS caps a visibility timeout at 12 hours. */
const MAX_VISIBILITY_SECONDS = 43_200;

export class ChannelQueue {
  private resolvedUrl: string | undefined;

  constructor(
    private readonly clients: SqsClients,
    readonly config: ChannelConfig,
    /** The queue URL if known (from CDK), else the queue name to resolve it by. */
    private readonly location: { url: string } | { name: string },
  ) {
    if ("url" in location) this.resolvedUrl = location.url;
  }

  get name(): string {
    return this.config.name;
  }

  /** The lease, in milliseconds. */
  get leaseMs(): number {
    return this.config.visibilityTimeoutSeconds * 1000;
  }

  async url(): Promise<string> {
    if (this.resolvedUrl) return this.resolvedUrl;
    const name = (this.location as { name: string }).name;
    const { QueueUrl } = await this.clients.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`SQS returned no URL for queue ${name}`);
    this.resolvedUrl = QueueUrl;
    return QueueUrl;
  }

  async send(taskId: bigint, delaySeconds = 0): Promise<void> {
    await this.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: await this.url(), MessageBody: taskId.toString(), DelaySeconds: delaySeconds || undefined }),
    );
  }

  /** A long poll; `signal` abandons it (only when a shutdown runs out of time). */
  async receive(max: number, waitSeconds: number, signal?: AbortSignal): Promise<ReceivedMessage[]> {
    const { Messages } = await this.clients.poll.send(
      new ReceiveMessageCommand({
        QueueUrl: await this.url(),
        MaxNumberOfMessages: max,
        WaitTimeSeconds: waitSeconds,
        VisibilityTimeout: this.config.visibilityTimeoutSeconds,
      }),
      { abortSignal: signal },
    );
    return (Messages ?? []).map((message) => ({
      messageId: message.MessageId ?? "",
      receiptHandle: message.ReceiptHandle ?? "",
      taskId: /^\d{1,20}$/.test(message.Body ?? "") ? BigInt(message.Body as string) : undefined,
    }));
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: await this.url(), ReceiptHandle: receiptHandle }));
  }

  /** Hides (or, with 0, releases) a received message: the lease, a heartbeat, a retry backoff. */
  async changeVisibility(receiptHandle: string, seconds: number): Promise<void> {
    const timeout = Math.max(0, Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(seconds)));
    await this.clients.sqs.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: await this.url(), ReceiptHandle: receiptHandle, VisibilityTimeout: timeout }),
    );
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
