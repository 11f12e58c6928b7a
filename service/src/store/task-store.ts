// The DynamoDB store of tasks, the core's TaskRepository (its contract is in
// core/task-repository.ts). Every write to a task item is conditional on the
// `version` it was read at (optimistic concurrency across replicas; no locks), and
// every state change goes through `transition`, which enforces the state machine's
// `from` states. A create is one conditional PutItem, or one TransactWriteItems when
// it writes more than the task item (a HashCode guard, a chain link, a large Input).
import type { DynamoDBDocumentClient, TransactWriteCommandInput } from "@aws-sdk/lib-dynamodb";
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { DescribeTableCommand, type AttributeValue } from "@aws-sdk/client-dynamodb";
import { randomBytes, randomInt } from "node:crypto";
import { isFinal, type Outbox, type TaskRecord } from "../tasks/task.js";
import type { TaskScope } from "../tasks/scope.js";
import { TRANSITIONS, type TransitionName, type UNREAD_PRECONDITIONS } from "../tasks/state-machine.js";
import { applyChange, applyTransition, receiptRenewal, type TaskChange } from "../tasks/apply-change.js";
import {
  DuplicateHashCode,
  IdTaken,
  SlotsFull,
  StaleTask,
  type DueOutboxShard,
  type ParkedPage,
  type ParkedPosition,
  type Link,
  type StoredTask,
  type TaskRepository,
  type UnreadWrite,
} from "../core/task-repository.js";
import { A, decodeTask, encodeNewTask, isInline, type Item } from "./item-codec.js";
import {
  INDEXES,
  itemKey,
  OUTBOX_SHARDS,
  outboxShardFor,
  PARKED_SHARD_NUMBERS,
  OWNER_COUNTER_SHARDS,
  OWNER_SHARDS,
  FAILURE_SHARDS,
  failedKeyOf,
  failedKeyOfShard,
  ownerKeyOfShard,
  PARTITION_KEY,
  TASK_KEY_PREFIX,
} from "./table-definition.js";
import { UpdateBuilder } from "./update-builder.js";
import { batchGetItems } from "./batch-get.js";
import { newLeaseToken, taskIdOfGeneratedHashCode } from "../tasks/ids.js";
import { AnswerBudget } from "../tasks/rules.js";

/** Tasks whose large payloads are read at once by getTasksUpTo (at most 8 x 512 KiB in memory beyond the answer). */
const PAYLOAD_READ_CHUNK = 8;

const unmarshallOptions = { wrapNumbers: (value: string) => BigInt(value) };
const CONFLICT_RETRIES = 6;

export interface TaskStoreOptions {
  /** Days a final task is kept before DynamoDB's TTL deletes it; undefined: forever. */
  retentionDays?: number | undefined;
  now?: () => number;
}

export class TaskStore implements TaskRepository {
  private readonly now: () => number;
  private readonly retentionSeconds: number | undefined;

  constructor(
    private readonly db: DynamoDBDocumentClient,
    readonly tableName: string,
    options: TaskStoreOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.retentionSeconds = options.retentionDays === undefined ? undefined : options.retentionDays * 86_400;
  }

  /** The table answers (DescribeTable: free of charge); the health check's probe of DynamoDB. */
  async probe(): Promise<void> {
    await this.db.send(new DescribeTableCommand({ TableName: this.tableName }));
  }

  // ----- reads (all task reads are strongly consistent) -----

  async getTask(id: bigint, withPayloads = false): Promise<StoredTask | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: itemKey.task(id) }, ConsistentRead: true }),
    );
    if (!Item) return undefined;
    const task = decodeTask(Item);
    return withPayloads ? this.withPayloads(task) : task;
  }

  /** Fills in Input / Output that live in their own items. */
  async withPayloads(task: StoredTask): Promise<StoredTask> {
    const [input, output] = await Promise.all([
      task.inputExternal ? this.getPayload(itemKey.input(task.id)) : task.input,
      task.outputExternal ? this.getPayload(itemKey.output(task.id)) : task.output,
    ]);
    return { ...task, input, output };
  }

  /** The task with this HashCode, with payloads: a generated code names its task; a caller's key has a guard item. */
  async findByHashCode(hashCode: string): Promise<StoredTask | undefined> {
    const generatedFor = taskIdOfGeneratedHashCode(hashCode);
    const id = generatedFor ?? (await this.findIdByHashCode(hashCode));
    const task = id === undefined ? undefined : await this.getTask(id);
    return task?.hashCode === hashCode ? this.withPayloads(task) : undefined;
  }

  /** The task ID a caller's HashCode (idempotency key) is taken by, from its guard item. */
  async findIdByHashCode(hashCode: string): Promise<bigint | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: itemKey.hashCode(hashCode) }, ConsistentRead: true }),
    );
    return Item ? (Item[A.id] as bigint) : undefined;
  }

  /** Exact number of the owner's tasks: the sum of a fixed number of counter shards. */
  async countOwnerTasks(owner: bigint): Promise<bigint> {
    const keys = Array.from({ length: OWNER_COUNTER_SHARDS }, (_, shard) => itemKey.ownerCounter(owner, shard));
    const items = await this.batchGet(keys);
    let total = 0n;
    for (const item of items.values()) total += (item.count as bigint | undefined) ?? 0n;
    return total;
  }

  /**
   * IDs of the owner's tasks, newest first, skipping `offset`. The owner's index
   * entries are spread over OWNER_SHARDS partitions, each read newest first: the
   * merged answer is exact down to the highest "last ID read" among the shards not
   * read to their end (anything unread is older). The first round reads each shard's
   * expected share of offset + limit with a margin, in parallel; a shard that may
   * still hold one of the first offset + limit is read further. Offset 0 costs
   * OWNER_SHARDS small queries (0.5 read unit each); an Offset of k reads about
   * 1.25 k index keys in all (about 100 bytes each, ~40 keys per 4 KB read).
   */
  async ownerTaskIds(owner: bigint, offset: bigint, limit: bigint, signal?: AbortSignal): Promise<bigint[]> {
    const wanted = Number(offset + limit);
    if (limit <= 0n) return [];
    const shards: OwnerShardRead[] = Array.from({ length: OWNER_SHARDS }, (_, shard) => ({
      key: ownerKeyOfShard(owner, shard),
      ids: [],
      startKey: undefined,
      done: false,
    }));
    const share = Math.ceil((wanted * 1.25) / OWNER_SHARDS) + 4;
    let toRead = shards;
    for (let round = 1; ; round++) {
      // Later rounds read more per shard: a shard that holds many of the newest tasks needs few rounds.
      const more = share * 2 ** (round - 1);
      await Promise.all(toRead.map((shard) => this.readOwnerShard(shard, shard.ids.length + more, signal)));
      const merged = shards.flatMap((shard) => shard.ids).sort(descending);
      // The (wanted)th newest ID read so far; a shard not read to its end and last read above it may hide newer ones.
      const bound = merged.length >= wanted ? merged[wanted - 1] : undefined;
      toRead = shards.filter((shard) => !shard.done && (bound === undefined || (shard.ids.at(-1) ?? bound + 1n) > bound));
      if (toRead.length === 0) return merged.slice(Number(offset), wanted);
    }
  }

  /** Reads the shard's index entries, newest first, until it has `target` IDs or its end. */
  private async readOwnerShard(shard: OwnerShardRead, target: number, signal: AbortSignal | undefined): Promise<void> {
    while (!shard.done && shard.ids.length < target) {
      // A deep Offset reads for a while: not past the call's deadline (its answer is gone by then).
      signal?.throwIfAborted();
      const page = await this.indexPageNewestFirst(INDEXES.byOwnerShard.name, A.ownerKey, shard.key, Math.min(target - shard.ids.length, 1000), shard.startKey);
      shard.ids.push(...page.ids);
      shard.startKey = page.startKey;
      shard.done = shard.startKey === undefined;
    }
  }

  /**
   * The channel's newest FAILURE tasks (up to `limit`), from the sparse index
   * byChannelFailures: FAILURE_SHARDS queries of `limit` keys each, merged newest
   * first, then the tasks (without their large payloads).
   */
  async recentFailures(channel: string, limit: number): Promise<StoredTask[]> {
    const shards = await Promise.all(
      Array.from({ length: FAILURE_SHARDS }, async (_, shard) =>
        (await this.indexPageNewestFirst(INDEXES.byChannelFailures.name, A.failedKey, failedKeyOfShard(channel, shard), limit)).ids,
      ),
    );
    return this.readTasks(shards.flat().sort(descending).slice(0, limit));
  }

  /** One page of task IDs from an index partition (`keyName` = `key`), newest first. */
  private async indexPageNewestFirst(
    indexName: string,
    keyName: string,
    key: string,
    limit: number,
    startKey?: Record<string, unknown>,
  ): Promise<{ ids: bigint[]; startKey: Record<string, unknown> | undefined }> {
    const page = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: indexName,
        KeyConditionExpression: "#key = :key",
        ExpressionAttributeNames: { "#key": keyName },
        ExpressionAttributeValues: { ":key": key },
        ScanIndexForward: false,
        Limit: limit,
        ExclusiveStartKey: startKey,
      }),
    );
    return { ids: (page.Items ?? []).map((item) => item[A.id] as bigint), startKey: page.LastEvaluatedKey };
  }

  /** Task items by ID (consistent, without their external payloads), in the order asked; missing ones are skipped. */
  private async readTasks(ids: bigint[]): Promise<StoredTask[]> {
    const items = await this.batchGet(ids.map((id) => itemKey.task(id)));
    return ids.flatMap((id) => {
      const item = items.get(itemKey.task(id));
      return item ? [decodeTask(item)] : [];
    });
  }

  /** Tasks by ID with payloads, in the order asked; missing ones are skipped. */
  async getTasks(ids: bigint[]): Promise<StoredTask[]> {
    return this.withPayloadsOf(await this.readTasks(ids));
  }

  async getTasksUpTo(ids: bigint[], maxBytes: number): Promise<{ tasks: StoredTask[]; cut: boolean }> {
    const found = await this.readTasks(ids);
    const tasks: StoredTask[] = [];
    const budget = new AnswerBudget(maxBytes);
    // A few tasks at a time: their payload items (up to 2 x 256 KiB each) are read only while the answer has room.
    for (let start = 0; start < found.length; start += PAYLOAD_READ_CHUNK) {
      for (const task of await this.withPayloadsOf(found.slice(start, start + PAYLOAD_READ_CHUNK))) {
        if (!budget.take(task)) return { tasks, cut: true };
        tasks.push(task);
      }
    }
    return { tasks, cut: false };
  }

  /** The tasks with their external payloads read (one BatchGetItem). */
  private async withPayloadsOf(tasks: StoredTask[]): Promise<StoredTask[]> {
    const payloadKeys = tasks.flatMap((task) => [
      ...(task.inputExternal ? [itemKey.input(task.id)] : []),
      ...(task.outputExternal ? [itemKey.output(task.id)] : []),
    ]);
    if (payloadKeys.length === 0) return tasks;
    const payloads = await this.batchGet(payloadKeys);
    const text = (key: string) => (payloads.get(key)?.[A.data] as string | undefined) ?? "";
    return tasks.map((task) => ({
      ...task,
      input: task.inputExternal ? text(itemKey.input(task.id)) : task.input,
      output: task.outputExternal ? text(itemKey.output(task.id)) : task.output,
    }));
  }

  /** The outbox marker's shards (`outboxShard`: 0 to outboxShards - 1); the sweeper picks which to read. */
  get outboxShards(): number {
    return OUTBOX_SHARDS;
  }

  /** The parking shards (parked markers of tasks scheduled far ahead). */
  get parkedShards(): readonly number[] {
    return PARKED_SHARD_NUMBERS;
  }

  /**
   * Parked markers of one parking shard with `outboxDueAt` (the task's RunAt) from
   * `after` (exclusive: a position returned earlier, or a time) up to `untilMs`,
   * earliest first; `next` is where to go on from.
   */
  async parkedTaskIds(shard: number, after: ParkedPosition, untilMs: number, limit: number): Promise<ParkedPage> {
    const page = await this.db.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: INDEXES.byOutboxDue.name,
        KeyConditionExpression: "#shard = :shard AND #due BETWEEN :from AND :until",
        ExpressionAttributeNames: { "#shard": A.outboxShard, "#due": A.outboxDueAt },
        ExpressionAttributeValues: { ":shard": shard, ":from": after.dueAtMs, ":until": untilMs },
        ExclusiveStartKey: after.key === undefined ? undefined : { [PARTITION_KEY]: after.key, [A.outboxShard]: shard, [A.outboxDueAt]: after.dueAtMs },
        Limit: limit,
      }),
    );
    const items = page.Items ?? [];
    const last = items.at(-1);
    return {
      ids: items.map((item) => BigInt(String(item[PARTITION_KEY]).slice(TASK_KEY_PREFIX.length))),
      next: last ? { dueAtMs: Number(last[A.outboxDueAt] as bigint), key: String(last[PARTITION_KEY]) } : after,
    };
  }

  /** Task IDs whose outbox marker is due, per shard asked for, from the sparse index (eventually consistent: re-read before acting). */
  async dueOutboxTaskIds(shards: readonly number[], limitPerShard: number): Promise<DueOutboxShard[]> {
    const now = this.now();
    return Promise.all(
      shards.map(async (shard) => {
        const page = await this.db.send(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: INDEXES.byOutboxDue.name,
            KeyConditionExpression: "#shard = :shard AND #due <= :now",
            ExpressionAttributeNames: { "#shard": A.outboxShard, "#due": A.outboxDueAt },
            ExpressionAttributeValues: { ":shard": shard, ":now": now },
            Limit: limitPerShard,
          }),
        );
        return { shard, ids: (page.Items ?? []).map((item) => BigInt(String(item[PARTITION_KEY]).slice(TASK_KEY_PREFIX.length))) };
      }),
    );
  }

  // ----- writes -----

  /**
   * Writes a new task. The usual one (generated HashCode, no Prior, Input inline) is
   * ONE conditional PutItem of the task item ("its key is new"); the task's index
   * entries (owner shard, outbox marker) come with it. A caller's HashCode (its guard
   * item), a Prior (the link on it) or a large Input (its own item) make it one
   * TransactWriteItems with those items. The Prior's version is part of the
   * condition, so the decision "wait for the Prior or queue now" was made on the
   * Prior's current state. The owner's Total is counted from the table's stream.
   */
  async create(task: TaskRecord, link?: Link): Promise<void> {
    const writeId = newWriteId("create");
    const taskItem = encodeNewTask(task, outboxShardFor(task.outbox?.parked, randomInt), writeId);
    const guarded = taskIdOfGeneratedHashCode(task.hashCode) !== task.id;
    const externalInput = task.input !== "" && !isInline(task.input);
    if (!guarded && !link && !externalInput) return this.putNewTask(taskItem, writeId);

    const items: NonNullable<TransactWriteCommandInput["TransactItems"]> = [
      {
        Put: {
          TableName: this.tableName,
          Item: taskItem,
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": PARTITION_KEY },
        },
      },
    ];
    const guardIndex = guarded ? items.length : -1;
    if (guarded) {
      items.push({
        Put: {
          TableName: this.tableName,
          Item: { [PARTITION_KEY]: itemKey.hashCode(task.hashCode), [A.id]: task.id },
          ConditionExpression: "attribute_not_exists(#pk)",
          ExpressionAttributeNames: { "#pk": PARTITION_KEY },
        },
      });
    }
    if (externalInput) {
      items.push({ Put: { TableName: this.tableName, Item: { [PARTITION_KEY]: itemKey.input(task.id), [A.data]: task.input } } });
    }
    if (link) {
      // Only Next changes on the Prior (its State and UpdateTime do not: a final Prior stays as it was).
      const update = new UpdateBuilder()
        .set(A.next, task.id)
        .set(A.nextTakesOutput, link.takesOutput)
        .increment(A.version)
        .when((b) => `${b.name(A.version)} = ${b.value(link.prior.version)}`);
      items.push({
        Update: {
          TableName: this.tableName,
          Key: { [PARTITION_KEY]: itemKey.task(link.prior.id) },
          ...update.expression(),
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      });
    }
    const priorIndex = link ? items.length - 1 : -1;
    try {
      // The SDK's retry of a transaction whose answer was lost reuses its token: DynamoDB answers it as done.
      await this.withConflictRetry(() => this.db.send(new TransactWriteCommand({ TransactItems: items, ClientRequestToken: requestToken() })));
    } catch (error) {
      const reasons = cancellationReasons(error);
      if (!reasons) throw error;
      if (guardIndex >= 0 && reasons[guardIndex]?.Code === "ConditionalCheckFailed") throw new DuplicateHashCode();
      if (reasons[0]?.Code === "ConditionalCheckFailed") throw new IdTaken();
      if (priorIndex >= 0 && reasons[priorIndex]?.Code === "ConditionalCheckFailed") {
        throw new StaleTask(decodeOptional(reasons[priorIndex]?.Item));
      }
      throw error;
    }
  }

  /**
   * The create as one conditional PutItem. Its key is taken when another replica drew
   * the same ID (IdTaken), or when this very write already happened: the SDK retries a
   * write whose answer was lost, the retry fails its condition, and the item it finds
   * carries this write's id. (Should a later write have replaced that id already, the
   * item still has this create's HashCode: a generated one, whose random part was
   * drawn for this create.)
   */
  private async putNewTask(item: Item, writeId: string): Promise<void> {
    try {
      await this.withConflictRetry(() =>
        this.db.send(
          new PutCommand({
            TableName: this.tableName,
            Item: item,
            ConditionExpression: "attribute_not_exists(#pk)",
            ExpressionAttributeNames: { "#pk": PARTITION_KEY },
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        ),
      );
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const existing = (error as { Item?: Record<string, AttributeValue> }).Item;
      if (existing?.[A.lastWrite]?.S === writeId || existing?.[A.hashCode]?.S === item[A.hashCode]) return;
      throw new IdTaken();
    }
  }

  /**
   * Applies a transition of the state machine to a task as it was read: the write
   * succeeds only if the task still has that version. Returns the task as written.
   */
  async transition(task: StoredTask, name: TransitionName, change: TaskChange = {}): Promise<StoredTask> {
    const updateTime = new Date(this.now()).toISOString();
    const written = applyTransition(task, name, change, updateTime); // throws if the state machine does not allow it
    const writeId = newWriteId(name);
    const update = new UpdateBuilder().set(A.state, written.state).set(A.updateTime, updateTime).set(A.lastWrite, writeId).increment(A.version);
    update.when((b) => `${b.name(A.version)} = ${b.value(task.version)}`);
    const extraPuts: Item[] = [];
    let outputExternal = task.outputExternal;
    if (change.output !== undefined) {
      if (isInline(change.output)) {
        if (change.output === "") update.remove(A.output);
        else update.set(A.output, change.output);
        if (task.outputExternal) update.remove(A.outputExternal);
        outputExternal = false;
      } else {
        update.remove(A.output).set(A.outputExternal, true);
        extraPuts.push({ [PARTITION_KEY]: itemKey.output(task.id), [A.data]: change.output });
        outputExternal = true;
      }
    }
    // The sparse index of a channel's recent failures: one index write per failed task, none for the others.
    if (written.state === "FAILURE") update.set(A.failedKey, failedKeyOf(written.channel, written.id));
    if (this.retentionSeconds !== undefined && isFinal(written.state)) {
      update.set(A.expiresAt, Math.floor(this.now() / 1000) + this.retentionSeconds);
    }
    if (change.retryCount !== undefined) update.set(A.retryCount, change.retryCount);
    if (change.reportLease !== undefined) update.set(A.reportLease, change.reportLease);
    if (change.notBeforeMs !== undefined) update.set(A.notBeforeAt, change.notBeforeMs);
    if (change.lease) {
      update
        .set(A.leaseToken, change.lease.token)
        .set(A.messageId, change.lease.messageId)
        .set(A.receiptHandle, change.lease.receiptHandle)
        .set(A.leaseExpiresAt, change.lease.expiresAtMs);
      if (change.lease.startedAtMs !== undefined) update.set(A.leasedAt, change.lease.startedAtMs);
    }
    if (change.leaseExpiresAtMs !== undefined) update.set(A.leaseExpiresAt, change.leaseExpiresAtMs);
    if (change.message) update.set(A.messageId, change.message.messageId).set(A.receiptHandle, change.message.receiptHandle);
    if (change.outbox === null) update.remove(A.outboxShard).remove(A.outboxDueAt).remove(A.outboxSweeps);
    else if (change.outbox) this.setOutbox(update, change.outbox);
    // Flow-control slots: a lease takes them in its own transaction; leaving PROCEEDING gives them back.
    const counters: SlotCount[] = [];
    if (change.takeSlots?.length) {
      update.set(A.heldSlots, written.heldSlots);
      for (const slot of change.takeSlots) counters.push({ key: slot.id, delta: 1, max: slot.max });
    } else if (task.heldSlots?.length && written.heldSlots === undefined) {
      update.remove(A.heldSlots);
      for (const key of task.heldSlots) counters.push({ key, delta: -1 });
    }

    try {
      await this.writeTaskUpdate(task.id, update, extraPuts, counters);
    } catch (error) {
      // The SDK retries a write whose answer was lost, and the retry fails its own
      // condition: if the task carries this write's id, the write did happen.
      if (!(error instanceof StaleTask && error.current?.lastWrite === writeId)) throw error;
    }
    return { ...written, version: task.version + 1n, lastWrite: writeId, outputExternal };
  }

  // ----- transitions written without a read (UNREAD_PRECONDITIONS in the state machine) -----

  /** `lease` to this message, if decideDelivery would lease; one conditional write, no read. */
  leaseUnread(id: bigint, message: { messageId: string; receiptHandle: string }, leaseMs: number): Promise<UnreadWrite> {
    const now = this.now();
    // A fresh random token (newLeaseToken); it cannot tell the task's current one
    // without a read, so the condition does: a draw equal to it (one in 2^63) leaves
    // the lease to the read path, which draws another.
    const token = newLeaseToken();
    const update = new UpdateBuilder()
      .set(A.leaseToken, token)
      .set(A.messageId, message.messageId)
      .set(A.receiptHandle, message.receiptHandle)
      .set(A.leaseExpiresAt, now + leaseMs)
      .set(A.leasedAt, now)
      .when((b) => `${b.name(A.state)} = ${b.value(TRANSITIONS.lease.from[0])}`)
      .when((b) => `attribute_not_exists(${b.name(A.awaitsPrior)}) OR ${b.name(A.awaitsPrior)} = ${b.value(false)}`)
      .when(
        (b) =>
          `${b.name(A.messageId)} = ${b.value(message.messageId)} OR ` +
          `attribute_not_exists(${b.name(A.notBeforeAt)}) OR ${b.name(A.notBeforeAt)} <= ${b.value(now)}`,
      )
      .when((b) => `attribute_not_exists(${b.name(A.leaseToken)}) OR ${b.name(A.leaseToken)} <> ${b.value(token)}`);
    return this.writeUnread(id, "lease", update);
  }

  /**
   * `succeed` with an inline Output, if decideReport(SUCCESS) would and the task has no
   * Next. A large Output needs its own item written with it, a transaction decided on a
   * read: the task is read and returned as it is.
   */
  async succeedUnread(id: bigint, output: string, leaseToken: bigint, scope?: TaskScope): Promise<UnreadWrite> {
    if (!isInline(output) || !fitsCondition(scope)) return { current: await this.getTask(id) };
    const update = new UpdateBuilder().remove(A.outputExternal).remove(A.outboxShard).remove(A.outboxDueAt).remove(A.outboxSweeps);
    if (output === "") update.remove(A.output);
    else update.set(A.output, output);
    if (this.retentionSeconds !== undefined) update.set(A.expiresAt, Math.floor(this.now() / 1000) + this.retentionSeconds);
    update.set(A.reportLease, leaseToken);
    update.when((b) => `${b.name(A.state)} = ${b.value(TRANSITIONS.succeed.from[0])} AND attribute_not_exists(${b.name(A.next)})`);
    // A task holding flow-control slots gives them back in a transaction decided on a read.
    update.when((b) => `attribute_not_exists(${b.name(A.heldSlots)})`);
    this.fence(update, leaseToken);
    this.limitTo(update, scope);
    return this.writeUnread(id, "succeed", update);
  }

  /**
   * The `queue` transition for a successor whose Prior succeeded. It is conditioned
   * on the successor still waiting for its Prior (not on a version), so a repeated
   * follow-up after a crash is harmless. Returns undefined when there was nothing to do.
   */
  async queueSuccessor(id: bigint, pipedInput: string | undefined, outbox: Outbox): Promise<StoredTask | undefined> {
    const update = new UpdateBuilder()
      .set(A.updateTime, new Date(this.now()).toISOString())
      .increment(A.version)
      .remove(A.awaitsPrior)
      .set(A.lastWrite, newWriteId("queue"))
      .when((b) => `${b.name(A.state)} = ${b.value(TRANSITIONS.queue.from[0])} AND attribute_exists(${b.name(A.awaitsPrior)})`);
    this.setOutbox(update, outbox);
    const extraPuts: Item[] = [];
    if (pipedInput !== undefined && pipedInput !== "") {
      if (isInline(pipedInput)) update.setIfAbsent(A.input, pipedInput);
      else {
        update.set(A.inputExternal, true);
        extraPuts.push({ [PARTITION_KEY]: itemKey.input(id), [A.data]: pipedInput });
      }
    }
    try {
      await this.writeTaskUpdate(id, update, extraPuts);
    } catch (error) {
      if (error instanceof StaleTask) return undefined;
      throw error;
    }
    return this.getTask(id);
  }

  /** Moves the outbox marker to `dueAtMs`, conditional on the version read, so that only one sweeper acts on it now. */
  claimOutbox(task: StoredTask, dueAtMs: number, sweeps: number, parked = false): Promise<StoredTask> {
    const outbox = { dueAtMs, sweeps, ...(parked ? { parked } : {}) };
    return this.touch(task, (update) => this.setOutbox(update, outbox), { outbox });
  }

  clearOutbox(task: StoredTask): Promise<StoredTask> {
    return this.touch(task, (update) => update.remove(A.outboxShard).remove(A.outboxDueAt).remove(A.outboxSweeps), { outbox: null });
  }

  /** A redelivered message of a lease that is still valid: keep the lease, take the new receipt handle. */
  renewReceiptHandle(task: StoredTask, receiptHandle: string): Promise<StoredTask> {
    return this.touch(task, (update) => update.set(A.receiptHandle, receiptHandle), receiptRenewal(task, receiptHandle));
  }

  // ----- internals -----

  /** A report with a lease token applies only to that lease (fencing); 0: any lease (the seed's behaviour). */
  private fence(update: UpdateBuilder, leaseToken: bigint): void {
    if (leaseToken !== 0n) update.when((b) => `${b.name(A.leaseToken)} = ${b.value(leaseToken)}`);
  }

  /** A write for a scoped caller applies only to a task in its scope (its owners, its channels). */
  private limitTo(update: UpdateBuilder, scope: TaskScope | undefined): void {
    const within = (attribute: string, values: ReadonlySet<unknown> | undefined) => {
      if (values !== undefined) update.when((b) => `${b.name(attribute)} IN (${[...values].map((value) => b.value(value)).join(", ")})`);
    };
    within(A.owner, scope?.owners);
    within(A.channel, scope?.channels);
  }

  /** Writes `name` on the task if the update's condition (its UNREAD_PRECONDITIONS entry) holds. */
  private async writeUnread(id: bigint, name: keyof typeof UNREAD_PRECONDITIONS, update: UpdateBuilder): Promise<UnreadWrite> {
    const writeId = newWriteId(name);
    update.set(A.state, TRANSITIONS[name].to).set(A.updateTime, new Date(this.now()).toISOString()).set(A.lastWrite, writeId).increment(A.version);
    try {
      const { Attributes } = await this.withConflictRetry(() =>
        this.db.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: { [PARTITION_KEY]: itemKey.task(id) },
            ...update.expression(),
            ReturnValues: "ALL_NEW",
            ReturnValuesOnConditionCheckFailure: "ALL_OLD",
          }),
        ),
      );
      return { written: decodeTask(Attributes as Item) };
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const current = decodeOptional((error as { Item?: Record<string, AttributeValue> }).Item);
      // The SDK's retry of a write whose answer was lost fails its own condition: the task carries our write id.
      return current?.lastWrite === writeId ? { written: current } : { current };
    }
  }

  /** A version-checked write that changes no state: `apply` writes `change`. */
  private async touch(task: StoredTask, apply: (update: UpdateBuilder) => void, change: TaskChange): Promise<StoredTask> {
    const update = new UpdateBuilder().increment(A.version).when((b) => `${b.name(A.version)} = ${b.value(task.version)}`);
    apply(update);
    await this.writeTaskUpdate(task.id, update, []);
    return { ...applyChange(task, change), version: task.version + 1n };
  }

  private setOutbox(update: UpdateBuilder, outbox: Outbox): void {
    update.set(A.outboxShard, outboxShardFor(outbox.parked, randomInt)).set(A.outboxDueAt, outbox.dueAtMs).set(A.outboxSweeps, outbox.sweeps);
  }

  /** UpdateItem on the task item, or a transaction when a payload item or a slot count is written with it. */
  private async writeTaskUpdate(id: bigint, update: UpdateBuilder, extraPuts: Item[], counters: SlotCount[] = []): Promise<void> {
    const key = { [PARTITION_KEY]: itemKey.task(id) };
    try {
      if (extraPuts.length === 0 && counters.length === 0) {
        await this.withConflictRetry(() =>
          this.db.send(
            new UpdateCommand({ TableName: this.tableName, Key: key, ...update.expression(), ReturnValuesOnConditionCheckFailure: "ALL_OLD" }),
          ),
        );
        return;
      }
      await this.withConflictRetry(() =>
        this.db.send(
          new TransactWriteCommand({
            ClientRequestToken: requestToken(),
            TransactItems: [
              { Update: { TableName: this.tableName, Key: key, ...update.expression(), ReturnValuesOnConditionCheckFailure: "ALL_OLD" } },
              ...counters.map((counter) => ({ Update: { TableName: this.tableName, ...slotCountUpdate(counter) } })),
              ...extraPuts.map((Item) => ({ Put: { TableName: this.tableName, Item } })),
            ],
          }),
        ),
      );
    } catch (error) {
      if (isConditionFailure(error)) throw new StaleTask(decodeOptional((error as { Item?: Record<string, AttributeValue> }).Item));
      const reasons = cancellationReasons(error);
      if (reasons?.[0]?.Code === "ConditionalCheckFailed") throw new StaleTask(decodeOptional(reasons[0].Item));
      const full = counters.findIndex((_, index) => reasons?.[index + 1]?.Code === "ConditionalCheckFailed");
      if (full >= 0) throw new SlotsFull((counters[full] as SlotCount).key);
      throw error;
    }
  }

  private async getPayload(key: string): Promise<string> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.tableName, Key: { [PARTITION_KEY]: key }, ConsistentRead: true }));
    return (Item?.[A.data] as string | undefined) ?? "";
  }

  /** Consistent BatchGetItem of up to any number of keys, retrying unprocessed ones. */
  private batchGet(keys: string[]): Promise<Map<string, Item>> {
    return batchGetItems(this.db, this.tableName, keys, { consistent: true });
  }

  /** DynamoDB cancels writes that collide with a concurrent transaction on the same item; retry those. */
  private async withConflictRetry<T>(write: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await write();
      } catch (error) {
        if (attempt >= CONFLICT_RETRIES || !isTransactionConflict(error)) throw error;
        await sleep(randomInt(5, 20 * attempt));
      }
    }
  }
}

/** A change of one flow-control slot's count; its item's key is the slot id (`IF#<channel>`, `CK#<channel>#<key>`). */
interface SlotCount {
  key: string;
  delta: 1 | -1;
  /** For a take: the count must stay at or below this. */
  max?: number;
}

/** The count of running tasks in a slot item: +1 only while below its max; -1 always. */
function slotCountUpdate(counter: SlotCount) {
  const update = new UpdateBuilder().add(SLOT_COUNT, BigInt(counter.delta));
  if (counter.max !== undefined) {
    const max = counter.max;
    update.when((b) => `attribute_not_exists(${b.name(SLOT_COUNT)}) OR ${b.name(SLOT_COUNT)} < ${b.value(max)}`);
  }
  return { Key: { [PARTITION_KEY]: counter.key }, ...update.expression(), ReturnValuesOnConditionCheckFailure: "ALL_OLD" as const };
}

const SLOT_COUNT = "running";

/** DynamoDB's IN takes at most 100 values: a larger scope is decided on a read instead. */
const MAX_IN_VALUES = 100;

function fitsCondition(scope: TaskScope | undefined): boolean {
  return (scope?.owners?.size ?? 0) <= MAX_IN_VALUES && (scope?.channels?.size ?? 0) <= MAX_IN_VALUES;
}

/** One owner shard as ownerTaskIds reads it: the IDs read so far, newest first, and where to go on. */
interface OwnerShardRead {
  key: string;
  ids: bigint[];
  startKey: Record<string, unknown> | undefined;
  done: boolean;
}

const descending = (a: bigint, b: bigint): number => (a < b ? 1 : a > b ? -1 : 0);

interface CancellationReason {
  Code?: string;
  Item?: Record<string, AttributeValue>;
}

function cancellationReasons(error: unknown): CancellationReason[] | undefined {
  if ((error as { name?: string })?.name !== "TransactionCanceledException") return undefined;
  return (error as { CancellationReasons?: CancellationReason[] }).CancellationReasons;
}

function isConditionFailure(error: unknown): boolean {
  return (error as { name?: string })?.name === "ConditionalCheckFailedException";
}

function isTransactionConflict(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  if (name === "TransactionConflictException") return true;
  const reasons = cancellationReasons(error);
  return !!reasons && reasons.some((reason) => reason.Code === "TransactionConflict") && !reasons.some((r) => r.Code === "ConditionalCheckFailed");
}

function decodeOptional(item: Record<string, AttributeValue> | undefined): StoredTask | undefined {
  if (!item || Object.keys(item).length === 0) return undefined;
  return decodeTask(unmarshall(item, unmarshallOptions) as Item);
}

/**
 * The id a write of a task writes into `lastWrite` (a state change, or its create):
 * the transition's name (or `create`) and 48 random bits, e.g. `lease.x3K9_a2QbQ`. The random part tells a lost answer to our own write
 * from someone else's; the name says on the item (and in a captured request) which
 * transition wrote it last.
 */
export function newWriteId(transition: TransitionName | "create"): string {
  return `${transition}.${randomBytes(6).toString("base64url")}`;
}

/**
 * One token per transaction we decide to send. The SDK's own retry of that request
 * (an answer lost to a timeout) reuses it, and DynamoDB answers the repeat as done
 * instead of running it again against its own result.
 */
function requestToken(): string {
  return randomBytes(18).toString("base64url");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
