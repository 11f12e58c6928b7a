// The gRPC server on ECS Fargate (ARM64/Graviton) behind an internal Network Load
// Balancer. The image is built from the repository's Dockerfile. Health is the
// server's own: the container health check asks grpc.health.v1.Health, and the
// NLB's target health check reads the same status from GET /healthz (an NLB cannot
// speak gRPC health checks).
import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Stack, Validations } from "aws-cdk-lib";
import type * as acm from "aws-cdk-lib/aws-certificatemanager";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import { Platform } from "aws-cdk-lib/aws-ecr-assets";
import * as ecs from "aws-cdk-lib/aws-ecs";
import * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import * as logs from "aws-cdk-lib/aws-logs";
import * as secretsmanager from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { DeploymentConfig } from "../config.js";
import { levelQueuesByKey, type ChannelQueue } from "./channel-queues.js";
import type { Network } from "./network.js";
import type { TaskTable } from "./task-table.js";
import { CONTAINER_HEALTH_COMMAND, HEALTH_HTTP_PATH } from "@queues/server/definitions";

/** GET /healthz for the load balancer's target health check. */
export const HEALTH_HTTP_PORT = 8081;
/** SIGTERM → exit budget (SPEC §4 drain: a 20 s long poll returning, reports written, calls finished). */
export const DRAIN_TIMEOUT_SECONDS = 40;
/** ECS waits this long after SIGTERM before SIGKILL: the drain plus a margin. */
export const STOP_TIMEOUT_SECONDS = 60;
/** The load balancer stops sending new connections this long before ECS sends SIGTERM. */
export const DEREGISTRATION_DELAY_SECONDS = 15;
export { CONTAINER_HEALTH_COMMAND };
const REPOSITORY_ROOT = fileURLToPath(new URL("../../..", import.meta.url));

/** The task role's rights, by service: exactly what the server calls, on exactly this table and these queues. */
export const TASK_ROLE_ACTIONS = {
  dynamodb: [
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
  ],
  sqs: ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
  /** The console's dead letters: depth and a peek, and the redrive (SQS's move task; where it has none, receive and delete). Never SendMessage: SQS moves messages there itself. */
  deadLetters: ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:StartMessageMoveTask"],
};

export interface GrpcServiceProps {
  /** The deployment's context options (sizes, port, TLS, auth, allowed networks...), parsed by infra/src/config.ts with their defaults. */
  readonly config: DeploymentConfig;
  /** Where the servers and the load balancer run. */
  readonly network: Network;
  /** The tasks table the servers read and write. */
  readonly table: TaskTable;
  /** The channel queues (every priority level's) the servers poll and send to. */
  readonly channels: readonly ChannelQueue[];
  /**
   * The listener speaks TLS with this certificate (HTTP/2 ALPN).
   * @default - plain TCP
   */
  readonly certificate?: acm.ICertificate;
}

export class GrpcService extends Construct {
  readonly service: ecs.FargateService;
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  /** The servers behind the load balancer (its HealthyHostCount is alarmed). */
  readonly targetGroup: elbv2.NetworkTargetGroup;
  /** The servers' logs (State-500 answers are counted from them). */
  readonly logGroup: logs.LogGroup;
  readonly taskRole: iam.Role;
  readonly container: ecs.ContainerDefinition;
  readonly loadBalancerSecurityGroup: ec2.SecurityGroup;
  readonly serviceSecurityGroup: ec2.SecurityGroup;
  /** The tokens (JSON role → token), when authentication is on. */
  readonly authTokens: secretsmanager.Secret | undefined;

  constructor(scope: Construct, id: string, props: GrpcServiceProps) {
    super(scope, id);
    const { config, network, table, channels, certificate } = props;
    const vpc = network.vpc;

    this.taskRole = new iam.Role(this, "TaskRole", {
      assumedBy: new iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
      description: "Queues server: this table and its indexes, these channel queues, nothing else",
    });
    this.taskRole.addToPolicy(new iam.PolicyStatement({ actions: TASK_ROLE_ACTIONS.dynamodb, resources: table.arns }));
    // Every priority level's queue of every channel.
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        actions: TASK_ROLE_ACTIONS.sqs,
        resources: channels.flatMap((channel) => channel.levelQueues.map((queue) => queue.queueArn)),
      }),
    );
    // The dead-letter queues: read and redriven from the console, never sent to (SQS moves messages there itself).
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({ actions: TASK_ROLE_ACTIONS.deadLetters, resources: channels.map((channel) => channel.deadLetterQueue.queueArn) }),
    );

    const logGroup = (this.logGroup = new logs.LogGroup(this, "Logs", {
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    }));

    const taskDefinition = new ecs.FargateTaskDefinition(this, "TaskDefinition", {
      cpu: config.cpu,
      memoryLimitMiB: config.memoryMiB,
      taskRole: this.taskRole,
      runtimePlatform: { cpuArchitecture: ecs.CpuArchitecture.ARM64, operatingSystemFamily: ecs.OperatingSystemFamily.LINUX },
    });
    const environment: Record<string, string> = {
      AWS_REGION: Stack.of(this).region,
      PORT: String(config.port),
      QUEUES_HEALTH_HTTP_PORT: String(HEALTH_HTTP_PORT),
      QUEUES_TABLE: table.table.tableName,
      QUEUES_CHANNELS: JSON.stringify(channels.map((channel) => channel.channel)),
      // Keyed by levelQueueKey: "<channel>" for level 1, "<channel>-p<level>" for the others.
      QUEUES_QUEUE_URLS: Stack.of(this).toJsonString(
        Object.fromEntries(channels.flatMap((channel) => levelQueuesByKey(channel).map(([key, queue]) => [key, queue.queueUrl]))),
      ),
      QUEUES_DRAIN_TIMEOUT_MS: String(DRAIN_TIMEOUT_SECONDS * 1000),
      QUEUES_REFLECTION: String(config.reflection),
      // The metrics as Embedded Metric Format lines on stdout: the awslogs driver takes them to the log group, where
      // CloudWatch extracts them (no PutMetricData, so no IAM right); the stack's dashboard reads them.
      QUEUES_EMF_NAMESPACE: config.metricsNamespace,
    };
    if (config.taskRetentionDays !== undefined) environment.QUEUES_TASK_RETENTION_DAYS = String(config.taskRetentionDays);
    Validations.of(taskDefinition).acknowledge({
      id: "AwsSolutions::AwsSolutions-ECS2",
      reason: "The environment holds configuration only (table name, queue URLs, ports, timeouts); there is no secret in it.",
    });
    // The tokens: generated at deploy time as {"admin": "<48 random characters>"}; add
    // producer and worker tokens by editing the secret (README, "Authentication").
    this.authTokens = config.auth
      ? new secretsmanager.Secret(this, "AuthTokens", {
          description: "Queues bearer tokens: JSON {\"admin\" | \"producer\" | \"worker\": \"<token>\" or [\"<token>\", ...]}",
          generateSecretString: {
            secretStringTemplate: JSON.stringify({}),
            generateStringKey: "admin",
            passwordLength: 48,
            excludePunctuation: true,
          },
        })
      : undefined;
    if (this.authTokens) {
      Validations.of(this.authTokens).acknowledge({
        id: "AwsSolutions::AwsSolutions-SMG4",
        reason: "The tokens are handed to clients by their operators; rotating them is a planned change of every client, not an automatic one. Edit the secret and restart the service.",
      });
    }
    this.container = taskDefinition.addContainer("Server", {
      image: ecs.ContainerImage.fromAsset(REPOSITORY_ROOT, { platform: Platform.LINUX_ARM64 }),
      environment,
      // Injected by ECS at start (the execution role may read this one secret); never in the template or the logs.
      secrets: this.authTokens ? { QUEUES_AUTH_TOKENS: ecs.Secret.fromSecretsManager(this.authTokens) } : undefined,
      portMappings: [
        { containerPort: config.port, protocol: ecs.Protocol.TCP, name: "grpc" },
        { containerPort: HEALTH_HTTP_PORT, protocol: ecs.Protocol.TCP, name: "health" },
      ],
      logging: ecs.LogDrivers.awsLogs({ logGroup, streamPrefix: "server" }),
      healthCheck: {
        command: ["CMD", ...CONTAINER_HEALTH_COMMAND],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 3,
        startPeriod: Duration.seconds(30),
      },
      stopTimeout: Duration.seconds(STOP_TIMEOUT_SECONDS),
      readonlyRootFilesystem: true,
    });

    this.loadBalancerSecurityGroup = new ec2.SecurityGroup(this, "LoadBalancerSecurityGroup", {
      vpc,
      description: "Queues load balancer: the gRPC port, from the allowed networks only",
      allowAllOutbound: false,
    });
    this.serviceSecurityGroup = new ec2.SecurityGroup(this, "ServiceSecurityGroup", {
      vpc,
      description: "Queues servers: gRPC and health from the load balancer only; outbound to AWS APIs",
      allowAllOutbound: true,
    });
    for (const cidr of config.allowedCidrs ?? [network.cidr]) {
      this.loadBalancerSecurityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(config.port), `gRPC clients in ${cidr}`);
    }
    for (const [port, what] of [
      [config.port, "gRPC"],
      [HEALTH_HTTP_PORT, "target health checks"],
    ] as const) {
      this.loadBalancerSecurityGroup.addEgressRule(this.serviceSecurityGroup, ec2.Port.tcp(port), `${what} to the servers`);
      this.serviceSecurityGroup.addIngressRule(this.loadBalancerSecurityGroup, ec2.Port.tcp(port), `${what} from the load balancer`);
    }

    // Pulling the image needs ecr:GetAuthorizationToken, which IAM only grants on "*";
    // the repository actions themselves are scoped to the asset repository.
    const executionRole = taskDefinition.obtainExecutionRole();
    Validations.of(executionRole).acknowledge({
      id: "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
      reason: "ecr:GetAuthorizationToken has no resource-level permissions; IAM requires Resource * for it. Nothing else in this role is a wildcard.",
    });

    const cluster = new ecs.Cluster(this, "Cluster", { vpc });
    Validations.of(cluster).acknowledge({
      id: "AwsSolutions::AwsSolutions-ECS4",
      reason: "Container Insights is billed per metric; the service has its own alarms and structured logs. Turn it on in the console when needed.",
    });

    this.service = new ecs.FargateService(this, "Service", {
      cluster,
      taskDefinition,
      // The first deploy starts desiredCount tasks (without DesiredCount, CloudFormation starts 1,
      // and autoscaling raises a count below its minimum only when a scale-out alarm fires).
      // A deploy that updates the service (a new image) sends it again: the count goes back to
      // desiredCount and autoscaling scales out again (README "Context options").
      desiredCount: config.desiredCount,
      // Fargate spreads a service's tasks over the AZs of its subnets (two or more here).
      vpcSubnets: network.subnets,
      assignPublicIp: network.assignPublicIp,
      securityGroups: [this.serviceSecurityGroup],
      circuitBreaker: { enable: true, rollback: true },
      // Stated, not left to the default: the template keeps DeploymentController ECS, which
      // the service of earlier deploys has (a change of it replaces the service), while
      // @aws-cdk/aws-ecs:disableExplicitDeploymentControllerForCircuitBreaker is on.
      deploymentController: { type: ecs.DeploymentControllerType.ECS },
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      healthCheckGracePeriod: Duration.seconds(60),
    });
    const scaling = this.service.autoScaleTaskCount({ minCapacity: config.desiredCount, maxCapacity: config.maxCount });
    scaling.scaleOnCpuUtilization("Cpu", {
      targetUtilizationPercent: 60,
      scaleInCooldown: Duration.minutes(5),
      scaleOutCooldown: Duration.minutes(1),
    });

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, "LoadBalancer", {
      vpc,
      internetFacing: false,
      vpcSubnets: network.subnets,
      securityGroups: [this.loadBalancerSecurityGroup],
      crossZoneEnabled: true,
      // With the PrivateLink endpoint service: its traffic comes from the consumers' own
      // networks (any range, overlaps allowed), admitted by the service's principal allowlist
      // and each consumer's endpoint security group, not by allowedCidrs (README "PrivateLink").
      enforceSecurityGroupInboundRulesOnPrivateLinkTraffic: config.endpointService ? false : undefined,
    });
    Validations.of(this.loadBalancer).acknowledge({
      id: "AwsSolutions::AwsSolutions-ELB2",
      reason: "NLB access logs exist only for TLS listeners and need an S3 bucket; the servers log every call with a request id.",
    });
    const tls = certificate !== undefined;
    const listener = this.loadBalancer.addListener("Grpc", {
      port: config.port,
      protocol: tls ? elbv2.Protocol.TLS : elbv2.Protocol.TCP,
      certificates: certificate ? [elbv2.ListenerCertificate.fromCertificateManager(certificate)] : undefined,
      // gRPC is HTTP/2: a TLS listener must negotiate h2 with the client.
      alpnPolicy: tls ? elbv2.AlpnPolicy.HTTP2_ONLY : undefined,
      sslPolicy: tls ? elbv2.SslPolicy.RECOMMENDED_TLS : undefined,
    });
    this.targetGroup = listener.addTargets("Servers", {
      port: config.port,
      protocol: elbv2.Protocol.TCP,
      targets: [this.service.loadBalancerTarget({ containerName: this.container.containerName, containerPort: config.port })],
      deregistrationDelay: Duration.seconds(DEREGISTRATION_DELAY_SECONDS),
      healthCheck: {
        protocol: elbv2.Protocol.HTTP,
        port: String(HEALTH_HTTP_PORT),
        path: HEALTH_HTTP_PATH,
        healthyHttpCodes: "200",
        interval: Duration.seconds(10),
        timeout: Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
  }
}
