// The whole service in one stack: the tasks table, a queue pair per channel, the
// gRPC servers behind an internal load balancer, the table stream function (owners'
// Totals, expired tasks) and alarms. Each concern is its own construct in infra/constructs/.
import { Annotations, CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { DeploymentConfig } from "./config.js";
import { Alarms } from "./constructs/alarms.js";
import { ChannelQueues } from "./constructs/channel-queues.js";
import { GrpcService } from "./constructs/grpc-service.js";
import { Network } from "./constructs/network.js";
import { TableStreamFunction } from "./constructs/table-stream-function.js";
import { TaskTable } from "./constructs/task-table.js";

export interface QueuesStackProps extends StackProps {
  /** The context options (cdk.json, -c key=value), parsed with their defaults by infra/src/config.ts. */
  readonly config: DeploymentConfig;
}

export class QueuesStack extends Stack {
  readonly network: Network;
  readonly tasks: TaskTable;
  readonly queues: ChannelQueues;
  readonly server: GrpcService;
  readonly streamFunction: TableStreamFunction;
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: QueuesStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.network = new Network(this, "Network", {
      vpcId: config.vpcId,
      subnetGroupName: config.subnetGroupName,
      vpcCidr: config.vpcCidr,
      logRetentionDays: config.logRetentionDays,
      auth: config.auth,
    });
    this.tasks = new TaskTable(this, "Tasks", { destroyOnDelete: config.destroyTableOnDelete, legacyOwnerIndex: config.legacyOwnerIndex });
    this.queues = new ChannelQueues(this, "Channels", { channels: config.channels, destroyOnDelete: config.destroyTableOnDelete });
    this.server = new GrpcService(this, "Server", { config, network: this.network, table: this.tasks, channels: this.queues.channels });
    this.streamFunction = new TableStreamFunction(this, "TableStreamFunction", { table: this.tasks, logRetentionDays: config.logRetentionDays });
    this.alarms = new Alarms(this, "Alarms", {
      channels: this.queues.channels,
      oldestMessageAlarmSeconds: config.oldestMessageAlarmSeconds,
      streamFunction: this.streamFunction,
      servers: { targetGroup: this.server.targetGroup, logGroup: this.server.logGroup, desiredCount: config.desiredCount },
      topicArn: config.alarmTopicArn,
    });
    if (config.auth && !config.certificateArn) {
      Annotations.of(this).addWarningV2(
        "queues:auth-without-tls",
        "Auth is on but the listener is plain TCP (no certificateArn): bearer tokens cross the VPC and any peered network in clear. Deploy with -c certificateArn=arn:aws:acm:...",
      );
    }
    if (!config.alarmTopicArn) {
      Annotations.of(this).addWarningV2(
        "queues:no-alarm-topic",
        `No alarmTopicArn: the stack's ${this.alarms.alarms.length} alarms notify nobody (they only show in the CloudWatch console). Deploy with -c alarmTopicArn=arn:aws:sns:<region>:<account>:<topic>.`,
      );
    }

    new CfnOutput(this, "LoadBalancerDnsName", {
      value: this.server.loadBalancer.loadBalancerDnsName,
      description: "Workers and producers connect to <this name>:<GrpcPort> from inside the VPC (or a peered network)",
    });
    new CfnOutput(this, "GrpcPort", { value: String(config.port), description: "The gRPC port of the load balancer" });
    new CfnOutput(this, "TableName", { value: this.tasks.table.tableName, description: "The DynamoDB table of tasks" });
    if (this.server.authTokens) {
      new CfnOutput(this, "AuthTokensSecretArn", {
        value: this.server.authTokens.secretArn,
        description: "The bearer tokens: aws secretsmanager get-secret-value --secret-id <this>",
      });
    }
    for (const { channel, queue, deadLetterQueue } of this.queues.channels) {
      const id = outputId(channel.name);
      new CfnOutput(this, `QueueUrl${id}`, { value: queue.queueUrl, description: `SQS queue of channel ${channel.name}` });
      new CfnOutput(this, `DeadLetterQueueUrl${id}`, { value: deadLetterQueue.queueUrl, description: `Dead-letter queue of channel ${channel.name}` });
    }
  }
}

/** Output ids are alphanumeric; channel names may hold "-" and "_" (kept apart by a hex code of the character). */
export function outputId(channel: string): string {
  return channel.replace(/[^A-Za-z0-9]/g, (c) => `x${c.charCodeAt(0).toString(16)}`);
}
