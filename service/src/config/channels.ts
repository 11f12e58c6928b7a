// Channels are configuration (SPEC §5): the same list, in the same format, drives
// the CDK stack (cdk.json context `channels`), the local emulators and the server
// (environment variable QUEUES_CHANNELS).

/** One entry of the `channels` list: a bare name or an object with overrides. */
export type ChannelEntry =
  | string
  | { name: string; visibilityTimeoutSeconds?: number; maxReceiveCount?: number };

export interface ChannelConfig {
  name: string;
  /** The lease: how long a delivered task stays invisible without a heartbeat. */
  visibilityTimeoutSeconds: number;
  /** SQS receives before a message moves to the dead-letter queue (a backstop). */
  maxReceiveCount: number;
}

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
  const { name, visibilityTimeoutSeconds, maxReceiveCount, ...rest } = object as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) {
    throw new ChannelConfigError(`${where}: unknown key(s) ${unknownKeys.join(", ")}`);
  }
  if (typeof name !== "string" || !CHANNEL_NAME_PATTERN.test(name)) {
    throw new ChannelConfigError(`${where}: channel name must match [A-Za-z0-9_-]{1,64}, got ${JSON.stringify(name)}`);
  }
  return {
    name,
    visibilityTimeoutSeconds: integerIn(
      visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
      1,
      MAX_VISIBILITY_TIMEOUT_SECONDS,
      `${where}.visibilityTimeoutSeconds`,
    ),
    maxReceiveCount: integerIn(maxReceiveCount ?? DEFAULT_MAX_RECEIVE_COUNT, 1, MAX_RECEIVE_COUNT, `${where}.maxReceiveCount`),
  };
}

function integerIn(value: unknown, min: number, max: number, where: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new ChannelConfigError(`${where} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}
