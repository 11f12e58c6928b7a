// The deployment's configuration, read from CDK context (cdk.json `context`, or
// `npx cdk deploy -c key=value`). Every option, its default and its rule is here;
// the README lists them. Values given with -c arrive as strings, so numbers and
// lists are accepted in either form.
import { type ChannelConfig, parseChannels } from "@queues/server/definitions";

export interface DeploymentConfig {
  channels: ChannelConfig[];
  /** Import this VPC (needs AWS credentials at synth time, for the lookup); otherwise one is created. */
  vpcId: string | undefined;
  /** With vpcId: the subnet group (its "aws-cdk:subnet-name" tag, or Name) for the servers and the load balancer. */
  subnetGroupName: string | undefined;
  /** The address range of the created VPC (pick one that does not overlap the networks that will peer with it). */
  vpcCidr: string;
  /** Who may connect to the gRPC port; undefined: the VPC's own CIDR. */
  allowedCidrs: string[] | undefined;
  /** Server tasks when idle; autoscaling adds more on CPU, up to maxCount. */
  desiredCount: number;
  maxCount: number;
  /** Fargate task size. */
  cpu: number;
  memoryMiB: number;
  /** ACM certificate: the listener speaks TLS (HTTP/2 ALPN) when set, plain TCP otherwise. */
  certificateArn: string | undefined;
  /** Final tasks are deleted this many days after they finished (DynamoDB TTL); undefined: kept forever. */
  taskRetentionDays: number | undefined;
  /** The gRPC port of the load balancer and of the servers. */
  port: number;
  /** Alarms notify this SNS topic when set. */
  alarmTopicArn: string | undefined;
  /** Alarm when a channel's oldest message is older than this. */
  oldestMessageAlarmSeconds: number;
  logRetentionDays: number;
  /** false (default): the table is kept when the stack is deleted. */
  destroyTableOnDelete: boolean;
  /** Bearer-token authentication (default on): tokens live in a Secrets Manager secret the stack creates. */
  auth: boolean;
  /** gRPC server reflection (default off in a deployment: it lists the API to anyone who can connect). */
  reflection: boolean;
  /** Keep the owner index of earlier versions beside the new one while `npm run migrate` backfills (README "Upgrading"). */
  legacyOwnerIndex: boolean;
}

export const CONFIG_DEFAULTS = {
  desiredCount: 2,
  cpu: 256,
  memoryMiB: 512,
  port: 50051,
  vpcCidr: "10.0.0.0/16",
  oldestMessageAlarmSeconds: 3_600,
  logRetentionDays: 30,
} as const;

/** Fargate's valid CPU units and, for each, the memory sizes (MiB) it allows. */
const FARGATE_SIZES: Record<number, { min: number; max: number; step: number }> = {
  256: { min: 512, max: 2048, step: 512 },
  512: { min: 1024, max: 4096, step: 1024 },
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16384, step: 1024 },
  4096: { min: 8192, max: 30720, step: 1024 },
};

const CIDR_PATTERN = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

export class ConfigError extends Error {}

/** Reads the configuration through `get` (e.g. `key => app.node.tryGetContext(key)`). */
export function readConfig(get: (key: string) => unknown): DeploymentConfig {
  const channelsRaw = get("channels");
  const channels = parseChannels(typeof channelsRaw === "string" ? parseJson(channelsRaw, "channels") : channelsRaw, "context channels");
  const desiredCount = integer(get("desiredCount"), "desiredCount", CONFIG_DEFAULTS.desiredCount, 1, 100);
  const cpu = integer(get("cpu"), "cpu", CONFIG_DEFAULTS.cpu, 256, 4096);
  const size = FARGATE_SIZES[cpu];
  if (!size) throw new ConfigError(`cpu must be one of ${Object.keys(FARGATE_SIZES).join(", ")} (Fargate CPU units), got ${cpu}`);
  const memoryMiB = integer(get("memoryMiB"), "memoryMiB", Math.max(CONFIG_DEFAULTS.memoryMiB, size.min), 512, 30720);
  if (memoryMiB < size.min || memoryMiB > size.max || (memoryMiB - size.min) % size.step !== 0) {
    throw new ConfigError(`memoryMiB ${memoryMiB} is not a Fargate size for cpu ${cpu}: ${size.min} to ${size.max} in steps of ${size.step}`);
  }
  const maxCount = integer(get("maxCount"), "maxCount", desiredCount * 4, desiredCount, 1000);
  const retention = get("taskRetentionDays");
  return {
    channels,
    vpcId: optionalString(get("vpcId"), "vpcId", /^vpc-[0-9a-f]{8,17}$/),
    subnetGroupName: optionalString(get("subnetGroupName"), "subnetGroupName", /^[\w .:/=+@-]{1,255}$/),
    vpcCidr: isUnset(get("vpcCidr")) ? CONFIG_DEFAULTS.vpcCidr : cidr(get("vpcCidr"), "vpcCidr"),
    allowedCidrs: cidrs(get("allowedCidrs")),
    desiredCount,
    maxCount,
    cpu,
    memoryMiB,
    certificateArn: optionalString(get("certificateArn"), "certificateArn", /^arn:aws[\w-]*:acm:[\w-]+:\d{12}:certificate\/[\w-]+$/),
    taskRetentionDays: isUnset(retention) ? undefined : integer(retention, "taskRetentionDays", 0, 1, 36_500),
    port: integer(get("port"), "port", CONFIG_DEFAULTS.port, 1, 65_535),
    alarmTopicArn: optionalString(get("alarmTopicArn"), "alarmTopicArn", /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+$/),
    oldestMessageAlarmSeconds: integer(get("oldestMessageAlarmSeconds"), "oldestMessageAlarmSeconds", CONFIG_DEFAULTS.oldestMessageAlarmSeconds, 60, 1_209_600),
    logRetentionDays: logRetention(get("logRetentionDays")),
    destroyTableOnDelete: boolean(get("destroyTableOnDelete"), "destroyTableOnDelete", false),
    auth: boolean(get("auth"), "auth", true),
    reflection: boolean(get("reflection"), "reflection", false),
    legacyOwnerIndex: boolean(get("legacyOwnerIndex"), "legacyOwnerIndex", false),
  };
}

/** The retention periods CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function logRetention(value: unknown): number {
  const days = integer(value, "logRetentionDays", CONFIG_DEFAULTS.logRetentionDays, 1, 3_653);
  if (!LOG_RETENTION_DAYS.includes(days)) throw new ConfigError(`logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(", ")}, got ${days}`);
  return days;
}

function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

function parseJson(raw: string, key: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (error) {
    throw new ConfigError(`${key} is not valid JSON: ${(error as Error).message}`);
  }
}

function integer(value: unknown, key: string, fallback: number, min: number, max: number): number {
  if (isUnset(value)) return fallback;
  const parsed = typeof value === "string" ? Number(value) : value;
  if (typeof parsed !== "number" || !Number.isInteger(parsed) || parsed < min || parsed > max) {
    throw new ConfigError(`${key} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function boolean(value: unknown, key: string, fallback: boolean): boolean {
  if (isUnset(value)) return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new ConfigError(`${key} must be true or false, got ${JSON.stringify(value)}`);
}

function optionalString(value: unknown, key: string, pattern: RegExp): string | undefined {
  if (isUnset(value)) return undefined;
  if (typeof value !== "string" || !pattern.test(value)) throw new ConfigError(`${key} is not valid: ${JSON.stringify(value)}`);
  return value;
}

/** A JSON array, a JSON string of one, or a comma-separated string. */
function cidrs(value: unknown): string[] | undefined {
  if (isUnset(value)) return undefined;
  let list: unknown = value;
  if (typeof value === "string") list = value.trim().startsWith("[") ? parseJson(value, "allowedCidrs") : value.split(",").map((s) => s.trim());
  if (!Array.isArray(list) || list.length === 0) throw new ConfigError(`allowedCidrs must be a non-empty list of IPv4 CIDRs, got ${JSON.stringify(value)}`);
  for (const entry of list) {
    if (cidr(entry, "allowedCidrs") === "0.0.0.0/0") {
      throw new ConfigError("allowedCidrs: 0.0.0.0/0 would admit the whole internet; list the networks of your workers");
    }
  }
  return list as string[];
}

function cidr(value: unknown, key: string): string {
  const match = typeof value === "string" ? CIDR_PATTERN.exec(value) : null;
  const valid = match && match.slice(1, 5).every((octet) => Number(octet) <= 255) && Number(match[5]) <= 32;
  if (!valid) throw new ConfigError(`${key}: ${JSON.stringify(value)} is not an IPv4 CIDR like 10.0.0.0/16`);
  return value as string;
}
