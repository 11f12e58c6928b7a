// The server's Prometheus metrics (prom-client), served at GET /metrics on the HTTP
// port: per channel, counters of what happened to tasks (from core's TaskEvents),
// histograms of queue wait and run time, gauges of the backlog, the tasks in flight,
// the open worker streams and the credits waiting; plus the process's default
// metrics (CPU, memory, event loop lag, GC). Counters are this replica's; sum them
// over the replicas (Prometheus does). The backlog and in-flight gauges are SQS's
// approximate counts, read at most once per BACKLOG_CACHE_MS per channel, so a
// scrape every few seconds costs a GetQueueAttributes per level now and then.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { TaskEvents } from "../core/task-events.js";
import type { TaskRecord } from "../tasks/task.js";

/** What the gauges read: the channels' SQS counts, and this replica's streams and credits. */
export interface GaugeSources {
  channels(): readonly string[];
  /** Waiting (visible + delayed) and in flight (received, not deleted) messages, over the channel's levels. */
  queueCounts(channel: string): Promise<{ waiting: number; inFlight: number }>;
  openWorkerStreams(): number;
  /** Credits waiting for a task on this replica, by channel. */
  creditsWaiting(channel: string): number;
}

const BACKLOG_CACHE_MS = 10_000;
/** Seconds: from a few milliseconds (a worker waiting) to a day (a backlog, a long task). */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3_600, 14_400, 86_400];

export class TaskMetrics implements TaskEvents {
  readonly registry = new Registry();
  private readonly counters: Record<"created" | "delivered" | "succeeded" | "failed" | "cancelled" | "retried" | "leasesExpired", Counter<"channel">>;
  private readonly queueWait: Histogram<"channel">;
  private readonly runTime: Histogram<"channel" | "state">;
  private readonly counts = new Map<string, { at: number; value: Promise<{ waiting: number; inFlight: number }> }>();

  constructor(sources: GaugeSources, now: () => number = Date.now) {
    const registers = [this.registry];
    const counter = (name: string, help: string) => new Counter({ name, help, labelNames: ["channel"] as const, registers });
    this.counters = {
      created: counter("queues_tasks_created_total", "Tasks created (CreateTask, CreateTasks, schedule ticks, reruns)"),
      delivered: counter("queues_tasks_delivered_total", "Deliveries to workers (a task retried is delivered again)"),
      succeeded: counter("queues_tasks_succeeded_total", "Tasks that reached SUCCESS"),
      failed: counter("queues_tasks_failed_total", "Tasks that reached FAILURE (no attempts left)"),
      cancelled: counter("queues_tasks_cancelled_total", "Tasks that reached CANCEL (by a worker or CancelTaskByID)"),
      retried: counter("queues_tasks_retried_total", "Failed attempts with attempts left (the task waits for its backoff)"),
      leasesExpired: counter("queues_leases_expired_total", "Leases that ran out without a report (a worker died or hung)"),
    };
    this.queueWait = new Histogram({
      name: "queues_queue_wait_seconds",
      help: "From when a task could be delivered (created, RunAt, end of a retry backoff) to its delivery",
      labelNames: ["channel"] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.runTime = new Histogram({
      name: "queues_run_seconds",
      help: "From a task's delivery to its final state",
      labelNames: ["channel", "state"] as const,
      buckets: DURATION_BUCKETS,
      registers,
    });
    const queueCount = (channel: string) => {
      const cached = this.counts.get(channel);
      if (cached && now() - cached.at < BACKLOG_CACHE_MS) return cached.value;
      const value = sources.queueCounts(channel);
      this.counts.set(channel, { at: now(), value });
      value.catch(() => this.counts.delete(channel));
      return value;
    };
    new Gauge({
      name: "queues_backlog",
      help: "Tasks waiting to be delivered (SQS visible + delayed messages, approximate, over the priority levels)",
      labelNames: ["channel"] as const,
      registers,
      async collect() {
        for (const channel of sources.channels()) this.set({ channel }, (await queueCount(channel)).waiting);
      },
    });
    new Gauge({
      name: "queues_in_flight",
      help: "Messages received and not yet deleted: tasks running, and retries waiting out their backoff (SQS, approximate)",
      labelNames: ["channel"] as const,
      registers,
      async collect() {
        for (const channel of sources.channels()) this.set({ channel }, (await queueCount(channel)).inFlight);
      },
    });
    new Gauge({
      name: "queues_worker_streams_open",
      help: "Open ReceiveQueueByChannel and ReportTaskResult streams on this replica",
      registers,
      collect() {
        this.set(sources.openWorkerStreams());
      },
    });
    new Gauge({
      name: "queues_credits_waiting",
      help: "Worker credits waiting for a task on this replica",
      labelNames: ["channel"] as const,
      registers,
      collect() {
        for (const channel of sources.channels()) this.set({ channel }, sources.creditsWaiting(channel));
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  created(task: TaskRecord): void {
    this.counters.created.inc({ channel: task.channel });
  }

  delivered(task: TaskRecord, waitMs: number): void {
    this.counters.delivered.inc({ channel: task.channel });
    this.queueWait.observe({ channel: task.channel }, waitMs / 1000);
  }

  finished(task: TaskRecord, runMs: number | undefined): void {
    const counter = task.state === "SUCCESS" ? this.counters.succeeded : task.state === "FAILURE" ? this.counters.failed : this.counters.cancelled;
    counter.inc({ channel: task.channel });
    if (runMs !== undefined) this.runTime.observe({ channel: task.channel, state: task.state }, runMs / 1000);
  }

  retried(task: TaskRecord): void {
    this.counters.retried.inc({ channel: task.channel });
  }

  leaseExpired(task: TaskRecord): void {
    this.counters.leasesExpired.inc({ channel: task.channel });
  }

  /** The Prometheus text exposition. */
  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
