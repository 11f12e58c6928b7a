// The one definition of the table and of the channel queues (SPEC §5) that the
// CDK stack, the emulators and LocalStack provisioning share.
import { describe, expect, it } from "vitest";
import { createTableInput, INDEXES, PARTITION_KEY } from "../../service/src/store/table-definition.js";
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

  it("has the GSIs byOwner (owner N, id N) and byOutboxDue, both KEYS_ONLY", () => {
    const indexes = input.GlobalSecondaryIndexes ?? [];
    expect(indexes.map((index) => index.IndexName).sort()).toEqual(["byOutboxDue", "byOwner"]);
    const byOwner = indexes.find((index) => index.IndexName === "byOwner");
    expect(byOwner?.KeySchema).toEqual([
      { AttributeName: "owner", KeyType: "HASH" },
      { AttributeName: "id", KeyType: "RANGE" },
    ]);
    const byOutboxDue = indexes.find((index) => index.IndexName === "byOutboxDue");
    expect(byOutboxDue?.KeySchema?.map((key) => key.KeyType)).toEqual(["HASH", "RANGE"]);
    expect(byOutboxDue?.KeySchema?.map((key) => key.AttributeName)).toEqual([INDEXES.byOutboxDue.partitionKey.name, INDEXES.byOutboxDue.sortKey.name]);
    for (const index of indexes) {
      expect(index.Projection).toEqual({ ProjectionType: "KEYS_ONLY" });
      expect(index.ProvisionedThroughput).toBeUndefined();
    }
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
    expect(type).toMatchObject({ pk: "S", owner: "N", id: "N" });
    expect(type[INDEXES.byOutboxDue.partitionKey.name]).toBe(INDEXES.byOutboxDue.partitionKey.type);
    expect(type[INDEXES.byOutboxDue.sortKey.name]).toBe(INDEXES.byOutboxDue.sortKey.type);
  });
});

describe("queueAttributes", () => {
  const dlqArn = "arn:aws:sqs:us-east-1:000000000000:queues-emails-dlq";

  it("visibility is the channel's lease, retention 14 days, redrive to the DLQ", () => {
    const attributes = queueAttributes({ name: "emails", visibilityTimeoutSeconds: 60, maxReceiveCount: 7 }, dlqArn);
    expect(attributes.VisibilityTimeout).toBe("60");
    expect(attributes.MessageRetentionPeriod).toBe(String(14 * 24 * 60 * 60));
    expect(MESSAGE_RETENTION_SECONDS).toBe(1_209_600);
    expect(JSON.parse(attributes.RedrivePolicy as string)).toEqual({ deadLetterTargetArn: dlqArn, maxReceiveCount: 7 });
    for (const value of Object.values(attributes)) expect(typeof value).toBe("string");
  });

  it("follows the channel's settings", () => {
    const attributes = queueAttributes({ name: "default", visibilityTimeoutSeconds: 30, maxReceiveCount: 500 }, dlqArn);
    expect(attributes.VisibilityTimeout).toBe("30");
    expect(JSON.parse(attributes.RedrivePolicy as string).maxReceiveCount).toBe(500);
  });

  it("the DLQ keeps messages 14 days; names pair a queue with its DLQ", () => {
    expect(deadLetterAttributes({ name: "emails", visibilityTimeoutSeconds: 60, maxReceiveCount: 7 }).MessageRetentionPeriod).toBe("1209600");
    expect(queueNames("queues", "emails")).toEqual({ queue: "queues-emails", deadLetter: "queues-emails-dlq" });
  });
});
