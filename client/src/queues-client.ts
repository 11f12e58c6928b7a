// The typed producer/operator client: one method per unary RPC. A State other than
// 200 becomes a typed error (errors.ts); uint64 values go in as bigint, decimal string
// or safe integer and come back as decimal strings, never through a JS number.
import type * as grpc from "@grpc/grpc-js";
import { isUint64, parseUint64, type QueuesServiceClient as GeneratedQueuesClient, type Task__Output } from "@queues/protocol";
import { checkDeadlineMs, compileConnectionOptions, type CompiledConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { DuplicateTaskError, errorForState } from "./errors.js";

/** A task as the server returns it (uint64 fields as decimal strings). */
export type Task = Task__Output;

/** A uint64: bigint, decimal string, or a safe non-negative integer. */
export type Uint64 = bigint | string | number;

export interface NewTask {
  channel: string;
  input?: string;
  owner?: Uint64;
  /** Idempotency key: a second create with it answers DuplicateTaskError. Empty: the server makes one. */
  hashCode?: string;
  /** The task that must succeed first (a chain); with an empty input, this task gets its Output. */
  prior?: Uint64;
  /** Retries after the first attempt: 0 means 3, at most 100. */
  retryMaxLimit?: Uint64;
}

export interface CallOptions {
  /**
   * This call's deadline in ms: a number from 1 to 2^31-1.
   * @default the client's `deadlineMs` (10 000)
   */
  deadlineMs?: number;
}

export interface OwnerPage {
  /** The owner's exact number of tasks. */
  total: string;
  /** Newest first. */
  tasks: Task[];
}

interface Answer {
  State: string;
  Message: string;
}

export class QueuesClient {
  readonly raw: GeneratedQueuesClient;
  private readonly connection: CompiledConnectionOptions;

  /** Throws a RangeError for a bad option (e.g. an address that is not host:port). */
  constructor(readonly options: ConnectionOptions) {
    this.connection = compileConnectionOptions(options);
    this.raw = connect(this.connection);
  }

  /** Creates a task; resolves with its HashCode. A duplicate HashCode rejects with DuplicateTaskError. */
  async createTask(task: NewTask, options?: CallOptions): Promise<string> {
    const answer = await this.call<{ Data: string } & Answer>("CreateTask", {
      Task: {
        Channel: task.channel,
        Input: task.input ?? "",
        Owner: uint64(task.owner, "owner"),
        HashCode: task.hashCode ?? "",
        Prior: uint64(task.prior, "prior"),
        RetryMaxLimit: uint64(task.retryMaxLimit, "retryMaxLimit"),
      },
    }, options);
    if (answer.State === "409") throw new DuplicateTaskError(answer.Message, answer.Data);
    return this.ok(answer, answer.Data).Data;
  }

  async getTask(id: Uint64, options?: CallOptions): Promise<Task> {
    const answer = await this.call<{ Data: Task | null } & Answer>("QueryTaskByID", { ID: uint64(id, "id") }, options);
    return this.ok(answer).Data as Task;
  }

  async getTaskByHashCode(hashCode: string, options?: CallOptions): Promise<Task> {
    const answer = await this.call<{ Data: Task | null } & Answer>("QueryTaskByHashCode", { HashCode: hashCode }, options);
    return this.ok(answer).Data as Task;
  }

  async listTasksByOwner(owner: Uint64, page: { limit?: Uint64; offset?: Uint64 } = {}, options?: CallOptions): Promise<OwnerPage> {
    const answer = await this.call<{ Total: string; Data: Task[] } & Answer>(
      "QueryTaskByOwner",
      { Owner: uint64(owner, "owner"), Limit: uint64(page.limit, "limit"), Offset: uint64(page.offset, "offset") },
      options,
    );
    const { Total, Data } = this.ok(answer);
    return { total: Total, tasks: Data };
  }

  /** Cancels the task and the rest of its chain; resolves with the tasks cancelled. A final task rejects with ConflictError (data: [task]). */
  async cancelTask(id: Uint64, options?: CallOptions): Promise<Task[]> {
    const answer = await this.call<{ Data: Task[] } & Answer>("CancelTaskByID", { ID: uint64(id, "id") }, options);
    return this.ok(answer, answer.Data).Data;
  }

  /** Tasks of the channel waiting to be delivered (approximate, as SQS counts them). */
  async queueLength(channel: string, options?: CallOptions): Promise<string> {
    const answer = await this.call<{ Data: string } & Answer>("QueryLengthByChannel", { Channel: channel }, options);
    return this.ok(answer).Data;
  }

  close(): void {
    this.raw.close();
  }

  private ok<T extends Answer>(answer: T, data?: unknown): T {
    if (answer.State !== "200") throw errorForState(Number(answer.State), answer.Message, data);
    return answer;
  }

  private call<T>(method: string, request: object, options?: CallOptions): Promise<T> {
    const invoke = (this.raw as unknown as Record<string, Function>)[method] as (
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, response?: T) => void,
    ) => void;
    const deadlineMs = checkDeadlineMs("deadlineMs", options?.deadlineMs, this.connection.deadlineMs);
    return new Promise<T>((resolve, reject) => {
      invoke.call(this.raw, request, this.connection.metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
        error ? reject(error) : resolve(response as T),
      );
    });
  }
}

/** A uint64 as the decimal string the wire takes ("0" when absent). */
export function uint64(value: Uint64 | undefined, field: string): string {
  if (value === undefined) return "0";
  if (typeof value === "bigint") {
    if (!isUint64(value)) throw new RangeError(`${field} must be an unsigned 64-bit integer, got ${value}`);
    return value.toString();
  }
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a non-negative safe integer; pass larger values as bigint or string`);
    return String(value);
  }
  if (parseUint64(value) === undefined) throw new RangeError(`${field} must be an unsigned 64-bit integer, got "${value}"`);
  return value;
}
