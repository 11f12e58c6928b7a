// CloudWatch (issue 15 item 4): the servers write their metrics as Embedded Metric
// Format lines (QUEUES_EMF_NAMESPACE in the container's environment, no IAM right for
// it), the stack has a dashboard with a row per channel and the "backlog per waiting
// credit" math expression, and that expression drives a worker fleet's step scaling
// as the README shows.
import { App, Duration, Stack } from "aws-cdk-lib";
import * as appscaling from "aws-cdk-lib/aws-applicationautoscaling";
import { Template } from "aws-cdk-lib/assertions";
import * as cloudwatch from "aws-cdk-lib/aws-cloudwatch";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as ecs from "aws-cdk-lib/aws-ecs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../infra/src/config.js";
import { BACKLOG_PER_CREDIT_EXPRESSION } from "../../infra/src/constructs/dashboard.js";
import { EMF_METRICS } from "../../service/src/metrics/emf-names.js";
import { parseChannels } from "../../service/src/config/channels.js";
import { CDK_JSON_CONTEXT, expectCleanValidationReport, only, removeSynthOutputs, resourcesOf, synth, SYNTH_TIMEOUT_MS, type Synthesized } from "./support.js";

const CHANNELS = parseChannels(CDK_JSON_CONTEXT.channels, "cdk.json").map((channel) => channel.name);
let base: Synthesized;

beforeAll(() => {
  base = synth();
}, SYNTH_TIMEOUT_MS);
afterAll(() => removeSynthOutputs());

function containerEnvironment(s: Synthesized): Record<string, unknown> {
  const [container] = only(s.template, "AWS::ECS::TaskDefinition").Properties.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries((container?.Environment ?? []).map((entry) => [entry.Name, entry.Value]));
}

/** The dashboard's body: a JSON document, joined with the stack's region by CloudFormation. */
function dashboardBody(s: Synthesized): { widgets: { type: string; properties: Record<string, unknown> }[] } {
  const body = only(s.template, "AWS::CloudWatch::Dashboard").Properties.DashboardBody as string | { "Fn::Join": [string, unknown[]] };
  const text = typeof body === "string" ? body : body["Fn::Join"][1].map((part) => (typeof part === "string" ? part : "us-east-1")).join("");
  return JSON.parse(text) as { widgets: { type: string; properties: Record<string, unknown> }[] };
}

describe("EMF configuration", () => {
  it("the container writes its metrics as EMF lines in the namespace Queues; the task role gets no CloudWatch right for it", () => {
    expect(containerEnvironment(base).QUEUES_EMF_NAMESPACE).toBe("Queues");
    const policies = JSON.stringify(resourcesOf(base.template, "AWS::IAM::Policy"));
    expect(policies).not.toContain("cloudwatch:PutMetricData");
    // The awslogs driver takes stdout to the servers' log group, where CloudWatch extracts the metrics.
    const [container] = only(base.template, "AWS::ECS::TaskDefinition").Properties.ContainerDefinitions as { LogConfiguration: { LogDriver: string } }[];
    expect(container?.LogConfiguration.LogDriver).toBe("awslogs");
    base.template.hasOutput("MetricsNamespace", { Value: "Queues" });
    // The dashboard adds no cdk-nag finding.
    expectCleanValidationReport(base, ["queues:auth-without-tls", "queues:no-alarm-topic"]);
  });

  it("-c metricsNamespace moves the servers' metrics, the dashboard and the State-500 count there; a bad one is refused", () => {
    const custom = synth({ metricsNamespace: "Team/Queues" });
    expect(containerEnvironment(custom).QUEUES_EMF_NAMESPACE).toBe("Team/Queues");
    expect(JSON.stringify(dashboardBody(custom))).toContain('"Team/Queues"');
    expect(JSON.stringify(dashboardBody(custom))).not.toContain('"Queues"');
    expect(only(custom.template, "AWS::Logs::MetricFilter").Properties.MetricTransformations).toEqual([
      expect.objectContaining({ MetricNamespace: "Team/Queues", MetricName: "ServerErrors" }),
    ]);
    custom.template.hasOutput("MetricsNamespace", { Value: "Team/Queues" });
    for (const bad of ["AWS/ECS", "no|pipes", ""]) {
      if (bad === "") expect(readConfig((key) => ({ channels: ["a"], metricsNamespace: bad })[key]).metricsNamespace).toBe("Queues");
      else expect(() => readConfig((key) => ({ channels: ["a"], metricsNamespace: bad })[key]), bad).toThrow(ConfigError);
    }
  }, SYNTH_TIMEOUT_MS);
});

describe("CloudWatch dashboard", () => {
  it("has a row per channel: backlog and in flight, tasks created/succeeded/failed, queue wait, backlog per waiting credit", () => {
    const body = dashboardBody(base);
    const graphs = body.widgets.filter((widget) => widget.type === "metric");
    expect(graphs).toHaveLength(4 * CHANNELS.length);
    for (const channel of CHANNELS) {
      const titles = graphs.map((graph) => graph.properties.title as string).filter((title) => title.startsWith(`${channel}: `));
      expect(titles).toEqual([
        `${channel}: backlog and in flight`,
        `${channel}: tasks created, succeeded, failed`,
        `${channel}: queue wait and run time (ms)`,
        `${channel}: backlog per waiting credit`,
      ]);
      const metrics = (title: string) => JSON.stringify(graphs.find((graph) => graph.properties.title === `${channel}: ${title}`)?.properties.metrics);
      for (const name of [EMF_METRICS.backlog, EMF_METRICS.inFlight]) expect(metrics("backlog and in flight")).toContain(`["Queues","${name}","Channel","${channel}"`);
      for (const name of [EMF_METRICS.created, EMF_METRICS.succeeded, EMF_METRICS.failed]) {
        expect(metrics("tasks created, succeeded, failed")).toContain(`["Queues","${name}","Channel","${channel}"`);
      }
      expect(metrics("queue wait and run time (ms)")).toContain(`["Queues","${EMF_METRICS.queueWait}","Channel","${channel}"`);
      // The math expression over the channel's Backlog (Maximum: every replica writes the same) and CreditsWaiting (Sum over the replicas).
      const perCredit = metrics("backlog per waiting credit");
      expect(perCredit).toContain(JSON.stringify(BACKLOG_PER_CREDIT_EXPRESSION));
      const used = (JSON.parse(perCredit) as unknown[][])
        .filter((entry) => entry.length === 5)
        .map(([namespace, name, dimension, value, options]) => [namespace, name, dimension, value, (options as { id: string }).id, (options as { stat: string }).stat]);
      expect(used).toEqual([
        ["Queues", "Backlog", "Channel", channel, "backlog", "Maximum"],
        ["Queues", "CreditsWaiting", "Channel", channel, "credits", "Sum"],
      ]);
    }
    expect(base.stack.resolve(base.stack.dashboard.dashboard.dashboardName)).toEqual({ Ref: only(base.template, "AWS::CloudWatch::Dashboard").id });
    base.template.hasOutput("DashboardName", { Value: { Ref: only(base.template, "AWS::CloudWatch::Dashboard").id } });
  });

  it("a channel added to cdk.json gets its row", () => {
    const more = synth({ channels: [...(CDK_JSON_CONTEXT.channels as unknown[]), "thumbnails"] });
    expect(JSON.stringify(dashboardBody(more))).toContain('"thumbnails: backlog per waiting credit"');
  }, SYNTH_TIMEOUT_MS);
});

describe("backlog per waiting credit, for a worker fleet's autoscaling", () => {
  it("QueuesStack.backlogPerWaitingCredit(channel) is the math expression at a one-minute period; an unknown channel is refused", () => {
    const metric = base.stack.backlogPerWaitingCredit("emails");
    expect(metric).toBeInstanceOf(cloudwatch.MathExpression);
    const config = metric.toMetricConfig().mathExpression;
    expect(config?.expression).toBe(BACKLOG_PER_CREDIT_EXPRESSION);
    expect(config?.period).toBe(60);
    expect(Object.keys(config?.usingMetrics ?? {}).sort()).toEqual(["backlog", "credits"]);
    expect(() => base.stack.backlogPerWaitingCredit("nope")).toThrow(/no channel "nope"/);
  });

  it("the README's ECS worker service example synthesizes: step scaling with alarms on the expression", () => {
    const stack = new Stack(new App(), "Workers");
    const cluster = new ecs.Cluster(stack, "Cluster", { vpc: new ec2.Vpc(stack, "Vpc", { natGateways: 0, maxAzs: 2 }) });
    const taskDefinition = new ecs.FargateTaskDefinition(stack, "Worker");
    taskDefinition.addContainer("worker", { image: ecs.ContainerImage.fromRegistry("example/worker") });
    const workerService = new ecs.FargateService(stack, "WorkerService", { cluster, taskDefinition });

    // --- as in the README ("CloudWatch") ---
    const metric = (metricName: string, statistic: string) =>
      new cloudwatch.Metric({ namespace: "Queues", metricName, dimensionsMap: { Channel: "emails" }, statistic, period: Duration.minutes(1) });
    const backlogPerCredit = new cloudwatch.MathExpression({
      expression: "IF(credits > 0, backlog / credits, backlog + 1)",
      usingMetrics: { backlog: metric("Backlog", "Maximum"), credits: metric("CreditsWaiting", "Sum") },
      period: Duration.minutes(1),
    });
    workerService.autoScaleTaskCount({ minCapacity: 1, maxCapacity: 20 }).scaleOnMetric("BacklogPerCredit", {
      metric: backlogPerCredit,
      scalingSteps: [
        { upper: 0, change: -1 },
        { lower: 10, change: +1 },
        { lower: 100, change: +5 },
      ],
      adjustmentType: appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
      cooldown: Duration.minutes(2),
    });
    // ---

    expect(backlogPerCredit.expression).toBe(BACKLOG_PER_CREDIT_EXPRESSION);
    const template = Template.fromStack(stack);
    template.resourceCountIs("AWS::ApplicationAutoScaling::ScalingPolicy", 2);
    template.hasResourceProperties("AWS::ApplicationAutoScaling::ScalableTarget", { MinCapacity: 1, MaxCapacity: 20, ScalableDimension: "ecs:service:DesiredCount" });
    const alarms = Object.values(resourcesOf(template, "AWS::CloudWatch::Alarm")).map((alarm) => alarm.Properties ?? {});
    expect(alarms.map((alarm) => [alarm.ComparisonOperator, alarm.Threshold]).sort()).toEqual([
      ["GreaterThanOrEqualToThreshold", 10],
      ["LessThanOrEqualToThreshold", 0],
    ]);
    for (const alarm of alarms) {
      const metrics = alarm.Metrics as { Id: string; Expression?: string; MetricStat?: { Metric: { Namespace: string; MetricName: string }; Period: number; Stat: string } }[];
      expect(metrics.find((each) => each.Expression)?.Expression).toBe(BACKLOG_PER_CREDIT_EXPRESSION);
      expect(metrics.filter((each) => each.MetricStat).map((each) => [each.Id, each.MetricStat?.Metric.MetricName, each.MetricStat?.Stat, each.MetricStat?.Period]).sort()).toEqual([
        ["backlog", "Backlog", "Maximum", 60],
        ["credits", "CreditsWaiting", "Sum", 60],
      ]);
    }
  });
});
