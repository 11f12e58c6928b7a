// The benchmark's baseline: the task lifecycle done directly with the AWS SDK
// against the same emulators, with only the backend calls the design needs per
// task: the create write (ONE conditional PutItem of the task item, with its owner
// shard `ownerKey` and its outbox marker: the server's usual create; the owner's
// Total is counted from the table's stream, as for the server's tasks), SendMessage,
// ReceiveMessage (batches of up to 10, long polls shared by all credits), the lease
// update, the final update and DeleteMessage. No gRPC, no reads, no logging: the
// limit the service is measured against.
import { randomBytes, randomInt } from "node:crypto";
import { PutCommand, UpdateCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { BackendUsage } from "../../service/src/metrics/backend-usage.js";
import { createSqsClients, type SqsClients } from "../../service/src/queue/sqs-client.js";
import { createDocumentClient } from "../../service/src/store/dynamo-client.js";
import { A, encodeNewTask } from "../../service/src/store/item-codec.js";
import { itemKey, OUTBOX_SHARDS, PARTITION_KEY } from "../../service/src/store/table-definition.js";
import { generateHashCode, IdGenerator } from "../../service/src/tasks/ids.js";
import type { TaskRecord } from "../../service/src/tasks/task.js";

const MAX_PARALLEL_POLLS = 4;

export interface LifecycleRun {
  tasks: number;
  seconds: number;
}

export class Baseline {
  readonly usage = new BackendUsage();
  private readonly db: DynamoDBDocumentClient;
  private readonly sqs: SqsClients;
  private readonly ids = new IdGenerator();

  constructor(
    private readonly table: string,
    private readonly queueUrl: string,
    private readonly channel: string,
    private readonly owner: bigint,
  ) {
    this.db = createDocumentClient();
    this.sqs = createSqsClients();
    this.usage.attachDynamoDb(this.db);
    this.usage.attachSqs(this.sqs.sqs);
    this.usage.attachSqs(this.sqs.poll);
  }

  /** `tasks` lifecycles with `credits` tasks in the consumers' hands at most and as many creates in flight. */
  async run(tasks: number, credits: number): Promise<LifecycleRun> {
    const started = performance.now();
    let created = 0;
    let finished = 0;
    const produce = async () => {
      while (created < tasks) {
        created += 1;
        await this.create();
      }
    };
    let inHand = 0;
    const waiting: (() => void)[] = [];
    const wakeAll = () => waiting.splice(0).forEach((resolve) => resolve());
    const consume = async () => {
      while (finished < tasks) {
        const free = Math.min(10, credits - inHand, tasks - finished - inHand);
        if (free <= 0) {
          await new Promise<void>((resolve) => waiting.push(resolve));
          continue;
        }
        inHand += free;
        const { Messages = [] } = await this.sqs.poll.send(
          new ReceiveMessageCommand({ QueueUrl: this.queueUrl, MaxNumberOfMessages: free, WaitTimeSeconds: 1, VisibilityTimeout: 30 }),
        );
        inHand -= free - Messages.length;
        for (const message of Messages) {
          void this.process(BigInt(message.Body as string), message.MessageId as string, message.ReceiptHandle as string)
            .then(
              () => void (finished += 1),
              // Not expected on the emulators; the message comes back after its visibility timeout.
              (error: unknown) => console.error(`baseline: a lifecycle failed: ${(error as Error).message}`),
            )
            .finally(() => {
              inHand -= 1;
              wakeAll();
            });
        }
      }
      wakeAll();
    };
    const pollers = Math.min(MAX_PARALLEL_POLLS, Math.ceil(credits / 10));
    await Promise.all([
      ...Array.from({ length: credits }, produce),
      ...Array.from({ length: pollers }, consume),
    ]);
    return { tasks, seconds: (performance.now() - started) / 1000 };
  }

  close(): void {
    this.db.destroy();
    this.sqs.sqs.destroy();
    this.sqs.poll.destroy();
  }

  private async create(): Promise<void> {
    const now = new Date().toISOString();
    const id = this.ids.next();
    const task: TaskRecord = {
      id,
      owner: this.owner,
      channel: this.channel,
      state: "WAITING",
      hashCode: generateHashCode(id),
      input: "bench",
      output: "",
      retryCount: 0n,
      retryMaxLimit: 3n,
      prior: 0n,
      next: 0n,
      createTime: now,
      updateTime: now,
      awaitsPrior: false,
      nextTakesOutput: false,
      notBeforeMs: 0,
      runAtMs: 0,
      priority: 1,
      concurrencyKey: "",
      lease: undefined,
      outbox: { dueAtMs: Date.now() + 60_000, sweeps: 0 },
    };
    // As the store writes it: the item names its create (`lastWrite`), so that a retry of a lost answer finds it.
    const writeId = `create.${randomBytes(6).toString("base64url")}`;
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: encodeNewTask(task, randomInt(OUTBOX_SHARDS), writeId),
        ConditionExpression: "attribute_not_exists(#pk)",
        ExpressionAttributeNames: { "#pk": PARTITION_KEY },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    await this.sqs.sqs.send(new SendMessageCommand({ QueueUrl: this.queueUrl, MessageBody: task.id.toString() }));
  }

  /** Lease, (no-op handler), final write, delete: the worker's and the server's part of a delivery. */
  private async process(id: bigint, messageId: string, receiptHandle: string): Promise<void> {
    const key = { [PARTITION_KEY]: itemKey.task(id) };
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression: "SET #state = :proceeding, #token = :one, #messageId = :messageId, #handle = :handle, #expires = :expires, #updated = :now ADD #version :one",
        ConditionExpression: "#state = :waiting",
        ExpressionAttributeNames: {
          "#state": A.state,
          "#token": A.leaseToken,
          "#messageId": A.messageId,
          "#handle": A.receiptHandle,
          "#expires": A.leaseExpiresAt,
          "#updated": A.updateTime,
          "#version": A.version,
        },
        ExpressionAttributeValues: {
          ":proceeding": "PROCEEDING",
          ":waiting": "WAITING",
          ":one": 1n,
          ":messageId": messageId,
          ":handle": receiptHandle,
          ":expires": Date.now() + 30_000,
          ":now": new Date().toISOString(),
        },
      }),
    );
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: key,
        UpdateExpression: "SET #state = :success, #output = :output, #updated = :now ADD #version :one REMOVE #shard, #due, #sweeps",
        ConditionExpression: "#state = :proceeding",
        ExpressionAttributeNames: {
          "#state": A.state,
          "#output": A.output,
          "#updated": A.updateTime,
          "#version": A.version,
          "#shard": A.outboxShard,
          "#due": A.outboxDueAt,
          "#sweeps": A.outboxSweeps,
        },
        ExpressionAttributeValues: { ":success": "SUCCESS", ":proceeding": "PROCEEDING", ":output": "done", ":one": 1n, ":now": new Date().toISOString() },
      }),
    );
    await this.sqs.sqs.send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle }));
  }
}
