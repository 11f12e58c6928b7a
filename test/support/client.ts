// A real gRPC client of the Queues service for tests, typed with the generated
// types: promise-returning unary calls, a worker's receive stream and a report stream.
import * as grpc from "@grpc/grpc-js";
import { loadQueuesPackage, type QueuesServiceClient as QueuesClient, type Task, type Task__Output, type CreateTaskResponse__Output, type QueryTaskByIDResponse__Output, type QueryTaskByHashCodeResponse__Output, type QueryTaskByOwnerResponse__Output, type CancelTaskByIDResponse__Output, type QueryLengthByChannelResponse__Output, type ReceiveQueueByChannelRequest, type ReceiveQueueByChannelResponse__Output, type ReportTaskResultRequest, type ReportTaskResultResponse__Output, type CreateTasksResponse__Output, type Schedule, type PutScheduleResponse__Output, type DeleteScheduleResponse__Output, type QuerySchedulesResponse__Output } from "@queues/protocol";

export type WireTask = Task__Output;

/** `metadata`: sent with every call (e.g. `{ authorization: "Bearer <token>" }`). */
export function createRawClient(address: string, metadata: Record<string, string> = {}): QueuesClient {
  const { proto } = loadQueuesPackage();
  const entries = Object.entries(metadata);
  const withMetadata: grpc.Interceptor = (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start: (sent, listener, next) => {
        for (const [key, value] of entries) sent.set(key, value);
        next(sent, listener);
      },
    });
  return new proto.standard.Queues(address, grpc.credentials.createInsecure(), entries.length > 0 ? { interceptors: [withMetadata] } : {});
}

type Callback<T> = (error: grpc.ServiceError | null, value?: T) => void;

function promisify<Req, Res>(
  invoke: (request: Req, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback<Res>) => unknown,
  request: Req,
  deadlineMs: number,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    invoke(request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error, value) =>
      error ? reject(error) : resolve(value as Res),
    );
  });
}

/** Unary calls of the Queues API. uint64 values are passed and returned as decimal strings. */
export class Api {
  readonly raw: QueuesClient;

  /** `metadata`: sent with every call, streams too (e.g. `{ authorization: "Bearer <token>" }`). */
  constructor(
    readonly address: string,
    metadata: Record<string, string> = {},
  ) {
    this.raw = createRawClient(address, metadata);
  }

  createTask(task: Task | null, deadlineMs = 10_000): Promise<CreateTaskResponse__Output> {
    return promisify(this.raw.CreateTask.bind(this.raw), task === null ? {} : { Task: task }, deadlineMs);
  }

  queryById(ID: string, deadlineMs = 10_000): Promise<QueryTaskByIDResponse__Output> {
    return promisify(this.raw.QueryTaskByID.bind(this.raw), { ID }, deadlineMs);
  }

  queryByHashCode(HashCode: string, deadlineMs = 10_000): Promise<QueryTaskByHashCodeResponse__Output> {
    return promisify(this.raw.QueryTaskByHashCode.bind(this.raw), { HashCode }, deadlineMs);
  }

  queryByOwner(Owner: string, Limit = "0", Offset = "0", deadlineMs = 10_000): Promise<QueryTaskByOwnerResponse__Output> {
    return promisify(this.raw.QueryTaskByOwner.bind(this.raw), { Owner, Limit, Offset }, deadlineMs);
  }

  cancel(ID: string, deadlineMs = 10_000): Promise<CancelTaskByIDResponse__Output> {
    return promisify(this.raw.CancelTaskByID.bind(this.raw), { ID }, deadlineMs);
  }

  length(Channel: string, deadlineMs = 10_000): Promise<QueryLengthByChannelResponse__Output> {
    return promisify(this.raw.QueryLengthByChannel.bind(this.raw), { Channel }, deadlineMs);
  }

  rerun(ID: string, deadlineMs = 10_000): Promise<CreateTaskResponse__Output> {
    return promisify(this.raw.RerunTaskByID.bind(this.raw), { ID }, deadlineMs);
  }

  createTasks(tasks: Task[], deadlineMs = 20_000): Promise<CreateTasksResponse__Output> {
    return promisify(this.raw.CreateTasks.bind(this.raw), { Tasks: tasks }, deadlineMs);
  }

  putSchedule(schedule: Schedule | null, deadlineMs = 10_000): Promise<PutScheduleResponse__Output> {
    return promisify(this.raw.PutSchedule.bind(this.raw), schedule === null ? {} : { Schedule: schedule }, deadlineMs);
  }

  deleteSchedule(Name: string, deadlineMs = 10_000): Promise<DeleteScheduleResponse__Output> {
    return promisify(this.raw.DeleteSchedule.bind(this.raw), { Name }, deadlineMs);
  }

  querySchedules(Channel = "", deadlineMs = 10_000): Promise<QuerySchedulesResponse__Output> {
    return promisify(this.raw.QuerySchedules.bind(this.raw), { Channel }, deadlineMs);
  }

  /** Creates a task and returns it as stored (so tests get its ID). */
  async create(task: Task): Promise<WireTask> {
    const created = await this.createTask(task);
    if (created.State !== "200") throw new Error(`CreateTask answered ${created.State}: ${created.Message}`);
    const found = await this.queryByHashCode(created.Data);
    if (!found.Data) throw new Error("created task not found by HashCode");
    return found.Data;
  }

  async get(ID: string): Promise<WireTask> {
    const found = await this.queryById(ID);
    if (!found.Data) throw new Error(`QueryTaskByID ${ID} answered ${found.State}: ${found.Message}`);
    return found.Data;
  }

  close(): void {
    this.raw.close();
  }
}

/** One ReceiveQueueByChannel stream: send credits, take tasks as they arrive. */
export class ReceiveStream {
  readonly call: grpc.ClientDuplexStream<ReceiveQueueByChannelRequest, ReceiveQueueByChannelResponse__Output>;
  private readonly received: WireTask[] = [];
  private readonly waiters: ((task: WireTask) => void)[] = [];
  readonly status: Promise<grpc.StatusObject>;
  ended = false;

  constructor(api: Api, private readonly channel = "default") {
    this.call = api.raw.ReceiveQueueByChannel();
    this.call.on("data", (response: ReceiveQueueByChannelResponse__Output) => {
      const task = response.Tasks as WireTask;
      const waiter = this.waiters.shift();
      if (waiter) waiter(task);
      else this.received.push(task);
    });
    this.call.on("error", () => {});
    this.status = new Promise((resolve) => this.call.on("status", (status: grpc.StatusObject) => ((this.ended = true), resolve(status))));
  }

  credit(count = 1, channel = this.channel): this {
    for (let i = 0; i < count; i++) this.call.write({ Channel: channel });
    return this;
  }

  /** The next task delivered on this stream; rejects after `timeoutMs`. */
  next(timeoutMs = 10_000): Promise<WireTask> {
    const ready = this.received.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const waiter = (task: WireTask) => {
        clearTimeout(timer);
        resolve(task);
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no task delivered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Resolves true if no task arrives within `ms`. */
  async nothingWithin(ms: number): Promise<boolean> {
    try {
      const task = await this.next(ms);
      this.received.unshift(task);
      return false;
    } catch {
      return true;
    }
  }

  get buffered(): number {
    return this.received.length;
  }

  /** Half-closes: the client sends no more credits. */
  end(): void {
    this.call.end();
  }

  cancel(): void {
    this.call.cancel();
  }
}

/** One ReportTaskResult stream; responses come back in request order. */
export class ReportStream {
  readonly call: grpc.ClientDuplexStream<ReportTaskResultRequest, ReportTaskResultResponse__Output>;
  private readonly pending: { resolve: (r: ReportTaskResultResponse__Output) => void; reject: (e: Error) => void }[] = [];
  readonly status: Promise<grpc.StatusObject>;

  constructor(api: Api) {
    this.call = api.raw.ReportTaskResult();
    this.call.on("data", (response: ReportTaskResultResponse__Output) => this.pending.shift()?.resolve(response));
    this.call.on("error", (error: Error) => {
      for (const waiter of this.pending.splice(0)) waiter.reject(error);
    });
    this.status = new Promise((resolve) => this.call.on("status", resolve));
  }

  /** `LeaseToken`: the delivery's token (fencing); leave it out for the seed's behaviour. */
  report(ID: string, State: number | string, Output = "", LeaseToken?: string): Promise<ReportTaskResultResponse__Output> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.call.write({ ID, State: String(State), Output, ...(LeaseToken === undefined ? {} : { LeaseToken }) });
    });
  }

  end(): void {
    this.call.end();
  }
}

export const ReportState = { SUCCESS: 1, FAILURE: 2, CANCEL: 4, PROCEEDING: 6 } as const;
