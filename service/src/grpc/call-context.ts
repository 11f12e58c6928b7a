// What every RPC shares: a request id (taken from `x-request-id` metadata or made
// up, echoed back in response metadata and in every log line), the mapping from
// errors to response States, and the call's deadline.
import { randomUUID } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { backendFailure } from "../core/backend-errors.js";
import { Rejection, Status, type StatusCode } from "../tasks/status.js";
import { requestScope } from "../logging.js";
import { isUndecodable, undecodableReason } from "./undecodable.js";

export interface Answer {
  state: StatusCode;
  message: string;
  data?: unknown;
}

export function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get("x-request-id")[0];
  return typeof given === "string" && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
}

export function echoRequestId(call: { sendMetadata(metadata: grpc.Metadata): void }, requestId: string): void {
  const metadata = new grpc.Metadata();
  metadata.set("x-request-id", requestId);
  call.sendMetadata(metadata);
}

/** Any error → the State and Message the caller gets. 500s are bugs: logged with the request id. */
export function toAnswer(error: unknown, log: Logger, requestId: string): Answer {
  if (error instanceof Rejection) return { state: error.status, message: error.message, data: error.data };
  const failure = backendFailure(error);
  if (failure) {
    log.warn({ requestId, err: error }, `${failure.backend} unavailable`);
    return { state: Status.UNAVAILABLE, message: `${failure.backend} is unavailable or throttling (${failure.reason}); safe to retry` };
  }
  log.error({ requestId, err: error }, "unexpected server error");
  return { state: Status.INTERNAL, message: `Unexpected server error; it was logged with request id ${requestId}` };
}

/** Milliseconds left before the call's deadline (Infinity when it has none). */
export function timeLeftMs(deadline: grpc.Deadline): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at - Date.now() : Infinity;
}

/** What a handler tells the deadline answer while it runs. */
export interface CallProgress {
  /**
   * Set once a write is under way: if the deadline comes first, the answer must not
   * say "safe to retry" but that the outcome is unknown, and how to find it out.
   */
  outcomeUnknown?: { message: string; data?: unknown };
}

/**
 * How long before the deadline the 503 goes out: 5 % of the time left, at least 25 ms
 * and at most 250 ms, so the answer still arrives in time on a loaded event loop.
 */
export function answerMarginMs(leftMs: number): number {
  return Math.min(250, Math.max(25, leftMs * 0.05));
}

/**
 * Settles with a 503 shortly before the call's deadline, so a caller always gets
 * an answer it can act on instead of DEADLINE_EXCEEDED when a backend hangs.
 */
export function beforeDeadline(deadline: grpc.Deadline, progress: CallProgress = {}): { promise: Promise<never>; clear: () => void } {
  const left = timeLeftMs(deadline);
  if (!Number.isFinite(left)) return { promise: new Promise<never>(() => {}), clear: () => {} };
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const unknown = progress.outcomeUnknown;
      reject(
        unknown
          ? new Rejection(Status.UNAVAILABLE, unknown.message, unknown.data)
          : new Rejection(Status.UNAVAILABLE, "The backends did not answer before the call's deadline; safe to retry"),
      );
    }, Math.max(0, left - answerMarginMs(left)));
  });
  return { promise, clear: () => clearTimeout(timer) };
}

export interface UnaryResponse {
  State?: number | string;
  Message?: string;
}

/**
 * Wraps a unary RPC: the handler returns the 200 response or throws; whatever it
 * throws becomes a response with a State (unary RPCs always end with gRPC OK).
 */
export function unary<Req, Res extends UnaryResponse>(
  method: string,
  log: Logger,
  handle: (request: NoInfer<Req>, progress: CallProgress) => Promise<NoInfer<Res>>,
  failed: (answer: Answer) => NoInfer<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const requestId = requestIdOf(call.metadata);
    const started = performance.now();
    // A call whose deadline is already gone (grpc-js has answered DEADLINE_EXCEEDED) must not start work, e.g. a create.
    if (timeLeftMs(call.getDeadline()) <= 0) {
      callback({ code: grpc.status.DEADLINE_EXCEEDED, details: "The call's deadline had passed before it started" });
      return;
    }
    echoRequestId(call, requestId);
    if (isUndecodable(call.request)) {
      const response = failed({ state: Status.INVALID, message: `The request is not a valid ${method}Request message (${undecodableReason(call.request)})` });
      log.info({ requestId, method, state: Status.INVALID }, "call");
      callback(null, response);
      return;
    }
    const progress: CallProgress = {};
    const deadline = beforeDeadline(call.getDeadline(), progress);
    Promise.race([requestScope.run({ requestId }, () => handle(call.request, progress)), deadline.promise])
      .catch((error: unknown) => failed(toAnswer(error, log, requestId)))
      .then((response) => {
        deadline.clear();
        const taskId = (call.request as { ID?: unknown }).ID;
        log.info(
          { requestId, method, taskId: typeof taskId === "string" && taskId !== "0" ? taskId : undefined, state: Number(response.State), ms: Math.round(performance.now() - started) },
          "call",
        );
        callback(null, response);
      });
  };
}
