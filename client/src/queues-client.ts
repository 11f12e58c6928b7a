// The typed producer/operator client: one method per unary RPC. A State other than
// 200 becomes a typed error (errors.ts); uint64 values go in as bigint, decimal string
// or safe integer and come back as decimal strings, never through a JS number.
import type * as grpc from "@grpc/grpc-js";
import { isUint64, parseUint64, type QueuesServiceClient as GeneratedQueuesClient, type Schedule__Output, type Task__Output } from "@queues/protocol";
import { checkDeadlineMs, compileConnectionOptions, type CompiledConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { DuplicateTaskError, errorForState, type QueuesError } from "./errors.js";
import { traceMetadata } from "./tracing.js";

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
  /** Not delivered before this time (up to 366 days ahead): a Date, or an RFC 3339 string such as "2026-12-01T09:00:00Z". */
  runAt?: Date | string;
  /**
   * The priority level, on a channel with `priorities`: 1 is the highest, the channel's `priorities` the lowest;
   * 0 or left out: the middle level (ceil(priorities / 2)). Above the channel's levels: InvalidArgumentError (400).
   */
  priority?: number;
  /**
   * On a channel with `concurrencyPerKey`: at most that many tasks with this key run at once, the others wait
   * (no attempt counted). 1 to 128 characters of [A-Za-z0-9._:-]; left out: no key.
   */
  concurrencyKey?: string;
}

/** One task's outcome in createTasks, in the order given. */
export type CreateResult = { ok: true; hashCode: string } | { ok: false; error: QueuesError };

/** A recurring schedule: each tick of `cron` (in `timeZone`) creates one task from `template`. */
export interface ScheduleInput {
  /** 1 to 64 characters of [A-Za-z0-9._:-]; putting a name again replaces that schedule. */
  name: string;
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with leading seconds. */
  cron: string;
  /** IANA name such as "Europe/Berlin". @default "UTC" */
  timeZone?: string;
  /** The task each tick creates (its HashCode is "schedule:<name>:<tick in epoch ms>"). */
  template: Pick<NewTask, "channel" | "input" | "owner" | "retryMaxLimit" | "priority" | "concurrencyKey">;
  /** true: no ticks fire until it is put again unpaused. @default false */
  paused?: boolean;
}

/** A schedule as the server returns it (NextRunTime and LastRunTime as RFC 3339, "" when none). */
export type Schedule = Schedule__Output;

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
    const answer = await this.call<{ Data: string } & Answer>("CreateTask", { Task: wireTask(task) }, options);
    if (answer.State === "409") throw new DuplicateTaskError(answer.Message, answer.Data);
    return this.ok(answer, answer.Data).Data;
  }

  /**
   * Creates 1 to 100 tasks in one call. Each gets the outcome createTask would give it,
   * in order; one bad task does not stop the others. Rejects only when the call as a
   * whole fails (e.g. more than 100 tasks, or the server is unavailable).
   */
  async createTasks(tasks: readonly NewTask[], options?: CallOptions): Promise<CreateResult[]> {
    const answer = await this.call<{ Results: ({ Data: string } & Answer)[] } & Answer>("CreateTasks", { Tasks: tasks.map(wireTask) }, options);
    return this.ok(answer).Results.map((result): CreateResult => {
      if (result.State === "200") return { ok: true, hashCode: result.Data };
      if (result.State === "409") return { ok: false, error: new DuplicateTaskError(result.Message, result.Data) };
      return { ok: false, error: errorForState(Number(result.State), result.Message, result.Data) };
    });
  }

  /** Creates or replaces the schedule of this name; resolves with it as stored (NextRunTime set unless paused). */
  async putSchedule(schedule: ScheduleInput, options?: CallOptions): Promise<Schedule> {
    const { template } = schedule;
    const answer = await this.call<{ Data: Schedule | null } & Answer>(
      "PutSchedule",
      {
        Schedule: {
          Name: schedule.name,
          Cron: schedule.cron,
          TimeZone: schedule.timeZone ?? "",
          Paused: schedule.paused ?? false,
          Template: {
            Channel: template.channel,
            Input: template.input ?? "",
            Owner: uint64(template.owner, "owner"),
            RetryMaxLimit: uint64(template.retryMaxLimit, "retryMaxLimit"),
            Priority: priorityOf(template.priority),
            ConcurrencyKey: template.concurrencyKey ?? "",
          },
        },
      },
      options,
    );
    return this.ok(answer).Data as Schedule;
  }

  /** Deletes the schedule; NotFoundError when there is none of this name. */
  async deleteSchedule(name: string, options?: CallOptions): Promise<void> {
    this.ok(await this.call<Answer>("DeleteSchedule", { Name: name }, options));
  }

  /** The schedules of a channel (all when omitted), by name. */
  async listSchedules(channel = "", options?: CallOptions): Promise<Schedule[]> {
    const answer = await this.call<{ Data: Schedule[] } & Answer>("QuerySchedules", { Channel: channel }, options);
    return this.ok(answer).Data;
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

  /**
   * Runs a final task (SUCCESS, FAILURE or CANCEL) again: creates a new task with its Channel, Input, Owner,
   * RetryMaxLimit, Priority and ConcurrencyKey (no Prior, no RunAt, a new generated HashCode); resolves with the
   * new task's HashCode, as createTask does. A task not final rejects with ConflictError (409), an absent one
   * with NotFoundError (404), ID 0 with InvalidArgumentError (400).
   */
  async rerunTask(id: Uint64, options?: CallOptions): Promise<string> {
    const answer = await this.call<{ Data: string } & Answer>("RerunTaskByID", { ID: uint64(id, "id") }, options);
    return this.ok(answer).Data;
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

  /** One unary call, with the connection's metadata and, when an OpenTelemetry span is active, its trace context (tracing.ts). */
  private async call<T>(method: string, request: object, options?: CallOptions): Promise<T> {
    const invoke = (this.raw as unknown as Record<string, Function>)[method] as (
      request: object,
      metadata: grpc.Metadata,
      options: grpc.CallOptions,
      callback: (error: grpc.ServiceError | null, response?: T) => void,
    ) => void;
    const deadlineMs = checkDeadlineMs("deadlineMs", options?.deadlineMs, this.connection.deadlineMs);
    const metadata = await traceMetadata(this.connection.metadata);
    return new Promise<T>((resolve, reject) => {
      invoke.call(this.raw, request, metadata, { deadline: Date.now() + deadlineMs }, (error, response) =>
        error ? reject(error) : resolve(response as T),
      );
    });
  }
}

/** The wire Task of a new task. */
function wireTask(task: NewTask) {
  return {
    Channel: task.channel,
    Input: task.input ?? "",
    Owner: uint64(task.owner, "owner"),
    HashCode: task.hashCode ?? "",
    Prior: uint64(task.prior, "prior"),
    RetryMaxLimit: uint64(task.retryMaxLimit, "retryMaxLimit"),
    RunAt: runAtOf(task.runAt),
    Priority: priorityOf(task.priority),
    ConcurrencyKey: task.concurrencyKey ?? "",
  };
}

/** Priority as the wire's uint64 ("0", the middle level, when absent); the server checks it against the channel's levels. */
function priorityOf(value: number | undefined): string {
  if (value === undefined) return "0";
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`priority must be a non-negative integer (1 the highest level, 0 the middle one), got ${value}`);
  return String(value);
}

/** RunAt as RFC 3339: a Date in UTC with milliseconds; a string as given (the server checks it). */
function runAtOf(value: Date | string | undefined): string {
  if (value === undefined) return "";
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new RangeError("runAt is an invalid Date");
    return value.toISOString();
  }
  return value;
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
