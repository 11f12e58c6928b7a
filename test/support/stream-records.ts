// Records of the tasks table's stream as Lambda delivers them, made up by tests: a
// task created (INSERT), a task removed by DynamoDB's TTL, and records that mean
// nothing for the counts. Sequence numbers grow as in one stream shard.
import { randomBytes, randomUUID } from "node:crypto";
import { marshall } from "@aws-sdk/util-dynamodb";
import type { StreamRecord } from "../../service/src/stream/stream-records.js";
import { itemKey, ownerKeyOf } from "../../service/src/store/table-definition.js";

let sequence = BigInt(Date.now()) * 1_000_000n;

function record(eventName: string, keys: Record<string, unknown>, images: { NewImage?: Record<string, unknown>; OldImage?: Record<string, unknown> }, byTtl = false): StreamRecord {
  sequence += 1n + BigInt(randomBytes(1)[0] ?? 0);
  return {
    eventID: randomUUID().replaceAll("-", ""),
    eventName,
    ...(byTtl ? { userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" } } : {}),
    dynamodb: {
      Keys: marshall(keys),
      ...(images.NewImage ? { NewImage: marshall(images.NewImage, { removeUndefinedValues: true }) } : {}),
      ...(images.OldImage ? { OldImage: marshall(images.OldImage, { removeUndefinedValues: true }) } : {}),
      SequenceNumber: String(sequence).padStart(21, "0"),
    },
  };
}

let nextId = (BigInt(Date.now()) << 22n) + 1n;

/** A task item as a server writes it (`ownerKey` unless `oldLayout`). */
export function taskItem(owner: bigint, options: { id?: bigint; hashCode?: string; oldLayout?: boolean } = {}): Record<string, unknown> {
  const id = options.id ?? nextId++;
  return {
    pk: itemKey.task(id),
    id,
    owner,
    ...(options.oldLayout ? {} : { ownerKey: ownerKeyOf(owner, id) }),
    channel: "default",
    state: "WAITING",
    hashCode: options.hashCode ?? `code-${id}`,
    version: 1n,
  };
}

/** The INSERT of a new task item. */
export function created(item: Record<string, unknown>): StreamRecord {
  return record("INSERT", { pk: item.pk }, { NewImage: item });
}

/** The REMOVE of a task item by DynamoDB's TTL. */
export function expired(item: Record<string, unknown>): StreamRecord {
  return record("REMOVE", { pk: item.pk }, { OldImage: { ...item, state: "SUCCESS" } }, true);
}

/** An update of a task item (nothing for the counts). */
export function modified(item: Record<string, unknown>): StreamRecord {
  return record("MODIFY", { pk: item.pk }, { OldImage: item, NewImage: { ...item, state: "PROCEEDING" } });
}

/** A task item written into a final state from PROCEEDING (its channel's succeeded or failed). */
export function finished(item: Record<string, unknown>, state: "SUCCESS" | "FAILURE" | "CANCEL", updateTime: string): StreamRecord {
  return record("MODIFY", { pk: item.pk }, { OldImage: { ...item, state: "PROCEEDING" }, NewImage: { ...item, state, updateTime } });
}

/** A final task item written again in the same state (its Next link): nothing for the counts. */
export function rewritten(item: Record<string, unknown>, state: "SUCCESS" | "FAILURE", updateTime: string): StreamRecord {
  return record("MODIFY", { pk: item.pk }, { OldImage: { ...item, state }, NewImage: { ...item, state, updateTime, next: 1n } });
}

/** A delete by a user, not by TTL (nothing for the counts). */
export function deletedByUser(item: Record<string, unknown>): StreamRecord {
  return record("REMOVE", { pk: item.pk }, { OldImage: item });
}

/** Any other kind of record: INSERT or TTL REMOVE of an item that is not a task. */
export function otherItem(eventName: "INSERT" | "REMOVE", item: Record<string, unknown>): StreamRecord {
  return eventName === "INSERT" ? record("INSERT", { pk: item.pk }, { NewImage: item }) : record("REMOVE", { pk: item.pk }, { OldImage: item }, true);
}
