// Channel priorities in the stack (SPEC §7.2, README "Deploy"): a channel with
// `priorities` N gets one SQS queue per level, the same definition each, all redriving
// to the channel's one dead-letter queue; the servers get every level's URL keyed by
// levelQueueKey, the task role every level queue, an oldest-message alarm per level. A
// kept channel adopts its level queues too (existingQueues "levelQueues"). A bad channel
// option fails the synth with a message naming the channel and the key. Every
// assertion is on the synthesized template.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChannels } from "../../service/src/config/channels.js";
import { LONG_POLL_SECONDS, MESSAGE_RETENTION_SECONDS } from "../../service/src/queue/queue-definition.js";
import { TASK_ROLE_ACTIONS } from "../../infra/src/constructs/grpc-service.js";
import { levelQueueId, QUEUE_RESOURCE_TAG, type ChannelQueue } from "../../infra/src/constructs/channel-queues.js";
import { KEPT_RESOURCE_TAGS } from "../../infra/src/constructs/task-table.js";
import { outputId } from "../../infra/src/queues-stack.js";
import {
  CDK_JSON_CONTEXT,
  countOf,
  expectCleanValidationReport,
  removeSynthOutputs,
  resourcesOf,
  sortedStatement,
  synth,
  SYNTH_TIMEOUT_MS,
  type Synthesized,
} from "./support.js";
import { KEPT_RANKED_QUEUES, PRIORITIES, PRIORITY_CHANNELS } from "./contexts.js";
import { cdkJsonPath } from "../../service/src/local/cdk-channels.js";

const JOBS = parseChannels(PRIORITY_CHANNELS, "test").find((channel) => channel.name === "jobs");
/** The command `cdk synth` runs (cdk.json "app"). */
const CDK_JSON_APP = (JSON.parse(readFileSync(cdkJsonPath(), "utf8")) as { app: string }).app;
const RANKED_P2 = "Queues-ChannelsrankedQueuep2C4D5E6F7-Rk9Rk0RkARkB";
const arnOf = (logicalId: string) => ({ "Fn::GetAtt": [logicalId, "Arn"] });
const sqsArn = (name: string) => ({
  "Fn::Join": ["", ["arn:", { Ref: "AWS::Partition" }, ":sqs:", { Ref: "AWS::Region" }, ":", { Ref: "AWS::AccountId" }, `:${name}`]],
});
const sqsUrl = (name: string) => ({
  "Fn::Join": ["", ["https://sqs.", { Ref: "AWS::Region" }, ".", { Ref: "AWS::URLSuffix" }, "/", { Ref: "AWS::AccountId" }, `/${name}`]],
});

let levels: Synthesized;
/** The same channels, jobs with one level: what the stack had before jobs got priorities. */
let oneLevel: Synthesized;

beforeAll(() => {
  levels = synth(PRIORITIES);
  oneLevel = synth({ ...PRIORITIES, channels: PRIORITY_CHANNELS.map((c) => (typeof c === "object" && c.name === "jobs" ? { ...c, priorities: 1 } : c)) });
}, 2 * SYNTH_TIMEOUT_MS);
afterAll(() => removeSynthOutputs());

function channelOf(s: Synthesized, name: string): ChannelQueue {
  const found = s.stack.queues.channels.find((c) => c.channel.name === name);
  if (!found) throw new Error(`no channel ${name}`);
  return found;
}

const logicalIdOf = (s: Synthesized, construct: { node: { defaultChild?: unknown } }) =>
  s.stack.resolve((construct.node.defaultChild as { logicalId: string }).logicalId) as string;

/** Logical ids of a created channel's level queues (level 1 first) and of its dead-letter queue. */
function ids(s: Synthesized, name: string): { levels: string[]; deadLetter: string } {
  const channel = channelOf(s, name);
  return { levels: channel.levelQueues.map((queue) => logicalIdOf(s, queue)), deadLetter: logicalIdOf(s, channel.deadLetterQueue) };
}

function environment(s: Synthesized): Record<string, unknown> {
  const [, definition] = Object.entries(resourcesOf(s.template, "AWS::ECS::TaskDefinition"))[0] as [string, { Properties: Record<string, unknown> }];
  const [container] = definition.Properties.ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries((container?.Environment ?? []).map((entry) => [entry.Name, entry.Value]));
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

function sqsStatements(s: Synthesized): { Action: string[]; Resource: unknown }[] {
  return Object.entries(resourcesOf(s.template, "AWS::IAM::Policy"))
    .filter(([id]) => id.startsWith("ServerTaskRole"))
    .flatMap(([, policy]) => (policy.Properties?.PolicyDocument as { Statement: { Action: string | string[]; Resource: unknown }[] }).Statement)
    .map(sortedStatement)
    .filter((statement) => statement.Action.some((action) => action.startsWith("sqs:")));
}

type Alarm = { MetricName: string; Threshold: number; Dimensions: { Name: string; Value: unknown }[] };
const alarms = (s: Synthesized) => Object.values(resourcesOf(s.template, "AWS::CloudWatch::Alarm")).map((alarm) => alarm.Properties as unknown as Alarm);

describe("a channel with priorities 3 (created)", () => {
  it("gets 3 queues and 1 dead-letter queue, each level with the channel's definition, each redriving to that dead-letter queue", () => {
    const jobs = ids(levels, "jobs");
    expect(jobs.levels).toHaveLength(3);
    const resources = levels.template.toJSON().Resources as Record<string, { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string }>;
    const ofJobs = Object.entries(resources).filter(
      ([, resource]) =>
        resource.Type === "AWS::SQS::Queue" &&
        (resource.Properties.Tags as { Key: string; Value: string }[] | undefined)?.some((tag) => tag.Key === KEPT_RESOURCE_TAGS.channel && tag.Value === "jobs"),
    );
    expect(ofJobs.map(([id]) => id).sort()).toEqual([...jobs.levels, jobs.deadLetter].sort());
    for (const id of jobs.levels) {
      expect(resources[id]).toMatchObject({
        DeletionPolicy: "Retain",
        Properties: {
          VisibilityTimeout: JOBS?.visibilityTimeoutSeconds,
          MessageRetentionPeriod: MESSAGE_RETENTION_SECONDS,
          ReceiveMessageWaitTimeSeconds: LONG_POLL_SECONDS,
          SqsManagedSseEnabled: true,
          RedrivePolicy: { deadLetterTargetArn: arnOf(jobs.deadLetter), maxReceiveCount: JOBS?.maxReceiveCount },
        },
      });
      // enforceSSL: its own TLS-only policy.
      levels.template.hasResourceProperties("AWS::SQS::QueuePolicy", {
        Queues: [{ Ref: id }],
        PolicyDocument: { Statement: [Match.objectLike({ Effect: "Deny", Resource: arnOf(id), Condition: { Bool: { "aws:SecureTransport": "false" } } })] },
      });
    }
    // One dead-letter queue: the other channels' queues point to theirs.
    const redriving = Object.values(resources).filter((r) => JSON.stringify(r.Properties?.RedrivePolicy ?? {}).includes(`"${jobs.deadLetter}"`));
    expect(redriving).toHaveLength(3);
    // Channels without priorities: one queue each, as before.
    expect(channelOf(levels, "default").levelQueues).toEqual([channelOf(levels, "default").queue]);
    expect(channelOf(levels, "jobs").levelQueues[0]).toBe(channelOf(levels, "jobs").queue);
  });

  it("keeps the channel's queue as level 1: adding levels replaces, removes and changes nothing that was there", () => {
    const before = oneLevel.template.toJSON().Resources as Record<string, { Type: string; Properties?: unknown }>;
    const after = levels.template.toJSON().Resources as Record<string, { Type: string; Properties?: unknown }>;
    expect(ids(levels, "jobs").levels[0]).toBe(ids(oneLevel, "jobs").levels[0]);
    expect(ids(levels, "jobs").deadLetter).toBe(ids(oneLevel, "jobs").deadLetter);
    expect(channelOf(levels, "jobs").levelQueues.map((queue) => queue.node.id)).toEqual(["Queue", "Queue-p2", "Queue-p3"]);
    expect([1, 2, 3].map(levelQueueId)).toEqual(["Queue", "Queue-p2", "Queue-p3"]);
    for (const [id, resource] of Object.entries(before)) {
      expect(after[id]?.Type, id).toBe(resource.Type);
      // The queues and their policies stay as they were; the alarms too but for their description, which
      // names the level now (the task definition and the task role get the new levels).
      if (resource.Type === "AWS::SQS::Queue" || resource.Type === "AWS::SQS::QueuePolicy") expect(after[id]?.Properties, id).toEqual(resource.Properties);
      if (resource.Type === "AWS::CloudWatch::Alarm") {
        expect({ ...(after[id]?.Properties as object), AlarmDescription: "" }, id).toEqual({ ...(resource.Properties as object), AlarmDescription: "" });
      }
    }
  });

  it("tags each level queue with its channel, its role (existingQueues' key) and its level; level 1 as the channel's queue always was", () => {
    const tagsOf = (id: string) => (levels.template.toJSON().Resources[id].Properties.Tags as { Key: string; Value: string }[]).sort((a, b) => a.Key.localeCompare(b.Key));
    const [first, ...others] = ids(levels, "jobs").levels;
    expect(tagsOf(first as string)).toEqual(tagsOf(ids(oneLevel, "jobs").levels[0] as string));
    expect(tagsOf(first as string)).not.toContainEqual(expect.objectContaining({ Key: KEPT_RESOURCE_TAGS.level }));
    others.forEach((id, index) => {
      expect(tagsOf(id)).toEqual(
        [
          { Key: KEPT_RESOURCE_TAGS.channel, Value: "jobs" },
          { Key: KEPT_RESOURCE_TAGS.level, Value: String(index + 2) },
          { Key: KEPT_RESOURCE_TAGS.resource, Value: QUEUE_RESOURCE_TAG.levelQueues },
          { Key: KEPT_RESOURCE_TAGS.stack, Value: "Queues" },
        ].sort((a, b) => a.Key.localeCompare(b.Key)),
      );
    });
  });

  it("gives the servers every level's URL keyed <channel>, <channel>-p2, <channel>-p3, and the channel's priorities", () => {
    const env = environment(levels);
    const urls = JSON.parse(rendered(env.QUEUES_QUEUE_URLS)) as Record<string, string>;
    const [jobs1, jobs2, jobs3] = ids(levels, "jobs").levels;
    const region = "https://sqs.${AWS::Region}.${AWS::URLSuffix}/${AWS::AccountId}";
    expect(urls).toEqual({
      default: `\${${ids(levels, "default").levels[0]}}`,
      jobs: `\${${jobs1}}`,
      "jobs-p2": `\${${jobs2}}`,
      "jobs-p3": `\${${jobs3}}`,
      ranked: `${region}/${KEPT_RANKED_QUEUES.queue}`,
      "ranked-p2": `${region}/${RANKED_P2}`,
    });
    expect(JSON.parse(env.QUEUES_CHANNELS as string)).toContainEqual({ name: "jobs", visibilityTimeoutSeconds: 120, maxReceiveCount: 50, priorities: 3 });
  });

  it("lets the task role use every level queue of every channel, with the server's actions; on the dead-letter queue no send", () => {
    const statements = sqsStatements(levels);
    expect(statements).toHaveLength(2);
    const channelQueues = statements.find((statement) => JSON.stringify(statement.Action).includes("sqs:SendMessage"));
    expect(channelQueues?.Action).toEqual([...TASK_ROLE_ACTIONS.sqs].sort());
    expect(channelQueues?.Resource).toEqual(
      sortedStatement({
        Action: [],
        Resource: [
          ...ids(levels, "default").levels.map(arnOf),
          ...ids(levels, "jobs").levels.map(arnOf),
          sqsArn(KEPT_RANKED_QUEUES.queue),
          sqsArn(RANKED_P2),
        ],
      }).Resource,
    );
    expect(JSON.stringify(channelQueues)).not.toContain(ids(levels, "jobs").deadLetter);
    // The console's dead letters: one DLQ per channel, whatever its levels; read, delete and move back only.
    const deadLetters = statements.find((statement) => statement !== channelQueues);
    expect(deadLetters?.Action).toEqual([...TASK_ROLE_ACTIONS.deadLetters].sort());
    expect(JSON.stringify(deadLetters?.Resource)).toContain(ids(levels, "jobs").deadLetter);
  });

  it("alarms on the oldest message of each level's queue, and on the one dead-letter queue once", () => {
    const jobs = ids(levels, "jobs");
    for (const id of jobs.levels) {
      expect(
        alarms(levels).filter(
          (alarm) => alarm.MetricName === "ApproximateAgeOfOldestMessage" && JSON.stringify(alarm.Dimensions) === JSON.stringify([{ Name: "QueueName", Value: { "Fn::GetAtt": [id, "QueueName"] } }]),
        ),
        id,
      ).toEqual([expect.objectContaining({ Threshold: 3_600 })]);
    }
    const onDeadLetters = alarms(levels).filter((alarm) => JSON.stringify(alarm.Dimensions ?? []).includes(`"${jobs.deadLetter}"`));
    expect(onDeadLetters.map((alarm) => alarm.MetricName).sort()).toEqual(["ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"]);
    // Three per channel, one more per level below the first (jobs' levels 2 and 3, ranked's level 2), four others.
    expect(countOf(levels.template, "AWS::CloudWatch::Alarm")).toBe(3 * PRIORITY_CHANNELS.length + 2 + 1 + 4);
    expect(countOf(oneLevel.template, "AWS::CloudWatch::Alarm")).toBe(3 * PRIORITY_CHANNELS.length + 1 + 4);
  });

  it("outputs each level's queue URL (QueueUrl<channel>, QueueUrl<channel>-p<level> with - as x2d) and the one DLQ URL", () => {
    const jobs = ids(levels, "jobs");
    levels.template.hasOutput(`QueueUrl${outputId("jobs")}`, { Value: { Ref: jobs.levels[0] } });
    levels.template.hasOutput("QueueUrljobsx2dp2", { Value: { Ref: jobs.levels[1] } });
    levels.template.hasOutput("QueueUrljobsx2dp3", { Value: { Ref: jobs.levels[2] } });
    levels.template.hasOutput("DeadLetterQueueUrljobs", { Value: { Ref: jobs.deadLetter } });
    expect(Object.keys(levels.template.findOutputs("*")).filter((id) => id.includes("jobs")).sort()).toEqual(
      ["DeadLetterQueueUrljobs", "QueueUrljobs", "QueueUrljobsx2dp2", "QueueUrljobsx2dp3"].sort(),
    );
  });

  it("synthesizes cdk-nag (AWS Solutions) and CloudFormation clean", () => {
    expectCleanValidationReport(levels, ["queues:auth-without-tls", "queues:no-alarm-topic"]);
  });
});

describe("a kept channel with priorities 2, adopted with its level queue (existingQueues levelQueues)", () => {
  it("creates no queue for it: level 1 is `queue`, level 2 the first of levelQueues (by name or URL), one dead-letter queue", () => {
    const ranked = channelOf(levels, "ranked");
    expect(ranked.adopted).toBe(true);
    expect(ranked.levelQueues.map((queue) => levels.stack.resolve(queue.queueName))).toEqual([KEPT_RANKED_QUEUES.queue, RANKED_P2]);
    expect(levels.stack.resolve(ranked.deadLetterQueue.queueName)).toBe(KEPT_RANKED_QUEUES.deadLetterQueue);
    expect(Object.keys(resourcesOf(levels.template, "AWS::SQS::Queue")).filter((id) => id.startsWith("Channelsranked"))).toEqual([]);
  });

  it("puts the TLS-only policy back on every level queue and the dead-letter queue", () => {
    const policy = Object.entries(resourcesOf(levels.template, "AWS::SQS::QueuePolicy")).find(([id]) => id.startsWith("Channelsranked"))?.[1].Properties;
    const names = [KEPT_RANKED_QUEUES.queue, RANKED_P2, KEPT_RANKED_QUEUES.deadLetterQueue];
    expect(policy?.Queues).toEqual(names.map(sqsUrl));
    expect((policy?.PolicyDocument as { Statement: { Action: string; Resource: unknown }[] }).Statement.map(sortedStatement)).toEqual([
      sortedStatement({
        Effect: "Deny",
        Principal: { AWS: "*" },
        Action: "sqs:*",
        Resource: names.map(sqsArn),
        Condition: { Bool: { "aws:SecureTransport": "false" } },
      }),
    ]);
  });

  it("alarms watch the adopted level queues by name", () => {
    for (const name of [KEPT_RANKED_QUEUES.queue, RANKED_P2]) {
      levels.template.hasResourceProperties("AWS::CloudWatch::Alarm", {
        MetricName: "ApproximateAgeOfOldestMessage",
        Dimensions: [{ Name: "QueueName", Value: name }],
        Threshold: 3_600,
      });
    }
    levels.template.hasOutput("QueueUrlrankedx2dp2", { Value: sqsUrl(RANKED_P2) });
  });
});

describe("a bad channel option fails the synth, naming the channel and the key", () => {
  const channels = (jobs: Record<string, unknown>) => [...(CDK_JSON_CONTEXT.channels as unknown[]), { name: "jobs", ...jobs }];

  it("through the app the tests synthesize (buildApp, as `cdk synth` runs it)", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ priorities: 9 }, /channel "jobs"\)\.priorities must be an integer from 1 to 5, got 9/],
      [{ priorities: 0 }, /channel "jobs"\)\.priorities must be an integer from 1 to 5, got 0/],
      [{ rateLimitPerSecond: -1 }, /channel "jobs"\)\.rateLimitPerSecond must be a number above 0/],
      [{ maxInFlight: 0 }, /channel "jobs"\)\.maxInFlight must be an integer from 1/],
      [{ concurrencyPerKey: 1.5 }, /channel "jobs"\)\.concurrencyPerKey must be an integer from 1/],
      [{ fairness: "team" }, /channel "jobs"\)\.fairness must be "owner"/],
      [{ prioritys: 3 }, /channel "jobs"\): unknown key\(s\) prioritys/],
    ];
    for (const [jobs, message] of bad) expect(() => synth({ channels: channels(jobs) }), JSON.stringify(jobs)).toThrow(message);
    // -c channels='[...]' arrives as a string: the same check.
    expect(() => synth({ channels: JSON.stringify(channels({ priorities: 9 })) })).toThrow(/channel "jobs"\)\.priorities/);
  });

  it("through the CDK app's entry (cdk.json's \"app\"): exit status 2 and the message, before anything is synthesized", () => {
    const run = spawnSync(CDK_JSON_APP, {
      shell: true,
      encoding: "utf8",
      // What the CDK CLI hands the app: the context as JSON.
      env: { ...process.env, CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_JSON_CONTEXT, channels: channels({ rateLimitPerSecond: -1 }) }) },
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(2);
    expect(run.stderr).toMatch(/configuration error: .*channel "jobs"\)\.rateLimitPerSecond must be a number above 0/);
  }, 60_000);
});
