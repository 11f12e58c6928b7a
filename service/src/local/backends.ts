// Local backends for development and tests: DynamoDB Local + the SQS emulator, and
// provisioning of the table and channel queues on whatever endpoints the SDK is
// pointed at (the emulators, or LocalStack through AWS_ENDPOINT_URL).
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { ChannelConfig } from "../config/channels.js";
import { createSqsClients } from "../queue/sqs-client.js";
import { startDynamoDbLocal, type RunningEmulator } from "./dynamodb-local.js";
import { ensureChannelQueues, ensureTable } from "./provision.js";
import { startSqsEmulator } from "./sqs-emulator.js";

export interface LocalBackends {
  dynamodbEndpoint: string;
  sqsEndpoint: string;
  stop(): Promise<void>;
}

/** Starts both emulators, on free ports unless given. */
export async function startLocalBackends(ports: { dynamodbPort?: number | undefined; sqsPort?: number | undefined } = {}): Promise<LocalBackends> {
  const started: RunningEmulator[] = [];
  try {
    const [dynamodb, sqs] = await Promise.all([
      startDynamoDbLocal(ports.dynamodbPort).then((emulator) => (started.push(emulator), emulator)),
      startSqsEmulator(ports.sqsPort).then((emulator) => (started.push(emulator), emulator)),
    ]);
    return {
      dynamodbEndpoint: dynamodb.endpoint,
      sqsEndpoint: sqs.endpoint,
      stop: async () => void (await Promise.all(started.map((emulator) => emulator.stop()))),
    };
  } catch (error) {
    await Promise.all(started.map((emulator) => emulator.stop()));
    throw error;
  }
}

/** Points the AWS SDK at the emulators the way a user would: through its own variables. */
export function useLocalEndpoints(backends: LocalBackends, env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_ENDPOINT_URL_DYNAMODB = backends.dynamodbEndpoint;
  env.AWS_ENDPOINT_URL_SQS = backends.sqsEndpoint;
  useLocalCredentials(env);
}

/** Emulators and LocalStack accept any credentials, but the SDK insists on having some. */
export function useLocalCredentials(env: NodeJS.ProcessEnv = process.env): void {
  env.AWS_REGION ||= env.AWS_DEFAULT_REGION || "us-east-1";
  if (!env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE) {
    env.AWS_ACCESS_KEY_ID = "local";
    env.AWS_SECRET_ACCESS_KEY = "local";
  }
}

export interface Provisioned {
  queueUrls: Record<string, string>;
  tableCreated: boolean;
}

/** Creates the table and channel queues where missing, from the shared definitions. */
export async function provision(tableName: string, queuePrefix: string, channels: ChannelConfig[]): Promise<Provisioned> {
  const db = new DynamoDBClient({});
  const { sqs } = createSqsClients();
  try {
    const [table, queueUrls] = await Promise.all([ensureTable(db, tableName), ensureChannelQueues(sqs, queuePrefix, channels)]);
    return { queueUrls, tableCreated: table === "created" };
  } finally {
    db.destroy();
    sqs.destroy();
  }
}
