// Which errors mean "a backend is unavailable or throttling; retry" (503) rather
// than "a bug" (500). Every AWS client tags its errors with the backend's name
// (see tagBackendErrors), so the 503 Message says which one failed.

const UNAVAILABLE_ERROR_NAMES = new Set([
  "ThrottlingException",
  "Throttling",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "OverLimit",
  "ServiceUnavailable",
  "ServiceUnavailableException",
  "InternalServerError",
  "InternalFailure",
  "InternalError",
  "RequestTimeout",
  "RequestTimeoutException",
  "TimeoutError",
  "TransactionConflictException",
  "TransactionInProgressException",
  // Missing table or queue: an operational problem (not provisioned yet, wrong name), not a bug.
  "ResourceNotFoundException",
  "QueueDoesNotExist",
  "AWS.SimpleQueueService.NonExistentQueue",
]);

const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ERR_HTTP2_STREAM_ERROR",
]);

/** The part of an AWS SDK client this needs. */
export interface MiddlewareClient {
  middlewareStack: { add(middleware: any, options: { step: "initialize"; name: string; override: boolean }): void };
}

interface AwsLikeError {
  name?: string;
  code?: string;
  $backend?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
  CancellationReasons?: { Code?: string }[];
}

export interface BackendFailure {
  backend: string;
  reason: string;
}

export function backendFailure(error: unknown): BackendFailure | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as AwsLikeError;
  const backend = e.$backend ?? "A backend";
  const name = e.name ?? "";
  const status = e.$metadata?.httpStatusCode ?? 0;
  const conflictOnly =
    name === "TransactionCanceledException" && (e.CancellationReasons ?? []).some((reason) => reason.Code === "TransactionConflict" || reason.Code === "ThrottlingError");
  if (
    UNAVAILABLE_ERROR_NAMES.has(name) ||
    NETWORK_ERROR_CODES.has(e.code ?? "") ||
    NETWORK_ERROR_CODES.has(name) ||
    status >= 500 ||
    e.$retryable !== undefined ||
    conflictOnly
  ) {
    return { backend, reason: e.code ?? (name || `HTTP ${status}`) };
  }
  return undefined;
}

/** Adds `$backend` to every error a client throws, so answers and logs can name it. */
export function tagBackendErrors(client: MiddlewareClient, backend: string): void {
  client.middlewareStack.add(
    (next: (args: unknown) => Promise<unknown>) => async (args: unknown) => {
      try {
        return await next(args);
      } catch (error) {
        if (typeof error === "object" && error !== null) (error as AwsLikeError).$backend ??= backend;
        throw error;
      }
    },
    { step: "initialize", name: `tagBackendErrors-${backend}`, override: true },
  );
}
