// A Worker does the stream work so that its author writes only a handler:
//
//   const worker = new Worker({ address, channel: "emails", concurrency: 8, handler: async (task, { signal }) => "done" });
//   await worker.run();            // until close()
//
// - It keeps `concurrency` credits outstanding on one ReceiveQueueByChannel stream and
//   runs at most `concurrency` handlers at once; each finished handler frees a credit.
// - A handler's return value is the Output of a SUCCESS; a throw is a FAILURE (retried by
//   the server); a NonRetryableError is a CANCEL (state 4, no retry).
// - While a handler runs, the worker heartbeats (state 6) at a fraction of the lease that
//   is left, so a long task keeps its lease. When a heartbeat or report answers 409 (the
//   task was cancelled, or leased to someone else), the handler's signal aborts.
// - Both streams reconnect with exponential backoff and jitter; a result the server has
//   not acknowledged is sent again after a reconnect. Every report carries the delivery's
//   LeaseToken, so a repeat is answered "Already recorded" and a stale one is refused.
// - close() drains: no new tasks, running handlers finish (bounded), results are
//   acknowledged, then the streams close.
// - With @opentelemetry/api installed (an optional peer dependency) and an SDK
//   registered, each handler runs in a CONSUMER span, `queues.task <channel>`, child of
//   the producer's context the task carries (Task.TraceParent): tracing.ts.
import { EventEmitter } from "node:events";
import { MAX_PAYLOAD_BYTES, payloadOverLimit, REPORT_CODES, type QueuesServiceClient as GeneratedQueuesClient, type ReportKind } from "@queues/protocol";
import { connect } from "./connection.js";
import { CreditStream } from "./credit-stream.js";
import { LeaseLostError, NonRetryableError } from "./errors.js";
import type { Task } from "./queues-client.js";
import { type ReportAnswer, ReportChannel } from "./report-channel.js";
import { prepareTracing, startTaskSpan, type TaskSpan } from "./tracing.js";
import { type CompiledWorkerOptions, compileWorkerOptions, type TaskContext, type WorkerOptions } from "./worker-options.js";

/** The lease a task is assumed to have when the server does not say (a server without the lease fields). */
const FALLBACK_LEASE_MS = 30_000;
const MIN_HEARTBEAT_MS = 200;

export interface WorkerEvents {
  taskStarted: [task: Task];
  /** SUCCESS acknowledged by the server. */
  taskSucceeded: [task: Task, output: string];
  /** The handler failed and the FAILURE was acknowledged (the server retries it if attempts remain). */
  taskFailed: [task: Task, error: unknown];
  /** The handler threw NonRetryableError and the CANCEL was acknowledged. */
  taskCancelled: [task: Task, error: unknown];
  /** The server answered 409 to a heartbeat or report: cancelled, or leased again elsewhere. */
  leaseLost: [task: Task, reason: string];
  reconnecting: [info: { stream: "receive" | "report"; delayMs: number; error: unknown }];
  /** Something the worker could not do (a 400/404/500 answer, a fatal stream error). Without a listener, it is dropped (run() still rejects on a fatal one). */
  error: [error: Error];
}

interface RunningTask {
  /** ID and lease token: the same task may come back on a new lease while an old handler still runs. */
  key: string;
  task: Task;
  abort: AbortController;
  /** The lease as the server granted it, in ms (from the server's own clock, so local clock skew does not matter). */
  leaseMs: number;
  /** When the lease ends, on the local clock. */
  leaseEndsAt: number;
  heartbeatTimer: NodeJS.Timeout | undefined;
  finished: boolean;
}

export class Worker extends EventEmitter<WorkerEvents> {
  readonly concurrency: number;
  private readonly options: CompiledWorkerOptions;
  private readonly client: GeneratedQueuesClient;
  private readonly reportClient: GeneratedQueuesClient;
  private readonly credits: CreditStream;
  private readonly reports: ReportChannel;
  private readonly running = new Map<string, RunningTask>();
  /** Handlers' work, including their final report. */
  private readonly settled = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  private finished: { promise: Promise<void>; resolve: () => void; reject: (error: Error) => void };
  private started = false;

  /** Throws a RangeError for a bad option (e.g. a concurrency of 0), naming it: see compileWorkerOptions. */
  constructor(options: WorkerOptions) {
    super();
    this.options = compileWorkerOptions(options);
    const { connection, reportConnection, channel, concurrency, reconnect } = this.options;
    this.concurrency = concurrency;
    this.client = connect(connection);
    this.reportClient = reportConnection ? connect(reportConnection) : this.client;
    this.credits = new CreditStream(
      this.client,
      channel,
      connection.metadata,
      {
        onTask: (task) => this.start(task),
        onFatal: (error) => this.fail(error),
        onReconnect: (delayMs, error) => this.notify("reconnecting", { stream: "receive", delayMs, error }),
      },
      reconnect,
    );
    this.reports = new ReportChannel(this.reportClient, connection.metadata, reconnect, {
      onReconnect: (delayMs, error) => this.notify("reconnecting", { stream: "report", delayMs, error }),
    });
    let resolve!: () => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    this.finished = { promise, resolve, reject };
  }

  /** Starts taking tasks; resolves when close() has finished, rejects on a fatal error (e.g. an unknown channel). */
  run(): Promise<void> {
    if (!this.started) {
      this.started = true;
      prepareTracing();
      this.credits.request(this.concurrency);
    }
    return this.finished.promise;
  }

  /** Handlers running now. */
  get active(): number {
    return this.running.size;
  }

  /** Stops taking tasks, lets running handlers finish (bounded), waits for their results to be acknowledged, closes. */
  close(): Promise<void> {
    this.closing ??= this.drain();
    return this.closing;
  }

  private async drain(): Promise<void> {
    this.credits.stop();
    const deadline = Date.now() + this.options.drainTimeoutMs;
    // Tasks the server wrote just before it saw the stream cancelled still arrive and run: wait for those too.
    await this.allSettled(deadline);
    if (this.settled.size > 0) {
      for (const running of this.running.values()) running.abort.abort(new Error("the worker is closing"));
      await this.allSettled(Math.max(deadline, Date.now() + 1_000));
      // Handlers that ignore their signal are left behind; nothing of theirs keeps the process alive.
      for (const running of this.running.values()) this.finish(running);
    }
    await this.reports.flush(Math.max(1_000, deadline - Date.now()));
    this.reports.close();
    this.client.close();
    this.reportClient.close();
    this.finished.resolve();
  }

  /** Waits for the running handlers until `deadline`; the wait keeps the process alive (the handlers are work). */
  private async allSettled(deadline: number): Promise<void> {
    while (this.settled.size > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all([...this.settled]), new Promise((resolve) => (timer = setTimeout(resolve, deadline - Date.now())))]);
      clearTimeout(timer);
    }
  }

  private fail(error: Error): void {
    this.emitError(error);
    this.finished.reject(error);
    void this.close();
  }

  private start(task: Task): void {
    const leaseMs = leaseLengthOf(task);
    const running: RunningTask = {
      key: `${task.ID}:${task.LeaseToken}`,
      task,
      abort: new AbortController(),
      leaseMs,
      leaseEndsAt: Date.now() + leaseMs,
      heartbeatTimer: undefined,
      finished: false,
    };
    this.running.set(running.key, running);
    this.scheduleHeartbeat(running);
    const work = this.execute(running).finally(() => {
      this.settled.delete(work);
    });
    this.settled.add(work);
    this.notify("taskStarted", task);
  }

  private async execute(running: RunningTask): Promise<void> {
    const { task, abort } = running;
    const context: TaskContext = {
      signal: abort.signal,
      heartbeat: (progress) => this.heartbeat(running, progress),
      attempt: Number(task.RetryCount) + 1,
    };
    let kind: ReportKind;
    let output: string;
    let failure: unknown;
    // Synchronous once @opentelemetry/api has been looked for (run() starts that); a no-op span without it.
    let span: TaskSpan | undefined;
    try {
      const started = startTaskSpan(task, this.options.channel);
      span = started instanceof Promise ? await started : started;
      output = (await span.run(() => this.options.handler(task, context))) ?? "";
      kind = "SUCCESS";
      // The server's limit on an Output: a bigger result fails its attempt here rather than block the stream.
      const bytes = payloadOverLimit(output);
      if (bytes !== undefined) {
        failure = new Error(`the handler returned ${bytes} bytes; the Output limit is ${MAX_PAYLOAD_BYTES}`);
        output = (failure as Error).message;
        kind = "FAILURE";
      }
    } catch (error) {
      failure = error;
      output = messageOf(error);
      kind = error instanceof NonRetryableError ? "CANCEL" : "FAILURE";
    }
    span?.end(kind === "SUCCESS" ? { kind } : { kind, error: failure, message: output });
    const leaseLost = running.finished && abort.signal.reason instanceof LeaseLostError;
    this.finish(running);
    // The slot is free: ask for the next task while this result is being reported.
    if (!this.closing) this.credits.request(1);
    if (leaseLost) return; // the server already moved on
    try {
      const answer = await this.report(task, kind, output);
      this.afterFinalReport(task, kind, output, failure, answer);
    } catch (error) {
      this.emitError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** The task's handler is done (or given up on): no more heartbeats. */
  private finish(running: RunningTask): void {
    running.finished = true;
    clearTimeout(running.heartbeatTimer);
    this.running.delete(running.key);
  }

  private afterFinalReport(task: Task, kind: ReportKind, output: string, failure: unknown, answer: ReportAnswer): void {
    if (answer.State === "200") {
      if (kind === "SUCCESS") this.notify("taskSucceeded", task, output);
      else if (kind === "CANCEL") this.notify("taskCancelled", task, failure);
      else this.notify("taskFailed", task, failure);
    } else if (answer.State === "409") {
      this.notify("leaseLost", task, answer.Message);
    } else {
      this.emitError(new Error(`task ${task.ID}: the server answered ${answer.State} to its result: ${answer.Message}`));
    }
  }

  private report(task: Task, kind: ReportKind, output: string): Promise<ReportAnswer> {
    return this.reports.send({ ID: task.ID, State: String(REPORT_CODES[kind]), Output: output, LeaseToken: task.LeaseToken || "0" });
  }

  private scheduleHeartbeat(running: RunningTask): void {
    clearTimeout(running.heartbeatTimer);
    if (running.finished) return;
    const delay = Math.max(MIN_HEARTBEAT_MS, (running.leaseEndsAt - Date.now()) * this.options.heartbeatFraction);
    running.heartbeatTimer = setTimeout(() => {
      this.heartbeat(running).catch(() => {
        // A lost lease was handled in heartbeat(); anything else: the next one tries again.
      });
    }, delay);
    // A heartbeat never keeps a process alive by itself (the streams do, while the worker runs).
    running.heartbeatTimer.unref();
  }

  private async heartbeat(running: RunningTask, progress = ""): Promise<void> {
    if (running.finished) return;
    const bytes = payloadOverLimit(progress);
    if (bytes !== undefined) throw new RangeError(`progress is ${bytes} bytes; the Output limit is ${MAX_PAYLOAD_BYTES}`);
    const { task } = running;
    const sentAt = Date.now();
    let answer: ReportAnswer;
    try {
      answer = await this.report(task, "PROCEEDING", progress);
    } catch (error) {
      this.scheduleHeartbeat(running);
      throw error;
    }
    if (answer.State === "200") {
      // The server extended the lease by its length from (at least) when it was sent.
      running.leaseEndsAt = sentAt + running.leaseMs;
      this.scheduleHeartbeat(running);
      return;
    }
    if (answer.State === "409" || answer.State === "404") {
      const lost = new LeaseLostError(task.ID, answer.Message);
      if (!running.finished) {
        running.finished = true;
        clearTimeout(running.heartbeatTimer);
        running.abort.abort(lost);
        this.notify("leaseLost", task, answer.Message);
      }
      throw lost;
    }
    this.scheduleHeartbeat(running);
    const error = new Error(`task ${task.ID}: heartbeat answered ${answer.State}: ${answer.Message}`);
    this.emitError(error);
    throw error;
  }

  /** Emits to the user's listeners; a listener that throws must not break the worker. */
  private notify<K extends Exclude<keyof WorkerEvents, "error">>(event: K, ...args: WorkerEvents[K]): void {
    try {
      (this.emit as (event: K, ...args: WorkerEvents[K]) => boolean)(event, ...args);
    } catch (error) {
      this.emitError(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** EventEmitter throws an "error" nobody listens to; a worker must not crash its process over one. */
  private emitError(error: Error): void {
    if (this.listenerCount("error") === 0) return;
    try {
      this.emit("error", error);
    } catch {
      // A throwing error listener has nowhere left to report to.
    }
  }
}

/** The lease's length from the server's own times (delivery time to lease end); skew-free. */
function leaseLengthOf(task: Task): number {
  const length = Date.parse(task.LeaseExpireTime) - Date.parse(task.UpdateTime);
  return Number.isFinite(length) && length > 0 ? length : FALLBACK_LEASE_MS;
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message || error.name : String(error);
  // Keep well under the Output limit (MAX_PAYLOAD_BYTES).
  return text.length > 16_384 ? `${text.slice(0, 16_384)}…` : text;
}

