// The deployment's configuration, read from CDK context (cdk.json `context`, or
// `npx cdk deploy -c key=value`). Every option, its default and its rule is here;
// the README lists them. Values given with -c arrive as strings, so numbers and
// lists are accepted in either form.
import { type ChannelConfig, DEFAULT_METRICS_NAMESPACE, metricsNamespaceProblem, parseChannels } from "@queues/server/definitions";

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
  /**
   * With hostedZoneId: a Route 53 alias of this name to the load balancer and, unless
   * certificateArn is set (that certificate is then used), a DNS-validated ACM
   * certificate for it, so that the listener speaks TLS.
   */
  domainName: string | undefined;
  /** The (public) Route 53 hosted zone of domainName: its alias record and the certificate's validation record go there. */
  hostedZoneId: string | undefined;
  /** Publish the load balancer as a PrivateLink endpoint service (to allowedPrincipals only). */
  endpointService: boolean;
  /** Who may create interface endpoints to the endpoint service: IAM ARNs of accounts (…:root), roles or users. */
  allowedPrincipals: string[] | undefined;
  /** An endpoint connection waits for the stack owner to accept it (default: allowedPrincipals connect at once). */
  endpointAcceptanceRequired: boolean;
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
  /**
   * Adopt the table a destroyed stack kept (with existingTableStreamArn): no table is
   * created; the servers and the table stream function use this one.
   */
  existingTableName: string | undefined;
  /** The adopted table's stream (the table stream function reads it). */
  existingTableStreamArn: string | undefined;
  /**
   * Adopt the queues a destroyed stack kept, by channel: no queue is created for these
   * channels (the others get new ones).
   */
  existingQueues: Record<string, ExistingQueueNames>;
  /** Bearer-token authentication (default on): tokens live in a Secrets Manager secret the stack creates. */
  auth: boolean;
  /** gRPC server reflection (default off in a deployment: it lists the API to anyone who can connect). */
  reflection: boolean;
  /** Keep the owner index of earlier versions beside the new one while `npm run migrate` backfills (README "Upgrading"). */
  legacyOwnerIndex: boolean;
  /** The sparse index of channels' recent failures (default on, off with legacyOwnerIndex: one index change per update). */
  failuresIndex: boolean;
  /** The CloudWatch namespace of the servers' metrics (EMF log lines, QUEUES_EMF_NAMESPACE), of the dashboard and of the State-500 metric filter. */
  metricsNamespace: string;
}

/** The names of a channel's adopted queue and dead-letter queue (and, with `priorities`, of its other levels' queues). */
export interface ExistingQueueNames {
  queue: string;
  deadLetterQueue: string;
  /** The queues of levels 2 .. priorities, in that order; only for a channel with priorities above 1. */
  levelQueues?: string[];
}

export const CONFIG_DEFAULTS = {
  desiredCount: 2,
  cpu: 256,
  memoryMiB: 512,
  port: 50051,
  vpcCidr: "10.0.0.0/16",
  oldestMessageAlarmSeconds: 3_600,
  logRetentionDays: 30,
  metricsNamespace: DEFAULT_METRICS_NAMESPACE,
} as const;

/** Fargate's valid CPU units and, for each, the memory sizes (MiB) it allows. */
const FARGATE_SIZES: Record<number, { min: number; max: number; step: number }> = {
  256: { min: 512, max: 2048, step: 512 },
  512: { min: 1024, max: 4096, step: 1024 },
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16384, step: 1024 },
  4096: { min: 8192, max: 30720, step: 1024 },
};

/** Queue names SQS accepts (standard queues), and the end of a queue URL. */
const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_-]{1,80}$/;
const QUEUE_URL_PATTERN = /^https:\/\/[\w.-]+\/\d{12}\/([^/]+)$/;
const TABLE_NAME_PATTERN = /^[A-Za-z0-9_.-]{3,255}$/;
/** arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>, as DescribeTable's LatestStreamArn gives it. */
const TABLE_STREAM_ARN_PATTERN = /^arn:aws[\w-]*:dynamodb:[a-z0-9-]+:\d{12}:table\/([A-Za-z0-9_.-]{3,255})\/stream\/[\w:.+-]+$/;
/** A lower-case DNS name of at least two labels; ACM takes at most 64 characters. */
const DOMAIN_NAME_PATTERN = /^(?=.{4,64}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTED_ZONE_ID_PATTERN = /^Z[A-Z0-9]{1,32}$/;
/** An account (arn:aws:iam::<account>:root), a role or a user. */
const PRINCIPAL_ARN_PATTERN = /^arn:aws[\w-]*:iam::\d{12}:(root|role\/[\w+=,.@\/-]{1,512}|user\/[\w+=,.@\/-]{1,512})$/;

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
  const certificateArn = optionalString(get("certificateArn"), "certificateArn", /^arn:aws[\w-]*:acm:[\w-]+:\d{12}:certificate\/[\w-]+$/);
  const domainName = dnsName(get("domainName"));
  const hostedZoneId = optionalString(get("hostedZoneId"), "hostedZoneId", HOSTED_ZONE_ID_PATTERN);
  if ((domainName === undefined) !== (hostedZoneId === undefined)) {
    throw new ConfigError("domainName and hostedZoneId go together: the name's alias record and its certificate's validation record go to that hosted zone");
  }
  const endpointService = boolean(get("endpointService"), "endpointService", false);
  const allowedPrincipals = principals(get("allowedPrincipals"));
  if (endpointService && !allowedPrincipals) {
    throw new ConfigError("endpointService=true needs allowedPrincipals: the IAM ARNs (accounts as arn:aws:iam::<account>:root, roles, users) that may connect through PrivateLink");
  }
  if (!endpointService && allowedPrincipals) throw new ConfigError("allowedPrincipals is for the PrivateLink endpoint service: set endpointService=true too");
  const endpointAcceptanceRequired = boolean(get("endpointAcceptanceRequired"), "endpointAcceptanceRequired", false);
  if (endpointAcceptanceRequired && !endpointService) throw new ConfigError("endpointAcceptanceRequired is for the PrivateLink endpoint service: set endpointService=true too");
  const destroyTableOnDelete = boolean(get("destroyTableOnDelete"), "destroyTableOnDelete", false);
  const existingTableName = optionalString(get("existingTableName"), "existingTableName", TABLE_NAME_PATTERN);
  const existingTableStreamArn = optionalString(get("existingTableStreamArn"), "existingTableStreamArn", TABLE_STREAM_ARN_PATTERN);
  if ((existingTableName === undefined) !== (existingTableStreamArn === undefined)) {
    throw new ConfigError(
      "existingTableName and existingTableStreamArn go together (the table stream function reads the adopted table's stream): aws dynamodb describe-table --table-name <name> --query Table.LatestStreamArn",
    );
  }
  const streamTable = existingTableStreamArn ? TABLE_STREAM_ARN_PATTERN.exec(existingTableStreamArn)?.[1] : undefined;
  if (streamTable !== existingTableName) {
    throw new ConfigError(`existingTableStreamArn is the stream of table ${streamTable}, not of existingTableName ${existingTableName}`);
  }
  const existingQueues = adoptedQueues(get("existingQueues"), channels);
  if (destroyTableOnDelete && (existingTableName || Object.keys(existingQueues).length > 0)) {
    throw new ConfigError(
      "destroyTableOnDelete cannot delete an adopted table or adopted queues (existingTableName, existingQueues): they are not the stack's; delete them yourself after cdk destroy",
    );
  }
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
    certificateArn,
    domainName,
    hostedZoneId,
    endpointService,
    allowedPrincipals,
    endpointAcceptanceRequired,
    taskRetentionDays: isUnset(retention) ? undefined : integer(retention, "taskRetentionDays", 0, 1, 36_500),
    port: integer(get("port"), "port", CONFIG_DEFAULTS.port, 1, 65_535),
    alarmTopicArn: optionalString(get("alarmTopicArn"), "alarmTopicArn", /^arn:aws[\w-]*:sns:[\w-]+:\d{12}:[\w-]+$/),
    oldestMessageAlarmSeconds: integer(get("oldestMessageAlarmSeconds"), "oldestMessageAlarmSeconds", CONFIG_DEFAULTS.oldestMessageAlarmSeconds, 60, 1_209_600),
    logRetentionDays: logRetention(get("logRetentionDays")),
    destroyTableOnDelete,
    existingTableName,
    existingTableStreamArn,
    existingQueues,
    auth: boolean(get("auth"), "auth", true),
    reflection: boolean(get("reflection"), "reflection", false),
    legacyOwnerIndex: boolean(get("legacyOwnerIndex"), "legacyOwnerIndex", false),
    failuresIndex: boolean(get("failuresIndex"), "failuresIndex", !boolean(get("legacyOwnerIndex"), "legacyOwnerIndex", false)),
    metricsNamespace: metricsNamespace(get("metricsNamespace")),
  };
}

/** The retention periods CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

function logRetention(value: unknown): number {
  const days = integer(value, "logRetentionDays", CONFIG_DEFAULTS.logRetentionDays, 1, 3_653);
  if (!LOG_RETENTION_DAYS.includes(days)) throw new ConfigError(`logRetentionDays must be one of ${LOG_RETENTION_DAYS.join(", ")}, got ${days}`);
  return days;
}

function metricsNamespace(value: unknown): string {
  if (isUnset(value)) return CONFIG_DEFAULTS.metricsNamespace;
  const problem = typeof value === "string" ? metricsNamespaceProblem(value) : "must be a string";
  if (problem) throw new ConfigError(`metricsNamespace ${problem}`);
  return value as string;
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

/** A DNS name, lower-cased and without a trailing dot. */
function dnsName(value: unknown): string | undefined {
  if (isUnset(value)) return undefined;
  const name = typeof value === "string" ? value.toLowerCase().replace(/\.$/, "") : "";
  if (!DOMAIN_NAME_PATTERN.test(name)) {
    throw new ConfigError(`domainName must be a DNS name of two labels or more and at most 64 characters (ACM's limit), like queues.example.com, got ${JSON.stringify(value)}`);
  }
  return name;
}

/** A JSON array, a JSON string of one, or a comma-separated string. */
function listOf(value: unknown, key: string): unknown {
  if (typeof value !== "string") return value;
  return value.trim().startsWith("[") ? parseJson(value, key) : value.split(",").map((s) => s.trim());
}

function cidrs(value: unknown): string[] | undefined {
  if (isUnset(value)) return undefined;
  const entries = listOf(value, "allowedCidrs");
  if (!Array.isArray(entries) || entries.length === 0) throw new ConfigError(`allowedCidrs must be a non-empty list of IPv4 CIDRs, got ${JSON.stringify(value)}`);
  for (const entry of entries) {
    if (cidr(entry, "allowedCidrs") === "0.0.0.0/0") {
      throw new ConfigError("allowedCidrs: 0.0.0.0/0 would admit the whole internet; list the networks of your workers");
    }
  }
  return entries as string[];
}

/** IAM ARNs of accounts, roles or users; never "*" (anyone with an AWS account). */
function principals(value: unknown): string[] | undefined {
  if (isUnset(value)) return undefined;
  const arns = listOf(value, "allowedPrincipals");
  if (!Array.isArray(arns) || arns.length === 0) {
    throw new ConfigError(`allowedPrincipals must be a non-empty list of IAM ARNs, got ${JSON.stringify(value)}`);
  }
  for (const arn of arns) {
    if (arn === "*") throw new ConfigError("allowedPrincipals: * would let any AWS account connect; list the accounts, roles or users of your workers");
    if (typeof arn !== "string" || !PRINCIPAL_ARN_PATTERN.test(arn)) {
      throw new ConfigError(
        `allowedPrincipals: ${JSON.stringify(arn)} is not an IAM ARN of an account (arn:aws:iam::<account>:root), a role (…:role/<name>) or a user (…:user/<name>)`,
      );
    }
  }
  return [...new Set(arns as string[])];
}

/**
 * existingQueues: JSON {"<channel>": {"queue": "<name or URL>", "deadLetterQueue": "<name or URL>"}},
 * for channels of `channels`, with "levelQueues": ["<name or URL>", ...] (levels 2 .. priorities,
 * in order) for a channel whose priorities are above 1; a queue named at most once.
 */
function adoptedQueues(value: unknown, channels: readonly ChannelConfig[]): Record<string, ExistingQueueNames> {
  if (isUnset(value)) return {};
  const map = typeof value === "string" ? parseJson(value, "existingQueues") : value;
  const shape = 'existingQueues must be a JSON object {"<channel>": {"queue": "<name or URL>", "deadLetterQueue": "<name or URL>"}} (and "levelQueues": [...] for a channel with priorities)';
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new ConfigError(`${shape}, got ${JSON.stringify(value)}`);
  const known = new Map(channels.map((channel) => [channel.name, channel]));
  const seen = new Set<string>();
  const adopted: Record<string, ExistingQueueNames> = {};
  for (const [channel, entry] of Object.entries(map as Record<string, unknown>)) {
    const config = known.get(channel);
    if (!config) throw new ConfigError(`existingQueues names channel ${JSON.stringify(channel)}, which is not in channels (${[...known.keys()].join(", ")})`);
    const keys = typeof entry === "object" && entry !== null && !Array.isArray(entry) ? Object.keys(entry).sort() : [];
    if (keys.join(",") !== "deadLetterQueue,queue" && keys.join(",") !== "deadLetterQueue,levelQueues,queue") {
      throw new ConfigError(`${shape}; channel ${channel} has ${JSON.stringify(entry)}`);
    }
    const names = entry as Record<"queue" | "deadLetterQueue" | "levelQueues", unknown>;
    const queues: ExistingQueueNames = {
      queue: queueName(names.queue, channel, "queue"),
      deadLetterQueue: queueName(names.deadLetterQueue, channel, "deadLetterQueue"),
    };
    // One queue per priority level, all adopted: the first is `queue`, the others levelQueues, in order.
    const levels = config.priorities - 1;
    if (names.levelQueues !== undefined || levels > 0) {
      if (!Array.isArray(names.levelQueues) || names.levelQueues.length !== levels) {
        throw new ConfigError(
          levels > 0
            ? `existingQueues: channel ${channel} has priorities ${config.priorities}: its levelQueues must list the queues of levels 2 to ${config.priorities}, in order (${levels} name(s) or URL(s)), got ${JSON.stringify(names.levelQueues)}`
            : `existingQueues: channel ${channel} has one priority level: no levelQueues, got ${JSON.stringify(names.levelQueues)}`,
        );
      }
      if (levels > 0) queues.levelQueues = names.levelQueues.map((name, index) => queueName(name, channel, `levelQueues[${index}]`));
    }
    for (const name of [queues.queue, queues.deadLetterQueue, ...(queues.levelQueues ?? [])]) {
      if (seen.has(name)) throw new ConfigError(`existingQueues names queue ${name} twice`);
      seen.add(name);
    }
    adopted[channel] = queues;
  }
  return adopted;
}

/** A queue name, or the name at the end of a queue URL (the stack's QueueUrl outputs). */
function queueName(value: unknown, channel: string, key: string): string {
  const name = typeof value === "string" ? (QUEUE_URL_PATTERN.exec(value)?.[1] ?? value) : undefined;
  if (name === undefined || !QUEUE_NAME_PATTERN.test(name)) {
    throw new ConfigError(`existingQueues: ${channel}.${key} ${JSON.stringify(value)} is not an SQS queue name (A-Z, a-z, 0-9, - and _, up to 80) or queue URL`);
  }
  return name;
}

function cidr(value: unknown, key: string): string {
  const match = typeof value === "string" ? CIDR_PATTERN.exec(value) : null;
  const valid = match && match.slice(1, 5).every((octet) => Number(octet) <= 255) && Number(match[5]) <= 32;
  if (!valid) throw new ConfigError(`${key}: ${JSON.stringify(value)} is not an IPv4 CIDR like 10.0.0.0/16`);
  return value as string;
}
