// THE definition of the tasks table: keys, indexes and item layout. The local
// emulators, LocalStack provisioning and the CDK stack all build the table from
// this module, so the server and its infrastructure cannot drift apart.
import type { CreateTableCommandInput } from "@aws-sdk/client-dynamodb";

/**
 * One table, one string partition key `pk`, several item kinds:
 *
 * | pk                    | item                                                        |
 * |-----------------------|-------------------------------------------------------------|
 * | `T#<id>`              | the task: small, often-updated state (+ payloads ≤ 1 KiB)   |
 * | `I#<id>` / `O#<id>`   | a larger Input / Output, written once, so state updates stay small |
 * | `H#<hashCode>`        | guards a caller's HashCode's uniqueness; a consistent lookup by it (a generated HashCode names its task's ID and needs none) |
 * | `E#<id>`              | marks an expired task's cleanup as done (with retention; expires itself) |
 * | `C#<owner>#<shard>`   | one shard of the owner's task counter (exact Total)         |
 *
 * DynamoDB bills every write, UpdateItem included, by the whole item's size, so
 * Input and Output above INLINE_PAYLOAD_MAX_BYTES live in their own items and each
 * state transition rewrites only the small task item.
 */
export const PARTITION_KEY = "pk";

/** Task items' keys start with this; every other kind of item has its own prefix. */
export const TASK_KEY_PREFIX = "T#";

export const itemKey = {
  task: (id: bigint) => `${TASK_KEY_PREFIX}${id}`,
  input: (id: bigint) => `I#${id}`,
  output: (id: bigint) => `O#${id}`,
  hashCode: (hashCode: string) => `H#${hashCode}`,
  expiredTask: (id: bigint) => `E#${id}`,
  ownerCounter: (owner: bigint, shard: number) => `C#${owner}#${shard}`,
};

export const INLINE_PAYLOAD_MAX_BYTES = 1024;

/**
 * DynamoDB's TTL attribute (epoch seconds). Set on a task item when it becomes final,
 * only if a retention is configured; the CDK stack then enables TTL on it and cleans
 * up the task's other items (HashCode guard, payloads, owner count) when it expires.
 */
export const TTL_ATTRIBUTE = "expiresAt";

/**
 * Owner counters are sharded so that concurrent creates for one owner rarely touch
 * the same item (DynamoDB cancels transactions that collide on an item). Total is
 * the sum of all shards: a fixed-cost read, whatever the owner's number of tasks.
 */
export const OWNER_COUNTER_SHARDS = 8;

/**
 * Task items carry `outboxShard` + `outboxDueAt` only while their outbox marker is
 * set, so the index holds just the tasks the sweeper may have to act on.
 */
export const OUTBOX_SHARDS = 8;

export interface IndexDefinition {
  name: string;
  partitionKey: { name: string; type: "N" | "S" };
  sortKey: { name: string; type: "N" | "S" };
  /** KEYS_ONLY: state updates never rewrite index entries, reads fetch the items. */
  projection: "KEYS_ONLY";
  purpose: string;
}

export const INDEXES = {
  byOwner: {
    name: "byOwner",
    partitionKey: { name: "owner", type: "N" },
    sortKey: { name: "id", type: "N" },
    projection: "KEYS_ONLY",
    purpose: "QueryTaskByOwner: an owner's tasks, newest first (IDs grow with time; query descending)",
  },
  byOutboxDue: {
    name: "byOutboxDue",
    partitionKey: { name: "outboxShard", type: "N" },
    sortKey: { name: "outboxDueAt", type: "N" },
    projection: "KEYS_ONLY",
    purpose: "the sweeper: tasks whose outbox marker is due (a possibly unsent message or chain follow-up)",
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
  };
}
