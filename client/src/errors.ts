// A unary answer whose State is not 200 becomes one of these errors, so a caller
// can catch by kind: a duplicate HashCode on create (often "fine, it exists"), a
// missing task, a conflict, a retryable backend outage.
import * as grpc from "@grpc/grpc-js";

/**
 * gRPC status codes, for the errors that are no State answer but grpc-js's own
 * (`error.code`): a server that cannot be reached (UNAVAILABLE), a call past its deadline
 * (DEADLINE_EXCEEDED), a refused token (UNAUTHENTICATED, PERMISSION_DENIED), a Worker's
 * fatal stream error.
 */
export const GrpcStatus = grpc.status;
export type GrpcStatus = grpc.status;
export class QueuesError extends Error {
  constructor(
    /** The answer's State (400, 404, 409, 500, 503). */
    readonly state: number,
    message: string,
    /** The answer's Data, when the State carries some (e.g. the final task of a 409 cancel). */
    readonly data?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }

  /** 503: a backend was unavailable; the same call may be retried. */
  get retryable(): boolean {
    return this.state === 503;
  }
}

/** 400: the request breaks a rule; the message names the field. */
export class InvalidArgumentError extends QueuesError {}
/** 404: no such task. */
export class NotFoundError extends QueuesError {}
/** 409: the task is not in a state that allows this. */
export class ConflictError extends QueuesError {}
/** 409 on CreateTask: a task with this HashCode exists already; nothing was created. */
export class DuplicateTaskError extends ConflictError {
  constructor(
    message: string,
    readonly hashCode: string,
  ) {
    super(409, message, hashCode);
  }
}
/** 503: DynamoDB or SQS was unavailable or throttling; safe to retry (CreateTask: look the HashCode up first). */
export class UnavailableError extends QueuesError {}
/** 500: a server bug; the message carries the request id of the server's log line. */
export class ServerError extends QueuesError {}

export function errorForState(state: number, message: string, data?: unknown): QueuesError {
  switch (state) {
    case 400:
      return new InvalidArgumentError(state, message, data);
    case 404:
      return new NotFoundError(state, message, data);
    case 409:
      return new ConflictError(state, message, data);
    case 503:
      return new UnavailableError(state, message, data);
    case 500:
      return new ServerError(state, message, data);
    default:
      return new QueuesError(state, message, data);
  }
}

/** Thrown by a Worker's handler: the task is given up (CANCEL, state 4) instead of retried. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NonRetryableError";
  }
}

/** The task a handler runs was cancelled, or leased to another worker: its signal aborts with this. */
export class LeaseLostError extends Error {
  constructor(
    readonly taskId: string,
    message: string,
  ) {
    super(message);
    this.name = "LeaseLostError";
  }
}
