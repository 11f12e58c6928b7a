// The Queues client SDK: `import { QueuesClient, Worker } from "queues/client"`.
export { QueuesClient, uint64, type CallOptions, type NewTask, type OwnerPage, type Task, type Uint64 } from "./queues-client.js";
export { Worker, type TaskContext, type TaskHandler, type WorkerEvents, type WorkerOptions } from "./worker.js";
export type { ConnectionOptions } from "./connection.js";
export type { BackoffOptions } from "./backoff.js";
export {
  ConflictError,
  DuplicateTaskError,
  InvalidArgumentError,
  LeaseLostError,
  NonRetryableError,
  NotFoundError,
  QueuesError,
  ServerError,
  UnavailableError,
} from "./errors.js";
