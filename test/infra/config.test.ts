// The deployment configuration (CDK context): defaults, the forms `-c key=value`
// gives (strings), and a clear error for every bad value.
import { describe, expect, it } from "vitest";
import { ConfigError, CONFIG_DEFAULTS, readConfig } from "../../infra/src/config.js";
import { ChannelConfigError } from "../../service/src/config/channels.js";

const from = (context: Record<string, unknown>) => readConfig((key) => context[key]);
const CHANNELS = ["default"];

describe("readConfig", () => {
  it("has the documented defaults", () => {
    expect(from({ channels: CHANNELS })).toEqual({
      channels: [{ name: "default", visibilityTimeoutSeconds: 30, maxReceiveCount: 500 }],
      vpcId: undefined,
      subnetGroupName: undefined,
      vpcCidr: "10.0.0.0/16",
      allowedCidrs: undefined,
      desiredCount: 2,
      maxCount: 8,
      cpu: 256,
      memoryMiB: 512,
      certificateArn: undefined,
      taskRetentionDays: undefined,
      port: 50051,
      alarmTopicArn: undefined,
      oldestMessageAlarmSeconds: 3_600,
      logRetentionDays: 30,
      destroyTableOnDelete: false,
      auth: true,
      reflection: false,
      legacyOwnerIndex: false,
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
