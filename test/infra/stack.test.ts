// The CDK stack (issue: one `cdk deploy` for the whole service), synthesized offline
// from cdk.json's context exactly as `npx cdk synth` does, with cdk-nag's AWS
// Solutions checks applied: every assertion below is on the CloudFormation template.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { App, Validations } from "aws-cdk-lib";
import * as sqs from "aws-cdk-lib/aws-sqs";
import { Annotations, Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChannels } from "../../service/src/config/channels.js";
import { INDEXES, LEGACY_INDEXES, TTL_ATTRIBUTE } from "../../service/src/store/table-definition.js";
import { LONG_POLL_SECONDS, MESSAGE_RETENTION_SECONDS } from "../../service/src/queue/queue-definition.js";
import { UNEXPECTED_ERROR_LOG_MESSAGE } from "../../service/src/grpc/call-context.js";
import {
  CONTAINER_HEALTH_COMMAND,
  DEREGISTRATION_DELAY_SECONDS,
  DRAIN_TIMEOUT_SECONDS,
  HEALTH_HTTP_PORT,
  STOP_TIMEOUT_SECONDS,
  TASK_ROLE_ACTIONS,
} from "../../infra/src/constructs/grpc-service.js";
import {
  STREAM_BATCH_SIZE,
  STREAM_BATCHING_WINDOW_SECONDS,
  STREAM_FUNCTION_STREAM_ACTIONS,
  STREAM_FUNCTION_TABLE_ACTIONS,
} from "../../infra/src/constructs/table-stream-function.js";
import { buildApp } from "../../infra/src/app.js";
import { isolatedSubnetEndpoints } from "../../infra/src/constructs/network.js";
import { outputId } from "../../infra/src/queues-stack.js";
import {
  CDK_JSON_CONTEXT,
  countOf,
  expectCleanValidationReport,
  only,
  ourFunctions,
  removeSynthOutputs,
  resourcesOf,
  sortedStatement,
  synth,
  TEST_ENV,
  type Synthesized,
} from "./support.js";

const CHANNELS = parseChannels(CDK_JSON_CONTEXT.channels, "cdk.json");
const AWS_CDK_LIB = dirname(createRequire(import.meta.url).resolve("aws-cdk-lib/package.json"));
/** Three per channel, two on the servers, two on the table stream function. */
const ALARMS = 3 * CHANNELS.length + 4;
const ref = (logicalId: string) => ({ Ref: logicalId });
const arnOf = (logicalId: string) => ({ "Fn::GetAtt": [logicalId, "Arn"] });

let base: Synthesized;

beforeAll(() => {
  base = synth();
});
afterAll(() => removeSynthOutputs());

/** Logical ids of the channel's queue and dead-letter queue. */
function queueIds(s: Synthesized, channel: string): { queue: string; deadLetter: string } {
  const pair = s.stack.queues.channels.find((c) => c.channel.name === channel);
  if (!pair) throw new Error(`no channel ${channel}`);
  const id = (construct: { node: { defaultChild?: unknown } }) => s.stack.resolve((construct.node.defaultChild as { logicalId: string }).logicalId) as string;
  return { queue: id(pair.queue), deadLetter: id(pair.deadLetterQueue) };
}

function containerEnvironment(s: Synthesized): Record<string, unknown> {
  const definition = only(s.template, "AWS::ECS::TaskDefinition").Properties;
  const [container] = definition.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries((container?.Environment ?? []).map((entry) => [entry.Name, entry.Value]));
}

function policyStatements(s: Synthesized, roleLogicalIdPrefix: string): { Action: string | string[]; Resource: unknown }[] {
  const policies = Object.entries(resourcesOf(s.template, "AWS::IAM::Policy")).filter(([id]) => id.startsWith(roleLogicalIdPrefix));
  return policies.flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement);
}

describe("cdk synth with cdk.json's context and no AWS credentials", () => {
  it("produces one stack, environment-agnostic, and cdk-nag (AWS Solutions) reports nothing unacknowledged", () => {
    expect(base.stack.stackName).toBe("Queues");
    expectCleanValidationReport(base, ["queues:auth-without-tls", "queues:no-alarm-topic"]);
  });

  it("runs with CDK's recommended feature flags of the installed aws-cdk-lib, from cdk.json (the tests synthesize with the same)", () => {
    const recommended = JSON.parse(readFileSync(join(AWS_CDK_LIB, "recommended-feature-flags.json"), "utf8")) as Record<string, unknown>;
    expect(Object.keys(recommended).length).toBeGreaterThan(80);
    for (const [flag, value] of Object.entries(recommended)) {
      expect(CDK_JSON_CONTEXT[flag], flag).toEqual(value);
      expect(base.stack.node.tryGetContext(flag), flag).toEqual(value);
    }
  });

  it("every acknowledged cdk-nag finding is one named finding with a written reason", () => {
    const acknowledged = new Map<string, string>();
    for (const construct of base.stack.node.findAll()) {
      for (const entry of construct.node.metadata) {
        if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
        for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) acknowledged.set(`${construct.node.path}: ${id}`, reason);
      }
    }
    // CDK's own constructs acknowledge some CloudFormation checks of theirs; ours are the AWS Solutions ones.
    const ours = [...acknowledged.entries()].filter(([key]) => key.includes("AwsSolutions"));
    expect(ours.map(([key]) => key.replace(/^.*: AwsSolutions::/, "")).sort()).toEqual([
      "AwsSolutions-ECS2",
      "AwsSolutions-ECS4",
      "AwsSolutions-ELB2",
      "AwsSolutions-IAM5[Resource::*]",
      "AwsSolutions-SMG4",
      "AwsSolutions-SQS3",
    ]);
    for (const [, reason] of ours) expect(reason.length).toBeGreaterThan(40);
  });
});

describe("cdk-nag is really applied", () => {
  it("a finding nobody acknowledged fails the synth", () => {
    const outdir = mkdtempSync(join(tmpdir(), "queues-cdk-nag-"));
    try {
      const { app, stack } = buildApp(new App({ outdir, context: CDK_JSON_CONTEXT }), {});
      new sqs.Queue(stack, "QueueWithoutTlsOrDeadLetters");
      let failure = "";
      try {
        app.synth();
      } catch (error) {
        failure = String(error);
      }
      expect(failure).toMatch(/does not require requests to use SSL/);
      expect(failure).toMatch(/QueueWithoutTlsOrDeadLetters/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe("DynamoDB table", () => {
  it("is built from the server's table definition: key, the two KEYS_ONLY indexes, on-demand, PITR, encryption, retained", () => {
    const table = only(base.template, "AWS::DynamoDB::Table");
    expect(table.Properties).toMatchObject({
      BillingMode: "PAY_PER_REQUEST",
      KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
      DeletionProtectionEnabled: true,
    });
    const indexes = table.Properties.GlobalSecondaryIndexes as { IndexName: string; KeySchema: unknown; Projection: unknown }[];
    expect(indexes.map((index) => index.IndexName).sort()).toEqual(Object.values(INDEXES).map((index) => index.name).sort());
    for (const index of Object.values(INDEXES)) {
      expect(indexes.find((i) => i.IndexName === index.name)).toEqual({
        IndexName: index.name,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: "HASH" },
          { AttributeName: index.sortKey.name, KeyType: "RANGE" },
        ],
        Projection: { ProjectionType: "KEYS_ONLY" },
      });
    }
    base.template.hasResource("AWS::DynamoDB::Table", { DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    // Even with no retention: the stream (owners' Totals) and TTL (the stream function's markers expire).
    expect(table.Properties).toMatchObject({
      TimeToLiveSpecification: { AttributeName: TTL_ATTRIBUTE, Enabled: true },
      StreamSpecification: { StreamViewType: "NEW_AND_OLD_IMAGES" },
    });
  });
});

describe("the upgrade from the owner index of earlier versions (README \"Upgrading\")", () => {
  const indexNames = (template: Synthesized["template"]) =>
    (only(template, "AWS::DynamoDB::Table").Properties.GlobalSecondaryIndexes as { IndexName: string }[]).map((index) => index.IndexName).sort();
  const before = [INDEXES.byOwnerShard.name, INDEXES.byOutboxDue.name, LEGACY_INDEXES.byOwner.name].sort();

  it("with -c legacyOwnerIndex=true keeps byOwner beside the owner shards (no failures index yet), and the server's role may query it", () => {
    const template = synth({ legacyOwnerIndex: "true" }).template;
    const table = only(template, "AWS::DynamoDB::Table");
    const indexes = table.Properties.GlobalSecondaryIndexes as { IndexName: string; KeySchema: unknown; Projection: unknown }[];
    expect(indexNames(template)).toEqual(before);
    expect(indexes.find((index) => index.IndexName === LEGACY_INDEXES.byOwner.name)).toEqual({
      IndexName: "byOwner",
      KeySchema: [
        { AttributeName: "owner", KeyType: "HASH" },
        { AttributeName: "id", KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: "KEYS_ONLY" },
    });
    expect(JSON.stringify(template.toJSON())).toContain("/index/byOwner\"");
    expect(JSON.stringify(base.template.toJSON())).not.toContain("/index/byOwner\"");
  });

  it("goes from the earlier layout to this one changing one index per deploy (CloudFormation's limit)", () => {
    // Earlier layout: byOwner + byOutboxDue. Then the README's deploys 1, 3 and 4.
    const steps = [
      [LEGACY_INDEXES.byOwner.name, INDEXES.byOutboxDue.name].sort(),
      indexNames(synth({ legacyOwnerIndex: "true" }).template),
      indexNames(synth({ failuresIndex: "false" }).template),
      indexNames(base.template),
    ];
    expect(steps[3]).toEqual(Object.values(INDEXES).map((index) => index.name).sort());
    for (let step = 1; step < steps.length; step++) {
      const [from, to] = [new Set(steps[step - 1]), new Set(steps[step])];
      const changed = [...from].filter((name) => !to.has(name)).length + [...to].filter((name) => !from.has(name)).length;
      expect(changed, `deploy ${step}: ${[...from].join(",")} -> ${[...to].join(",")}`).toBe(1);
    }
  });
});

describe("what cdk destroy keeps", () => {
  /** The channel queues and DLQs (not the table stream function's queue of failed records). */
  const channelQueues = (template: Synthesized["template"]) =>
    Object.entries(template.toJSON().Resources as Record<string, { Type: string; DeletionPolicy?: string; UpdateReplacePolicy?: string }>).filter(
      ([id, resource]) => resource.Type === "AWS::SQS::Queue" && id.startsWith("Channels"),
    );

  it("keeps every channel queue and dead-letter queue with the table (Retain), unless destroyTableOnDelete", () => {
    const kept = channelQueues(base.template);
    expect(kept).toHaveLength(2 * CHANNELS.length);
    for (const [, queue] of kept) expect(queue).toMatchObject({ DeletionPolicy: "Retain", UpdateReplacePolicy: "Retain" });
    const destroyed = synth({ destroyTableOnDelete: "true" }).template;
    only(destroyed, "AWS::DynamoDB::Table");
    expect(destroyed.toJSON().Resources[Object.keys(resourcesOf(destroyed, "AWS::DynamoDB::Table"))[0] as string].DeletionPolicy).toBe("Delete");
    for (const [, queue] of channelQueues(destroyed)) expect(queue).toMatchObject({ DeletionPolicy: "Delete", UpdateReplacePolicy: "Delete" });
  });
});

describe("per channel", () => {
  it("one queue and one dead-letter queue per channel of cdk.json, SSE and TLS-only", () => {
    // ... and the table stream function's queue of failed records.
    expect(countOf(base.template, "AWS::SQS::Queue")).toBe(2 * CHANNELS.length + 1);
    for (const [, queue] of Object.entries(resourcesOf(base.template, "AWS::SQS::Queue"))) {
      expect(queue.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: MESSAGE_RETENTION_SECONDS });
    }
    // enforceSSL: each queue's policy denies requests without TLS.
    expect(countOf(base.template, "AWS::SQS::QueuePolicy")).toBe(2 * CHANNELS.length + 1);
    for (const [, policy] of Object.entries(resourcesOf(base.template, "AWS::SQS::QueuePolicy"))) {
      expect(policy.Properties?.PolicyDocument).toMatchObject({
        Statement: [expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } })],
      });
    }
  });

  it("each queue takes the channel's visibility timeout (the lease) and redrives to its own DLQ after its maxReceiveCount", () => {
    for (const channel of CHANNELS) {
      const ids = queueIds(base, channel.name);
      const queue = base.template.toJSON().Resources[ids.queue];
      expect(queue.Properties).toMatchObject({
        VisibilityTimeout: channel.visibilityTimeoutSeconds,
        ReceiveMessageWaitTimeSeconds: LONG_POLL_SECONDS,
        RedrivePolicy: { deadLetterTargetArn: arnOf(ids.deadLetter), maxReceiveCount: channel.maxReceiveCount },
      });
    }
  });

  it("three alarms per channel: messages in the DLQ (> 0), a dead letter near its expiry, and the age of the oldest message", () => {
    // ... two on the servers and two on the table stream function.
    expect(countOf(base.template, "AWS::CloudWatch::Alarm")).toBe(ALARMS);
    for (const channel of CHANNELS) {
      const ids = queueIds(base, channel.name);
      base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateNumberOfMessagesVisible",
        Namespace: "AWS/SQS",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ids.deadLetter, "QueueName"] } }],
        Threshold: 0,
        ComparisonOperator: "GreaterThanThreshold",
      });
      base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ids.queue, "QueueName"] } }],
        Threshold: 3_600,
        ComparisonOperator: "GreaterThanThreshold",
      });
      // Dead letters expire with the DLQ's retention: alarm at half of it.
      base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ids.deadLetter, "QueueName"] } }],
        Threshold: MESSAGE_RETENTION_SECONDS / 2,
        ComparisonOperator: "GreaterThanThreshold",
      });
    }
  });

  it("alarms when fewer than desiredCount servers are healthy for 3 minutes (no data counts as none)", () => {
    const targetGroup = Object.keys(resourcesOf(base.template, "AWS::ElasticLoadBalancingV2::TargetGroup"))[0] as string;
    base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "HealthyHostCount",
      Namespace: "AWS/NetworkELB",
      Dimensions: Match.arrayWith([{ Name: "TargetGroup", Value: { "Fn::GetAtt": [targetGroup, "TargetGroupFullName"] } }]),
      Statistic: "Minimum",
      Threshold: 2,
      ComparisonOperator: "LessThanThreshold",
      EvaluationPeriods: 3,
      TreatMissingData: "breaching",
    });
    synth({ desiredCount: "3" }).template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "HealthyHostCount", Threshold: 3 });
  });

  it("alarms on any State-500 answer: a metric filter counts the servers' \"unexpected server error\" log lines", () => {
    const logGroup = Object.keys(resourcesOf(base.template, "AWS::Logs::LogGroup")).find((id) => id.startsWith("Server")) as string;
    base.template.hasResourceProperties("AWS::Logs::MetricFilter", {
      LogGroupName: { Ref: logGroup },
      FilterPattern: `{ $.msg = "${UNEXPECTED_ERROR_LOG_MESSAGE}" }`,
      MetricTransformations: [{ MetricNamespace: "Queues", MetricName: "ServerErrors", MetricValue: "1" }],
    });
    base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ServerErrors",
      Namespace: "Queues",
      Statistic: "Sum",
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  });

  it("adding a channel to the context adds its queue, DLQ, alarms, IAM grant and server configuration, with no code change", () => {
    const more = synth({ channels: [...(CDK_JSON_CONTEXT.channels as unknown[]), { name: "thumbnails", visibilityTimeoutSeconds: 120, maxReceiveCount: 50 }] });
    expect(countOf(more.template, "AWS::SQS::Queue")).toBe(countOf(base.template, "AWS::SQS::Queue") + 2);
    expect(countOf(more.template, "AWS::CloudWatch::Alarm")).toBe(countOf(base.template, "AWS::CloudWatch::Alarm") + 3);
    const ids = queueIds(more, "thumbnails");
    expect(more.template.toJSON().Resources[ids.queue].Properties).toMatchObject({
      VisibilityTimeout: 120,
      RedrivePolicy: { deadLetterTargetArn: arnOf(ids.deadLetter), maxReceiveCount: 50 },
    });
    const sqsStatement = policyStatements(more, "ServerTaskRole").find((s) => s.Action.includes("sqs:SendMessage"));
    expect(sqsStatement?.Resource).toContainEqual(arnOf(ids.queue));
    const env = containerEnvironment(more);
    expect(JSON.parse(env.QUEUES_CHANNELS as string)).toContainEqual({ name: "thumbnails", visibilityTimeoutSeconds: 120, maxReceiveCount: 50, priorities: 1 });
    expect(JSON.stringify(env.QUEUES_QUEUE_URLS)).toContain(`"thumbnails\\":\\"`);
    expect(JSON.stringify(env.QUEUES_QUEUE_URLS)).toContain(JSON.stringify(ref(ids.queue)));
    more.template.hasOutput(`QueueUrl${outputId("thumbnails")}`, { Value: ref(ids.queue) });
  });
});

describe("ECS Fargate service", () => {
  it("runs the image built from the repository's Dockerfile on ARM64, with the gRPC and health ports", () => {
    const definition = only(base.template, "AWS::ECS::TaskDefinition").Properties;
    expect(definition).toMatchObject({
      RequiresCompatibilities: ["FARGATE"],
      NetworkMode: "awsvpc",
      Cpu: "256",
      Memory: "512",
      RuntimePlatform: { CpuArchitecture: "ARM64", OperatingSystemFamily: "LINUX" },
    });
    const [container] = definition.ContainerDefinitions as Record<string, unknown>[];
    expect(container).toMatchObject({
      Essential: true,
      PortMappings: [
        { ContainerPort: 50051, Protocol: "tcp" },
        { ContainerPort: HEALTH_HTTP_PORT, Protocol: "tcp" },
      ],
      StopTimeout: STOP_TIMEOUT_SECONDS,
      HealthCheck: { Command: ["CMD", ...CONTAINER_HEALTH_COMMAND], Interval: 15, Retries: 3, Timeout: 5 },
    });
    // The image is an asset built from the Dockerfile at the repository root.
    const assets = JSON.parse(readFileSync(join(base.outdir, "Queues.assets.json"), "utf8")) as {
      dockerImages: Record<string, { source: { directory: string; platform?: string } }>;
    };
    const images = Object.values(assets.dockerImages);
    expect(images).toHaveLength(1);
    expect(images[0]?.source.platform).toBe("linux/arm64");
    const context = join(base.outdir, images[0]?.source.directory as string);
    expect(readFileSync(join(context, "Dockerfile"), "utf8")).toBe(readFileSync("Dockerfile", "utf8"));
  });

  it("passes the table, the channels, the channel → queue-URL map and the region in the environment", () => {
    const env = containerEnvironment(base);
    const table = only(base.template, "AWS::DynamoDB::Table").id;
    expect(env.QUEUES_TABLE).toEqual(ref(table));
    expect(env.AWS_REGION).toEqual(ref("AWS::Region"));
    expect(env.PORT).toBe("50051");
    expect(env.QUEUES_HEALTH_HTTP_PORT).toBe(String(HEALTH_HTTP_PORT));
    expect(env.QUEUES_DRAIN_TIMEOUT_MS).toBe(String(DRAIN_TIMEOUT_SECONDS * 1000));
    expect(JSON.parse(env.QUEUES_CHANNELS as string)).toEqual(CHANNELS);
    const urls = JSON.stringify(env.QUEUES_QUEUE_URLS);
    for (const channel of CHANNELS) expect(urls).toContain(JSON.stringify(ref(queueIds(base, channel.name).queue)));
    // The drain fits in the stop timeout (SPEC §4: exit within it).
    expect(DRAIN_TIMEOUT_SECONDS).toBeLessThan(STOP_TIMEOUT_SECONDS);
  });

  it("turns server reflection off unless -c reflection=true", () => {
    expect(containerEnvironment(base).QUEUES_REFLECTION).toBe("false");
    expect(containerEnvironment(synth({ reflection: true })).QUEUES_REFLECTION).toBe("true");
  });

  it("keeps at least 2 tasks over two AZs, rolls back a failed deployment, and scales on CPU", () => {
    const service = only(base.template, "AWS::ECS::Service").Properties;
    expect(service).toMatchObject({
      LaunchType: "FARGATE",
      DeploymentConfiguration: { DeploymentCircuitBreaker: { Enable: true, Rollback: true }, MinimumHealthyPercent: 100 },
      // Stated although it is ECS's default: a service deployed before the recommended flags has it,
      // and a template without it would replace the service.
      DeploymentController: { Type: "ECS" },
    });
    // The first deploy starts desiredCount tasks (2, one per AZ), not CloudFormation's 1.
    expect(service.DesiredCount).toBe(2);
    // DesiredCount is desiredCount and nothing else (not the ceiling, not the task size). A deploy
    // that updates the service sends it again (README "Context options" says what that does).
    const other = only(synth({ maxCount: "12", cpu: "512", memoryMiB: "1024" }).template, "AWS::ECS::Service").Properties;
    expect(other.DesiredCount).toBe(2);
    expect(only(synth({ desiredCount: "3" }).template, "AWS::ECS::Service").Properties.DesiredCount).toBe(3);
    const subnets = (service.NetworkConfiguration as { AwsvpcConfiguration: { Subnets: { Ref: string }[] } }).AwsvpcConfiguration.Subnets;
    const azs = new Set(subnets.map((subnet) => JSON.stringify(base.template.toJSON().Resources[subnet.Ref].Properties.AvailabilityZone)));
    expect(azs.size).toBeGreaterThanOrEqual(2);
    base.template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", {
      MinCapacity: 2,
      MaxCapacity: 8,
      ScalableDimension: "ecs:service:DesiredCount",
    });
    base.template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalingPolicy", {
      PolicyType: "TargetTrackingScaling",
      TargetTrackingScalingPolicyConfiguration: {
        PredefinedMetricSpecification: { PredefinedMetricType: "ECSServiceAverageCPUUtilization" },
        TargetValue: 60,
      },
    });
  });

  it("logs to CloudWatch with a retention", () => {
    const definition = only(base.template, "AWS::ECS::TaskDefinition").Properties;
    const [container] = definition.ContainerDefinitions as { LogConfiguration: { LogDriver: string; Options: Record<string, unknown> } }[];
    expect(container?.LogConfiguration.LogDriver).toBe("awslogs");
    const group = (container?.LogConfiguration.Options["awslogs-group"] as { Ref: string }).Ref;
    expect(base.template.toJSON().Resources[group].Properties.RetentionInDays).toBe(30);
  });
});

describe("load balancer and security groups", () => {
  it("is an internal NLB with a TCP listener on the gRPC port, forwarding to the servers", () => {
    const nlb = only(base.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").Properties;
    expect(nlb).toMatchObject({ Type: "network", Scheme: "internal" });
    const listener = only(base.template, "AWS::ElasticLoadBalancingV2::Listener").Properties;
    expect(listener).toMatchObject({ Port: 50051, Protocol: "TCP" });
    expect(listener.Certificates).toBeUndefined();
  });

  it("target health checks read the health service through GET /healthz; deregistration leaves time to drain", () => {
    const group = only(base.template, "AWS::ElasticLoadBalancingV2::TargetGroup").Properties;
    expect(group).toMatchObject({
      Port: 50051,
      Protocol: "TCP",
      TargetType: "ip",
      HealthCheckProtocol: "HTTP",
      HealthCheckPort: String(HEALTH_HTTP_PORT),
      HealthCheckPath: "/healthz",
      Matcher: { HttpCode: "200" },
      TargetGroupAttributes: [{ Key: "deregistration_delay.timeout_seconds", Value: String(DEREGISTRATION_DELAY_SECONDS) }],
    });
  });

  it("admits only the allowed networks (default: the VPC's CIDR) on the gRPC port; servers admit only the load balancer", () => {
    const groups = resourcesOf(base.template, "AWS::EC2::SecurityGroup");
    const lb = Object.entries(groups).find(([id]) => id.startsWith("ServerLoadBalancerSecurityGroup"));
    const server = Object.entries(groups).find(([id]) => id.startsWith("ServerServiceSecurityGroup"));
    expect(lb?.[1].Properties?.SecurityGroupIngress).toEqual([
      { CidrIp: "10.0.0.0/16", Description: expect.any(String), FromPort: 50051, ToPort: 50051, IpProtocol: "tcp" },
    ]);
    expect(server?.[1].Properties?.SecurityGroupIngress).toBeUndefined();
    const ingress = Object.values(resourcesOf(base.template, "AWS::EC2::SecurityGroupIngress")).map((rule) => rule.Properties);
    expect(ingress).toHaveLength(2);
    for (const rule of ingress) {
      expect(rule).toMatchObject({ GroupId: { "Fn::GetAtt": [server?.[0], "GroupId"] }, SourceSecurityGroupId: { "Fn::GetAtt": [lb?.[0], "GroupId"] } });
    }
    expect(ingress.map((rule) => rule?.FromPort).sort()).toEqual([50051, HEALTH_HTTP_PORT].sort());
    // Nothing anywhere is open to the internet.
    expect(JSON.stringify(base.template.toJSON())).not.toMatch(/"CidrIp":"0\.0\.0\.0\/0","Description":"[^"]*","FromPort/);
  });

  it("with allowedCidrs and certificateArn: those networks only, and a TLS listener that negotiates HTTP/2", () => {
    const tls = synth({
      allowedCidrs: "10.20.0.0/16,192.168.1.0/24",
      certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666",
    });
    const listener = only(tls.template, "AWS::ElasticLoadBalancingV2::Listener").Properties;
    expect(listener).toMatchObject({
      Protocol: "TLS",
      Port: 50051,
      AlpnPolicy: ["HTTP2Only"],
      Certificates: [{ CertificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666" }],
    });
    const lb = Object.entries(resourcesOf(tls.template, "AWS::EC2::SecurityGroup")).find(([id]) => id.startsWith("ServerLoadBalancerSecurityGroup"));
    expect((lb?.[1].Properties?.SecurityGroupIngress as { CidrIp: string }[]).map((rule) => rule.CidrIp)).toEqual(["10.20.0.0/16", "192.168.1.0/24"]);
  });
});

describe("least privilege", () => {
  it("the task role may use only this table and its indexes, by name, with the server's actions", () => {
    const table = only(base.template, "AWS::DynamoDB::Table").id;
    const statements = policyStatements(base, "ServerTaskRole");
    const dynamo = statements.filter((s) => JSON.stringify(s.Action).includes("dynamodb:")).map(sortedStatement);
    expect(dynamo).toHaveLength(1);
    // In any order (@aws-cdk/aws-iam:minimizePolicies sorts them).
    expect(dynamo[0]?.Action).toEqual([...TASK_ROLE_ACTIONS.dynamodb].sort());
    expect(dynamo[0]?.Resource).toEqual(
      sortedStatement({
        Action: [],
        Resource: [arnOf(table), ...Object.values(INDEXES).map((index) => ({ "Fn::Join": ["", [arnOf(table), `/index/${index.name}`]] }))],
      }).Resource,
    );
  });

  it("the task role may send, receive, delete, change visibility and get attributes on the channel queues; on the DLQs only read, delete and move back (the console), never send", () => {
    const statements = policyStatements(base, "ServerTaskRole");
    const sqs = statements.filter((s) => JSON.stringify(s.Action).includes("sqs:")).map(sortedStatement);
    expect(sqs).toHaveLength(2);
    const channelQueues = sqs.find((statement) => JSON.stringify(statement.Action).includes("sqs:SendMessage"));
    expect(channelQueues?.Action).toEqual([...TASK_ROLE_ACTIONS.sqs].sort());
    expect(channelQueues?.Resource).toEqual(sortedStatement({ Action: [], Resource: CHANNELS.map((channel) => arnOf(queueIds(base, channel.name).queue)) }).Resource);
    const deadLetters = sqs.find((statement) => statement !== channelQueues);
    expect(deadLetters?.Action).toEqual([...TASK_ROLE_ACTIONS.deadLetters].sort());
    expect(deadLetters?.Resource).toEqual(sortedStatement({ Action: [], Resource: CHANNELS.map((channel) => arnOf(queueIds(base, channel.name).deadLetter)) }).Resource);
  });

  it("no policy anywhere grants a DynamoDB or SQS action on a wildcard resource", () => {
    for (const s of [base, synth({ taskRetentionDays: 30 })]) {
      for (const [, policy] of Object.entries(resourcesOf(s.template, "AWS::IAM::Policy"))) {
        for (const statement of (policy.Properties?.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement) {
          const actions = [statement.Action].flat();
          if (!actions.some((action) => /^(dynamodb|sqs):/.test(action))) continue;
          expect(JSON.stringify(statement.Resource)).not.toMatch(/\*/);
          expect(actions.every((action) => !action.includes("*"))).toBe(true);
        }
      }
    }
  });
});

describe("cost-aware networking", () => {
  it("the created VPC has no NAT gateway: public subnets in two AZs, gateway endpoints for DynamoDB and S3, rejected traffic logged", () => {
    expect(countOf(base.template, "AWS::EC2::NatGateway")).toBe(0);
    expect(countOf(base.template, "AWS::EC2::EIP")).toBe(0);
    expect(countOf(base.template, "AWS::EC2::Subnet")).toBe(2);
    for (const [, subnet] of Object.entries(resourcesOf(base.template, "AWS::EC2::Subnet"))) expect(subnet.Properties?.MapPublicIpOnLaunch).toBe(true);
    const endpoints = Object.values(resourcesOf(base.template, "AWS::EC2::VPCEndpoint")).map((e) => e.Properties);
    expect(endpoints).toHaveLength(2);
    for (const endpoint of endpoints) expect(endpoint?.VpcEndpointType).toBe("Gateway");
    expect(JSON.stringify(endpoints)).toMatch(/\.dynamodb"/);
    expect(JSON.stringify(endpoints)).toMatch(/\.s3"/);
    base.template.hasResourceProperties("AWS::EC2::FlowLog", { TrafficType: "REJECT" });
    const service = only(base.template, "AWS::ECS::Service").Properties;
    expect(service).toMatchObject({ NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: "ENABLED" } } });
  });

  it("the created VPC's default security group is emptied (restrictDefaultSecurityGroup), by CDK's custom resource; an imported VPC's is left alone", () => {
    const vpc = only(base.template, "AWS::EC2::VPC").id;
    const restrict = only(base.template, "Custom::VpcRestrictDefaultSG").Properties;
    expect(restrict).toMatchObject({ DefaultSecurityGroupId: { "Fn::GetAtt": [vpc, "DefaultSecurityGroup"] }, Account: ref("AWS::AccountId") });
    // Its handler may only revoke and authorize rules of that one group.
    const handler = (restrict.ServiceToken as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
    const role = (base.template.toJSON().Resources[handler].Properties.Role as { "Fn::GetAtt": [string, string] })["Fn::GetAtt"][0];
    const [policy] = base.template.toJSON().Resources[role].Properties.Policies as { PolicyDocument: { Statement: { Action: string[]; Resource: unknown }[] } }[];
    expect(policy?.PolicyDocument.Statement).toHaveLength(1);
    expect([...(policy?.PolicyDocument.Statement[0]?.Action ?? [])].sort()).toEqual(
      ["ec2:AuthorizeSecurityGroupEgress", "ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:RevokeSecurityGroupIngress"],
    );
    expect(JSON.stringify(policy?.PolicyDocument.Statement[0]?.Resource)).toContain(JSON.stringify({ "Fn::GetAtt": [vpc, "DefaultSecurityGroup"] }));
    // Nothing of the stack uses the default group: the servers and the load balancer have their own.
    for (const type of ["AWS::ECS::Service", "AWS::ElasticLoadBalancingV2::LoadBalancer"]) {
      expect(JSON.stringify(only(base.template, type).Properties)).not.toContain("DefaultSecurityGroup");
    }
    expect(countOf(synth({ vpcId: "vpc-0123456789abcdef0" }, TEST_ENV).template, "Custom::VpcRestrictDefaultSG")).toBe(0);
  });

  it("with vpcId and subnetGroupName, uses that subnet group, one subnet per AZ", () => {
    const imported = synth({ vpcId: "vpc-0123456789abcdef0", subnetGroupName: "Isolated" }, TEST_ENV);
    const service = only(imported.template, "AWS::ECS::Service").Properties;
    const isolated = imported.stack.network.vpc.isolatedSubnets.map((subnet) => subnet.subnetId);
    expect(service).toMatchObject({ NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: "DISABLED", Subnets: isolated } } });
    expect(only(imported.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").Properties.Subnets).toEqual(isolated);
    // The synth names the endpoints the servers need there, Secrets Manager included (auth is on).
    const warning = Annotations.fromStack(imported.stack).findWarning("*", Match.stringLikeRegexp("isolated subnets"));
    expect(warning).toHaveLength(1);
    expect(String(warning[0]?.entry.data)).toContain(isolatedSubnetEndpoints(true));
    expect(isolatedSubnetEndpoints(true)).toBe("interface endpoints ecr.api, ecr.dkr, logs, sqs, secretsmanager; gateway endpoints dynamodb, s3");
    const open = synth({ vpcId: "vpc-0123456789abcdef0", subnetGroupName: "Isolated", auth: "false" }, TEST_ENV);
    expect(String(Annotations.fromStack(open.stack).findWarning("*", Match.stringLikeRegexp("isolated subnets"))[0]?.entry.data)).not.toContain("secretsmanager");
    expect(Annotations.fromStack(base.stack).findWarning("*", Match.stringLikeRegexp("isolated subnets"))).toEqual([]);
  });

  it("with vpcId, imports that VPC: no VPC, subnet or gateway is created; servers go to its private subnets without public IPs", () => {
    const imported = synth({ vpcId: "vpc-0123456789abcdef0" }, TEST_ENV);
    for (const type of ["AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::FlowLog"]) {
      expect(countOf(imported.template, type)).toBe(0);
    }
    const service = only(imported.template, "AWS::ECS::Service").Properties;
    expect(service).toMatchObject({ NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: "DISABLED" } } });
    const subnets = (service.NetworkConfiguration as { AwsvpcConfiguration: { Subnets: string[] } }).AwsvpcConfiguration.Subnets;
    expect(subnets.length).toBeGreaterThanOrEqual(2);
    // The default for who may connect is that VPC's CIDR, as looked up.
    const lb = Object.entries(resourcesOf(imported.template, "AWS::EC2::SecurityGroup")).find(([id]) => id.startsWith("ServerLoadBalancerSecurityGroup"));
    expect((lb?.[1].Properties?.SecurityGroupIngress as { CidrIp: string }[])[0]?.CidrIp).toBe(imported.stack.network.vpc.vpcCidrBlock);
  });
});

describe("the table stream function (always deployed)", () => {
  it("is a Lambda on the table's stream, filtered to new-layout task creates and TTL removals of task items, with rights on this table only", () => {
    const table = only(base.template, "AWS::DynamoDB::Table").id;
    // The stack's one function (CDK's custom resource that empties the default security group is the other).
    const fn = ourFunctions(base.template);
    expect(fn).toHaveLength(1);
    expect(fn[0]?.[1].Properties).toMatchObject({ Runtime: "nodejs24.x", Architectures: ["arm64"], Environment: { Variables: { QUEUES_TABLE: ref(table) } } });
    const mapping = only(base.template, "AWS::Lambda::EventSourceMapping").Properties;
    expect(mapping).toMatchObject({
      EventSourceArn: { "Fn::GetAtt": [table, "StreamArn"] },
      StartingPosition: "TRIM_HORIZON",
      BatchSize: STREAM_BATCH_SIZE,
      MaximumBatchingWindowInSeconds: STREAM_BATCHING_WINDOW_SECONDS,
      // A retry starts where a part started: never a bisected batch, one batch per shard at a time.
      BisectBatchOnFunctionError: false,
      ParallelizationFactor: 1,
    });
    const patterns = (mapping.FilterCriteria as { Filters: { Pattern: string }[] }).Filters.map((filter) => JSON.parse(filter.Pattern));
    expect(patterns).toEqual([
      { eventName: ["INSERT"], dynamodb: { Keys: { pk: { S: [{ prefix: "T#" }] } }, NewImage: { ownerKey: { S: [{ exists: true }] } } } },
      { eventName: ["MODIFY"], dynamodb: { Keys: { pk: { S: [{ prefix: "T#" }] } }, NewImage: { state: { S: ["SUCCESS", "FAILURE"] } } } },
      {
        eventName: ["REMOVE"],
        userIdentity: { type: ["Service"], principalId: ["dynamodb.amazonaws.com"] },
        dynamodb: { Keys: { pk: { S: [{ prefix: "T#" }] } } },
      },
    ]);
    const statements = policyStatements(base, "TableStreamFunctionRole");
    expect(statements.map(sortedStatement)).toContainEqual(
      expect.objectContaining({ Action: [...STREAM_FUNCTION_STREAM_ACTIONS].sort(), Resource: { "Fn::GetAtt": [table, "StreamArn"] } }),
    );
    expect(statements.map(sortedStatement)).toContainEqual(expect.objectContaining({ Action: [...STREAM_FUNCTION_TABLE_ACTIONS].sort(), Resource: arnOf(table) }));
    expect(JSON.stringify(statements)).not.toMatch(/PutItem|GetItem|Query|Scan/);
    // A failing record is retried, then kept in a queue, never dropped silently; both are alarmed.
    expect(mapping).toMatchObject({ FunctionResponseTypes: ["ReportBatchItemFailures"], MaximumRetryAttempts: 10 });
    const failed = (mapping.DestinationConfig as { OnFailure: { Destination: { "Fn::GetAtt": [string, string] } } }).OnFailure.Destination["Fn::GetAtt"][0];
    expect(base.template.toJSON().Resources[failed].Type).toBe("AWS::SQS::Queue");
    base.template.hasResourceProperties("AWS::CloudWatch::Alarm", { MetricName: "Errors", Namespace: "AWS/Lambda" });
    base.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [failed, "QueueName"] } }],
    });
  });
});

describe("task retention (taskRetentionDays)", () => {
  let kept: Synthesized;
  beforeAll(() => {
    kept = synth({ taskRetentionDays: 30 });
  });

  it("tells the server; the table and the stream function are the same as without it", () => {
    expect(containerEnvironment(kept).QUEUES_TASK_RETENTION_DAYS).toBe("30");
    expect(containerEnvironment(base).QUEUES_TASK_RETENTION_DAYS).toBeUndefined();
    expect(only(kept.template, "AWS::DynamoDB::Table").Properties).toEqual(only(base.template, "AWS::DynamoDB::Table").Properties);
    expect(ourFunctions(kept.template)).toHaveLength(1);
    expect(only(kept.template, "AWS::Lambda::EventSourceMapping").Properties).toEqual(only(base.template, "AWS::Lambda::EventSourceMapping").Properties);
  });
});

describe("authentication", () => {
  it("is on by default: a generated token secret, injected into the container as QUEUES_AUTH_TOKENS, readable only by the task's execution role", () => {
    const secret = only(base.template, "AWS::SecretsManager::Secret");
    expect(secret.Properties).toMatchObject({ GenerateSecretString: { GenerateStringKey: "admin", PasswordLength: 48, SecretStringTemplate: "{}" } });
    const definition = only(base.template, "AWS::ECS::TaskDefinition").Properties;
    const [container] = definition.ContainerDefinitions as { Secrets?: unknown; Environment: { Name: string }[] }[];
    expect(container?.Secrets).toEqual([{ Name: "QUEUES_AUTH_TOKENS", ValueFrom: ref(secret.id) }]);
    expect(container?.Environment.map((e) => e.Name)).not.toContain("QUEUES_AUTH_TOKENS");
    const readers = Object.entries(resourcesOf(base.template, "AWS::IAM::Policy")).filter(([, policy]) =>
      JSON.stringify(policy.Properties?.PolicyDocument).includes("secretsmanager:GetSecretValue"),
    );
    expect(readers.map(([id]) => id)).toEqual([expect.stringMatching(/^ServerTaskDefinitionExecutionRole/)]);
    const statement = (readers[0]?.[1].Properties?.PolicyDocument as { Statement: { Action: string[]; Resource: unknown }[] }).Statement.find((s) =>
      s.Action.includes("secretsmanager:GetSecretValue"),
    );
    expect(statement?.Resource).toEqual(ref(secret.id));
    base.template.hasOutput("AuthTokensSecretArn", { Value: ref(secret.id) });
  });

  it("with auth=false there is no secret and the server runs open", () => {
    const open = synth({ auth: false });
    expect(countOf(open.template, "AWS::SecretsManager::Secret")).toBe(0);
    const [container] = only(open.template, "AWS::ECS::TaskDefinition").Properties.ContainerDefinitions as { Secrets?: unknown }[];
    expect(container?.Secrets).toBeUndefined();
    expect(open.template.findOutputs("AuthTokensSecretArn")).toEqual({});
  });
});

describe("alarm notifications", () => {
  it("with alarmTopicArn, every alarm notifies that topic", () => {
    const topic = "arn:aws:sns:us-east-1:123456789012:queues-ops";
    const notified = synth({ alarmTopicArn: topic });
    const alarms = Object.values(resourcesOf(notified.template, "AWS::CloudWatch::Alarm"));
    expect(alarms.length).toBe(ALARMS);
    for (const alarm of alarms) expect(alarm.Properties?.AlarmActions).toEqual([topic]);
    for (const alarm of Object.values(resourcesOf(base.template, "AWS::CloudWatch::Alarm"))) expect(alarm.Properties?.AlarmActions).toBeUndefined();
    expect(Annotations.fromStack(notified.stack).findWarning("*", Match.stringLikeRegexp("alarmTopicArn"))).toEqual([]);
  });

  it("with auth on and no TLS (neither certificateArn nor domainName), the synth warns that tokens cross the network in clear", () => {
    const clear = Match.stringLikeRegexp("tokens cross the VPC");
    expect(Annotations.fromStack(base.stack).findWarning("*", clear)).toHaveLength(1);
    const tls = synth({ certificateArn: "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789" });
    expect(Annotations.fromStack(tls.stack).findWarning("*", clear)).toEqual([]);
    // domainName gives TLS too (a created certificate): no warning.
    const named = synth({ domainName: "queues.example.com", hostedZoneId: "Z0123456789ABCDEFGHIJ" });
    expect(only(named.template, "AWS::ElasticLoadBalancingV2::Listener").Properties.Protocol).toBe("TLS");
    expect(Annotations.fromStack(named.stack).findWarning("*", clear)).toEqual([]);
    expectCleanValidationReport(named, ["queues:no-alarm-topic"]);
    expect(Annotations.fromStack(synth({ auth: "false" }).stack).findWarning("*", clear)).toEqual([]);
  });

  it("without alarmTopicArn, the synth warns that the alarms notify nobody", () => {
    const warnings = Annotations.fromStack(base.stack).findWarning("*", Match.stringLikeRegexp("No alarmTopicArn"));
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0]?.entry.data)).toContain(`the stack's ${ALARMS} alarms notify nobody`);
  });
});

describe("outputs", () => {
  it("the load balancer's DNS name and port, the table name and stream, and each channel's queue and DLQ URLs", () => {
    base.template.hasOutput("LoadBalancerDnsName", { Value: { "Fn::GetAtt": [Match.stringLikeRegexp("^ServerLoadBalancer"), "DNSName"] } });
    base.template.hasOutput("GrpcPort", { Value: "50051" });
    base.template.hasOutput("TableName", { Value: ref(only(base.template, "AWS::DynamoDB::Table").id) });
    // What -c existingTableName / existingTableStreamArn / existingQueues take after a destroy (a queue URL ends in its name).
    base.template.hasOutput("TableStreamArn", { Value: { "Fn::GetAtt": [only(base.template, "AWS::DynamoDB::Table").id, "StreamArn"] } });
    // Without domainName or endpointService, no outputs of theirs.
    expect(base.template.findOutputs("Endpoint")).toEqual({});
    expect(base.template.findOutputs("EndpointServiceName")).toEqual({});
    for (const channel of CHANNELS) {
      const ids = queueIds(base, channel.name);
      base.template.hasOutput(`QueueUrl${outputId(channel.name)}`, { Value: ref(ids.queue) });
      base.template.hasOutput(`DeadLetterQueueUrl${outputId(channel.name)}`, { Value: ref(ids.deadLetter) });
    }
  });
});
