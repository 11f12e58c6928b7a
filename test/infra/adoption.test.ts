// Keeping data across a destroy (README): `cdk destroy` keeps the table and the channel
// queues; they are tagged so that they can be found again, and a new stack adopts them by
// name (-c existingTableName, existingTableStreamArn, existingQueues) instead of creating
// new ones. Every assertion is on the synthesized template.
import { Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChannels } from "../../service/src/config/channels.js";
import { INDEXES, LEGACY_INDEXES } from "../../service/src/store/table-definition.js";
import { QUEUE_RESOURCE_TAG } from "../../infra/src/constructs/channel-queues.js";
import { KEPT_RESOURCE_TAGS } from "../../infra/src/constructs/task-table.js";
import { outputId } from "../../infra/src/queues-stack.js";
import { CDK_JSON_CONTEXT, countOf, expectCleanValidationReport, only, removeSynthOutputs, resourcesOf, sortedStatement, synth, SYNTH_TIMEOUT_MS, type Synthesized } from "./support.js";

const CHANNELS = parseChannels(CDK_JSON_CONTEXT.channels, "cdk.json");
const TABLE = "Queues-TasksTable45D1B62D-1ABCDEF";
const TABLE_ARN = `arn:aws:dynamodb:eu-west-1:210987654321:table/${TABLE}`;
const STREAM_ARN = `${TABLE_ARN}/stream/2026-03-04T05:06:07.890`;
/** The kept queues of two of cdk.json's channels; "reports" is not adopted (a new pair). */
const KEPT = {
  default: { queue: "Queues-ChannelsdefaultQueue6A4C0E7B-Q1w2E3r4T5y6", deadLetterQueue: "Queues-ChannelsdefaultDeadLetterQueue1F4D2C8A-U7i8O9p0A1s2" },
  emails: { queue: "Queues-ChannelsemailsQueue2B7E9D10-D3f4G5h6J7k8", deadLetterQueue: "Queues-ChannelsemailsDeadLetterQueue8C3A5F21-L9z0X1c2V3b4" },
};
const ADOPT = { existingTableName: TABLE, existingTableStreamArn: STREAM_ARN, existingQueues: JSON.stringify(KEPT) };

/** arn:<partition>:sqs:<region>:<account>:<name> and https://sqs.<region>.<suffix>/<account>/<name>, as the template builds them. */
const sqsArn = (name: string) => ({
  "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":sqs:", { Ref: "AWS::Region" }, ":", { Ref: "AWS::AccountId" }, `:${name}`]],
});
const sqsUrl = (name: string) => ({
  "Fn::Join": ["", ["https://sqs.", { Ref: "AWS::Region" }, ".", { Ref: "AWS::URLSuffix" }, "/", { Ref: "AWS::AccountId" }, `/${name}`]],
});

function statementsOf(s: Synthesized, rolePrefix: string): { Action: string | string[]; Resource: unknown }[] {
  return Object.entries(resourcesOf(s.template, "AWS::IAM::Policy"))
    .filter(([id]) => id.startsWith(rolePrefix))
    .flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement);
}

/** A Ref / Fn::Join value as text, each Ref as ${name} (to read a JSON document the template assembles). */
function rendered(value: unknown): string {
  if (typeof value === "string") return value;
  const ref = (value as { Ref?: string }).Ref;
  if (ref) return `\${${ref}}`;
  const join = (value as { "Fn::Join"?: [string, unknown[]] })["Fn::Join"];
  if (join) return join[1].map(rendered).join(join[0]);
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

/** The logical id of a created channel queue. */
function logicalIdOf(s: Synthesized, channel: string): string {
  const pair = s.stack.queues.channels.find((c) => c.channel.name === channel);
  return s.stack.resolve((pair?.queue.node.defaultChild as unknown as { logicalId: string }).logicalId) as string;
}

function environment(s: Synthesized): Record<string, unknown> {
  const [container] = only(s.template, "AWS::ECS::TaskDefinition").Properties.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries((container?.Environment ?? []).map((entry) => [entry.Name, entry.Value]));
}

let base: Synthesized;
let adopted: Synthesized;

beforeAll(() => {
  base = synth();
  adopted = synth(ADOPT);
}, 2 * SYNTH_TIMEOUT_MS);
afterAll(() => removeSynthOutputs());

describe("what a destroy keeps can be found again", () => {
  it("the table and every channel queue and DLQ are tagged with the stack, their role and their channel (tags outlive the stack)", () => {
    const table = only(base.template, "AWS::DynamoDB::Table").Properties;
    expect(table.Tags).toEqual(
      expect.arrayContaining([
        { Key: KEPT_RESOURCE_TAGS.stack, Value: "Queues" },
        { Key: KEPT_RESOURCE_TAGS.resource, Value: "table" },
      ]),
    );
    for (const { channel, queue, deadLetterQueue } of base.stack.queues.channels) {
      for (const [construct, role] of [
        [queue, QUEUE_RESOURCE_TAG.queue],
        [deadLetterQueue, QUEUE_RESOURCE_TAG.deadLetterQueue],
      ] as const) {
        const id = base.stack.resolve((construct.node.defaultChild as unknown as { logicalId: string }).logicalId) as string;
        expect(base.template.toJSON().Resources[id].Properties.Tags).toEqual(
          expect.arrayContaining([
            { Key: KEPT_RESOURCE_TAGS.stack, Value: "Queues" },
            { Key: KEPT_RESOURCE_TAGS.channel, Value: channel.name },
            { Key: KEPT_RESOURCE_TAGS.resource, Value: role },
          ]),
        );
      }
    }
    // The tag values are the keys existingQueues takes (levelQueues: a channel's queues of priority levels 2 and below, see priorities.test.ts).
    expect(Object.values(QUEUE_RESOURCE_TAG).sort()).toEqual([...Object.keys(KEPT.default), "levelQueues"].sort());
  });
});

describe("adopting a kept table and kept queues (existingTableName, existingTableStreamArn, existingQueues)", () => {
  it("creates no table, and no queue for the adopted channels; the channel not listed gets a new pair", () => {
    expect(countOf(adopted.template, "AWS::DynamoDB::Table")).toBe(0);
    const queues = Object.keys(resourcesOf(adopted.template, "AWS::SQS::Queue"));
    // reports' queue and DLQ, and the table stream function's queue of failed records.
    expect(queues).toHaveLength(3);
    expect(queues.filter((id) => id.startsWith("Channels")).sort()).toEqual([expect.stringMatching(/^ChannelsreportsDeadLetterQueue/), expect.stringMatching(/^ChannelsreportsQueue/)]);
    for (const [channel, names] of Object.entries(KEPT)) {
      const pair = adopted.stack.queues.channels.find((c) => c.channel.name === channel);
      expect(pair?.adopted).toBe(true);
      expect(adopted.stack.resolve(pair?.queue.queueName)).toBe(names.queue);
      expect(adopted.stack.resolve(pair?.deadLetterQueue.queueName)).toBe(names.deadLetterQueue);
    }
    expect(adopted.stack.queues.channels.find((c) => c.channel.name === "reports")?.adopted).toBe(false);
    expect(adopted.stack.tasks.adopted).toBe(true);
    expect(base.stack.tasks.adopted).toBe(false);
  });

  it("the servers get the adopted table's name and the adopted queues' URLs", () => {
    const env = environment(adopted);
    expect(env.QUEUES_TABLE).toBe(TABLE);
    // The adopted channels' URLs are built from the stack's region and account; reports' is its new queue's.
    const urls = JSON.parse(rendered(env.QUEUES_QUEUE_URLS)) as Record<string, string>;
    expect(urls).toEqual({
      default: `https://sqs.\${AWS::Region}.\${AWS::URLSuffix}/\${AWS::AccountId}/${KEPT.default.queue}`,
      emails: `https://sqs.\${AWS::Region}.\${AWS::URLSuffix}/\${AWS::AccountId}/${KEPT.emails.queue}`,
      reports: `\${${logicalIdOf(adopted, "reports")}}`,
    });
  });

  it("the task role's grants name the adopted table and its indexes and the adopted queues, nothing else", () => {
    const statements = statementsOf(adopted, "ServerTaskRole").map(sortedStatement);
    const dynamo = statements.filter((s) => s.Action.some((a) => a.startsWith("dynamodb:")));
    expect(dynamo).toHaveLength(1);
    expect(dynamo[0]?.Resource).toEqual([TABLE_ARN, ...Object.values(INDEXES).map((index) => `${TABLE_ARN}/index/${index.name}`)].sort());
    const sqs = statements.filter((s) => s.Action.some((a) => a.startsWith("sqs:")));
    // The channel queues, and (the console's: no send) the dead-letter queues.
    expect(sqs).toHaveLength(2);
    const channelQueues = sqs.find((s) => s.Action.includes("sqs:SendMessage"));
    expect(JSON.stringify(sqs.find((s) => s !== channelQueues)?.Resource)).toContain(KEPT.default.deadLetterQueue);
    const reports = logicalIdOf(adopted, "reports");
    expect(channelQueues?.Resource).toEqual(
      sortedStatement({ Action: [], Resource: [{ "Fn::GetAtt": [reports, "Arn"] }, sqsArn(KEPT.default.queue), sqsArn(KEPT.emails.queue)] }).Resource,
    );
    // With the legacy owner index, its grant on the adopted table too.
    const legacy = statementsOf(synth({ ...ADOPT, legacyOwnerIndex: "true" }), "ServerTaskRole").map(sortedStatement);
    expect(JSON.stringify(legacy)).toContain(`${TABLE_ARN}/index/${LEGACY_INDEXES.byOwner.name}`);
  }, SYNTH_TIMEOUT_MS);

  it("the table stream function reads the adopted table's stream, from new records on, before the servers start", () => {
    const mapping = only(adopted.template, "AWS::Lambda::EventSourceMapping");
    // A reader from the oldest record would count the last 24 hours of tasks again (README).
    expect(mapping.Properties).toMatchObject({ EventSourceArn: STREAM_ARN, StartingPosition: "LATEST" });
    expect(only(base.template, "AWS::Lambda::EventSourceMapping").Properties.StartingPosition).toBe("TRIM_HORIZON");
    const statements = statementsOf(adopted, "TableStreamFunctionRole").map(sortedStatement);
    expect(statements).toContainEqual(expect.objectContaining({ Resource: STREAM_ARN, Action: expect.arrayContaining(["dynamodb:GetRecords"]) }));
    expect(statements).toContainEqual(expect.objectContaining({ Resource: TABLE_ARN, Action: expect.arrayContaining(["dynamodb:UpdateItem"]) }));
    const fn = Object.entries(resourcesOf(adopted.template, "AWS::Lambda::Function")).find(([id]) => id.startsWith("TableStreamFunction"));
    expect(fn?.[1].Properties).toMatchObject({ Environment: { Variables: { QUEUES_TABLE: TABLE } } });
    adopted.template.hasResource("AWS::ECS::Service", { DependsOn: Match.arrayWith([mapping.id]) });
    const created = base.template.toJSON().Resources[only(base.template, "AWS::ECS::Service").id] as { DependsOn?: string[] };
    expect(created.DependsOn ?? []).not.toContain(only(base.template, "AWS::Lambda::EventSourceMapping").id);
  });

  it("puts the TLS-only policy (which went with the destroyed stack) back on the adopted queues", () => {
    const policies = Object.entries(resourcesOf(adopted.template, "AWS::SQS::QueuePolicy")).filter(([id]) => /^Channels(default|emails)/.test(id));
    expect(policies).toHaveLength(2);
    for (const [channel, names] of Object.entries(KEPT)) {
      const policy = policies.find(([id]) => id.startsWith(`Channels${channel}`))?.[1].Properties;
      expect(policy?.Queues).toEqual([sqsUrl(names.queue), sqsUrl(names.deadLetterQueue)]);
      const document = policy?.PolicyDocument as { Version: string; Statement: { Action: string; Resource: unknown }[] };
      expect(document.Version).toBe("2012-10-17");
      expect(document.Statement.map(sortedStatement)).toEqual([
        sortedStatement({
          Effect: "Deny",
          Principal: { AWS: "*" },
          Action: "sqs:*",
          Resource: [sqsArn(names.queue), sqsArn(names.deadLetterQueue)],
          Condition: { Bool: { "aws:SecureTransport": "false" } },
        }),
      ]);
    }
  });

  it("alarms watch the adopted queues by name, as many as before", () => {
    expect(countOf(adopted.template, "AWS::CloudWatch::Alarm")).toBe(countOf(base.template, "AWS::CloudWatch::Alarm"));
    for (const names of Object.values(KEPT)) {
      adopted.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateNumberOfMessagesVisible",
        Dimensions: [{ Name: "QueueName", Value: names.deadLetterQueue }],
        Threshold: 0,
      });
      adopted.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: names.queue }],
        Threshold: 3_600,
      });
      adopted.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: names.deadLetterQueue }],
      });
    }
  });

  it("outputs the adopted names, so the next destroy and adoption work the same way", () => {
    adopted.template.hasOutput("TableName", { Value: TABLE });
    adopted.template.hasOutput("TableStreamArn", { Value: STREAM_ARN });
    for (const [channel, names] of Object.entries(KEPT)) {
      adopted.template.hasOutput(`QueueUrl${outputId(channel)}`, { Value: sqsUrl(names.queue) });
      adopted.template.hasOutput(`DeadLetterQueueUrl${outputId(channel)}`, { Value: sqsUrl(names.deadLetterQueue) });
    }
  });

  it("takes the queue URLs of the outputs as well as names, and stays cdk-nag clean", () => {
    const byUrl = synth({
      ...ADOPT,
      existingQueues: {
        default: {
          queue: `https://sqs.eu-west-1.amazonaws.com/210987654321/${KEPT.default.queue}`,
          deadLetterQueue: `https://sqs.eu-west-1.amazonaws.com/210987654321/${KEPT.default.deadLetterQueue}`,
        },
      },
    });
    const pair = byUrl.stack.queues.channels.find((c) => c.channel.name === "default");
    expect(byUrl.stack.resolve(pair?.queue.queueName)).toBe(KEPT.default.queue);
    expect(byUrl.stack.resolve(pair?.deadLetterQueue.queueName)).toBe(KEPT.default.deadLetterQueue);
    // Only default adopted: emails and reports get new queues.
    expect(Object.keys(resourcesOf(byUrl.template, "AWS::SQS::Queue")).filter((id) => id.startsWith("Channels"))).toHaveLength(4);
    expectCleanValidationReport(adopted, ["queues:auth-without-tls", "queues:no-alarm-topic"]);
  }, SYNTH_TIMEOUT_MS);

  it("adopts only the table when no queues are given (every channel gets new queues)", () => {
    const tableOnly = synth({ existingTableName: TABLE, existingTableStreamArn: STREAM_ARN });
    expect(countOf(tableOnly.template, "AWS::DynamoDB::Table")).toBe(0);
    expect(Object.keys(resourcesOf(tableOnly.template, "AWS::SQS::Queue")).filter((id) => id.startsWith("Channels"))).toHaveLength(2 * CHANNELS.length);
  }, SYNTH_TIMEOUT_MS);
});
