// THE definition of the tasks table: keys, indexes and item layout. The local
// emulators, LocalStack provisioning and the CDK stack all build the table from
// this module, so the server and its infrastructure cannot drift apart.
import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/**
 * One table, one string partition key `pk`, several item kinds:
 *
 * | pk                    | item                                                        |
 * |-----------------------|-------------------------------------------------------------|
 * | `T#<id>`              | the task: small, often-updated state (+ payloads ≤ 1 KiB); carries `ownerKey` (its owner shard, index `byOwnerShard`) and, while its outbox marker is set, `outboxShard` + `outboxDueAt` (index `byOutboxDue`) |
 * | `I#<id>` / `O#<id>`   | a larger Input / Output, written once, so state updates stay small |
 * | `H#<hashCode>`        | guards a caller's HashCode's uniqueness; a consistent lookup by it (a generated HashCode names its task's ID and needs none) |
 * | `S#<eventID>`         | marks a part of a stream batch as counted (the table stream function; expires itself after a day) |
 * | `C#<owner>#<shard>`   | one shard of the owner's task counter (Total), counted from the table's stream |
 * | `SC#<name>` / `SI#<name>` | a recurring schedule (its next tick in `outboxDueAt`, index partition SCHEDULE_INDEX_SHARD) / its Template Input above 1 KiB |
 * | `LA#<shard>`          | which replica's look-ahead sends a parking shard's messages (a lease), and how far it has read |
 * | `RL#<channel>`        | a rate-limited channel's token bucket: `tat`, when it would be full again (tasks/rate-allowance.ts) |
 * | `AC#<channel>#<hour>#<shard>` | a channel's tasks created / succeeded / failed per minute of one hour (`created_<m>`, `succeeded_<m>`, `failed_<m>`), counted from the stream; expires 3 hours after its hour ends |
 * | `IF#<channel>` / `CK#<channel>#<key>` | `running`: the PROCEEDING tasks of a channel with maxInFlight / of one ConcurrencyKey (tasks/flow-slots.ts) |
 *
 * DynamoDB bills every write, UpdateItem included, by the whole item's size, so
 * Input and Output above INLINE_PAYLOAD_MAX_BYTES live in their own items and each
 * state transition rewrites only the small task item.
 *
 * No partition key, of the table or of an index, takes all of one owner's or all
 * tasks' writes: an owner's index entries are spread over OWNER_SHARDS `ownerKey`
 * partitions and outbox markers over OUTBOX_SHARDS `outboxShard` partitions (DynamoDB
 * gives one partition key at most 1,000 write units and 3,000 read units a second).
 */
export const PARTITION_KEY = "pk";

/** Task items' keys start with this; every other kind of item has its own prefix. */
export const TASK_KEY_PREFIX = "T#";

export const itemKey = {
  task: (id: bigint) => `${TASK_KEY_PREFIX}${id}`,
  input: (id: bigint) => `I#${id}`,
  output: (id: bigint) => `O#${id}`,
  hashCode: (hashCode: string) => `H#${hashCode}`,
  /** The marker of a counted part of a stream batch, named by the part's first record (stream/table-stream.ts). */
  streamMarker: (eventId: string) => `S#${eventId}`,
  ownerCounter: (owner: bigint, shard: number) => `C#${owner}#${shard}`,
  /** The look-ahead's lease on one parking shard, with its cursor (store/look-ahead-lease-store.ts). */
  lookAheadLease: (shard: number) => `LA#${shard}`,
  /** One shard of a channel's per-minute activity in one epoch hour (stream/table-stream.ts counts, store/activity-store.ts reads). */
  activity: (channel: string, hour: number, shard: number) => `AC#${channel}#${hour}#${shard}`,
  /** The token bucket of a rate-limited channel (store/rate-budget-store.ts). */
  rateBucket: (channel: string) => `RL#${channel}`,
};

export const INLINE_PAYLOAD_MAX_BYTES = 1024;

/**
 * DynamoDB's TTL attribute (epoch seconds), always enabled on the table. Set on a task
 * item when it becomes final, only if a retention is configured; when it expires, the
 * table stream function cleans up the task's other items (HashCode guard, payloads)
 * and its owner's count. The stream function's markers expire by it too.
 */
export const TTL_ATTRIBUTE = "expiresAt";

/**
 * The table's stream: every change with both images. The table stream function
 * (stream/table-stream.ts) counts owners' tasks from it (INSERT: the new image) and
 * cleans up expired tasks (TTL REMOVE: the old image).
 */
export const STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES" as const;

/** A stream marker's lifetime: a stream keeps its records for 24 hours, so none is delivered again after that. */
export const STREAM_MARKER_TTL_SECONDS = 86_400;

/**
 * Owner counters are sharded so that concurrent count updates for one owner rarely
 * touch the same item. Total is the sum of all shards: a fixed-cost read, whatever
 * the owner's number of tasks.
 */
export const OWNER_COUNTER_SHARDS = 8;

/**
 * A channel's per-minute activity items are sharded like the owner counters: parts of
 * different stream shards (concurrent Lambdas) write different items, and the console
 * reads 2 hours x ACTIVITY_SHARDS small items per channel for its last hour.
 */
export const ACTIVITY_SHARDS = 4;

/**
 * An owner's tasks are spread over this many `ownerKey` partitions of the index
 * `byOwnerShard`, so that one owner creating 10,000 tasks a second writes about 625
 * index entries a second to each (a partition key takes at most 1,000 write units a
 * second). QueryTaskByOwner merges the shards, newest first.
 */
export const OWNER_SHARDS = 16;

/**
 * The owner shard of a task: Fibonacci hashing of its ID (the ID times 2^64/φ,
 * modulo 2^64, scaled to OWNER_SHARDS). Not `id % OWNER_SHARDS`: the low bits of an
 * ID are its per-millisecond sequence (tasks/ids.ts), which restarts at 0 every
 * millisecond, so at low rates every task would land in shard 0. The hash mixes all
 * of the ID's bits, and spreads IDs that follow each other at any regular step
 * (one replica's creates) evenly. A pure function of the ID: the backfill of old
 * items computes the same key.
 */
export function ownerShardOf(id: bigint): number {
  return hashShardOf(id, OWNER_SHARDS);
}

/** One of `shards` partitions for an ID, by Fibonacci hashing (see ownerShardOf). */
export function hashShardOf(id: bigint, shards: number): number {
  return Number((((id * FIBONACCI_MULTIPLIER) & UINT64_MASK) * BigInt(shards)) >> 64n);
}

/**
 * A channel's failed tasks are spread over this many `failedKey` partitions of the
 * sparse index `byChannelFailures`, so a channel whose tasks fail 10,000 times a
 * second writes about 625 index entries a second to each (a partition key takes
 * 1,000). The console's "recent failures" reads them with 16 small queries.
 */
export const FAILURE_SHARDS = 16;

/** The `failedKey` of a failed task (index byChannelFailures): `<channel>#<shard>`. */
export function failedKeyOf(channel: string, id: bigint): string {
  return failedKeyOfShard(channel, hashShardOf(id, FAILURE_SHARDS));
}

export function failedKeyOfShard(channel: string, shard: number): string {
  return `${channel}#${shard}`;
}

/** ⌊2^64 / φ⌋, odd. */
const FIBONACCI_MULTIPLIER = 0x9e3779b97f4a7c15n;
const UINT64_MASK = (1n << 64n) - 1n;

/** The `ownerKey` attribute of a task item (the partition key of `byOwnerShard`): `<owner>#<shard>`. */
export function ownerKeyOf(owner: bigint, id: bigint): string {
  return ownerKeyOfShard(owner, ownerShardOf(id));
}

/** The `ownerKey` of one of the owner's shards. */
export function ownerKeyOfShard(owner: bigint, shard: number): string {
  return `${owner}#${shard}`;
}

/**
 * Task items carry `outboxShard` + `outboxDueAt` only while their outbox marker is
 * set, so the index holds just the tasks the sweeper may have to act on. A marker's
 * shard is drawn at random on every write of it, so markers spread evenly: at
 * 50,000 tasks a second (an index entry written at the create and removed at the
 * final write: 2 write units per task) each shard takes about 780 write units a
 * second. The sweeper looks at a rotating subset of the shards on each pass
 * (core/sweeper.ts). Markers written when there were 8 shards (0..7) are still found.
 */
export const OUTBOX_SHARDS = 128;

/**
 * Parked markers (a task scheduled further ahead than SQS delays a message: its
 * marker's `outboxDueAt` is its RunAt) live in their own `outboxShard` partitions,
 * OUTBOX_SHARDS to OUTBOX_SHARDS + PARKED_SHARDS - 1, so the look-ahead that sends
 * their messages reads only them (core/parked-tasks.ts). 16 partitions take about
 * 8,000 scheduled tasks a second (an index entry written at the create and removed
 * at the final write).
 */
export const PARKED_SHARDS = 16;

/** The index partition a marker goes to: a random one of its kind. */
export function outboxShardFor(parked: boolean | undefined, random: (n: number) => number): number {
  return parked ? OUTBOX_SHARDS + random(PARKED_SHARDS) : random(OUTBOX_SHARDS);
}

/** Whether a marker's shard is a parking shard. */
export function isParkedShard(shard: number): boolean {
  return shard >= OUTBOX_SHARDS && shard < OUTBOX_SHARDS + PARKED_SHARDS;
}

/**
 * The byOutboxDue partition of the schedules (store/schedule-store.ts): their next
 * ticks, so "which schedules are due" is one query. Each tick moves one entry (2 index
 * writes): this partition takes about 400 ticks a second over all schedules.
 */
export const SCHEDULE_INDEX_SHARD = -1;

/** The parking shards, in order. */
export const PARKED_SHARD_NUMBERS: readonly number[] = Array.from({ length: PARKED_SHARDS }, (_, i) => OUTBOX_SHARDS + i);

export interface IndexDefinition {
  name: string;
  partitionKey: { name: string; type: "N" | "S" };
  sortKey: { name: string; type: "N" | "S" };
  /** KEYS_ONLY: state updates never rewrite index entries, reads fetch the items. */
  projection: "KEYS_ONLY";
  purpose: string;
}

export const INDEXES = {
  byOwnerShard: {
    name: "byOwnerShard",
    partitionKey: { name: "ownerKey", type: "S" },
    sortKey: { name: "id", type: "N" },
    projection: "KEYS_ONLY",
    purpose:
      "QueryTaskByOwner: an owner's tasks in OWNER_SHARDS partitions (`<owner>#<shard>`), each read newest first (IDs grow with time; query descending) and merged",
  },
  byOutboxDue: {
    name: "byOutboxDue",
    partitionKey: { name: "outboxShard", type: "N" },
    sortKey: { name: "outboxDueAt", type: "N" },
    projection: "KEYS_ONLY",
    purpose:
      "the sweeper: tasks whose outbox marker is due (a possibly unsent message or chain follow-up); the look-ahead: parked tasks near their RunAt; the scheduler: schedules' next ticks",
  },
  byChannelFailures: {
    name: "byChannelFailures",
    partitionKey: { name: "failedKey", type: "S" },
    sortKey: { name: "id", type: "N" },
    projection: "KEYS_ONLY",
    purpose:
      "the console's recent failures of a channel: only FAILURE tasks carry `failedKey` (`<channel>#<shard>`, FAILURE_SHARDS partitions), so it costs nothing for tasks that succeed and one index write per failed task; read newest first and merged",
  },
} as const satisfies Record<string, IndexDefinition>;

/**
 * Indexes of earlier layouts, kept only for the migration to the current one (not
 * created by createTableInput, not in INDEXES). `byOwner` (owner, id) held all of an
 * owner's tasks under one partition key; `byOwnerShard` replaces it. During the
 * migration both exist: deploy the new index beside it, backfill `ownerKey` on the
 * old task items, then drop it.
 */
export const LEGACY_INDEXES = {
  byOwner: {
    name: "byOwner",
    partitionKey: { name: "owner", type: "N" },
    sortKey: { name: "id", type: "N" },
    projection: "KEYS_ONLY",
    purpose: "QueryTaskByOwner before owner shards: an owner's tasks, newest first",
  },
} as const satisfies Record<string, IndexDefinition>;

/**
 * Lookup by HashCode deliberately has no GSI: a GSI can neither enforce uniqueness
 * nor be read consistently. A generated HashCode carries its task's ID (tasks/ids.ts),
 * so its lookup is a consistent read of the task. A caller's HashCode has an
 * `H#<hashCode>` item, written in the create transaction with a "must not exist"
 * condition and read with ConsistentRead. Either way a lookup right after CreateTask
 * always finds the task.
 */
export const HASH_CODE_LOOKUP = "generated: consistent read of the task it names; a caller's: consistent read of its H#<hashCode> guard item, then of the task" as const;

/** CreateTable input for emulators and LocalStack (CDK maps the same constants). */
export function createTableInput(tableName: string): CreateTableCommandInput {
  const indexes = Object.values(INDEXES);
  const attributes = new Map<string, "N" | "S">([[PARTITION_KEY, "S"]]);
  for (const index of indexes) {
    attributes.set(index.partitionKey.name, index.partitionKey.type);
    attributes.set(index.sortKey.name, index.sortKey.type);
  }
  return {
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [...attributes].map(([AttributeName, AttributeType]) => ({ AttributeName, AttributeType })),
    KeySchema: [{ AttributeName: PARTITION_KEY, KeyType: "HASH" }],
    GlobalSecondaryIndexes: indexes.map((index) => ({
      IndexName: index.name,
      KeySchema: [
        { AttributeName: index.partitionKey.name, KeyType: "HASH" },
        { AttributeName: index.sortKey.name, KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: index.projection },
    })),
    StreamSpecification: { StreamEnabled: true, StreamViewType: STREAM_VIEW_TYPE },
  };
}
