// Deployed only with a task retention: when DynamoDB's TTL deletes a final task, this
// function (on the table's stream, filtered to TTL removals of task items) deletes the
// task's HashCode guard and payload items and keeps its owner's Total exact. The code
// is the server's own (service/lambda/expired-task-cleanup.ts), bundled with esbuild.
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Validations } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import * as iam from "aws-cdk-lib/aws-iam";
import * as lambda from "aws-cdk-lib/aws-lambda";
import { SqsDlq } from "aws-cdk-lib/aws-lambda-event-sources";
import { NodejsFunction, OutputFormat } from "aws-cdk-lib/aws-lambda-nodejs";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { expiredTaskCleanupEntry, PARTITION_KEY, TASK_KEY_PREFIX } from "@queues/server/definitions";
import type { TaskTable } from "./task-table.js";
import { CONFIG_DEFAULTS } from "../config.js";

const ENTRY = expiredTaskCleanupEntry();
const LOCK_FILE = fileURLToPath(new URL("../../../package-lock.json", import.meta.url));

/** What the cleanup writes: the guard's conditional delete or the once-only marker (an Update), the count, the payload items. */
export const CLEANUP_TABLE_ACTIONS = ["dynamodb:DeleteItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"];
export const CLEANUP_STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"];

export interface ExpiredTaskCleanupProps {
  /** The tasks table; it must stream removals (a TaskTable with a retention). */
  readonly table: TaskTable;
  /**
   * Retention of the function's logs, in days (a value CloudWatch Logs accepts).
   * @default 30
   */
  readonly logRetentionDays?: number;
}

export class ExpiredTaskCleanup extends Construct {
  readonly function: NodejsFunction;
  /** Stream records that still failed after every retry (their task's items were not cleaned up). */
  readonly failedRecords: sqs.Queue;

  constructor(scope: Construct, id: string, props: ExpiredTaskCleanupProps) {
    super(scope, id);
    const table = props.table.table;
    const streamArn = table.tableStreamArn;
    if (!streamArn) throw new Error("the tasks table has no stream: ExpiredTaskCleanup needs a task retention");

    const logGroup = new logs.LogGroup(this, "Logs", {
      retention: (props.logRetentionDays ?? CONFIG_DEFAULTS.logRetentionDays) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // Its own role with inline, resource-scoped statements (no managed policy, no wildcard).
    const role = new iam.Role(this, "Role", {
      assumedBy: new iam.ServicePrincipal("lambda.amazonaws.com"),
      description: "Queues expired-task cleanup: this table's stream and items, its own log group",
    });
    role.addToPolicy(new iam.PolicyStatement({ actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [logGroup.logGroupArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: CLEANUP_STREAM_ACTIONS, resources: [streamArn] }));
    role.addToPolicy(new iam.PolicyStatement({ actions: CLEANUP_TABLE_ACTIONS, resources: [table.tableArn] }));

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
      reason: "This queue is itself the failure destination of the cleanup's event source mapping; it holds records to inspect, nothing consumes it.",
    });

    const removals = new lambda.EventSourceMapping(this, "TtlRemovals", {
      target: this.function,
      eventSourceArn: streamArn,
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      batchSize: 100,
      // A failing record is retried (with those after it, in order), then recorded, not silently dropped.
      reportBatchItemFailures: true,
      retryAttempts: 10,
      onFailure: new SqsDlq(this.failedRecords),
      filters: [
        lambda.FilterCriteria.filter({
          eventName: lambda.FilterRule.isEqual("REMOVE"),
          userIdentity: { type: lambda.FilterRule.isEqual("Service"), principalId: lambda.FilterRule.isEqual("dynamodb.amazonaws.com") },
          dynamodb: { Keys: { [PARTITION_KEY]: { S: lambda.FilterRule.beginsWith(TASK_KEY_PREFIX) } } },
        }),
      ],
    });
    // The mapping is checked against the role's rights when it is created.
    removals.node.addDependency(role);
  }
}
