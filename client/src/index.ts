// The Queues client SDK: `import { QueuesClient, Worker } from "queues/client"`.
export { QueuesClient, uint64, type CallOptions, type CreateResult, type NewTask, type OwnerPage, type Schedule, type ScheduleInput, type Task, type Uint64 } from "./queues-client.js";
export { Worker, type WorkerEvents } from "./worker.js";
export type { TaskContext, TaskHandler, WorkerOptions } from "./worker-options.js";
export type { ConnectionOptions } from "./connection.js";
export type { BackoffOptions } from "./backoff.js";
export {
  ConflictError,
  DuplicateTaskError,
  GrpcStatus,
  InvalidArgumentError,
  LeaseLostError,
  NonRetryableError,
  NotFoundError,
  QueuesError,
  ServerError,
  UnavailableError,
} from "./errors.js";
// What the protocol says that SDK users (and the `queues` command) need too.
export { FINAL_STATES, isFinal, MAX_PAYLOAD_BYTES, MAX_UINT64, parseUint64, TASK_STATES, type TaskState } from "@queues/protocol";
