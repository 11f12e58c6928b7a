// Server settings, read once from the environment. Every variable is listed in the
// README ("Configuration"); AWS endpoints are not here on purpose: the SDK reads
// AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SQS itself.
import { readFileSync } from "node:fs";
import { channelLevels, levelQueueKey } from "../queue/queue-definition.js";
import { AuthConfigError, checkScopedChannels, parseTokens, type TokenEntry } from "../auth/tokens.js";
import { type ChannelConfig, ChannelConfigError, parseChannelsJson } from "./channels.js";
import { metricsNamespaceProblem } from "../metrics/emf-names.js";

export interface Settings {
  host: string;
  port: number;
  tableName: string;
  channels: ChannelConfig[];
  /** channel → queue URL; channels missing here are resolved by queue name. */
  queueUrls: Record<string, string>;
  queuePrefix: string;
  retryBaseMs: number;
  retryMaxMs: number;
  sweepIntervalMs: number;
  /** A task still marked "not yet sent" this long after it was queued is re-sent. */
  sweepAfterMs: number;
  /** QUEUES_HOLD_BACK_MAX_SECONDS: the longest a task held back by a full flow-control slot waits before it is tried again. */
  holdBackMaxSeconds: number;
  /** How often the parking shards are read for tasks scheduled more than 15 minutes ahead whose RunAt is near. */
  parkedScanIntervalMs: number;
  /** How often each replica looks for due schedule ticks. */
  scheduleIntervalMs: number;
  drainTimeoutMs: number;
  healthIntervalMs: number;
  /** Where GET /healthz mirrors the health status over HTTP (for an NLB); undefined: not served. */
  httpPort: number | undefined;
  /** Days a final task is kept before DynamoDB's TTL deletes it; undefined: kept forever. */
  taskRetentionDays: number | undefined;
  maxCreditsPerStream: number;
  /** The largest request message the server reads (an oversized Input still gets a readable 400 below this). */
  maxMessageBytes: number;
  /** Calls open at once on one client connection. */
  maxConcurrentStreams: number;
  /** A unary call or a receive stream that sends no message this long after its headers is ended. */
  firstMessageTimeoutMs: number;
  /** A connection with no call open this long is closed (clients reconnect when they need one). */
  connectionIdleMs: number;
  /** After the 30-minute connection age, calls still open get this long, then the connection is closed. */
  connectionAgeGraceMs: number;
  /** Server reflection (grpcurl, Postman) on or off. */
  reflection: boolean;
  /** Bearer tokens, their roles and scopes; undefined: no authentication (the server logs a warning). */
  authTokens: TokenEntry[] | undefined;
  /** CloudWatch namespace of the Embedded Metric Format lines written to stdout (metrics/emf-publisher.ts); undefined: none are written. */
  emfNamespace: string | undefined;
  /** How often the EMF lines are written (one per channel). */
  emfIntervalMs: number;
  logLevel: string;
}

export const DEFAULTS = {
  host: "0.0.0.0",
  port: 50051,
  tableName: "queues-tasks",
  queuePrefix: "queues",
  retryBaseMs: 1_000,
  retryMaxMs: 15 * 60_000,
  sweepIntervalMs: 10_000,
  sweepAfterMs: 60_000,
  holdBackMaxSeconds: 10,
  parkedScanIntervalMs: 30_000,
  scheduleIntervalMs: 1_000,
  drainTimeoutMs: 25_000,
  healthIntervalMs: 5_000,
  httpPort: undefined,
  taskRetentionDays: undefined,
  maxCreditsPerStream: 1_000,
  maxMessageBytes: 1024 * 1024,
  maxConcurrentStreams: 1_000,
  firstMessageTimeoutMs: 10_000,
  connectionIdleMs: 5 * 60_000,
  connectionAgeGraceMs: 10 * 60_000,
  reflection: true,
  authTokens: undefined,
  emfNamespace: undefined,
  emfIntervalMs: 60_000,
  logLevel: "info",
} as const;

export class SettingsError extends Error {}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): Settings {
  const channelsJson = env.QUEUES_CHANNELS;
  if (!channelsJson) {
    throw new SettingsError(
      'QUEUES_CHANNELS is not set: give the channel list as JSON, e.g. ["default", {"name": "emails", "visibilityTimeoutSeconds": 60}]',
    );
  }
  let channels: ChannelConfig[];
  try {
    channels = parseChannelsJson(channelsJson, "QUEUES_CHANNELS");
  } catch (error) {
    if (error instanceof ChannelConfigError) throw new SettingsError(error.message);
    throw error;
  }
  return {
    host: env.HOST || DEFAULTS.host,
    port: intFromEnv(env, "PORT", DEFAULTS.port, 0, 65_535),
    tableName: env.QUEUES_TABLE || DEFAULTS.tableName,
    channels,
    queueUrls: queueUrlsFromEnv(env.QUEUES_QUEUE_URLS, channels),
    queuePrefix: env.QUEUES_QUEUE_PREFIX || DEFAULTS.queuePrefix,
    retryBaseMs: intFromEnv(env, "QUEUES_RETRY_BASE_MS", DEFAULTS.retryBaseMs, 0, 43_200_000),
    retryMaxMs: intFromEnv(env, "QUEUES_RETRY_MAX_MS", DEFAULTS.retryMaxMs, 0, 43_200_000),
    sweepIntervalMs: intFromEnv(env, "QUEUES_SWEEP_INTERVAL_MS", DEFAULTS.sweepIntervalMs, 50, 3_600_000),
    sweepAfterMs: intFromEnv(env, "QUEUES_SWEEP_AFTER_MS", DEFAULTS.sweepAfterMs, 0, 86_400_000),
    holdBackMaxSeconds: intFromEnv(env, "QUEUES_HOLD_BACK_MAX_SECONDS", DEFAULTS.holdBackMaxSeconds, 1, 900),
    parkedScanIntervalMs: intFromEnv(env, "QUEUES_PARKED_SCAN_INTERVAL_MS", DEFAULTS.parkedScanIntervalMs, 50, 300_000),
    scheduleIntervalMs: intFromEnv(env, "QUEUES_SCHEDULE_INTERVAL_MS", DEFAULTS.scheduleIntervalMs, 50, 60_000),
    drainTimeoutMs: intFromEnv(env, "QUEUES_DRAIN_TIMEOUT_MS", DEFAULTS.drainTimeoutMs, 0, 600_000),
    healthIntervalMs: intFromEnv(env, "QUEUES_HEALTH_INTERVAL_MS", DEFAULTS.healthIntervalMs, 50, 600_000),
    httpPort: httpPortFromEnv(env),
    taskRetentionDays: optionalIntFromEnv(env, "QUEUES_TASK_RETENTION_DAYS", 1, 36_500),
    maxCreditsPerStream: intFromEnv(env, "QUEUES_MAX_CREDITS_PER_STREAM", DEFAULTS.maxCreditsPerStream, 1, 1_000_000),
    // At least a 256 KiB payload and its envelope.
    maxMessageBytes: intFromEnv(env, "QUEUES_MAX_MESSAGE_BYTES", DEFAULTS.maxMessageBytes, 300 * 1024, 64 * 1024 * 1024),
    maxConcurrentStreams: intFromEnv(env, "QUEUES_MAX_CONCURRENT_STREAMS", DEFAULTS.maxConcurrentStreams, 4, 100_000),
    firstMessageTimeoutMs: intFromEnv(env, "QUEUES_FIRST_MESSAGE_TIMEOUT_MS", DEFAULTS.firstMessageTimeoutMs, 100, 600_000),
    connectionIdleMs: intFromEnv(env, "QUEUES_CONNECTION_IDLE_MS", DEFAULTS.connectionIdleMs, 1_000, 86_400_000),
    connectionAgeGraceMs: intFromEnv(env, "QUEUES_CONNECTION_AGE_GRACE_MS", DEFAULTS.connectionAgeGraceMs, 0, 86_400_000),
    reflection: booleanFromEnv(env, "QUEUES_REFLECTION", DEFAULTS.reflection),
    authTokens: authTokensFromEnv(env, channels),
    emfNamespace: emfNamespaceFromEnv(env),
    // CloudWatch's standard resolution is a minute: the default writes one line per channel per minute.
    emfIntervalMs: intFromEnv(env, "QUEUES_EMF_INTERVAL_MS", DEFAULTS.emfIntervalMs, 10_000, 300_000),
    logLevel: env.LOG_LEVEL || DEFAULTS.logLevel,
  };
}

/** The tokens, if configured; a worker token's channels must be among `channels`. */
function authTokensFromEnv(env: NodeJS.ProcessEnv, channels: ChannelConfig[]): TokenEntry[] | undefined {
  const inline = env.QUEUES_AUTH_TOKENS;
  const file = env.QUEUES_AUTH_TOKENS_FILE;
  if (inline && file) throw new SettingsError("Set QUEUES_AUTH_TOKENS or QUEUES_AUTH_TOKENS_FILE, not both");
  const checked = (tokens: TokenEntry[]) => {
    checkScopedChannels(tokens, channels.map((channel) => channel.name));
    return tokens;
  };
  try {
    if (inline) return checked(parseTokens(inline, "QUEUES_AUTH_TOKENS"));
    if (file) {
      let json: string;
      try {
        json = readFileSync(file, "utf8");
      } catch (error) {
        throw new SettingsError(`QUEUES_AUTH_TOKENS_FILE: cannot read ${file}: ${(error as Error).message}`);
      }
      return checked(parseTokens(json, `QUEUES_AUTH_TOKENS_FILE (${file})`));
    }
  } catch (error) {
    if (error instanceof AuthConfigError) throw new SettingsError(error.message);
    throw error;
  }
  return undefined;
}

/** QUEUES_EMF_NAMESPACE: a CloudWatch namespace, or unset (no EMF lines). */
function emfNamespaceFromEnv(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.QUEUES_EMF_NAMESPACE;
  if (raw === undefined || raw === "") return undefined;
  const problem = metricsNamespaceProblem(raw);
  if (problem) throw new SettingsError(`QUEUES_EMF_NAMESPACE ${problem}`);
  return raw;
}

function booleanFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = raw.trim().toLowerCase();
  if (["true", "1", "on", "yes"].includes(value)) return true;
  if (["false", "0", "off", "no"].includes(value)) return false;
  throw new SettingsError(`${name} must be true or false, got "${raw.slice(0, 20)}"`);
}

function optionalIntFromEnv(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  return raw === undefined || raw === "" ? undefined : intFromEnv(env, name, min, min, max);
}

/** QUEUES_HTTP_PORT, or its older name QUEUES_HEALTH_HTTP_PORT (both set: they must agree). */
function httpPortFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const port = optionalIntFromEnv(env, "QUEUES_HTTP_PORT", 0, 65_535);
  const alias = optionalIntFromEnv(env, "QUEUES_HEALTH_HTTP_PORT", 0, 65_535);
  if (port !== undefined && alias !== undefined && port !== alias) {
    throw new SettingsError(`QUEUES_HTTP_PORT (${port}) and its older name QUEUES_HEALTH_HTTP_PORT (${alias}) differ; set one`);
  }
  return port ?? alias;
}

function intFromEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function queueUrlsFromEnv(raw: string | undefined, channels: ChannelConfig[]): Record<string, string> {
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw new SettingsError(`QUEUES_QUEUE_URLS is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new SettingsError('QUEUES_QUEUE_URLS must be a JSON object {"<channel>": "<queue URL>"} (a priority level above 1: "<channel>-p<level>")');
  }
  const known = new Set(channels.flatMap((channel) => channelLevels(channel).map((level) => levelQueueKey(channel.name, level))));
  const urls: Record<string, string> = {};
  for (const [channel, url] of Object.entries(parsed)) {
    if (!known.has(channel)) throw new SettingsError(`QUEUES_QUEUE_URLS names "${channel}", which is not a channel of QUEUES_CHANNELS or one of its priority levels`);
    if (typeof url !== "string" || url === "") throw new SettingsError(`QUEUES_QUEUE_URLS["${channel}"] must be a URL string`);
    urls[channel] = url;
  }
  return urls;
}
