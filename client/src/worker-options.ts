// The Worker's options, compiled once (like Temporal's worker-options.ts): WorkerOptions
// is what its author writes, every option documented with its default;
// compileWorkerOptions fills in the defaults and checks every value, so a bad one
// throws at `new Worker(...)`, not minutes later in a stream; the Worker reads only the
// CompiledWorkerOptions.
import { type BackoffOptions, type CompiledBackoffOptions, compileBackoffOptions } from "./backoff.js";
import { checkAddress, type CompiledConnectionOptions, compileConnectionOptions, type ConnectionOptions } from "./connection.js";
import { durationOption, numberOption, optionError } from "./option-rules.js";
import type { Task } from "./queues-client.js";

export interface TaskContext {
  /** Aborts when the task was cancelled or leased to another worker, or the worker is closing and out of time. */
  signal: AbortSignal;
  /**
   * Sends a heartbeat now, with `progress` stored as the task's Output so far. Rejects
   * with LeaseLostError on 409 (the signal aborts too): await it or add a catch.
   */
  heartbeat(progress?: string): Promise<void>;
  /** 1 for the first attempt, 2 for the first retry, ... */
  attempt: number;
}

/** Returns the Output (SUCCESS); throws for FAILURE, or NonRetryableError for CANCEL. */
export type TaskHandler = (task: Task, context: TaskContext) => Promise<string | void> | string | void;

export interface WorkerOptions extends ConnectionOptions {
  /** The channel whose tasks this worker runs: a non-empty name the server is configured with. Required. */
  channel: string;
  /**
   * Where the report stream goes, if not to `address` (any replica can take any report):
   * host:port or a gRPC target, like `address`.
   * @default `address` (also when empty)
   */
  reportAddress?: string;
  /** Runs one task. Required. */
  handler: TaskHandler;
  /**
   * Handlers running at once, and credits kept outstanding: an integer from 1 to 1000
   * (a default server refuses more credits on one stream: QUEUES_MAX_CREDITS_PER_STREAM).
   * @default 1
   */
  concurrency?: number;
  /**
   * A heartbeat is sent when this fraction of the lease that is left has passed: a number
   * between 0 and 1 (both excluded).
   * @default 1/3
   */
  heartbeatFraction?: number;
  /**
   * close() waits this long for running handlers, then aborts them: ms, from 0 to 2^31-1.
   * @default 30_000
   */
  drainTimeoutMs?: number;
  /**
   * Reconnect delays of both streams.
   * @default { initialMs: 200, maxMs: 10_000 }
   */
  reconnect?: BackoffOptions;
}

/** WorkerOptions with their defaults filled in and checked (compileWorkerOptions). */
export interface CompiledWorkerOptions {
  /** The receive stream's connection (and the report stream's, without a reportAddress). */
  readonly connection: CompiledConnectionOptions;
  /** The report stream's connection when it has its own address. */
  readonly reportConnection: CompiledConnectionOptions | undefined;
  readonly channel: string;
  readonly handler: TaskHandler;
  readonly concurrency: number;
  readonly heartbeatFraction: number;
  readonly drainTimeoutMs: number;
  readonly reconnect: CompiledBackoffOptions;
}

export const DEFAULT_CONCURRENCY = 1;
/** The largest concurrency: the server's default limit of credits on one stream (QUEUES_MAX_CREDITS_PER_STREAM). */
export const MAX_CONCURRENCY = 1_000;
export const DEFAULT_HEARTBEAT_FRACTION = 1 / 3;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;

/** Fills in the defaults of `options` and checks them; throws a RangeError (a TypeError for a handler that is no function) naming a bad option. */
export function compileWorkerOptions(options: WorkerOptions): CompiledWorkerOptions {
  const connection = compileConnectionOptions(options);
  const reportAddress = options.reportAddress ? checkAddress("reportAddress", options.reportAddress) : undefined;
  if (typeof options.channel !== "string" || options.channel === "") throw optionError("channel", "a non-empty channel name", options.channel);
  if (typeof options.handler !== "function") throw new TypeError(`handler must be a function, got ${typeof options.handler}`);
  return {
    connection,
    reportConnection: reportAddress === undefined ? undefined : { ...connection, address: reportAddress },
    channel: options.channel,
    handler: options.handler,
    concurrency: numberOption(
      "concurrency",
      options.concurrency,
      DEFAULT_CONCURRENCY,
      `an integer from 1 to ${MAX_CONCURRENCY}`,
      (value) => Number.isInteger(value) && value >= 1 && value <= MAX_CONCURRENCY,
    ),
    heartbeatFraction: numberOption(
      "heartbeatFraction",
      options.heartbeatFraction,
      DEFAULT_HEARTBEAT_FRACTION,
      "a number between 0 and 1 (both excluded)",
      (value) => value > 0 && value < 1,
    ),
    drainTimeoutMs: durationOption("drainTimeoutMs", options.drainTimeoutMs, DEFAULT_DRAIN_TIMEOUT_MS, 0),
    reconnect: compileBackoffOptions(options.reconnect, "reconnect"),
  };
}
