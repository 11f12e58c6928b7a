// The records of the tasks table's stream that the table stream function acts on,
// whoever delivers them: Lambda's event source mapping on AWS, or the local stream
// reader (local/stream-runner.ts) on the emulators. Both hand over the same shape:
// the DynamoDB Streams record.
import { unmarshall } from "@aws-sdk/util-dynamodb";
import type { AttributeValue } from "@aws-sdk/client-dynamodb";
import { A } from "../store/item-codec.js";
import { PARTITION_KEY, TASK_KEY_PREFIX } from "../store/table-definition.js";

/** The parts of a DynamoDB stream record this needs (Lambda's and GetRecords' records both have them). */
export interface StreamRecord {
  /** Unique per record in the stream: names the marker of the part a record starts. */
  eventID?: string;
  eventName?: string;
  userIdentity?: { type?: string; principalId?: string };
  dynamodb?: {
    Keys?: Record<string, AttributeValue>;
    NewImage?: Record<string, AttributeValue>;
    OldImage?: Record<string, AttributeValue>;
    /** Increasing within a stream shard (a numeric string). */
    SequenceNumber?: string;
  };
}

/** A task whose item DynamoDB's TTL removed (its old image). */
export interface ExpiredTask {
  id: bigint;
  owner: bigint;
  hashCode: string;
}

/** Where a record counts in a channel's per-minute activity (the console's last hour). */
export interface ActivityCount {
  channel: string;
  /** The epoch minute of the create or the final write. */
  minute: number;
  kind: "created" | "succeeded" | "failed";
}

/**
 * What a record means for the counts: a task created (its owner's Total +1, its
 * channel's created), a task expired (Total -1), a task that reached SUCCESS or
 * FAILURE (its channel's succeeded or failed), or nothing.
 */
export type StreamEvent =
  | { kind: "created"; owner: bigint; activity?: ActivityCount }
  | { kind: "expired"; owner: bigint; task: ExpiredTask }
  | { kind: "finished"; activity: ActivityCount };

const unmarshallOptions = { wrapNumbers: (value: string) => BigInt(value) };

/**
 * - INSERT of a task item that carries `ownerKey` (written by a server that no longer
 *   counts in its create; a task item without it was counted by its create): created.
 * - REMOVE of a task item by DynamoDB's TTL (the service principal, not a user): expired,
 *   whatever its layout (every task was counted once, one way or the other).
 * - MODIFY of a task item into SUCCESS or FAILURE from another state: finished (a later
 *   write of a final task, its Next link, changes no state and counts nothing).
 * - Anything else (other updates, deletes by a user, other items): undefined.
 */
export function streamEventOf(record: StreamRecord): StreamEvent | undefined {
  if (record.eventName === "INSERT") {
    const item = taskItemOf(record.dynamodb?.NewImage);
    if (!item || typeof item[A.ownerKey] !== "string") return undefined;
    const activity = activityOf(item, A.createTime, "created");
    return { kind: "created", owner: item[A.owner] as bigint, ...(activity ? { activity } : {}) };
  }
  if (record.eventName === "MODIFY") {
    const after = taskItemOf(record.dynamodb?.NewImage);
    const state = after?.[A.state];
    if (!after || (state !== "SUCCESS" && state !== "FAILURE")) return undefined;
    if (taskItemOf(record.dynamodb?.OldImage)?.[A.state] === state) return undefined;
    const activity = activityOf(after, A.updateTime, state === "SUCCESS" ? "succeeded" : "failed");
    return activity ? { kind: "finished", activity } : undefined;
  }
  if (record.eventName === "REMOVE" && removedByTtl(record)) {
    const item = taskItemOf(record.dynamodb?.OldImage);
    if (!item) return undefined;
    const task = { id: item[A.id] as bigint, owner: item[A.owner] as bigint, hashCode: item[A.hashCode] as string };
    return { kind: "expired", owner: task.owner, task };
  }
  return undefined;
}

/** DynamoDB's TTL deletes items as the service principal; a user's DeleteItem has no such identity. */
export function removedByTtl(record: StreamRecord): boolean {
  return record.userIdentity?.type === "Service" && record.userIdentity.principalId === "dynamodb.amazonaws.com";
}

function activityOf(item: Record<string, unknown>, timeAttribute: string, kind: ActivityCount["kind"]): ActivityCount | undefined {
  const at = Date.parse(String(item[timeAttribute] ?? ""));
  const channel = item[A.channel];
  if (!Number.isFinite(at) || typeof channel !== "string") return undefined;
  return { channel, minute: Math.floor(at / 60_000), kind };
}

function taskItemOf(image: Record<string, AttributeValue> | undefined): Record<string, unknown> | undefined {
  if (!image) return undefined;
  const item = unmarshall(image, unmarshallOptions);
  const pk = item[PARTITION_KEY];
  if (typeof pk !== "string" || !pk.startsWith(TASK_KEY_PREFIX)) return undefined;
  if (typeof item[A.owner] !== "bigint" || typeof item[A.id] !== "bigint") return undefined;
  return item;
}
