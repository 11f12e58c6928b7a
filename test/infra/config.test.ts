// The deployment configuration (CDK context): defaults, the forms `-c key=value`
// gives (strings), and a clear error for every bad value.
import { describe, expect, it } from "vitest";
import { ConfigError, CONFIG_DEFAULTS, readConfig } from "../../infra/src/config.js";
import { ChannelConfigError } from "../../service/src/config/channels.js";

const from = (context: Record<string, unknown>) => readConfig((key) => context[key]);
const CHANNELS = ["default"];
const ZONE = "Z0123456789ABCDEFGHIJ";
const PRINCIPAL = "arn:aws:iam::111122223333:root";
const TABLE = "Queues-TasksTable-1ABC";
const TABLE_ARN = `arn:aws:dynamodb:us-east-1:123456789012:table/${TABLE}`;
const STREAM = `${TABLE_ARN}/stream/2026-01-01T00:00:00.000`;

describe("readConfig", () => {
  it("has the documented defaults", () => {
    expect(from({ channels: CHANNELS })).toEqual({
      channels: [{ name: "default", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 }],
      vpcId: undefined,
      subnetGroupName: undefined,
      vpcCidr: "10.0.0.0/16",
      allowedCidrs: undefined,
      desiredCount: 2,
      maxCount: 8,
      cpu: 256,
      memoryMiB: 512,
      certificateArn: undefined,
      domainName: undefined,
      hostedZoneId: undefined,
      endpointService: false,
      allowedPrincipals: undefined,
      endpointAcceptanceRequired: false,
      taskRetentionDays: undefined,
      port: 50051,
      alarmTopicArn: undefined,
      oldestMessageAlarmSeconds: 3_600,
      logRetentionDays: 30,
      destroyTableOnDelete: false,
      existingTableName: undefined,
      existingTableStreamArn: undefined,
      existingQueues: {},
      auth: true,
      reflection: false,
      legacyOwnerIndex: false,
      failuresIndex: true,
      metricsNamespace: "Queues",
    });
    expect(CONFIG_DEFAULTS.desiredCount).toBe(2);
  });

  it("takes values given on the command line as strings (-c key=value)", () => {
    const config = from({
      channels: '["a", {"name": "b", "visibilityTimeoutSeconds": 90}]',
      desiredCount: "3",
      maxCount: "12",
      cpu: "1024",
      memoryMiB: "4096",
      taskRetentionDays: "14",
      allowedCidrs: "10.1.0.0/16, 172.16.0.0/12",
      destroyTableOnDelete: "true",
      vpcId: "vpc-0abc1234def567890",
    });
    expect(config).toMatchObject({
      desiredCount: 3,
      maxCount: 12,
      cpu: 1024,
      memoryMiB: 4096,
      taskRetentionDays: 14,
      allowedCidrs: ["10.1.0.0/16", "172.16.0.0/12"],
      destroyTableOnDelete: true,
      vpcId: "vpc-0abc1234def567890",
    });
    expect(config.channels.map((c) => [c.name, c.visibilityTimeoutSeconds])).toEqual([
      ["a", 30],
      ["b", 90],
    ]);
    expect(from({ channels: CHANNELS, allowedCidrs: '["192.168.0.0/16"]' }).allowedCidrs).toEqual(["192.168.0.0/16"]);
    expect(from({ channels: CHANNELS, allowedCidrs: ["192.168.0.0/16"] }).allowedCidrs).toEqual(["192.168.0.0/16"]);
  });

  it("reads the TLS and PrivateLink options: domainName with hostedZoneId, endpointService with allowedPrincipals", () => {
    expect(from({ channels: CHANNELS, domainName: "Queues.Example.com.", hostedZoneId: ZONE })).toMatchObject({
      domainName: "queues.example.com",
      hostedZoneId: ZONE,
    });
    // With certificateArn too: both kept (the stack then uses that certificate and creates none).
    const arn = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666";
    expect(from({ channels: CHANNELS, domainName: "queues.example.com", hostedZoneId: ZONE, certificateArn: arn })).toMatchObject({ certificateArn: arn });
    const role = "arn:aws:iam::444455556666:role/teams/queues-workers";
    expect(from({ channels: CHANNELS, endpointService: "true", allowedPrincipals: `${PRINCIPAL}, ${role}` })).toMatchObject({
      endpointService: true,
      allowedPrincipals: [PRINCIPAL, role],
      endpointAcceptanceRequired: false,
    });
    expect(
      from({ channels: CHANNELS, endpointService: true, allowedPrincipals: JSON.stringify([PRINCIPAL, PRINCIPAL]), endpointAcceptanceRequired: "true" }),
    ).toMatchObject({ allowedPrincipals: [PRINCIPAL], endpointAcceptanceRequired: true });
    expect(from({ channels: CHANNELS, endpointService: "true", allowedPrincipals: ["arn:aws:iam::123456789012:user/ci"] }).allowedPrincipals).toEqual([
      "arn:aws:iam::123456789012:user/ci",
    ]);
  });

  it("reads the adoption options: the table with its stream, the queues by name or URL per channel", () => {
    const queues = {
      a: { queue: "Queues-ChannelsaQueue-1", deadLetterQueue: "https://sqs.us-east-1.amazonaws.com/123456789012/Queues-ChannelsaDeadLetterQueue-2" },
    };
    const config = from({ channels: '["a", "b"]', existingTableName: TABLE, existingTableStreamArn: STREAM, existingQueues: JSON.stringify(queues) });
    expect(config).toMatchObject({
      existingTableName: TABLE,
      existingTableStreamArn: STREAM,
      existingQueues: { a: { queue: "Queues-ChannelsaQueue-1", deadLetterQueue: "Queues-ChannelsaDeadLetterQueue-2" } },
    });
    // A JSON object in cdk.json works as well as the string -c gives.
    expect(from({ channels: '["a", "b"]', existingQueues: queues }).existingQueues).toEqual(config.existingQueues);
  });

  it("adopts a channel with priorities with its level queues (levels 2 .. priorities, in order, by name or URL)", () => {
    const channels = [{ name: "jobs", priorities: 3 }, "b"];
    const jobs = {
      queue: "Queues-ChannelsjobsQueue-1",
      deadLetterQueue: "Queues-ChannelsjobsDeadLetterQueue-2",
      levelQueues: ["https://sqs.us-east-1.amazonaws.com/123456789012/Queues-ChannelsjobsQueuep2-3", "Queues-ChannelsjobsQueuep3-4"],
    };
    expect(from({ channels, existingQueues: JSON.stringify({ jobs }) }).existingQueues).toEqual({
      jobs: { queue: jobs.queue, deadLetterQueue: jobs.deadLetterQueue, levelQueues: ["Queues-ChannelsjobsQueuep2-3", "Queues-ChannelsjobsQueuep3-4"] },
    });
    // A channel of one level: no levelQueues (an empty list is the same).
    expect(from({ channels, existingQueues: { b: { queue: "q", deadLetterQueue: "d", levelQueues: [] } } }).existingQueues).toEqual({ b: { queue: "q", deadLetterQueue: "d" } });
    const bad: [unknown, RegExp][] = [
      [{ jobs: { queue: "q", deadLetterQueue: "d" } }, /channel jobs has priorities 3: its levelQueues must list the queues of levels 2 to 3, in order \(2 name\(s\) or URL\(s\)\), got undefined/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2"] } }, /channel jobs has priorities 3: its levelQueues must list .* got \["p2"\]/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2", "p3", "p4"] } }, /channel jobs has priorities 3/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: "p2,p3" } }, /channel jobs has priorities 3/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2", "p 3"] } }, /jobs.levelQueues\[1\] "p 3" is not an SQS queue name/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2", "q"] } }, /names queue q twice/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2", "p3"] }, b: { queue: "p3", deadLetterQueue: "e" } }, /names queue p3 twice/],
      [{ b: { queue: "q", deadLetterQueue: "d", levelQueues: ["p2"] } }, /channel b has one priority level: no levelQueues, got \["p2"\]/],
      [{ jobs: { queue: "q", deadLetterQueue: "d", levelQueue: ["p2", "p3"] } }, /channel jobs has/],
    ];
    for (const [existingQueues, message] of bad) {
      expect(() => from({ channels, existingQueues }), JSON.stringify(existingQueues)).toThrow(ConfigError);
      expect(() => from({ channels, existingQueues })).toThrow(message);
    }
  });

  it("a bad channel option (SPEC 7.2) is an error naming the channel and the key", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ priorities: 9 }, /context channels\[1\] \(channel "jobs"\)\.priorities must be an integer from 1 to 5, got 9/],
      [{ priorities: "2" }, /\(channel "jobs"\)\.priorities must be an integer/],
      [{ rateLimitPerSecond: -1 }, /\(channel "jobs"\)\.rateLimitPerSecond must be a number above 0 and at most \d+, got -1/],
      [{ maxInFlight: 0 }, /\(channel "jobs"\)\.maxInFlight must be an integer from 1/],
      [{ concurrencyPerKey: -2 }, /\(channel "jobs"\)\.concurrencyPerKey must be an integer from 1/],
      [{ fairness: "tenant" }, /\(channel "jobs"\)\.fairness must be "owner"/],
      [{ priority: 2 }, /\(channel "jobs"\): unknown key\(s\) priority; known: /],
    ];
    for (const [options, message] of bad) {
      for (const channels of [["a", { name: "jobs", ...options }], JSON.stringify(["a", { name: "jobs", ...options }])]) {
        expect(() => from({ channels }), JSON.stringify(options)).toThrow(ChannelConfigError);
        expect(() => from({ channels })).toThrow(message);
      }
    }
    // A level's queue key must not be another channel's name.
    expect(() => from({ channels: [{ name: "jobs", priorities: 2 }, "jobs-p2"] })).toThrow(/channel "jobs" has priorities 2, and the queue of its level 2 would be named like channel "jobs-p2"/);
    expect(from({ channels: [{ name: "jobs", priorities: 5, rateLimitPerSecond: 2.5, maxInFlight: 10, concurrencyPerKey: 1, fairness: "owner" }] }).channels).toEqual([
      { name: "jobs", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 5, rateLimitPerSecond: 2.5, maxInFlight: 10, concurrencyPerKey: 1, fairness: "owner" },
    ]);
  });

  it("answers a clear error for each bad value", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ desiredCount: 0 }, /desiredCount must be an integer from 1/],
      [{ desiredCount: "two" }, /desiredCount/],
      [{ cpu: 300 }, /cpu must be one of 256, 512, 1024, 2048, 4096/],
      [{ cpu: 256, memoryMiB: 4096 }, /memoryMiB 4096 is not a Fargate size for cpu 256/],
      [{ desiredCount: 4, maxCount: 2 }, /maxCount must be an integer from 4/],
      [{ allowedCidrs: "10.0.0.0/33" }, /not an IPv4 CIDR/],
      [{ allowedCidrs: "0.0.0.0/0" }, /whole internet/],
      [{ allowedCidrs: [] }, /non-empty list/],
      [{ vpcCidr: "10.0.0/16" }, /vpcCidr/],
      [{ vpcId: "my-vpc" }, /vpcId is not valid/],
      [{ certificateArn: "not-an-arn" }, /certificateArn is not valid/],
      [{ alarmTopicArn: "arn:aws:sqs:us-east-1:123456789012:x" }, /alarmTopicArn is not valid/],
      [{ taskRetentionDays: 0 }, /taskRetentionDays must be an integer from 1/],
      [{ logRetentionDays: 10 }, /logRetentionDays must be one of/],
      [{ destroyTableOnDelete: "yes" }, /destroyTableOnDelete must be true or false/],
      [{ port: 70000 }, /port must be an integer from 1 to 65535/],
      // TLS and private access
      [{ domainName: "queues.example.com" }, /domainName and hostedZoneId go together/],
      [{ hostedZoneId: ZONE }, /domainName and hostedZoneId go together/],
      [{ domainName: "queues", hostedZoneId: ZONE }, /domainName must be a DNS name of two labels or more/],
      [{ domainName: "*.example.com", hostedZoneId: ZONE }, /domainName must be a DNS name/],
      [{ domainName: `${"q".repeat(60)}.example.com`, hostedZoneId: ZONE }, /at most 64 characters/],
      [{ domainName: "queues.example.com", hostedZoneId: "example.com" }, /hostedZoneId is not valid/],
      [{ endpointService: "true" }, /endpointService=true needs allowedPrincipals/],
      [{ allowedPrincipals: PRINCIPAL }, /allowedPrincipals is for the PrivateLink endpoint service/],
      [{ endpointService: "true", allowedPrincipals: "*" }, /would let any AWS account connect/],
      [{ endpointService: "true", allowedPrincipals: "123456789012" }, /not an IAM ARN of an account/],
      [{ endpointService: "true", allowedPrincipals: "arn:aws:iam::123456789012:group/devs" }, /not an IAM ARN/],
      [{ endpointService: "true", allowedPrincipals: [] }, /non-empty list of IAM ARNs/],
      [{ endpointService: "maybe", allowedPrincipals: PRINCIPAL }, /endpointService must be true or false/],
      [{ endpointAcceptanceRequired: "true" }, /endpointAcceptanceRequired is for the PrivateLink endpoint service/],
      // adopting after a destroy
      [{ existingTableName: TABLE }, /existingTableName and existingTableStreamArn go together/],
      [{ existingTableStreamArn: STREAM }, /existingTableName and existingTableStreamArn go together/],
      [{ existingTableName: "x", existingTableStreamArn: STREAM }, /existingTableName is not valid/],
      [{ existingTableName: TABLE, existingTableStreamArn: `${TABLE_ARN}` }, /existingTableStreamArn is not valid/],
      [{ existingTableName: "Other-Table", existingTableStreamArn: STREAM }, /is the stream of table Queues-TasksTable-1ABC, not of existingTableName Other-Table/],
      [{ existingQueues: "[not json" }, /existingQueues is not valid JSON/],
      [{ existingQueues: '["q"]' }, /existingQueues must be a JSON object/],
      [{ existingQueues: { other: { queue: "a", deadLetterQueue: "b" } } }, /names channel "other", which is not in channels \(default\)/],
      [{ existingQueues: { default: { queue: "a" } } }, /channel default has \{"queue":"a"\}/],
      [{ existingQueues: { default: { queue: "a", deadLetterQueue: "b", extra: "c" } } }, /channel default has/],
      [{ existingQueues: { default: { queue: "a b", deadLetterQueue: "b" } } }, /default.queue "a b" is not an SQS queue name/],
      [{ existingQueues: { default: { queue: "a", deadLetterQueue: "q.fifo" } } }, /default.deadLetterQueue "q.fifo" is not an SQS queue name/],
      [{ existingQueues: { default: { queue: "a", deadLetterQueue: "a" } } }, /names queue a twice/],
      [{ destroyTableOnDelete: "true", existingTableName: TABLE, existingTableStreamArn: STREAM }, /destroyTableOnDelete cannot delete an adopted table/],
      [{ destroyTableOnDelete: "true", existingQueues: { default: { queue: "a", deadLetterQueue: "b" } } }, /destroyTableOnDelete cannot delete/],
    ];
    for (const [context, message] of bad) {
      expect(() => from({ channels: CHANNELS, ...context }), JSON.stringify(context)).toThrow(ConfigError);
      expect(() => from({ channels: CHANNELS, ...context })).toThrow(message);
    }
    expect(() => from({})).toThrow(ChannelConfigError);
    expect(() => from({ channels: ["bad name!"] })).toThrow(/channel name must match/);
    expect(() => from({ channels: "[not json" })).toThrow(/channels is not valid JSON/);
  });
});
