// The exit codes of the `queues` command, for scripts (also in the README).
import { GrpcStatus, QueuesError } from "@queues/client";

export const ExitCode = {
  OK: 0,
  /** An unexpected error. */
  ERROR: 1,
  /** Bad arguments: a usage error, or the server answered 400. */
  INVALID: 2,
  /** 404: no such task. */
  NOT_FOUND: 3,
  /** 409: a duplicate HashCode, a task not in a state that allows this. */
  CONFLICT: 4,
  /** 503, or the server could not be reached in time: retry later. */
  UNAVAILABLE: 5,
  /** 500: a server bug (its message carries the request id). */
  SERVER_ERROR: 6,
  /** watch: the task ended FAILURE. */
  TASK_FAILED: 7,
  /** watch: the task ended CANCEL. */
  TASK_CANCELLED: 8,
  /** Authentication or permission refused. */
  NOT_ALLOWED: 9,
  /** watch: the task was not final before --timeout. */
  TIMEOUT: 10,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export function exitCodeOf(error: unknown): ExitCodeValue {
  if (error instanceof QueuesError) {
    switch (error.state) {
      case 400:
        return ExitCode.INVALID;
      case 404:
        return ExitCode.NOT_FOUND;
      case 409:
        return ExitCode.CONFLICT;
      case 503:
        return ExitCode.UNAVAILABLE;
      default:
        return ExitCode.SERVER_ERROR;
    }
  }
  if (error instanceof RangeError) return ExitCode.INVALID;
  // grpc-js's own errors (no State answer) carry a status code.
  const code = (error as { code?: unknown } | undefined)?.code;
  switch (code) {
    case GrpcStatus.UNAVAILABLE:
    case GrpcStatus.DEADLINE_EXCEEDED:
      return ExitCode.UNAVAILABLE;
    case GrpcStatus.INVALID_ARGUMENT:
      return ExitCode.INVALID;
    case GrpcStatus.UNAUTHENTICATED:
    case GrpcStatus.PERMISSION_DENIED:
      return ExitCode.NOT_ALLOWED;
    default:
      return ExitCode.ERROR;
  }
}
