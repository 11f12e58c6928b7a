// A channel's dead-letter queue, as the console sees it: how many messages it holds,
// the oldest few (peeked), and a redrive that moves them back. The queue is found the
// way SQS knows it, from the redrive policy of the channel's (level 1) queue, so no
// setting names it: the CDK stack, the emulators and LocalStack all work alike.
//
// Redrive: SQS's own StartMessageMoveTask where the backend has it (AWS, LocalStack):
// SQS moves every message back to the queue it came from, at its own pace, and
// nothing passes through the server. Where the backend has none (the local
// emulator), the caller moves them itself: receive, send a copy of each task to its
// channel, delete (core/dead-letters.ts).
import { DeleteMessageCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, StartMessageMoveTaskCommand } from "@aws-sdk/client-sqs";
import type { DeadLetter, DeadLetterQueue as DeadLetterPort, DeadLetterSummary } from "../core/dead-letters.js";
import type { SqsClients } from "./sqs-client.js";
import type { LevelQueue } from "./level-queue.js";

/** How long a message taken off the DLQ stays hidden while its task is sent again (a failed move shows it again after this). */
const MOVE_VISIBILITY_SECONDS = 60;

/** Errors with which a backend says it has no StartMessageMoveTask. */
const UNSUPPORTED = /unsupported|not ?implemented|unknown ?operation|invalidaction|invalid action|not supported/i;

export class DeadLetterQueue implements DeadLetterPort {
  private location: Promise<{ url: string; arn: string }> | undefined;

  constructor(
    private readonly clients: SqsClients,
    /** The channel's level 1 queue, whose redrive policy names the DLQ. */
    private readonly source: LevelQueue,
  ) {}

  async summary(peek: number): Promise<DeadLetterSummary> {
    const { url } = await this.find();
    const { Attributes } = await this.clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] }),
    );
    const count = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"].reduce(
      (sum, name) => sum + Number(Attributes?.[name as keyof typeof Attributes] ?? 0),
      0,
    );
    // A peek: received with visibility 0, so the messages stay where they are (a DLQ has no redrive policy of its own).
    const sample = count > 0 && peek > 0 ? await this.receive(Math.min(10, peek), 0) : [];
    return { count, sample: sample.map(({ taskId, sentAtMs }) => ({ taskId, sentAtMs })) };
  }

  async startMove(): Promise<boolean> {
    const { arn } = await this.find();
    try {
      await this.clients.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn }));
      return true;
    } catch (error) {
      const { name, message } = error as { name?: string; message?: string };
      if (UNSUPPORTED.test(`${name ?? ""} ${message ?? ""}`)) return false;
      throw error;
    }
  }

  async take(max: number): Promise<DeadLetter[]> {
    return this.receive(max, MOVE_VISIBILITY_SECONDS);
  }

  async delete(receiptHandle: string): Promise<void> {
    const { url } = await this.find();
    await this.clients.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: receiptHandle }));
  }

  private async receive(max: number, visibilitySeconds: number): Promise<DeadLetter[]> {
    const { url } = await this.find();
    const { Messages } = await this.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: max, WaitTimeSeconds: 0, VisibilityTimeout: visibilitySeconds, MessageSystemAttributeNames: ["SentTimestamp"] }),
    );
    return (Messages ?? []).map((message) => ({
      receiptHandle: message.ReceiptHandle ?? "",
      taskId: /^\d{1,20}$/.test(message.Body ?? "") ? BigInt(message.Body as string) : undefined,
      sentAtMs: Number(message.Attributes?.SentTimestamp ?? 0),
    }));
  }

  /** The DLQ's URL and ARN, from the source queue's redrive policy (looked up once). */
  private find(): Promise<{ url: string; arn: string }> {
    this.location ??= (async () => {
      const { Attributes } = await this.clients.sqs.send(new GetQueueAttributesCommand({ QueueUrl: await this.source.url(), AttributeNames: ["RedrivePolicy"] }));
      const arn = (JSON.parse(Attributes?.RedrivePolicy ?? "{}") as { deadLetterTargetArn?: string }).deadLetterTargetArn;
      // arn:aws:sqs:<region>:<account>:<name>
      const parts = arn?.split(":") ?? [];
      if (!arn || parts.length < 6) throw new Error("the channel's queue has no redrive policy naming a dead-letter queue");
      const { QueueUrl } = await this.clients.sqs.send(new GetQueueUrlCommand({ QueueName: parts[5], QueueOwnerAWSAccountId: parts[4] }));
      if (!QueueUrl) throw new Error(`SQS returned no URL for queue ${parts[5]}`);
      return { url: QueueUrl, arn };
    })();
    this.location.catch(() => (this.location = undefined));
    return this.location;
  }
}
