// The table stream function, always deployed: a Lambda on the tasks table's stream
// that counts owners' tasks (QueryTaskByOwner's Total: +1 per task created, -1 per task
// expired) and, when DynamoDB's TTL deletes a final task (with a task retention),
// deletes the task's HashCode guard and payload items. Exactly once per record: see
// service/src/stream/table-stream.ts. The code is the server's own
// (service/src/lambda/table-stream.ts), bundled with esbuild.
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { PARTITION_KEY, TASK_ATTRIBUTES, TASK_KEY_PREFIX, tableStreamFunctionEntry } from "@queues/server/definitions";
import type { TaskTable } from "./task-table.js";
import { CONFIG_DEFAULTS } from "../config.js";

const ENTRY = tableStreamFunctionEntry();
const LOCK_FILE = fileURLToPath(new URL("../../../package-lock.json", import.meta.url));

/**
 * What the function writes: a part's marker and its owner counts (Updates in one
 * TransactWriteItems), a caller's HashCode guard (a conditional delete), the payload
 * items (BatchWriteItem deletes). No PutItem, no read.
 */
export const STREAM_FUNCTION_TABLE_ACTIONS = ["dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"];
export const STREAM_FUNCTION_STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];

/** Records per invocation, and how long Lambda waits to fill a batch: the count lags by about this much, and a task costs 4/batch write units to count. */
export const STREAM_BATCH_SIZE = 1000;
export const STREAM_BATCHING_WINDOW_SECONDS = 1;

export interface TableStreamFunctionProps {
  /** The tasks table (it always has a stream with new and old images). */
  readonly table: TaskTable;
  /**
   * Retention of the function's logs, in days (a value CloudWatch Logs accepts).
   * @default 30
   */
  readonly logRetentionDays?: number;
}

/**
 * Where the function starts reading: a created table's stream from its first record;
 * an adopted table's stream (README "Keeping data across a destroy") from new records
 * only. The destroyed stack's function counted that stream's records in parts, and a
 * reader that started at the stream's oldest record (usually in the middle of an old
 * part) would count its last 24 hours of tasks again.
 */
export function streamStartingPosition(adoptedTable: boolean): lambda.StartingPosition {
  return adoptedTable ? lambda.StartingPosition.LATEST : lambda.StartingPosition.TRIM_HORIZON;
}

export class TableStreamFunction extends Construct {
  readonly function: NodejsFunction;
  /** Stream records that still failed after every retry (not counted; an expired task's items not cleaned up). */
  readonly failedRecords: sqs.Queue;
  /** The stream's event source mapping (the servers of an adopted table start after it). */
  readonly mapping: lambda.EventSourceMapping;

  constructor(scope: Construct, id: string, props: TableStreamFunctionProps) {
    super(scope, id);
    const table = props.table.table;
    const streamArn = table.tableStreamArn;
    if (!streamArn) throw new Error("the tasks table has no stream");

    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: (props.logRetentionDays ?? CONFIG_DEFAULTS.logRetentionDays) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role with inline, resource-scoped statements (no managed policy, no wildcard).
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "Queues table stream function: this table's stream and items, its own log group",
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [logGroup.logGroupArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: STREAM_FUNCTION_STREAM_ACTIONS, resources: [streamArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: STREAM_FUNCTION_TABLE_ACTIONS, resources: [table.tableArn] }));

    this.function = new NodejsFunction(this, "Function", {
      entry: ENTRY,
      depsLockFilePath: LOCK_FILE,
      handler: "handler",
      runtime: lambda.Runtime.NODEJS_24_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      timeout: Duration.seconds(60),
      role,
      logGroup,
      environment: { QUEUES_TABLE: table.tableName },
      // CommonJS, everything bundled: the function does not depend on the SDK version of the runtime.
      bundling: {
        format: OutputFormat.CJS,
        target: "node24",
        minify: true,
        sourceMap: false,
        externalModules: [],
        // @queues/* workspace packages are bundled from their sources, as everything else here.
        esbuildArgs: { "--conditions": "queues-source" },
      },
    });

    this.failedRecords = new sqs.Queue(this, "FailedRecords", {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.failedRecords).acknowledge({
      id: "AwsSolutions::AwsSolutions-SQS3",
      reason: "This queue is itself the failure destination of the table stream function's event source mapping; it holds records to inspect, nothing consumes it.",
    });

    const taskKey = { [PARTITION_KEY]: { S: lambda.FilterRule.beginsWith(TASK_KEY_PREFIX) } };
    const records = (this.mapping = new lambda.EventSourceMapping(this, "TableStream", {
      target: this.function,
      eventSourceArn: streamArn,
      startingPosition: streamStartingPosition(props.table.adopted),
      batchSize: STREAM_BATCH_SIZE,
      maxBatchingWindow: Duration.seconds(STREAM_BATCHING_WINDOW_SECONDS),
      // A failing part is reported and delivered again from its first record, in order,
      // then recorded, never silently dropped. Never bisected: a retry must start where
      // a part started (see stream/table-stream.ts), and one batch at a time per shard.
      reportBatchItemFailures: true,
      bisectBatchOnError: false,
      parallelizationFactor: 1,
      retryAttempts: 10,
      onFailure: new SqsDlq(this.failedRecords),
      filters: [
        // A task created by a server that counts from the stream (its item has ownerKey).
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("INSERT"),
          dynamodb: { Keys: taskKey, NewImage: { [TASK_ATTRIBUTES.ownerKey]: { S: lambda.FilterRule.exists() } } },
        }),
        // A task written in a final state it counts in its channel's activity (the function
        // drops the later writes of a task already in that state: its Next link).
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("MODIFY"),
          dynamodb: { Keys: taskKey, NewImage: { [TASK_ATTRIBUTES.state]: { S: lambda.FilterRule.or("SUCCESS", "FAILURE") } } },
        }),
        // A task deleted by DynamoDB's TTL.
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("REMOVE"),
          userIdentity: { type: lambda.FilterRule.isEqual("Service"), principalId: lambda.FilterRule.isEqual("dynamodb.amazonaws.com") },
          dynamodb: { Keys: taskKey },
        }),
      ],
    }));
    // The mapping is checked against the role's rights when it is created.
    records.node.addDependency(role);
  }
}
