// The one definition of the table and of the channel queues (SPEC §5) that the
// CDK stack, the emulators and LocalStack provisioning share.
import { describe, expect, it } from "vitest";
import {
  createTableInput,
  INDEXES,
  LEGACY_INDEXES,
  OUTBOX_SHARDS,
  OWNER_SHARDS,
  ownerKeyOf,
  ownerKeyOfShard,
  ownerShardOf,
  PARTITION_KEY,
} from "../../service/src/store/table-definition.js";
import { encodeNewTask } from "../../service/src/store/item-codec.js";
import { IdGenerator } from "../../service/src/tasks/ids.js";
import type { TaskRecord } from "../../service/src/tasks/task.js";
import { deadLetterAttributes, MESSAGE_RETENTION_SECONDS, queueAttributes, queueNames } from "../../service/src/queue/queue-definition.js";

describe("createTableInput", () => {
  const input = createTableInput("tasks-table");

  it("names the table, bills per request and keys it on the string pk", () => {
    expect(input.TableName).toBe("tasks-table");
    expect(input.BillingMode).toBe("PAY_PER_REQUEST");
    expect(PARTITION_KEY).toBe("pk");
    expect(input.KeySchema).toEqual([{ AttributeName: "pk", KeyType: "HASH" }]);
    expect(input.ProvisionedThroughput).toBeUndefined();
  });

  it("has the GSIs byOwnerShard (ownerKey S, id N), byOutboxDue and the sparse byChannelFailures (failedKey S, id N), all KEYS_ONLY; the legacy byOwner is not created", () => {
    const indexes = input.GlobalSecondaryIndexes ?? [];
    expect(indexes.map((index) => index.IndexName).sort()).toEqual(["byChannelFailures", "byOutboxDue", "byOwnerShard"]);
    expect(indexes.find((index) => index.IndexName === "byChannelFailures")?.KeySchema).toEqual([
      { AttributeName: "failedKey", KeyType: "HASH" },
      { AttributeName: "id", KeyType: "RANGE" },
    ]);
    const byOwnerShard = indexes.find((index) => index.IndexName === "byOwnerShard");
    expect(byOwnerShard?.KeySchema).toEqual([
      { AttributeName: "ownerKey", KeyType: "HASH" },
      { AttributeName: "id", KeyType: "RANGE" },
    ]);
    const byOutboxDue = indexes.find((index) => index.IndexName === "byOutboxDue");
    expect(byOutboxDue?.KeySchema?.map((key) => key.KeyType)).toEqual(["HASH", "RANGE"]);
    expect(byOutboxDue?.KeySchema?.map((key) => key.AttributeName)).toEqual([INDEXES.byOutboxDue.partitionKey.name, INDEXES.byOutboxDue.sortKey.name]);
    for (const index of indexes) {
      expect(index.Projection).toEqual({ ProjectionType: "KEYS_ONLY" });
      expect(index.ProvisionedThroughput).toBeUndefined();
    }
    // Kept for the migration from the old layout only.
    expect(LEGACY_INDEXES.byOwner).toMatchObject({ name: "byOwner", partitionKey: { name: "owner", type: "N" }, sortKey: { name: "id", type: "N" } });
    expect(Object.keys(INDEXES)).not.toContain("byOwner");
  });

  it("defines every key attribute exactly once, with its type", () => {
    const definitions = input.AttributeDefinitions ?? [];
    const names = definitions.map((definition) => definition.AttributeName);
    expect(new Set(names).size).toBe(names.length);
    const keyAttributes = new Set<string>();
    for (const key of input.KeySchema ?? []) keyAttributes.add(key.AttributeName as string);
    for (const index of input.GlobalSecondaryIndexes ?? []) for (const key of index.KeySchema ?? []) keyAttributes.add(key.AttributeName as string);
    // DynamoDB rejects attribute definitions that no key uses, so the two sets must be equal.
    expect(new Set(names)).toEqual(keyAttributes);
    const type = Object.fromEntries(definitions.map((definition) => [definition.AttributeName, definition.AttributeType]));
    expect(type).toMatchObject({ pk: "S", ownerKey: "S", id: "N" });
    expect(type.owner).toBeUndefined();
    expect(type[INDEXES.byOutboxDue.partitionKey.name]).toBe(INDEXES.byOutboxDue.partitionKey.type);
    expect(type[INDEXES.byOutboxDue.sortKey.name]).toBe(INDEXES.byOutboxDue.sortKey.type);
  });
});

describe("owner shards", () => {
  it("are 16; a task's ownerKey is `<owner>#<shard>`, a pure function of owner and ID", () => {
    expect(OWNER_SHARDS).toBe(16);
    expect(OUTBOX_SHARDS).toBe(128);
    expect(ownerKeyOf(18446744073709551615n, 0n)).toBe("18446744073709551615#0");
    expect(ownerKeyOfShard(0n, 15)).toBe("0#15");
    for (const id of [1n, 2n ** 58n + 12345n, 2n ** 64n - 1n]) {
      const shard = ownerShardOf(id);
      expect(shard).toBeGreaterThanOrEqual(0);
      expect(shard).toBeLessThan(OWNER_SHARDS);
      expect(ownerKeyOf(42n, id)).toBe(`42#${shard}`);
    }
  });

  it("spread the IDs of one replica evenly over all shards, however fast it creates", () => {
    // At one create per millisecond or slower the ID's sequence bits are 0 every time: id % 16 would always be 0.
    for (const [perMs, stepMs] of [
      [1, 1],
      [1, 3],
      [1, 7],
      [1, 64],
      [10, 1],
      [100, 1],
    ] as const) {
      let ms = 1_800_000_000_000;
      const ids = new IdGenerator(5n, () => ms);
      const counts = new Array<number>(OWNER_SHARDS).fill(0);
      for (let i = 0; i < 1_600; i++) {
        if (i % perMs === 0) ms += stepMs;
        const shard = ownerShardOf(ids.next());
        counts[shard] = (counts[shard] ?? 0) + 1;
      }
      expect(Math.min(...counts), `${perMs} per ${stepMs} ms`).toBeGreaterThanOrEqual(90);
      expect(Math.max(...counts), `${perMs} per ${stepMs} ms`).toBeLessThanOrEqual(110);
    }
  });

  it("the task item carries its ownerKey, and the create's write id when given", () => {
    const task: TaskRecord = {
      id: 2n ** 60n + 77n,
      owner: 9n,
      channel: "default",
      state: "WAITING",
      hashCode: "h",
      input: "",
      output: "",
      retryCount: 0n,
      retryMaxLimit: 3n,
      prior: 0n,
      next: 0n,
      createTime: "2027-01-01T00:00:00.000Z",
      updateTime: "2027-01-01T00:00:00.000Z",
      awaitsPrior: false,
      nextTakesOutput: false,
      notBeforeMs: 0,
      runAtMs: 0,
      priority: 1,
      concurrencyKey: "",
      lease: undefined,
      outbox: { dueAtMs: 5, sweeps: 0 },
    };
    expect(encodeNewTask(task, 100, "create.abc")).toMatchObject({ ownerKey: ownerKeyOf(9n, task.id), outboxShard: 100, lastWrite: "create.abc" });
    expect(encodeNewTask(task, 3).lastWrite).toBeUndefined();
  });
});

describe("queueAttributes", () => {
  const dlqArn = "arn:aws:sqs:us-east-1:000000000000:queues-emails-dlq";

  it("visibility is the channel's lease, retention 14 days, redrive to the DLQ", () => {
    const attributes = queueAttributes({ name: "emails", visibilityTimeoutSeconds: 60, maxReceiveCount: 7, priorities: 1 }, dlqArn);
    expect(attributes.VisibilityTimeout).toBe("60");
    expect(attributes.MessageRetentionPeriod).toBe(String(14 * 24 * 60 * 60));
    expect(MESSAGE_RETENTION_SECONDS).toBe(1_209_600);
    expect(JSON.parse(attributes.RedrivePolicy as string)).toEqual({ deadLetterTargetArn: dlqArn, maxReceiveCount: 7 });
    for (const value of Object.values(attributes)) expect(typeof value).toBe("string");
  });

  it("follows the channel's settings", () => {
    const attributes = queueAttributes({ name: "default", visibilityTimeoutSeconds: 30, maxReceiveCount: 500, priorities: 1 }, dlqArn);
    expect(attributes.VisibilityTimeout).toBe("30");
    expect(JSON.parse(attributes.RedrivePolicy as string).maxReceiveCount).toBe(500);
  });

  it("the DLQ keeps messages 14 days; names pair a queue with its DLQ", () => {
    expect(deadLetterAttributes({ name: "emails", visibilityTimeoutSeconds: 60, maxReceiveCount: 7, priorities: 1 }).MessageRetentionPeriod).toBe("1209600");
    expect(queueNames("queues", "emails")).toEqual({ queue: "queues-emails", deadLetter: "queues-emails-dlq" });
  });
});
