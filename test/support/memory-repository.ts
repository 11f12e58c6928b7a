// An in-memory TaskRepository for the unit tests of the use cases. It keeps the
// DynamoDB store's conditional semantics (service/src/store/task-store.ts):
// - every write on a task read before is conditional on its version: StaleTask with
//   the task as it is now (undefined: gone);
// - a caller's HashCode is guarded (DuplicateHashCode), a taken ID is IdTaken, and a
//   chain link is conditional on the Prior's version;
// - the writes without a read (leaseUnread, succeedUnread) happen exactly under their
//   UNREAD_PRECONDITIONS, otherwise they answer with the task as it is;
// - every state change writes a `lastWrite` id `<transition>.<n>` (a create: `create.<n>`);
// - outbox markers are spread over `outboxShards` shards (default 1) and read per
//   shard, as the sweeper asks; the store draws a marker's shard at random, this one
//   takes the task's ID modulo the shard count, so a test knows where a marker is;
// - the owner's Total counts a task at once (the store's may lag it a moment);
// - Input / Output too large for the task item live apart: a read without payloads
//   shows them empty, as the store does.
// The task a write answers with comes from the same pure function the store uses
// (tasks/apply-change.ts). Faults and races are injected per call (`intercept`).
import { applyChange, applyTransition, receiptRenewal, type TaskChange } from "../../service/src/tasks/apply-change.js";
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
} from "../../service/src/core/task-repository.js";
import { isInline } from "../../service/src/store/item-codec.js";
import { newLeaseToken, taskIdOfGeneratedHashCode } from "../../service/src/tasks/ids.js";
import { AnswerBudget } from "../../service/src/tasks/rules.js";
import type { TransitionName } from "../../service/src/tasks/state-machine.js";
import type { Outbox, TaskRecord } from "../../service/src/tasks/task.js";
import { inScope, type TaskScope } from "../../service/src/tasks/scope.js";

/** One call of the repository, as `calls` records it and `intercept` matches it. */
export interface RepositoryCall {
  method: keyof TaskRepository;
  /** The task the call reads or writes. */
  id?: bigint;
  /** The transition a `transition` call writes. */
  transition?: TransitionName;
}

interface Interceptor {
  match: (call: RepositoryCall) => boolean;
  action: (call: RepositoryCall) => void | Promise<void>;
  times: number;
}

export class MemoryRepository implements TaskRepository {
  /** Every task as stored, with its payloads. */
  private readonly tasks = new Map<bigint, StoredTask>();
  /** The guard items of callers' HashCodes. */
  private readonly guards = new Map<string, bigint>();
  private readonly interceptors: Interceptor[] = [];
  private writes = 0;
  /** The running count of each flow-control slot (the store's IF# / CK# items). */
  readonly slotCounts = new Map<string, number>();
  /** Every call, in order. */
  readonly calls: RepositoryCall[] = [];

  readonly outboxShards: number;

  constructor(
    private readonly now: () => number = Date.now,
    options: { outboxShards?: number } = {},
  ) {
    this.outboxShards = options.outboxShards ?? 1;
  }

  // ----- for the tests -----

  /**
   * Runs `action` before the next `times` calls that `match` (before the call looks at
   * any task): throw in it to fail the call, or change a task in it to race the call.
   */
  intercept(match: (call: RepositoryCall) => boolean, action: (call: RepositoryCall) => void | Promise<void>, times = 1): void {
    this.interceptors.push({ match, action, times });
  }

  /** Fails the next `times` calls that `match` with `error` (a DynamoDB outage, say). */
  failNext(match: (call: RepositoryCall) => boolean, error: Error = new Error("injected repository failure"), times = 1): void {
    this.intercept(match, () => {
      throw error;
    }, times);
  }

  /** The task as stored, with payloads (no call is recorded). */
  peek(id: bigint): StoredTask | undefined {
    const task = this.tasks.get(id);
    return task && structuredClone(task);
  }

  /** Stores a task as it is given (a situation a test starts from); returns it as stored. */
  seed(task: TaskRecord, version = 1n): StoredTask {
    const stored: StoredTask = {
      ...structuredClone(task),
      version,
      lastWrite: undefined,
      inputExternal: !isInline(task.input),
      outputExternal: !isInline(task.output),
    };
    this.tasks.set(task.id, stored);
    return structuredClone(stored);
  }

  // ----- reads -----

  async getTask(id: bigint, withPayloads = false): Promise<StoredTask | undefined> {
    await this.enter({ method: "getTask", id });
    return this.view(id, withPayloads);
  }

  async withPayloads(task: StoredTask): Promise<StoredTask> {
    await this.enter({ method: "withPayloads", id: task.id });
    const stored = this.tasks.get(task.id);
    return {
      ...task,
      input: task.inputExternal ? (stored?.input ?? "") : task.input,
      output: task.outputExternal ? (stored?.output ?? "") : task.output,
    };
  }

  async findByHashCode(hashCode: string): Promise<StoredTask | undefined> {
    await this.enter({ method: "findByHashCode" });
    const id = taskIdOfGeneratedHashCode(hashCode) ?? this.guards.get(hashCode);
    const task = id === undefined ? undefined : this.view(id, true);
    return task?.hashCode === hashCode ? task : undefined;
  }

  async findIdByHashCode(hashCode: string): Promise<bigint | undefined> {
    await this.enter({ method: "findIdByHashCode" });
    return this.guards.get(hashCode);
  }

  async countOwnerTasks(owner: bigint): Promise<bigint> {
    await this.enter({ method: "countOwnerTasks" });
    return BigInt(this.ownerIds(owner).length);
  }

  async ownerTaskIds(owner: bigint, offset: bigint, limit: bigint, signal?: AbortSignal): Promise<bigint[]> {
    await this.enter({ method: "ownerTaskIds" });
    signal?.throwIfAborted();
    return this.ownerIds(owner).slice(Number(offset), Number(offset + limit));
  }

  async recentFailures(channel: string, limit: number): Promise<StoredTask[]> {
    await this.enter({ method: "recentFailures" });
    const ids = [...this.tasks.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    return ids.flatMap((id) => this.view(id, false) ?? []).filter((task) => task.state === "FAILURE" && task.channel === channel).slice(0, limit);
  }

  async getTasks(ids: bigint[]): Promise<StoredTask[]> {
    await this.enter({ method: "getTasks" });
    return ids.flatMap((id) => this.view(id, true) ?? []);
  }

  async getTasksUpTo(ids: bigint[], maxBytes: number): Promise<{ tasks: StoredTask[]; cut: boolean }> {
    await this.enter({ method: "getTasksUpTo" });
    const tasks: StoredTask[] = [];
    const budget = new AnswerBudget(maxBytes);
    for (const task of ids.flatMap((id) => this.view(id, true) ?? [])) {
      if (!budget.take(task)) return { tasks, cut: true };
      tasks.push(task);
    }
    return { tasks, cut: false };
  }

  /** Due markers of the shards asked for, earliest first, at most `limitPerShard` per shard. */
  async dueOutboxTaskIds(shards: readonly number[], limitPerShard: number): Promise<DueOutboxShard[]> {
    await this.enter({ method: "dueOutboxTaskIds" });
    const now = this.now();
    const due = [...this.tasks.values()]
      .filter((task) => task.outbox && task.outbox.dueAtMs <= now)
      .sort((a, b) => (a.outbox?.dueAtMs ?? 0) - (b.outbox?.dueAtMs ?? 0));
    return shards.map((shard) => ({
      shard,
      ids: due
        .filter((task) => this.markerShardOf(task) === shard)
        .slice(0, limitPerShard)
        .map((task) => task.id),
    }));
  }

  /** The shard of a task's outbox marker (the store draws one at random). */
  outboxShardOf(id: bigint): number {
    return Number(id % BigInt(this.outboxShards));
  }

  /** One parking shard, numbered after the outbox shards. */
  get parkedShards(): readonly number[] {
    return [this.outboxShards];
  }

  private markerShardOf(task: StoredTask): number {
    return task.outbox?.parked ? this.outboxShards : this.outboxShardOf(task.id);
  }

  /** Parked markers after `after` up to `untilMs`, earliest first (ties by task key, as the index orders them). */
  async parkedTaskIds(shard: number, after: ParkedPosition, untilMs: number, limit: number): Promise<ParkedPage> {
    await this.enter({ method: "parkedTaskIds" });
    const key = (task: StoredTask) => `T#${task.id}`;
    const found = [...this.tasks.values()]
      .filter((task) => task.outbox?.parked && this.markerShardOf(task) === shard)
      .filter((task) => {
        const due = task.outbox?.dueAtMs ?? 0;
        return due <= untilMs && (due > after.dueAtMs || (due === after.dueAtMs && (after.key === undefined || key(task) > after.key)));
      })
      .sort((a, b) => (a.outbox?.dueAtMs ?? 0) - (b.outbox?.dueAtMs ?? 0) || (key(a) < key(b) ? -1 : 1))
      .slice(0, limit);
    const last = found.at(-1);
    return { ids: found.map((task) => task.id), next: last ? { dueAtMs: last.outbox?.dueAtMs ?? 0, key: key(last) } : after };
  }

  // ----- writes -----

  async create(task: TaskRecord, link?: Link): Promise<void> {
    await this.enter({ method: "create", id: task.id });
    // The transaction's conditions, in the order the store tells its failures apart.
    const guarded = taskIdOfGeneratedHashCode(task.hashCode) !== task.id;
    if (guarded && this.guards.has(task.hashCode)) throw new DuplicateHashCode();
    if (this.tasks.has(task.id)) throw new IdTaken();
    const prior = link && this.tasks.get(link.prior.id);
    if (link && prior?.version !== link.prior.version) throw new StaleTask(this.view(link.prior.id, false));
    if (prior && link) this.tasks.set(prior.id, { ...prior, next: task.id, nextTakesOutput: link.takesOutput, version: prior.version + 1n });
    if (guarded) this.guards.set(task.hashCode, task.id);
    this.seed({ ...task, reportLease: undefined });
    (this.tasks.get(task.id) as StoredTask).lastWrite = `create.${++this.writes}`;
  }

  async transition(task: StoredTask, name: TransitionName, change: TaskChange = {}): Promise<StoredTask> {
    await this.enter({ method: "transition", id: task.id, transition: name });
    const updateTime = new Date(this.now()).toISOString();
    const written = applyTransition(task, name, change, updateTime); // throws if the state machine does not allow it
    const current = this.current(task);
    // Flow-control slots, as the store's transaction: all taken or none; given back on leaving PROCEEDING.
    const full = (change.takeSlots ?? []).find((slot) => (this.slotCounts.get(slot.id) ?? 0) >= slot.max);
    if (full) throw new SlotsFull(full.id);
    const stored = this.commit(current, name, change);
    for (const slot of change.takeSlots ?? []) this.slotCounts.set(slot.id, (this.slotCounts.get(slot.id) ?? 0) + 1);
    if (!change.takeSlots?.length && written.heldSlots === undefined) {
      for (const id of current.heldSlots ?? []) this.slotCounts.set(id, (this.slotCounts.get(id) ?? 0) - 1);
    }
    return { ...written, version: stored.version, lastWrite: stored.lastWrite, outputExternal: stored.outputExternal };
  }

  async leaseUnread(id: bigint, message: { messageId: string; receiptHandle: string }, leaseMs: number): Promise<UnreadWrite> {
    await this.enter({ method: "leaseUnread", id });
    const now = this.now();
    const task = this.tasks.get(id);
    // The store draws its token without a read and conditions the write on it differing from the task's.
    const token = newLeaseToken();
    const holds =
      task?.state === "WAITING" &&
      !task.awaitsPrior &&
      (task.lease?.messageId === message.messageId || task.notBeforeMs <= now) &&
      task.lease?.token !== token;
    if (!task || !holds) return { current: this.view(id, false) };
    const lease = { token, messageId: message.messageId, receiptHandle: message.receiptHandle, expiresAtMs: now + leaseMs, startedAtMs: now };
    this.commit(task, "lease", { lease });
    return { written: this.view(id, false) as StoredTask };
  }

  async succeedUnread(id: bigint, output: string, leaseToken: bigint, scope?: TaskScope): Promise<UnreadWrite> {
    await this.enter({ method: "succeedUnread", id });
    const task = this.tasks.get(id);
    const holds =
      isInline(output) &&
      task?.state === "PROCEEDING" &&
      task.next === 0n &&
      !task.heldSlots?.length &&
      (leaseToken === 0n || task.lease?.token === leaseToken) &&
      inScope(scope, task);
    if (!task || !holds) return { current: this.view(id, false) };
    this.commit(task, "succeed", { output, outbox: null, reportLease: leaseToken });
    return { written: this.view(id, false) as StoredTask };
  }

  async queueSuccessor(id: bigint, pipedInput: string | undefined, outbox: Outbox): Promise<StoredTask | undefined> {
    await this.enter({ method: "queueSuccessor", id });
    const task = this.tasks.get(id);
    if (task?.state !== "WAITING" || !task.awaitsPrior) return undefined;
    const pipe = pipedInput !== undefined && pipedInput !== "" && task.input === "";
    this.tasks.set(id, {
      ...this.commit(task, "queue", { outbox }),
      awaitsPrior: false,
      input: pipe ? pipedInput : task.input,
      inputExternal: pipe ? !isInline(pipedInput) : task.inputExternal,
    });
    return this.view(id, false);
  }

  async claimOutbox(task: StoredTask, dueAtMs: number, sweeps: number, parked = false): Promise<StoredTask> {
    await this.enter({ method: "claimOutbox", id: task.id });
    return this.touch(task, { outbox: { dueAtMs, sweeps, ...(parked ? { parked } : {}) } });
  }

  async clearOutbox(task: StoredTask): Promise<StoredTask> {
    await this.enter({ method: "clearOutbox", id: task.id });
    return this.touch(task, { outbox: null });
  }

  async renewReceiptHandle(task: StoredTask, receiptHandle: string): Promise<StoredTask> {
    await this.enter({ method: "renewReceiptHandle", id: task.id });
    return this.touch(task, receiptRenewal(task, receiptHandle));
  }

  // ----- internals -----

  private async enter(call: RepositoryCall): Promise<void> {
    this.calls.push(call);
    const interceptor = this.interceptors.find((candidate) => candidate.match(call));
    if (!interceptor) return;
    interceptor.times -= 1;
    if (interceptor.times <= 0) this.interceptors.splice(this.interceptors.indexOf(interceptor), 1);
    await interceptor.action(call);
  }

  /** The task as a read returns it: a copy; without payloads, the ones stored apart are empty. */
  private view(id: bigint, withPayloads: boolean): StoredTask | undefined {
    const task = this.tasks.get(id);
    if (!task) return undefined;
    const copy = structuredClone(task);
    if (!withPayloads && copy.inputExternal) copy.input = "";
    if (!withPayloads && copy.outputExternal) copy.output = "";
    return copy;
  }

  /** The stored task, if it still has the version `task` was read at; StaleTask otherwise. */
  private current(task: StoredTask): StoredTask {
    const stored = this.tasks.get(task.id);
    if (stored?.version !== task.version) throw new StaleTask(this.view(task.id, false));
    return stored;
  }

  /** Writes a state change on the stored task; returns it as stored. */
  private commit(task: StoredTask, name: TransitionName, change: TaskChange): StoredTask {
    const stored: StoredTask = {
      ...applyTransition(task, name, change, new Date(this.now()).toISOString()),
      version: task.version + 1n,
      lastWrite: `${name}.${++this.writes}`,
      outputExternal: change.output === undefined ? task.outputExternal : !isInline(change.output),
    };
    this.tasks.set(task.id, stored);
    return stored;
  }

  /** A version-checked write that changes no state. */
  private touch(task: StoredTask, change: TaskChange): StoredTask {
    const stored = this.current(task);
    this.tasks.set(task.id, { ...applyChange(stored, change), version: stored.version + 1n });
    return { ...applyChange(task, change), version: task.version + 1n };
  }

  /** The owner's task IDs, newest (highest ID) first. */
  private ownerIds(owner: bigint): bigint[] {
    return [...this.tasks.values()]
      .filter((task) => task.owner === owner)
      .map((task) => task.id)
      .sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  }
}
