// Reading the server's AWS calls (Faults.log) the way a fault-injection test needs
// to: which task item a DynamoDB write touched and which of the server's writes it
// was (the transition named in its `lastWrite` id, or the outbox/receipt bookkeeping),
// which task IDs an SQS send carried, which receipt handles a delete or a visibility
// change named, which messages a receive brought back. A test uses these to prove
// that its fault hit the call it means and that the recovery it names really ran.
import type { AwsCall } from "./harness.js";

/** A call as a fault hook sees it (before it is sent) or as the log keeps it. */
export type CallLike = Pick<AwsCall, "command" | "input">;

/** What a write to a task item did: a transition of the state machine, or a bookkeeping write of the store. */
export type TaskWriteKind = string | "claimOutbox" | "clearOutbox" | "renewReceiptHandle";

export interface TaskWrite {
  /** The task's ID. */
  taskId: string;
  kind: TaskWriteKind;
}

/** A DynamoDB attribute value as the SDK sends it (marshalled), or already plain. */
function plain(value: unknown): unknown {
  if (value && typeof value === "object") {
    const av = value as Record<string, unknown>;
    if ("S" in av) return av.S;
    if ("N" in av) return av.N;
    if ("BOOL" in av) return av.BOOL;
  }
  return value;
}

interface UpdateInput {
  Key?: Record<string, unknown>;
  UpdateExpression?: string;
  ExpressionAttributeValues?: Record<string, unknown>;
}

function describeUpdate(update: UpdateInput): TaskWrite | undefined {
  const pk = plain(update.Key?.pk);
  if (typeof pk !== "string" || !pk.startsWith("T#")) return undefined;
  const expression = update.UpdateExpression ?? "";
  const marker = /#lastWrite = (:v\d+)/.exec(expression)?.[1];
  let kind: TaskWriteKind | undefined;
  if (marker) kind = String(plain(update.ExpressionAttributeValues?.[marker])).split(".")[0];
  else if (/#outboxDueAt = /.test(expression)) kind = "claimOutbox";
  else if (/REMOVE .*#outboxDueAt/.test(expression)) kind = "clearOutbox";
  else if (/#receiptHandle = /.test(expression)) kind = "renewReceiptHandle";
  return kind ? { taskId: pk.slice(2), kind } : undefined;
}

/** The task-item writes of one call: an UpdateItem, or the task updates inside a TransactWriteItems. */
export function taskWrites(call: CallLike): TaskWrite[] {
  if (call.command === "UpdateItemCommand") {
    const write = describeUpdate(call.input as UpdateInput);
    return write ? [write] : [];
  }
  if (call.command === "TransactWriteItemsCommand") {
    const items = (call.input as { TransactItems?: { Update?: UpdateInput }[] }).TransactItems ?? [];
    return items.flatMap((item) => {
      const write = item.Update && describeUpdate(item.Update);
      return write ? [write] : [];
    });
  }
  return [];
}

/** The item key (`pk`) a GetItem, PutItem, UpdateItem or DeleteItem names. */
export function itemKeyOf(call: CallLike): string | undefined {
  const input = call.input as { Key?: Record<string, unknown>; Item?: Record<string, unknown> } | undefined;
  const pk = plain(input?.Key?.pk ?? input?.Item?.pk);
  return typeof pk === "string" ? pk : undefined;
}

/** The receipt handle a lease (or receipt renewal) write stores on its task. */
export function storedReceiptHandle(call: CallLike): string | undefined {
  const input = call.input as UpdateInput | undefined;
  const placeholder = /#receiptHandle = (:v\d+)/.exec(input?.UpdateExpression ?? "")?.[1];
  const value = placeholder ? plain(input?.ExpressionAttributeValues?.[placeholder]) : undefined;
  return typeof value === "string" ? value : undefined;
}

/** The lease token a lease write stores on its task, as a decimal string. */
export function storedLeaseToken(call: CallLike): string | undefined {
  const input = call.input as UpdateInput | undefined;
  const placeholder = /#leaseToken = (:v\d+)/.exec(input?.UpdateExpression ?? "")?.[1];
  const value = placeholder ? plain(input?.ExpressionAttributeValues?.[placeholder]) : undefined;
  return typeof value === "string" || typeof value === "bigint" ? String(value) : undefined;
}

/** The call is a write of `kind` (a transition name, or "claimOutbox"...) on task `taskId`. */
export function isTaskWrite(call: CallLike, taskId: string, kind: TaskWriteKind): boolean {
  return taskWrites(call).some((write) => write.taskId === taskId && write.kind === kind);
}

/** The task IDs (message bodies) a SendMessageBatch or SendMessage carried, on the given queue. */
export function sentTaskIds(call: CallLike, queueUrl: string): string[] {
  const input = call.input as { QueueUrl?: string; Entries?: { MessageBody?: string }[]; MessageBody?: string };
  if (input.QueueUrl !== queueUrl) return [];
  if (call.command === "SendMessageBatchCommand") return (input.Entries ?? []).map((entry) => entry.MessageBody ?? "");
  if (call.command === "SendMessageCommand") return [input.MessageBody ?? ""];
  return [];
}

/** The IDs SQS gave the messages a successful send of `taskId` created. */
export function sentMessageIds(call: AwsCall, queueUrl: string, taskId: string): string[] {
  if (call.error || !sentTaskIds(call, queueUrl).includes(taskId)) return [];
  const input = call.input as { Entries?: { Id?: string; MessageBody?: string }[] };
  const output = call.output as { Successful?: { Id?: string; MessageId?: string }[]; MessageId?: string } | undefined;
  if (call.command === "SendMessageCommand") return output?.MessageId ? [output.MessageId] : [];
  const entryIds = new Set((input.Entries ?? []).filter((entry) => entry.MessageBody === taskId).map((entry) => entry.Id));
  return (output?.Successful ?? []).filter((entry) => entryIds.has(entry.Id)).map((entry) => entry.MessageId ?? "");
}

/** The receipt handles a DeleteMessage(Batch) named. */
export function deletedHandles(call: CallLike): string[] {
  const input = call.input as { Entries?: { ReceiptHandle?: string }[]; ReceiptHandle?: string };
  if (call.command === "DeleteMessageBatchCommand") return (input.Entries ?? []).map((entry) => entry.ReceiptHandle ?? "");
  if (call.command === "DeleteMessageCommand") return [input.ReceiptHandle ?? ""];
  return [];
}

/** The (receipt handle, seconds) pairs a ChangeMessageVisibility(Batch) asked for. */
export function visibilityChanges(call: CallLike): { receiptHandle: string; seconds: number }[] {
  type Change = { ReceiptHandle?: string; VisibilityTimeout?: number };
  const input = call.input as Change & { Entries?: Change[] };
  const entries = call.command === "ChangeMessageVisibilityBatchCommand" ? (input.Entries ?? []) : call.command === "ChangeMessageVisibilityCommand" ? [input] : [];
  return entries.map((entry) => ({ receiptHandle: entry.ReceiptHandle ?? "", seconds: entry.VisibilityTimeout ?? -1 }));
}

/** The messages a successful ReceiveMessage brought back. */
export function receivedMessages(call: AwsCall): { messageId: string; receiptHandle: string; body: string }[] {
  if (call.command !== "ReceiveMessageCommand" || call.error) return [];
  const messages = (call.output as { Messages?: { MessageId?: string; ReceiptHandle?: string; Body?: string }[] } | undefined)?.Messages ?? [];
  return messages.map((m) => ({ messageId: m.MessageId ?? "", receiptHandle: m.ReceiptHandle ?? "", body: m.Body ?? "" }));
}

/** The index of the first call at or after `from` that matches, or -1. */
export function indexOfCall(log: readonly AwsCall[], matches: (call: AwsCall) => boolean, from = 0): number {
  for (let i = Math.max(0, from); i < log.length; i++) if (matches(log[i] as AwsCall)) return i;
  return -1;
}
