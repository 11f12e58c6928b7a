// Task item ↔ TaskRecord. Numbers are read as bigint (the document client is set
// up with wrapNumbers → BigInt), so IDs and owners above 2^53 stay exact.
import type { StoredTask } from "../core/task-repository.js";
import type { TaskRecord, TaskState } from "../tasks/task.js";
import { TaskStates } from "../tasks/task.js";
import { INLINE_PAYLOAD_MAX_BYTES, isParkedShard, itemKey, ownerKeyOf, TTL_ATTRIBUTE } from "./table-definition.js";

export type Item = Record<string, unknown>;

/** Attribute names of the task item, in one place. */
export const A = {
  pk: "pk",
  version: "version",
  id: "id",
  owner: "owner",
  /** `<owner>#<shard>`: the partition key of the index byOwnerShard (table-definition.ts, ownerKeyOf). */
  ownerKey: "ownerKey",
  /** `<channel>#<shard>`, on FAILURE tasks only: the partition key of the sparse index byChannelFailures (table-definition.ts, failedKeyOf). */
  failedKey: "failedKey",
  channel: "channel",
  state: "state",
  hashCode: "hashCode",
  retryCount: "retryCount",
  retryMaxLimit: "retryMaxLimit",
  prior: "prior",
  next: "next",
  createTime: "createTime",
  updateTime: "updateTime",
  input: "input",
  inputExternal: "inputExternal",
  output: "output",
  outputExternal: "outputExternal",
  awaitsPrior: "awaitsPrior",
  nextTakesOutput: "nextTakesOutput",
  notBeforeAt: "notBeforeAt",
  /** Task.RunAt (epoch ms), only on scheduled tasks. */
  runAt: "runAt",
  /** Task.Priority's level, only when above 1 (absent: level 1, the channel's own queue). */
  priority: "priority",
  /** Task.ConcurrencyKey, only when set. */
  concurrencyKey: "concurrencyKey",
  /** Task.TraceParent, only when set. */
  traceParent: "traceParent",
  /** The flow-control slots (counter item keys) a PROCEEDING task holds; absent when none. */
  heldSlots: "heldSlots",
  leaseToken: "leaseToken",
  messageId: "messageId",
  receiptHandle: "receiptHandle",
  leaseExpiresAt: "leaseExpiresAt",
  /** When the current lease started (epoch ms): a finished task's run time. */
  leasedAt: "leasedAt",
  outboxShard: "outboxShard",
  outboxDueAt: "outboxDueAt",
  outboxSweeps: "outboxSweeps",
  data: "data",
  expiresAt: TTL_ATTRIBUTE,
  reportLease: "reportLease",
  /** A random id of the last transition written: tells a lost answer to our own write from someone else's. */
  lastWrite: "lastWrite",
} as const;

export function isInline(payload: string): boolean {
  return payload.length <= INLINE_PAYLOAD_MAX_BYTES && Buffer.byteLength(payload, "utf8") <= INLINE_PAYLOAD_MAX_BYTES;
}

export function decodeTask(item: Item): StoredTask {
  const state = item[A.state] as string;
  if (!(TaskStates as readonly string[]).includes(state)) throw new Error(`task item ${String(item[A.pk])} has unknown state ${state}`);
  const leaseToken = optionalBig(item[A.leaseToken]);
  const outboxDueAt = optionalBig(item[A.outboxDueAt]);
  return {
    version: big(item[A.version]),
    lastWrite: item[A.lastWrite] as string | undefined,
    id: big(item[A.id]),
    owner: big(item[A.owner]),
    channel: item[A.channel] as string,
    state: state as TaskState,
    hashCode: item[A.hashCode] as string,
    input: (item[A.input] as string | undefined) ?? "",
    output: (item[A.output] as string | undefined) ?? "",
    inputExternal: item[A.inputExternal] === true,
    outputExternal: item[A.outputExternal] === true,
    retryCount: big(item[A.retryCount]),
    retryMaxLimit: big(item[A.retryMaxLimit]),
    prior: optionalBig(item[A.prior]) ?? 0n,
    next: optionalBig(item[A.next]) ?? 0n,
    createTime: item[A.createTime] as string,
    updateTime: item[A.updateTime] as string,
    awaitsPrior: item[A.awaitsPrior] === true,
    nextTakesOutput: item[A.nextTakesOutput] === true,
    notBeforeMs: Number(optionalBig(item[A.notBeforeAt]) ?? 0n),
    runAtMs: Number(optionalBig(item[A.runAt]) ?? 0n),
    priority: Number(optionalBig(item[A.priority]) ?? 1n),
    concurrencyKey: (item[A.concurrencyKey] as string | undefined) ?? "",
    heldSlots: Array.isArray(item[A.heldSlots]) ? (item[A.heldSlots] as string[]) : undefined,
    traceParent: (item[A.traceParent] as string | undefined) ?? "",
    lease:
      leaseToken === undefined
        ? undefined
        : {
            token: leaseToken,
            messageId: item[A.messageId] as string,
            receiptHandle: item[A.receiptHandle] as string,
            expiresAtMs: Number(optionalBig(item[A.leaseExpiresAt]) ?? 0n),
            startedAtMs: item[A.leasedAt] === undefined ? undefined : Number(optionalBig(item[A.leasedAt])),
          },
    reportLease: optionalBig(item[A.reportLease]),
    outbox:
      outboxDueAt === undefined
        ? undefined
        : {
            dueAtMs: Number(outboxDueAt),
            sweeps: Number(optionalBig(item[A.outboxSweeps]) ?? 0n),
            ...(isParkedShard(Number(optionalBig(item[A.outboxShard]) ?? 0n)) ? { parked: true } : {}),
          },
  };
}

/**
 * The item of a new task, with its owner shard (`ownerKey`) and, if given, the id of
 * the create that writes it (`lastWrite`). Payloads that are too big for the task
 * item go to their own items.
 */
export function encodeNewTask(task: TaskRecord, outboxShard: number, writeId?: string): Item {
  const item: Item = {
    [A.pk]: itemKey.task(task.id),
    [A.version]: 1n,
    [A.id]: task.id,
    [A.owner]: task.owner,
    [A.ownerKey]: ownerKeyOf(task.owner, task.id),
    [A.channel]: task.channel,
    [A.state]: task.state,
    [A.hashCode]: task.hashCode,
    [A.retryCount]: task.retryCount,
    [A.retryMaxLimit]: task.retryMaxLimit,
    [A.createTime]: task.createTime,
    [A.updateTime]: task.updateTime,
  };
  if (writeId !== undefined) item[A.lastWrite] = writeId;
  if (task.prior !== 0n) item[A.prior] = task.prior;
  if (task.awaitsPrior) item[A.awaitsPrior] = true;
  if (task.runAtMs > 0) item[A.runAt] = task.runAtMs;
  if (task.priority > 1) item[A.priority] = task.priority;
  if (task.concurrencyKey !== "") item[A.concurrencyKey] = task.concurrencyKey;
  if (task.traceParent) item[A.traceParent] = task.traceParent;
  if (task.notBeforeMs > 0) item[A.notBeforeAt] = task.notBeforeMs;
  if (task.input !== "") {
    if (isInline(task.input)) item[A.input] = task.input;
    else item[A.inputExternal] = true;
  }
  if (task.outbox) {
    item[A.outboxShard] = outboxShard;
    item[A.outboxDueAt] = task.outbox.dueAtMs;
    item[A.outboxSweeps] = task.outbox.sweeps;
  }
  return item;
}

function big(value: unknown): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  throw new Error(`expected a number attribute, got ${typeof value}`);
}

function optionalBig(value: unknown): bigint | undefined {
  return value === undefined || value === null ? undefined : big(value);
}
