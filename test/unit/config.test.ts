// Configuration (SPEC §5): the channel list format shared by cdk.json, the local
// emulators and QUEUES_CHANNELS, and the server settings read from the environment.
import { describe, expect, it } from "vitest";
import { ChannelConfigError, parseChannels, parseChannelsJson } from "../../service/src/config/channels.js";
import { DEFAULTS, SettingsError, settingsFromEnv } from "../../service/src/config/settings.js";
import { cdkJsonPath, channelsFromCdkJson } from "../../service/src/local/cdk-channels.js";

function errorOf(fn: () => unknown): Error {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(Error);
  return thrown as Error;
}

describe("parseChannels", () => {
  it("bare names get the defaults: 30 s visibility, maxReceiveCount 500", () => {
    expect(parseChannels(["default", "emails"], "test")).toEqual([
      { name: "default", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 },
      { name: "emails", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 },
    ]);
  });

  it("objects override the defaults, each key on its own", () => {
    expect(
      parseChannels(
        [{ name: "a", visibilityTimeoutSeconds: 60, maxReceiveCount: 5 }, { name: "b", visibilityTimeoutSeconds: 300 }, { name: "c", maxReceiveCount: 1000 }, { name: "d" }],
        "test",
      ),
    ).toEqual([
      { name: "a", visibilityTimeoutSeconds: 60, maxReceiveCount: 5, priorities: 1 },
      { name: "b", visibilityTimeoutSeconds: 300, maxReceiveCount: 500, priorities: 1 },
      { name: "c", visibilityTimeoutSeconds: 30, maxReceiveCount: 1000, priorities: 1 },
      { name: "d", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 },
    ]);
  });

  it("accepts names of [A-Za-z0-9_-]{1,64}", () => {
    const names = ["a", "A_z-09", "x".repeat(64)];
    expect(parseChannels(names, "test").map((c) => c.name)).toEqual(names);
  });

  for (const bad of ["", "x".repeat(65), "has space", "dot.name", "slash/", "é", 42, null, { visibilityTimeoutSeconds: 30 }]) {
    it(`rejects the channel ${JSON.stringify(bad)?.slice(0, 30)}`, () => {
      const error = errorOf(() => parseChannels(["ok", bad], "src"));
      expect(error).toBeInstanceOf(ChannelConfigError);
      expect(error.message).toContain("src[1]");
    });
  }

  it("rejects an empty list and a non-array", () => {
    expect(errorOf(() => parseChannels([], "src"))).toBeInstanceOf(ChannelConfigError);
    expect(errorOf(() => parseChannels(undefined, "src"))).toBeInstanceOf(ChannelConfigError);
    expect(errorOf(() => parseChannels({ name: "a" }, "src"))).toBeInstanceOf(ChannelConfigError);
    expect(errorOf(() => parseChannels("default", "src"))).toBeInstanceOf(ChannelConfigError);
  });

  it("rejects duplicates, also between a name and an object", () => {
    const error = errorOf(() => parseChannels(["a", { name: "a", visibilityTimeoutSeconds: 60 }], "src"));
    expect(error).toBeInstanceOf(ChannelConfigError);
    expect(error.message).toContain('"a"');
  });

  it("rejects unknown keys, naming them", () => {
    const error = errorOf(() => parseChannels([{ name: "a", visibilityTimeout: 60 }], "src"));
    expect(error).toBeInstanceOf(ChannelConfigError);
    expect(error.message).toContain("visibilityTimeout");
  });

  for (const [key, value] of [
    ["visibilityTimeoutSeconds", 0],
    ["visibilityTimeoutSeconds", 43_201],
    ["visibilityTimeoutSeconds", 1.5],
    ["visibilityTimeoutSeconds", "30"],
    ["maxReceiveCount", 0],
    ["maxReceiveCount", 1001],
    ["maxReceiveCount", -1],
    ["maxReceiveCount", true],
  ] as const) {
    it(`rejects ${key} = ${JSON.stringify(value)}`, () => {
      const error = errorOf(() => parseChannels([{ name: "a", [key]: value }], "src"));
      expect(error).toBeInstanceOf(ChannelConfigError);
      expect(error.message).toContain(key);
    });
  }

  it("accepts the SQS bounds", () => {
    expect(parseChannels([{ name: "a", visibilityTimeoutSeconds: 1, maxReceiveCount: 1 }], "t")[0]).toMatchObject({ visibilityTimeoutSeconds: 1, maxReceiveCount: 1 });
    expect(parseChannels([{ name: "a", visibilityTimeoutSeconds: 43_200, maxReceiveCount: 1000 }], "t")[0]).toMatchObject({
      visibilityTimeoutSeconds: 43_200,
      maxReceiveCount: 1000,
    });
  });

  it("parseChannelsJson reports invalid JSON with its source", () => {
    const error = errorOf(() => parseChannelsJson("[default]", "QUEUES_CHANNELS"));
    expect(error).toBeInstanceOf(ChannelConfigError);
    expect(error.message).toContain("QUEUES_CHANNELS");
  });
});

describe("parseChannels: flow-control options (SPEC §7.2)", () => {
  const errorMessage = (entry: unknown) => {
    try {
      parseChannels([entry], "context channels");
    } catch (error) {
      expect(error).toBeInstanceOf(ChannelConfigError);
      return (error as Error).message;
    }
    throw new Error("no error");
  };

  it("reads every option; absent ones mean no limit, one level, no fairness", () => {
    const [all, none] = parseChannels(
      [{ name: "api", rateLimitPerSecond: 2.5, maxInFlight: 3, concurrencyPerKey: 1, priorities: 3, fairness: "owner" }, "plain"],
      "test",
    );
    expect(all).toMatchObject({ rateLimitPerSecond: 2.5, maxInFlight: 3, concurrencyPerKey: 1, priorities: 3, fairness: "owner" });
    expect(none).toEqual({ name: "plain", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 });
  });

  it("a bad value fails with a message naming the channel and the key", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "api", rateLimitPerSecond: -1 }, "rateLimitPerSecond"],
      [{ name: "api", rateLimitPerSecond: 0 }, "rateLimitPerSecond"],
      [{ name: "api", rateLimitPerSecond: "5" }, "rateLimitPerSecond"],
      [{ name: "api", maxInFlight: 0 }, "maxInFlight"],
      [{ name: "api", maxInFlight: 1.5 }, "maxInFlight"],
      [{ name: "api", concurrencyPerKey: -2 }, "concurrencyPerKey"],
      [{ name: "api", priorities: 9 }, "priorities"],
      [{ name: "api", priorities: 0 }, "priorities"],
      [{ name: "api", fairness: "random" }, "fairness"],
      [{ name: "api", rateLimit: 5 }, "rateLimit"],
    ];
    for (const [entry, key] of cases) {
      const message = errorMessage(entry);
      expect(message, JSON.stringify(entry)).toContain('channel "api"');
      expect(message, JSON.stringify(entry)).toContain(key);
    }
    expect(errorMessage({ name: "api", priorities: 9 })).toContain("from 1 to 5");
  });

  it("a priority level's queue may not be named like another channel", () => {
    expect(() => parseChannels([{ name: "a", priorities: 2 }, "a-p2"], "t")).toThrow(/level 2 .* "a-p2"/);
  });
});

describe("settingsFromEnv", () => {
  const base = { QUEUES_CHANNELS: '["default", {"name": "emails", "visibilityTimeoutSeconds": 60}]' };

  it("requires QUEUES_CHANNELS", () => {
    const error = errorOf(() => settingsFromEnv({}));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain("QUEUES_CHANNELS");
  });

  it("turns channel errors into SettingsError", () => {
    expect(errorOf(() => settingsFromEnv({ QUEUES_CHANNELS: "not json" }))).toBeInstanceOf(SettingsError);
    expect(errorOf(() => settingsFromEnv({ QUEUES_CHANNELS: '["bad name"]' }))).toBeInstanceOf(SettingsError);
    expect(errorOf(() => settingsFromEnv({ QUEUES_CHANNELS: "[]" }))).toBeInstanceOf(SettingsError);
  });

  it("uses the defaults for everything else", () => {
    const settings = settingsFromEnv(base);
    expect(settings).toMatchObject({ ...DEFAULTS, queueUrls: {} });
    expect(settings.channels.map((c) => c.name)).toEqual(["default", "emails"]);
  });

  it("reads every setting", () => {
    const settings = settingsFromEnv({
      ...base,
      HOST: "127.0.0.1",
      PORT: "6000",
      QUEUES_TABLE: "tasks",
      QUEUES_QUEUE_PREFIX: "p",
      QUEUES_RETRY_BASE_MS: "500",
      QUEUES_RETRY_MAX_MS: "9000",
      QUEUES_SWEEP_INTERVAL_MS: "1000",
      QUEUES_SWEEP_AFTER_MS: "2000",
      QUEUES_DRAIN_TIMEOUT_MS: "3000",
      QUEUES_HEALTH_INTERVAL_MS: "4000",
      QUEUES_MAX_CREDITS_PER_STREAM: "10",
      QUEUES_MAX_MESSAGE_BYTES: "2097152",
      QUEUES_MAX_CONCURRENT_STREAMS: "64",
      QUEUES_HEALTH_HTTP_PORT: "8081",
      QUEUES_TASK_RETENTION_DAYS: "30",
      LOG_LEVEL: "debug",
    });
    expect(settings).toMatchObject({
      host: "127.0.0.1",
      port: 6000,
      tableName: "tasks",
      queuePrefix: "p",
      retryBaseMs: 500,
      retryMaxMs: 9000,
      sweepIntervalMs: 1000,
      sweepAfterMs: 2000,
      drainTimeoutMs: 3000,
      healthIntervalMs: 4000,
      maxCreditsPerStream: 10,
      maxMessageBytes: 2_097_152,
      maxConcurrentStreams: 64,
      httpPort: 8081,
      taskRetentionDays: 30,
      logLevel: "debug",
    });
  });

  for (const [name, value] of [
    ["PORT", "abc"],
    ["PORT", "70000"],
    ["PORT", "-1"],
    ["QUEUES_RETRY_BASE_MS", "1.5"],
    ["QUEUES_RETRY_MAX_MS", "ten"],
    ["QUEUES_SWEEP_INTERVAL_MS", "0"],
    ["QUEUES_DRAIN_TIMEOUT_MS", "-5"],
    ["QUEUES_HEALTH_INTERVAL_MS", "1e12"],
    ["QUEUES_MAX_CREDITS_PER_STREAM", "0"],
    ["QUEUES_MAX_MESSAGE_BYTES", "1000"],
    ["QUEUES_MAX_CONCURRENT_STREAMS", "1"],
    ["QUEUES_HEALTH_HTTP_PORT", "x"],
    ["QUEUES_TASK_RETENTION_DAYS", "0"],
  ] as const) {
    it(`rejects ${name}=${value}, naming the variable`, () => {
      const error = errorOf(() => settingsFromEnv({ ...base, [name]: value }));
      expect(error).toBeInstanceOf(SettingsError);
      expect(error.message).toContain(name);
    });
  }

  it("QUEUES_QUEUE_URLS maps configured channels to URLs", () => {
    const urls = { default: "http://sqs.local/000/q-default", emails: "http://sqs.local/000/q-emails" };
    expect(settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: JSON.stringify(urls) }).queueUrls).toEqual(urls);
  });

  it("QUEUES_HTTP_PORT, or its older name QUEUES_HEALTH_HTTP_PORT; both set, they must agree", () => {
    expect(settingsFromEnv({ ...base, QUEUES_HTTP_PORT: "9090" }).httpPort).toBe(9090);
    expect(settingsFromEnv({ ...base, QUEUES_HEALTH_HTTP_PORT: "9091" }).httpPort).toBe(9091);
    expect(settingsFromEnv({ ...base, QUEUES_HTTP_PORT: "9092", QUEUES_HEALTH_HTTP_PORT: "9092" }).httpPort).toBe(9092);
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_HTTP_PORT: "1", QUEUES_HEALTH_HTTP_PORT: "2" })).message).toContain("differ");
    expect(settingsFromEnv(base).httpPort).toBeUndefined();
  });

  it("QUEUES_QUEUE_URLS names each priority level's queue: <channel>-p<level> above level 1", () => {
    const channels = JSON.stringify([{ name: "jobs", priorities: 2 }]);
    const urls = { jobs: "http://sqs.local/jobs", "jobs-p2": "http://sqs.local/jobs-p2" };
    expect(settingsFromEnv({ ...base, QUEUES_CHANNELS: channels, QUEUES_QUEUE_URLS: JSON.stringify(urls) }).queueUrls).toEqual(urls);
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_CHANNELS: channels, QUEUES_QUEUE_URLS: '{"jobs-p3": "http://x"}' })).message).toContain("jobs-p3");
  });

  it("QUEUES_QUEUE_URLS must name configured channels", () => {
    const error = errorOf(() => settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: '{"missing": "http://sqs.local/q"}' }));
    expect(error).toBeInstanceOf(SettingsError);
    expect(error.message).toContain("missing");
  });

  it("QUEUES_QUEUE_URLS must be a JSON object of non-empty strings", () => {
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: "{" }))).toBeInstanceOf(SettingsError);
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: '["http://x"]' }))).toBeInstanceOf(SettingsError);
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: '{"default": 5}' }))).toBeInstanceOf(SettingsError);
    expect(errorOf(() => settingsFromEnv({ ...base, QUEUES_QUEUE_URLS: '{"default": ""}' }))).toBeInstanceOf(SettingsError);
  });
});

describe("channelsFromCdkJson", () => {
  it("reads the repository's cdk.json: at least two valid channels", () => {
    expect(cdkJsonPath()).toMatch(/cdk\.json$/);
    const channels = channelsFromCdkJson();
    expect(channels.length).toBeGreaterThanOrEqual(2);
    for (const channel of channels) {
      expect(channel.name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      expect(channel.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(1);
      expect(channel.maxReceiveCount).toBeGreaterThanOrEqual(1);
    }
    expect(new Set(channels.map((c) => c.name)).size).toBe(channels.length);
  });
});
