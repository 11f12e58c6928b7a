// The use cases wired on in-memory backends (memory-repository.ts, memory-queues.ts)
// and a clock the test moves by hand: what the unit tests of service/src/core run on.
import { expect } from "vitest";
import type { CoreContext } from "../../service/src/core/context.js";
import { Delivery } from "../../service/src/core/delivery.js";
import { Sweeper } from "../../service/src/core/sweeper.js";
import { ParkedTasks } from "../../service/src/core/parked-tasks.js";
import { NO_TASK_EVENTS } from "../../service/src/core/task-events.js";
import type { StoredTask } from "../../service/src/core/task-repository.js";
import { TaskService } from "../../service/src/core/task-service.js";
import { createLogger } from "../../service/src/logging.js";
import { IdGenerator, taskIdOfGeneratedHashCode } from "../../service/src/tasks/ids.js";
import type { NewTask } from "../../service/src/tasks/rules.js";
import type { RetryPolicy } from "../../service/src/tasks/state-machine.js";
import { Rejection } from "../../service/src/tasks/status.js";
import { MemoryQueues, type MemoryQueue } from "./memory-queues.js";
import { MemoryRepository } from "./memory-repository.js";
import { MemoryLeases } from "./memory-leases.js";

/** The clock's start: some day in 2027 (epoch ms). */
export const T0 = 1_800_000_000_000;
/** The lease of the default channel (its visibility timeout). */
export const LEASE_MS = 30_000;
export const SWEEP_AFTER_MS = 60_000;
export const RETRY: RetryPolicy = { baseMs: 1_000, maxMs: 8_000 };

export type LogLine = Record<string, unknown> & { msg: string; level: string };

export interface MemoryCoreOptions {
  sweepAfterMs?: number;
  retry?: RetryPolicy;
}

export class MemoryCore {
  ms = T0;
  readonly now = (): number => this.ms;
  readonly logs: LogLine[] = [];
  readonly store = new MemoryRepository(this.now);
  readonly leases = new MemoryLeases();
  readonly queues = new MemoryQueues(
    [
      { name: "default", leaseMs: LEASE_MS },
      { name: "other", leaseMs: 10_000 },
      // Flow control: at most 2 PROCEEDING, at most 1 per ConcurrencyKey.
      { name: "limited", leaseMs: 10_000, limits: { maxInFlight: 2, concurrencyPerKey: 1 } },
    ],
    this.now,
  );
  readonly ctx: CoreContext;
  readonly tasks: TaskService;
  readonly delivery: Delivery;
  readonly sweeper: Sweeper;
  readonly parked: ParkedTasks;

  constructor(options: MemoryCoreOptions = {}) {
    this.ctx = {
      store: this.store,
      channels: this.queues,
      ids: new IdGenerator(1n, this.now),
      retry: options.retry ?? RETRY,
      sweepAfterMs: options.sweepAfterMs ?? SWEEP_AFTER_MS,
      holdBackMaxSeconds: 10,
      log: createLogger("debug", { write: (line: string) => void this.logs.push(JSON.parse(line) as LogLine) }),
      now: this.now,
      events: NO_TASK_EVENTS,
    };
    this.tasks = new TaskService(this.ctx);
    this.delivery = new Delivery(this.ctx);
    this.sweeper = new Sweeper(this.ctx, 1_000);
    this.parked = this.lookAhead("replica-1");
  }

  /** A replica's look-ahead (passes every second) on this core's table and queues; all share one lease table. */
  lookAhead(holder: string): ParkedTasks {
    return new ParkedTasks(this.ctx, this.leases, holder, 1_000);
  }

  /** The default channel's queue. */
  get queue(): MemoryQueue {
    return this.queues.get("default");
  }

  advance(ms: number): void {
    this.ms += ms;
  }

  /** CreateTask through the task service; returns the task as stored. */
  async create(request: Partial<NewTask> = {}): Promise<StoredTask> {
    const hashCode = await this.tasks.create({ owner: 1n, channel: "default", input: "in", hashCode: "", retryMaxLimit: 3n, prior: 0n, runAtMs: 0, priority: 1, concurrencyKey: "", ...request });
    return this.task(taskIdOfGeneratedHashCode(hashCode) ?? (await this.store.findIdByHashCode(hashCode)) ?? 0n);
  }

  /** Receives the task's message from its queue and runs the delivery on it: the task leased, or undefined. */
  async deliver(id: bigint): Promise<StoredTask | undefined> {
    const queue = this.queues.get(this.task(id).channel);
    return this.delivery.lease(queue, queue.receiveTask(id));
  }

  /** Delivers the task, which must lease: the task as handed to a worker. */
  async lease(id: bigint): Promise<StoredTask> {
    const leased = await this.deliver(id);
    if (!leased) throw new Error(`task ${id} was not leased: ${JSON.stringify(this.logs.at(-1))}`);
    return leased;
  }

  /** The task as stored now (throws if there is none). */
  task(id: bigint): StoredTask {
    const task = this.store.peek(id);
    if (!task) throw new Error(`no task ${id}`);
    return task;
  }

  /** The log lines with this message. */
  logged(msg: string): LogLine[] {
    return this.logs.filter((line) => line.msg === msg);
  }

  /** The repository's calls from now on: call the returned function to read them. */
  watchCalls(): () => string[] {
    const from = this.store.calls.length;
    return () => this.store.calls.slice(from).map((call) => (call.transition ? `${call.method}:${call.transition}` : call.method));
  }
}

/** The Rejection (a non-200 answer) a use case rejects with (fails the test on anything else). */
export async function rejection(promise: Promise<unknown>): Promise<Rejection> {
  const error = await promise.then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(Rejection);
  return error as Rejection;
}
