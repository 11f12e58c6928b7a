// One ReportTaskResult stream that outlives connection drops. Reports are written in
// order and answered in order; a report whose answer has not arrived when the stream
// breaks is sent again on the next stream, so a finished result is never lost. With
// the delivery's LeaseToken in every report, a repeat of one that already took effect
// is answered 200 ("Already recorded"), never applied twice. A 503 answer (a backend
// hiccup) is sent again after a backoff; every other answer goes back to the caller.
import type * as grpc from "@grpc/grpc-js";
import type { QueuesServiceClient as GeneratedQueuesClient, ReportTaskResultRequest, ReportTaskResultResponse__Output } from "@queues/protocol";
import { Backoff, type CompiledBackoffOptions } from "./backoff.js";

export type ReportAnswer = ReportTaskResultResponse__Output;

interface PendingReport {
  request: ReportTaskResultRequest;
  resolve: (answer: ReportAnswer) => void;
  reject: (error: Error) => void;
}

type ReportCall = grpc.ClientDuplexStream<ReportTaskResultRequest, ReportTaskResultResponse__Output>;

export interface ReportChannelHooks {
  /** The stream broke and is reopened after `delayMs`. */
  onReconnect?: (delayMs: number, error: unknown) => void;
}

export class ReportChannel {
  /** Waiting to be written, in order. */
  private readonly queue: PendingReport[] = [];
  /** Written on the current stream, answers still to come, in order. */
  private readonly inFlight: PendingReport[] = [];
  private call: ReportCall | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private readonly retryBackoff: Backoff;
  private closed = false;
  /** Reports waiting out a backoff after a 503 answer (in neither list meanwhile). */
  private retrying = 0;
  private idle: (() => void)[] = [];

  constructor(
    private readonly client: GeneratedQueuesClient,
    private readonly metadata: grpc.Metadata,
    backoff: CompiledBackoffOptions,
    private readonly hooks: ReportChannelHooks = {},
  ) {
    this.backoff = new Backoff(backoff);
    this.retryBackoff = new Backoff(backoff);
  }

  /** Sends a report; resolves with its answer (any State but 503, which is retried). */
  send(request: ReportTaskResultRequest): Promise<ReportAnswer> {
    if (this.closed) return Promise.reject(new Error("the report channel is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  /** Reports not yet answered. */
  get pending(): number {
    return this.queue.length + this.inFlight.length + this.retrying;
  }

  /** Resolves once every report sent so far is answered (or `timeoutMs` passed); true if all were. */
  async flush(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const drained = new Promise<boolean>((resolve) => this.idle.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs).unref()));
    const result = await Promise.race([drained, timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Closes the stream (cancels it: a dead peer must not keep the process waiting); unanswered reports are rejected. */
  close(): void {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const call = this.call;
    this.call = undefined;
    call?.cancel();
    for (const report of [...this.inFlight.splice(0), ...this.queue.splice(0)]) report.reject(new Error("the report channel closed before the report was answered"));
  }

  private pump(): void {
    if (this.closed || this.queue.length === 0) return;
    if (!this.call) {
      if (!this.reconnectTimer) this.open();
      return;
    }
    while (this.queue.length > 0) {
      const report = this.queue.shift() as PendingReport;
      this.inFlight.push(report);
      this.call.write(report.request);
    }
  }

  private open(): void {
    const call = this.client.ReportTaskResult(this.metadata);
    this.call = call;
    call.on("data", (answer: ReportAnswer) => {
      if (call !== this.call) return;
      this.backoff.reset();
      const report = this.inFlight.shift();
      if (!report) return;
      if (answer.State === "503") {
        // Nothing was written; send it again after a while.
        this.retrying += 1;
        setTimeout(() => {
          this.retrying -= 1;
          if (this.closed) return report.reject(new Error("the report channel closed before the report was answered"));
          this.queue.push(report);
          this.pump();
        }, this.retryBackoff.next()).unref();
        return;
      }
      this.retryBackoff.reset();
      report.resolve(answer);
      this.checkIdle();
    });
    const broken = (error: unknown) => {
      if (call !== this.call) return;
      this.call = undefined;
      if (this.closed) return;
      // Unanswered reports go first on the next stream, in their order.
      this.queue.unshift(...this.inFlight.splice(0));
      if (this.queue.length === 0) return; // reopened lazily by the next report
      const delayMs = this.backoff.next();
      this.hooks.onReconnect?.(delayMs, error);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.pump();
      }, delayMs);
    };
    call.on("error", broken);
    call.on("end", () => broken(new Error("the server ended the report stream")));
    this.pump();
  }

  private checkIdle(): void {
    if (this.pending > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
