// The benchmark's service side: task lifecycles through gRPC (producers call
// CreateTask, workers built with the SDK's Worker report SUCCESS), dispatch latency
// with idle workers, and the SQS cost of idle workers.
import { QueuesClient, Worker, type NewTask } from "@queues/client";
import type { LifecycleRun } from "./bench-baseline.js";
import { sleep } from "./processes.js";

/** Workers per run: credits are spread over up to this many Worker instances (each with its own streams). */
const MAX_WORKERS = 4;

export interface ServiceTarget {
  address: string;
  channel: string;
  owner: bigint;
  /** More fields of task i (e.g. priority, concurrencyKey). */
  fields?: (index: number) => Partial<NewTask>;
}

/** `tasks` lifecycles with `credits` credits outstanding over the workers and as many creates in flight. */
export async function serviceRun(target: ServiceTarget, tasks: number, credits: number): Promise<LifecycleRun> {
  const producer = new QueuesClient({ address: target.address, deadlineMs: 30_000 });
  const done = new Set<string>();
  let allDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => (allDone = resolve));
  const workerCount = Math.min(MAX_WORKERS, credits);
  const workers = Array.from({ length: workerCount }, (_, index) => {
    const worker = new Worker({
      address: target.address,
      channel: target.channel,
      concurrency: Math.floor(credits / workerCount) + (index < credits % workerCount ? 1 : 0),
      handler: () => "done",
    });
    worker.on("taskSucceeded", (task) => {
      done.add(task.ID);
      if (done.size >= tasks) allDone();
    });
    worker.on("error", (error) => console.error(`bench worker: ${error.message}`));
    void worker.run().catch((error: unknown) => console.error(`bench worker stopped: ${(error as Error).message}`));
    return worker;
  });
  try {
    await sleep(300); // the workers' streams are open and their credits are waiting
    const started = performance.now();
    let created = 0;
    const produce = async () => {
      while (created < tasks) {
        const index = created++;
        await producer.createTask({ channel: target.channel, input: "bench", owner: target.owner, ...target.fields?.(index) });
      }
    };
    await Promise.all([...Array.from({ length: credits }, produce), finished]);
    return { tasks, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Promise.all(workers.map((worker) => worker.close()));
    producer.close();
  }
}

export interface Latencies {
  createMs: number[];
  /** From CreateTask's answer to the handler's first line (0 when the task got there before the answer). */
  dispatchMs: number[];
}

/** One task at a time to an idle worker: how long a create takes and how soon the task is in a worker's hands. */
export async function latencyRun(target: ServiceTarget, count: number): Promise<Latencies> {
  const producer = new QueuesClient({ address: target.address, deadlineMs: 10_000 });
  const arrived = new Map<string, number>();
  let onArrival: (() => void) | undefined;
  const worker = new Worker({
    address: target.address,
    channel: target.channel,
    concurrency: 8,
    handler: (task) => {
      arrived.set(task.HashCode, performance.now());
      onArrival?.();
      return "done";
    },
  });
  worker.on("error", (error) => console.error(`bench worker: ${error.message}`));
  void worker.run().catch((error: unknown) => console.error(`bench worker stopped: ${(error as Error).message}`));
  const result: Latencies = { createMs: [], dispatchMs: [] };
  try {
    await sleep(300);
    for (let i = 0; i < count; i++) {
      const sent = performance.now();
      const hashCode = await producer.createTask({ channel: target.channel, input: "latency", owner: target.owner });
      const answered = performance.now();
      result.createMs.push(answered - sent);
      const deadline = answered + 10_000;
      while (!arrived.has(hashCode) && performance.now() < deadline) {
        await new Promise<void>((resolve) => {
          onArrival = resolve;
          setTimeout(resolve, 50);
        });
      }
      const at = arrived.get(hashCode);
      if (at === undefined) throw new Error(`task ${hashCode} did not reach the idle worker within 10 s`);
      result.dispatchMs.push(Math.max(0, at - answered));
      await sleep(20);
    }
    return result;
  } finally {
    onArrival = undefined;
    await worker.close();
    producer.close();
  }
}

/** Connects `workers` idle workers (one credit each) to an empty channel; returns once their credits are waiting and a close function. */
export async function idleWorkers(target: ServiceTarget, workers: number): Promise<() => Promise<void>> {
  const all = Array.from({ length: workers }, () => {
    const worker = new Worker({ address: target.address, channel: target.channel, concurrency: 1, handler: () => "unexpected" });
    worker.on("error", (error) => console.error(`bench idle worker: ${error.message}`));
    void worker.run().catch(() => {});
    return worker;
  });
  await sleep(2_000);
  return async () => void (await Promise.all(all.map((worker) => worker.close())));
}

/**
 * Creates only (no workers): `tasks` tasks by CreateTask calls, `concurrency` in
 * flight (batch 1), or by CreateTasks calls of `batch` tasks. Returns the run's time.
 */
export async function createRun(target: ServiceTarget, tasks: number, concurrency: number, batch: number): Promise<LifecycleRun> {
  const producer = new QueuesClient({ address: target.address, deadlineMs: 60_000 });
  try {
    const started = performance.now();
    let created = 0;
    const produce = async () => {
      while (created < tasks) {
        const count = Math.min(batch, tasks - created);
        created += count;
        const task = { channel: target.channel, input: "bench", owner: target.owner };
        if (batch === 1) await producer.createTask(task);
        else {
          const outcomes = await producer.createTasks(Array.from({ length: count }, () => task));
          const failed = outcomes.find((outcome) => !outcome.ok);
          if (failed && !failed.ok) throw failed.error;
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, produce));
    return { tasks, seconds: (performance.now() - started) / 1000 };
  } finally {
    producer.close();
  }
}
