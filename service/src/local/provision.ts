// Creates the table and the channel queues where they are missing, from the shared
// definitions: used for the embedded emulators and for LocalStack. (In AWS the CDK
// stack creates them from the same definitions.) The table has its stream, which the
// local stream reader (stream-runner.ts) counts owners' tasks from.
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  UpdateTableCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { ChannelConfig } from "../config/channels.js";
import { channelLevels, deadLetterAttributes, levelQueueKey, queueAttributes, queueNames } from "../queue/queue-definition.js";
import { createTableInput, INDEXES, STREAM_VIEW_TYPE, type IndexDefinition } from "../store/table-definition.js";

export async function ensureTable(db: DynamoDBClient, tableName: string): Promise<"created" | "exists"> {
  try {
    const { Table } = await db.send(new DescribeTableCommand({ TableName: tableName }));
    // A table made before the stream was part of the definition (e.g. kept by LocalStack) gets it.
    if (!Table?.StreamSpecification?.StreamEnabled) {
      await db.send(new UpdateTableCommand({ TableName: tableName, StreamSpecification: { StreamEnabled: true, StreamViewType: STREAM_VIEW_TYPE } }));
      await waitUntilTableExists({ client: db, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
    }
    // A table of an earlier version gets the indexes it lacks (byOwnerShard: see migration/owner-shards.ts), one at a time.
    const present = new Set((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
    for (const index of Object.values(INDEXES)) {
      if (!present.has(index.name)) await addIndex(db, tableName, index);
    }
    return "exists";
  } catch (error) {
    if ((error as Error).name !== "ResourceNotFoundException") throw error;
  }
  try {
    await db.send(new CreateTableCommand(createTableInput(tableName)));
  } catch (error) {
    if ((error as Error).name !== "ResourceInUseException") throw error;
  }
  await waitUntilTableExists({ client: db, maxWaitTime: 120, minDelay: 1, maxDelay: 2 }, { TableName: tableName });
  return "created";
}

async function addIndex(db: DynamoDBClient, tableName: string, index: IndexDefinition): Promise<void> {
  const input = createTableInput(tableName);
  const definition = input.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === index.name);
  if (!definition) throw new Error(`no definition of index ${index.name}`);
  const attributes = new Set([index.partitionKey.name, index.sortKey.name]);
  await db.send(
    new UpdateTableCommand({
      TableName: tableName,
      AttributeDefinitions: input.AttributeDefinitions?.filter((attribute) => attributes.has(attribute.AttributeName ?? "")),
      GlobalSecondaryIndexUpdates: [{ Create: definition }],
    }),
  );
  for (const deadline = Date.now() + 300_000; ; ) {
    const { Table } = await db.send(new DescribeTableCommand({ TableName: tableName }));
    const status = Table?.GlobalSecondaryIndexes?.find((candidate) => candidate.IndexName === index.name)?.IndexStatus;
    if (status === "ACTIVE") return;
    if (Date.now() > deadline) throw new Error(`index ${index.name} of table ${tableName} is still ${status ?? "missing"} after 5 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** Creates (or updates the attributes of) each channel's queues (one per priority level) and dead-letter queue; returns level queue key → queue URL. */
export async function ensureChannelQueues(sqs: SQSClient, prefix: string, channels: ChannelConfig[]): Promise<Record<string, string>> {
  const urls: Record<string, string> = {};
  for (const channel of channels) {
    const names = queueNames(prefix, channel.name);
    const deadLetterUrl = await ensureQueue(sqs, names.deadLetter, deadLetterAttributes(channel));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ["QueueArn"] }));
    const deadLetterArn = Attributes?.QueueArn;
    if (!deadLetterArn) throw new Error(`no ARN for queue ${names.deadLetter}`);
    for (const level of channelLevels(channel)) {
      urls[levelQueueKey(channel.name, level)] = await ensureQueue(sqs, queueNames(prefix, channel.name, level).queue, queueAttributes(channel, deadLetterArn));
    }
  }
  return urls;
}

async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (QueueUrl) return QueueUrl;
  } catch (error) {
    // The queue exists with other attributes (a changed channel config): bring it up to date.
    if (!/QueueAlreadyExists|QueueNameExists/.test((error as Error).name)) throw error;
  }
  const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
  if (!QueueUrl) throw new Error(`no URL for queue ${name}`);
  await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
  return QueueUrl;
}
