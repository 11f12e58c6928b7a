// Channels are configuration (SPEC §5): the same list, in the same format, drives
// the CDK stack (cdk.json context `channels`), the local emulators and the server
// (environment variable QUEUES_CHANNELS).

/** One entry of the `channels` list: a bare name or an object with overrides and flow-control options (SPEC §7.2). */
export type ChannelEntry =
  | string
  | {
      name: string;
      visibilityTimeoutSeconds?: number;
      maxReceiveCount?: number;
      rateLimitPerSecond?: number;
      maxInFlight?: number;
      concurrencyPerKey?: number;
      priorities?: number;
      fairness?: "owner";
    };

export interface ChannelConfig {
  name: string;
  /** The lease: how long a delivered task stays invisible without a heartbeat. */
  visibilityTimeoutSeconds: number;
  /** SQS receives before a message moves to the dead-letter queue (a backstop). */
  maxReceiveCount: number;
  /** At most this many deliveries a second, across replicas; undefined: no limit. */
  rateLimitPerSecond?: number | undefined;
  /** At most this many PROCEEDING tasks of the channel, across replicas; undefined: no cap. */
  maxInFlight?: number | undefined;
  /** At most this many PROCEEDING tasks per Task.ConcurrencyKey; undefined: keys are not limited. */
  concurrencyPerKey?: number | undefined;
  /** Priority levels, 1 (the highest) to this; 1: no priorities. One SQS queue per level. */
  priorities: number;
  /** "owner": messages carry the Owner as MessageGroupId (SQS fair queues). */
  fairness?: "owner" | undefined;
}

/** The flow-control options a channel entry may carry, beside name, visibilityTimeoutSeconds and maxReceiveCount. */
export const FLOW_CONTROL_KEYS = ["rateLimitPerSecond", "maxInFlight", "concurrencyPerKey", "priorities", "fairness"] as const;
export const MAX_PRIORITIES = 5;
/** Above this, the channel's one budget item a second (one write per poll of up to 10) would near a partition's 1,000 writes a second. */
export const MAX_RATE_LIMIT_PER_SECOND = 5_000;

export const CHANNEL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 30;
/**
 * Deliberately far above the server's own retry limit (at most 101 attempts, each
 * of which may take two receives when a lease expires), so the dead-letter queue
 * only ever catches messages the server could not handle at all.
 */
export const DEFAULT_MAX_RECEIVE_COUNT = 500;
/** SQS limits: visibility 0..43200 s; maxReceiveCount 1..1000. */
const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;
const MAX_RECEIVE_COUNT = 1_000;

export class ChannelConfigError extends Error {}

export function parseChannels(raw: unknown, source: string): ChannelConfig[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ChannelConfigError(`${source}: channels must be a non-empty array of names or {"name": ...} objects`);
  }
  const channels = raw.map((entry, index) => parseEntry(entry, `${source}[${index}]`));
  const seen = new Set<string>();
  for (const channel of channels) {
    if (seen.has(channel.name)) throw new ChannelConfigError(`${source}: channel "${channel.name}" is listed twice`);
    seen.add(channel.name);
  }
  // A priority level's queue is named <channel>-p<level> (queue/queue-definition.ts): it must not be another channel's.
  for (const channel of channels) {
    for (let level = 2; level <= channel.priorities; level++) {
      const key = `${channel.name}-p${level}`;
      if (seen.has(key)) {
        throw new ChannelConfigError(`${source}: channel "${channel.name}" has priorities ${channel.priorities}, and the queue of its level ${level} would be named like channel "${key}"; rename one`);
      }
    }
  }
  return channels;
}

export function parseChannelsJson(json: string, source: string): ChannelConfig[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    throw new ChannelConfigError(`${source} is not valid JSON: ${(error as Error).message}`);
  }
  return parseChannels(raw, source);
}

function parseEntry(entry: unknown, where: string): ChannelConfig {
  const object = typeof entry === "string" ? { name: entry } : entry;
  if (typeof object !== "object" || object === null || Array.isArray(object)) {
    throw new ChannelConfigError(`${where}: expected a channel name or an object with "name"`);
  }
  const { name, visibilityTimeoutSeconds, maxReceiveCount, rateLimitPerSecond, maxInFlight, concurrencyPerKey, priorities, fairness, ...rest } =
    object as Record<string, unknown>;
  if (typeof name !== "string" || !CHANNEL_NAME_PATTERN.test(name)) {
    throw new ChannelConfigError(`${where}: channel name must match [A-Za-z0-9_-]{1,64}, got ${JSON.stringify(name)}`);
  }
  // From here on, messages name the channel.
  const at = `${where} (channel "${name}")`;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) {
    throw new ChannelConfigError(
      `${at}: unknown key(s) ${unknownKeys.join(", ")}; known: name, visibilityTimeoutSeconds, maxReceiveCount, ${FLOW_CONTROL_KEYS.join(", ")}`,
    );
  }
  if (fairness !== undefined && fairness !== "owner") {
    throw new ChannelConfigError(`${at}.fairness must be "owner" (or absent), got ${JSON.stringify(fairness)}`);
  }
  return {
    name,
    visibilityTimeoutSeconds: integerIn(
      visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
      1,
      MAX_VISIBILITY_TIMEOUT_SECONDS,
      `${at}.visibilityTimeoutSeconds`,
    ),
    maxReceiveCount: integerIn(maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT, 1, MAX_RECEIVE_COUNT, `${at}.maxReceiveCount`),
    rateLimitPerSecond: rateLimitPerSecond === undefined ? undefined : positiveRate(rateLimitPerSecond, `${at}.rateLimitPerSecond`),
    maxInFlight: maxInFlight === undefined ? undefined : integerIn(maxInFlight, 1, Number.MAX_SAFE_INTEGER, `${at}.maxInFlight`),
    concurrencyPerKey: concurrencyPerKey === undefined ? undefined : integerIn(concurrencyPerKey, 1, Number.MAX_SAFE_INTEGER, `${at}.concurrencyPerKey`),
    priorities: integerIn(priorities ?? 1, 1, MAX_PRIORITIES, `${at}.priorities`),
    fairness: fairness === undefined ? undefined : "owner",
  };
}

function positiveRate(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > MAX_RATE_LIMIT_PER_SECOND) {
    throw new ChannelConfigError(`${where} must be a number above 0 and at most ${MAX_RATE_LIMIT_PER_SECOND}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function integerIn(value: unknown, min: number, max: number, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ChannelConfigError(`${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}
