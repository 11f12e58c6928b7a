// The whole service in one stack: the tasks table, per channel a queue per priority
// level and a dead-letter queue, the gRPC servers behind an internal load balancer,
// the table stream function (owners' Totals, expired tasks), alarms and a dashboard of
// the servers' metrics (EMF log lines, see constructs/dashboard.ts); optionally
// the service's DNS name with its certificate, and a PrivateLink endpoint service.
// Each concern is its own construct in infra/constructs/.
import { Annotations, CfnOutput, Stack, type StackProps } from "aws-cdk-lib";
import * as acm from "aws-cdk-lib/aws-certificatemanager";
import type * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import type { Construct } from "constructs";
import { EMF_DIMENSION, EMF_METRICS } from "@queues/server/definitions";
import type { DeploymentConfig } from "./config.js";
import { Alarms } from "./constructs/alarms.js";
import { ChannelQueues, levelQueuesByKey } from "./constructs/channel-queues.js";
import { backlogPerWaitingCredit, QueuesDashboard } from "./constructs/dashboard.js";
import { Domain } from "./constructs/domain.js";
import { EndpointService } from "./constructs/endpoint-service.js";
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
  /** The CloudWatch dashboard of the servers' metrics (EMF), a row per channel. */
  readonly dashboard: QueuesDashboard;
  /** The CloudWatch namespace of the servers' metrics. */
  readonly metricsNamespace: string;
  /** With domainName: the alias record and the certificate. */
  readonly domain: Domain | undefined;
  /** With endpointService: the PrivateLink endpoint service. */
  readonly endpointService: EndpointService | undefined;

  constructor(scope: Construct, id: string, props: QueuesStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.metricsNamespace = config.metricsNamespace;
    this.network = new Network(this, "Network", {
      vpcId: config.vpcId,
      subnetGroupName: config.subnetGroupName,
      vpcCidr: config.vpcCidr,
      logRetentionDays: config.logRetentionDays,
      auth: config.auth,
    });
    this.tasks = new TaskTable(this, "Tasks", {
      destroyOnDelete: config.destroyTableOnDelete,
      legacyOwnerIndex: config.legacyOwnerIndex,
      failuresIndex: config.failuresIndex,
      existing:
        config.existingTableName && config.existingTableStreamArn
          ? { tableName: config.existingTableName, streamArn: config.existingTableStreamArn }
          : undefined,
    });
    this.queues = new ChannelQueues(this, "Channels", {
      channels: config.channels,
      destroyOnDelete: config.destroyTableOnDelete,
      existing: config.existingQueues,
    });
    // certificateArn wins: with domainName too, that certificate is used and none is created.
    this.domain =
      config.domainName && config.hostedZoneId
        ? new Domain(this, "Domain", { domainName: config.domainName, hostedZoneId: config.hostedZoneId, certificateArn: config.certificateArn })
        : undefined;
    const certificate =
      this.domain?.certificate ?? (config.certificateArn ? acm.Certificate.fromCertificateArn(this, "Certificate", config.certificateArn) : undefined);
    this.server = new GrpcService(this, "Server", { config, network: this.network, table: this.tasks, channels: this.queues.channels, certificate });
    this.domain?.aliasTo(this.server.loadBalancer);
    this.endpointService = config.endpointService
      ? new EndpointService(this, "EndpointService", {
          loadBalancer: this.server.loadBalancer,
          allowedPrincipals: config.allowedPrincipals ?? [],
          acceptanceRequired: config.endpointAcceptanceRequired,
        })
      : undefined;
    this.streamFunction = new TableStreamFunction(this, "TableStreamFunction", { table: this.tasks, logRetentionDays: config.logRetentionDays });
    // An adopted table's stream is read from new records on: the first servers start once that reader is there.
    if (this.tasks.adopted) this.server.service.node.addDependency(this.streamFunction.mapping);
    this.alarms = new Alarms(this, "Alarms", {
      channels: this.queues.channels,
      oldestMessageAlarmSeconds: config.oldestMessageAlarmSeconds,
      streamFunction: this.streamFunction,
      servers: { targetGroup: this.server.targetGroup, logGroup: this.server.logGroup, desiredCount: config.desiredCount },
      topicArn: config.alarmTopicArn,
      metricsNamespace: config.metricsNamespace,
    });
    this.dashboard = new QueuesDashboard(this, "Dashboard", {
      channels: config.channels.map((channel) => channel.name),
      namespace: config.metricsNamespace,
    });
    if (config.auth && !certificate) {
      Annotations.of(this).addWarningV2(
        "queues:auth-without-tls",
        "Auth is on but the listener is plain TCP (no certificateArn or domainName): bearer tokens cross the VPC and any peered network in clear. Deploy with -c domainName=<name> -c hostedZoneId=<zone>, or -c certificateArn=arn:aws:acm:...",
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
    if (this.domain) {
      new CfnOutput(this, "Endpoint", {
        value: `${this.domain.domainName}:${config.port}`,
        description: "Workers and producers connect here with TLS (the certificate's name, aliased to the load balancer)",
      });
    }
    if (this.endpointService) {
      new CfnOutput(this, "EndpointServiceName", {
        value: this.endpointService.serviceName,
        description: "The PrivateLink endpoint service: aws ec2 create-vpc-endpoint --vpc-endpoint-type Interface --service-name <this> (allowedPrincipals only)",
      });
    }
    new CfnOutput(this, "MetricsNamespace", {
      value: config.metricsNamespace,
      description:
        `The servers' CloudWatch metrics (dimension ${EMF_DIMENSION}): ${Object.values(EMF_METRICS).join(", ")}`,
    });
    new CfnOutput(this, "DashboardName", {
      value: this.dashboard.dashboard.dashboardName,
      description: "The CloudWatch dashboard of the channels: backlog, in flight, tasks, queue wait, backlog per waiting credit",
    });
    new CfnOutput(this, "TableName", {
      value: this.tasks.table.tableName,
      description: "The DynamoDB table of tasks (kept by cdk destroy; -c existingTableName adopts it)",
    });
    new CfnOutput(this, "TableStreamArn", {
      value: this.tasks.table.tableStreamArn as string,
      description: "The table's stream (-c existingTableStreamArn, with existingTableName)",
    });
    if (this.server.authTokens) {
      new CfnOutput(this, "AuthTokensSecretArn", {
        value: this.server.authTokens.secretArn,
        description: "The bearer tokens: aws secretsmanager get-secret-value --secret-id <this>",
      });
    }
    for (const channelQueue of this.queues.channels) {
      const { channel, deadLetterQueue } = channelQueue;
      const id = outputId(channel.name);
      // A queue URL ends in the queue's name: -c existingQueues takes either. Level 1 is QueueUrl<channel>,
      // the other levels QueueUrl<channel>-p<level> (escaped like a channel name: "-" is x2d).
      for (const [key, queue, level] of levelQueuesByKey(channelQueue)) {
        new CfnOutput(this, `QueueUrl${outputId(key)}`, {
          value: queue.queueUrl,
          description:
            level === 1 && channelQueue.levelQueues.length === 1
              ? `SQS queue of channel ${channel.name} (kept by cdk destroy)`
              : `SQS queue of channel ${channel.name}, priority level ${level} (existingQueues ${level === 1 ? "queue" : `levelQueues[${level - 2}]`}; kept by cdk destroy)`,
        });
      }
      new CfnOutput(this, `DeadLetterQueueUrl${id}`, {
        value: deadLetterQueue.queueUrl,
        description: `Dead-letter queue of channel ${channel.name} (kept by cdk destroy)`,
      });
    }
  }

  /**
   * A channel's tasks waiting per waiting worker credit (a MathExpression of the
   * servers' Backlog and CreditsWaiting metrics, one-minute period): for an alarm, or
   * the step scaling of a worker fleet in this app (README "CloudWatch").
   */
  backlogPerWaitingCredit(channel: string): cloudwatch.IMetric {
    const names = this.queues.channels.map((each) => each.channel.name);
    if (!names.includes(channel)) throw new Error(`backlogPerWaitingCredit: no channel ${JSON.stringify(channel)} in this stack (${names.join(", ")})`);
    return backlogPerWaitingCredit(channel, { namespace: this.metricsNamespace });
  }
}

/** Output ids are alphanumeric; channel names may hold "-" and "_" (kept apart by a hex code of the character). */
export function outputId(channel: string): string {
  return channel.replace(/[^A-Za-z0-9]/g, (c) => `x${c.charCodeAt(0).toString(16)}`);
}
