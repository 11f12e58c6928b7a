// The producer-facing operations: create, the three queries, cancel, queue length.
import { dispatch, outboxDue, type CoreContext } from "./context.js";
import { DuplicateHashCode, IdTaken, StaleTask, type StoredTask } from "./task-repository.js";
import { generateHashCode, taskIdOfGeneratedHashCode } from "../tasks/ids.js";
import { decideLink } from "../tasks/state-machine.js";
import { conflict, invalid, notFound, Rejection, Status } from "../tasks/status.js";
import { checkOffset, PAGE_MAX_BYTES, type NewTask, type Page } from "../tasks/rules.js";
import { isFinal, type TaskRecord } from "../tasks/task.js";
import { bestEffort } from "./best-effort.js";
import { cancelTask } from "./chains.js";
import { decidedOn } from "./optimistic.js";
import { inScope, ownerInScope, visible, type TaskScope } from "../tasks/scope.js";

const MAX_CREATE_ROUNDS = 8;

export interface CancelResult {
  /** The tasks cancelled by this call that the caller may see, in chain order, starting with the task asked for. */
  tasks: StoredTask[];
  /** Tasks of the chain this call cancelled that are outside the caller's scope (other owners' successors): counted, not shown. */
  hidden: number;
  /** The rest of the chain is still being cancelled (by the sweeper). */
  cascadePending: boolean;
  /** Some of `tasks` are shown without their large Input or Output (reading them back failed). */
  payloadsMissing: boolean;
}

export class TaskService {
  constructor(private readonly ctx: CoreContext) {}

  /**
   * Writes the task (and its chain link) in one atomic write, then sends its SQS
   * message. The task item carries an outbox marker from the start, so if this
   * replica dies before the send, the sweeper sends it. Returns the HashCode, and
   * tells `onHashCode` as soon as it is known (a generated one names the task's ID).
   * A Prior outside the caller's `scope` is answered as absent (404), and so is a
   * generated HashCode sent back that names a task outside it (400, as one naming no
   * task). A caller's own HashCode is unique across all owners: taken by any task, it
   * is 409 (nothing created; the task stays unreadable to the caller). The caller
   * checks that the new task's Owner is in the scope (a refusal, not a State).
   */
  async create(request: NewTask, onHashCode: (hashCode: string) => void = () => {}, scope?: TaskScope): Promise<string> {
    const { ctx } = this;
    ctx.channels.get(request.channel);
    if (request.hashCode) onHashCode(request.hashCode);
    if (request.hashCode && taskIdOfGeneratedHashCode(request.hashCode) !== undefined) {
      // A HashCode the server generated, sent back: the same task again (409), or nothing a caller may choose
      // (one naming a task outside the caller's scope reads as one naming no task).
      if (visible(scope, await ctx.store.findByHashCode(request.hashCode))) throw duplicate(request.hashCode);
      throw invalid(`HashCode "${request.hashCode}" has the form of a generated one (with "~") but names no task; choose 1 to 128 characters of [A-Za-z0-9._:-]`);
    }
    // A retried create of a chained task must still answer "duplicate HashCode",
    // not "the Prior already has a Next" (the first attempt linked it).
    if (request.hashCode && request.prior !== 0n && (await ctx.store.findIdByHashCode(request.hashCode)) !== undefined) {
      throw duplicate(request.hashCode);
    }
    for (let round = 1; round <= MAX_CREATE_ROUNDS; round++) {
      const id = ctx.ids.next();
      const hashCode = request.hashCode || generateHashCode(id);
      if (!request.hashCode) onHashCode(hashCode);
      const prior = request.prior === 0n ? undefined : visible(scope, await ctx.store.getTask(request.prior));
      const link = request.prior === 0n ? undefined : decideLink(prior, request.prior);
      let input = request.input;
      if (link === "queueNow" && input === "") input = (await ctx.store.withPayloads(decidedOn(prior))).output;
      const queued = link !== "awaitPrior";
      const now = new Date(ctx.now()).toISOString();
      const task: TaskRecord = {
        id,
        owner: request.owner,
        channel: request.channel,
        state: "WAITING",
        hashCode,
        input,
        output: "",
        retryCount: 0n,
        retryMaxLimit: request.retryMaxLimit,
        prior: request.prior,
        next: 0n,
        createTime: now,
        updateTime: now,
        awaitsPrior: !queued,
        nextTakesOutput: false,
        notBeforeMs: request.runAtMs,
        runAtMs: request.runAtMs,
        priority: request.priority,
        concurrencyKey: request.concurrencyKey,
        ...(request.traceParent ? { traceParent: request.traceParent } : {}),
        lease: undefined,
        outbox: queued ? outboxDue(ctx, request.runAtMs) : undefined,
      };
      try {
        await ctx.store.create(task, prior ? { prior, takesOutput: request.input === "" } : undefined);
      } catch (error) {
        if (error instanceof DuplicateHashCode) throw duplicate(hashCode);
        if (error instanceof IdTaken || error instanceof StaleTask) continue; // fresh ID / the Prior changed: decide again
        throw error;
      }
      ctx.log.info({ taskId: String(task.id), channel: task.channel, prior: String(task.prior) }, queued ? "task created" : "task created; waits for its Prior");
      ctx.events.created(task);
      // A RunAt ahead: sent delayed, or (beyond SQS's 15 minutes) parked for the sweeper's look-ahead.
      if (queued) await bestEffort(ctx.log, "send of a new task", { taskId: String(task.id) }, () => dispatch(ctx, task));
      return hashCode;
    }
    throw new Rejection(Status.UNAVAILABLE, "The Prior task kept changing while the task was being created; retry");
  }

  /**
   * Creates each task (CreateTasks), `concurrency` at a time; their SQS sends are
   * batched. An entry that is already an error (it failed validation) stays one. The
   * outcomes come back in the order of `requests`; one failure does not stop the rest.
   */
  async createAll(requests: (NewTask | { error: unknown })[], concurrency: number, scope?: TaskScope): Promise<({ hashCode: string } | { error: unknown })[]> {
    const outcomes: ({ hashCode: string } | { error: unknown })[] = requests.map((request) => ("error" in request ? request : { error: undefined }));
    let next = 0;
    const worker = async () => {
      for (let index = next++; index < requests.length; index = next++) {
        const request = requests[index] as NewTask | { error: unknown };
        if ("error" in request) continue;
        try {
          outcomes[index] = { hashCode: await this.create(request, undefined, scope) };
        } catch (error) {
          outcomes[index] = { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
    return outcomes;
  }

  /** The task; one outside the caller's `scope` is answered exactly as an absent one. */
  async getById(id: bigint, scope?: TaskScope): Promise<StoredTask> {
    const task = visible(scope, await this.ctx.store.getTask(id, true));
    if (!task) throw notFound(`Task ${id} does not exist`);
    return task;
  }

  /** Consistent reads (the task a generated code names, or a caller's key's guard item, then the task): finds a task the moment CreateTask answered. */
  async getByHashCode(hashCode: string, scope?: TaskScope): Promise<StoredTask> {
    const task = visible(scope, await this.ctx.store.findByHashCode(hashCode));
    if (!task) throw notFound(`No task has HashCode "${hashCode.slice(0, 128)}"`);
    return task;
  }

  /**
   * The owner's Total and a page of their tasks, newest first. Total may lag a create
   * by a moment (it is counted from the table's stream), so the first page is read
   * whatever it says (with it, in parallel); a later page whose Offset is at or past
   * Total is answered empty without reading the index (an Offset past the end would
   * otherwise read all of the owner's index entries). An owner outside the caller's
   * `scope` is answered as an owner without tasks: Total 0, an empty page, nothing read.
   */
  async listByOwner(owner: bigint, page: Page, signal?: AbortSignal, scope?: TaskScope): Promise<{ total: bigint; tasks: StoredTask[]; cut: boolean }> {
    const { store } = this.ctx;
    // An owner's page spans channels: a scope of channels cannot limit it (the Authorizer refuses such callers).
    if (scope?.channels !== undefined) throw new Error("a page of an owner's tasks cannot be limited to channels");
    if (!ownerInScope(scope, owner)) return { total: 0n, tasks: [], cut: false };
    if (page.offset === 0n) {
      const [total, ids] = await Promise.all([store.countOwnerTasks(owner), store.ownerTaskIds(owner, 0n, page.limit)]);
      return { total, ...(await store.getTasksUpTo(ids, PAGE_MAX_BYTES)) };
    }
    const total = await store.countOwnerTasks(owner);
    if (page.offset >= total) return { total, tasks: [], cut: false };
    checkOffset(page.offset);
    const ids = await store.ownerTaskIds(owner, page.offset, page.limit, signal);
    // A page of large tasks stops at PAGE_MAX_BYTES (the caller is told where to go on).
    return { total, ...(await store.getTasksUpTo(ids, PAGE_MAX_BYTES)) };
  }

  /**
   * Cancels the task and the rest of its chain; returns them in chain order, as they
   * are now (with their payloads). Once the task's own CANCEL is committed nothing
   * turns the answer into an error: if the cascade or the final read fails, the answer
   * says so (`cascadePending`, `payloadsMissing`) and the sweeper finishes the chain.
   * A task outside the caller's `scope` is answered as absent (404); the rest of its
   * chain is cancelled whoever owns it (it could never run), but the answer shows only
   * the tasks the caller may see and counts the others (`hidden`).
   */
  async cancel(id: bigint, scope?: TaskScope): Promise<CancelResult> {
    const { cancelled: all, cascadePending } = await cancelTask(this.ctx, id, scope);
    for (const task of all) this.ctx.events.finished(task, undefined);
    const cancelled = all.filter((task) => inScope(scope, task));
    const hidden = all.length - cancelled.length;
    try {
      return { tasks: await this.ctx.store.getTasks(cancelled.map((task) => task.id)), hidden, cascadePending, payloadsMissing: false };
    } catch (error) {
      this.ctx.log.warn({ err: error, taskId: String(id) }, "could not read the cancelled tasks back; answering with them as written");
      return { tasks: cancelled, hidden, cascadePending, payloadsMissing: cancelled.some((task) => task.inputExternal || task.outputExternal) };
    }
  }

  /**
   * RerunTaskByID: a new task made from a final one (its Channel, Input, Owner,
   * RetryMaxLimit, Priority and ConcurrencyKey; no Prior, no RunAt, a generated
   * HashCode); 409 while the task is not final, 404 if it is absent or outside `scope`.
   */
  async rerun(id: bigint, onHashCode: (hashCode: string) => void = () => {}, scope?: TaskScope, traceParent = ""): Promise<string> {
    const task = await this.getById(id, scope);
    if (!isFinal(task.state)) throw conflict(`Task ${id} is ${task.state}; only a final task (SUCCESS, FAILURE or CANCEL) can be rerun`);
    this.ctx.channels.get(task.channel); // 400 if its channel is no longer configured
    const hashCode = await this.create(
      {
        owner: task.owner,
        channel: task.channel,
        input: task.input,
        hashCode: "",
        retryMaxLimit: task.retryMaxLimit,
        prior: 0n,
        runAtMs: 0,
        priority: task.priority,
        concurrencyKey: task.concurrencyKey,
        ...(traceParent ? { traceParent } : {}),
      },
      onHashCode,
      scope,
    );
    this.ctx.log.info({ taskId: String(id) }, "task rerun");
    return hashCode;
  }

  /** The channel's newest FAILURE tasks (the console's recent failures); 400 for a channel not configured. */
  async recentFailures(channel: string, limit: number): Promise<StoredTask[]> {
    this.ctx.channels.get(channel);
    return this.ctx.store.recentFailures(channel, limit);
  }

  async length(channel: string): Promise<bigint> {
    return this.ctx.channels.get(channel).length();
  }
}

const duplicate = (hashCode: string) => conflict(`A task with HashCode "${hashCode}" already exists; nothing was created`, hashCode);
