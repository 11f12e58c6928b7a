// The two handler shapes of the Queues service. Both take the call's context (made
// by the interceptors: request id, logger, principal) and answer with the response
// headers at once (the call-context interceptor puts the request id in them):
//
// - unaryRpc: the handler gets the request, the context and a CallProgress it tells
//   when a write is under way; it returns the 200 response or throws; whatever it throws
//   becomes a response with a State (unary RPCs end with gRPC OK), and a backend that
//   hangs gets a 503 before the deadline. The one exception is a CallRefused (a scoped
//   token asking for what its scope forbids): the call ends with its gRPC status.
// - streamRpc: the handler gets the stream and its context and owns the stream from there.
//
// Authentication and refusing streams while draining happen before either runs
// (interceptors), so a handler only ever sees calls it must serve.
import * as grpc from "@grpc/grpc-js";
import { Status } from "../tasks/status.js";
import { beforeDeadline, CallRefused, callContextOf, timeLeftMs, toAnswer, type Answer, type CallContext, type CallProgress } from "./call-context.js";
import { isUndecodable, undecodableReason } from "./undecodable.js";

export interface UnaryResponse {
  State?: number | string;
  Message?: string;
}

/** A call that reached a handler without the call-context interceptor: the server was built wrong. */
const NO_CONTEXT = { code: grpc.status.INTERNAL, details: "The server has no call-context interceptor" };

export function unaryRpc<Req, Res extends UnaryResponse>(
  handle: (request: NoInfer<Req>, context: CallContext, progress: CallProgress) => Promise<NoInfer<Res>>,
  failed: (answer: Answer) => NoInfer<Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const context = callContextOf(call.metadata);
    if (!context) {
      callback(NO_CONTEXT);
      return;
    }
    const { log, method } = context;
    const started = performance.now();
    // A call whose deadline is already gone (grpc-js has answered DEADLINE_EXCEEDED) must not start work, e.g. a create.
    if (timeLeftMs(call.getDeadline()) <= 0) {
      callback({ code: grpc.status.DEADLINE_EXCEEDED, details: "The call's deadline had passed before it started" });
      return;
    }
    call.sendMetadata(new grpc.Metadata());
    const request = call.request;
    if (isUndecodable(request)) {
      const response = failed({ state: Status.INVALID, message: `The request is not a valid ${method}Request message (${undecodableReason(request)})` });
      log.info({ method, state: Status.INVALID }, "call");
      callback(null, response);
      return;
    }
    const stop = new AbortController();
    const progress: CallProgress = { signal: stop.signal };
    const deadline = beforeDeadline(call.getDeadline(), progress);
    // Work that checks the signal (a deep page's index reads) ends with the call, not after it.
    deadline.promise.catch(() => stop.abort(new Error("the call's deadline answer went out")));
    call.once("cancelled", () => stop.abort(new Error("the caller cancelled the call")));
    Promise.race([context.scope(() => handle(request, context, progress)), deadline.promise])
      .then(
        (response): Res | CallRefused => response,
        (error: unknown) => (error instanceof CallRefused ? error : failed(toAnswer(error, context))),
      )
      .then((outcome) => {
        deadline.clear();
        const ms = Math.round(performance.now() - started);
        if (outcome instanceof CallRefused) {
          log.info({ method, taskId: taskIdOf(request), code: grpc.status[outcome.code], ms }, "call");
          callback({ code: outcome.code, details: outcome.details });
          return;
        }
        log.info({ method, taskId: taskIdOf(request), state: Number(outcome.State), ms }, "call");
        callback(null, outcome);
      });
  };
}

export function streamRpc<Req, Res>(handle: (call: grpc.ServerDuplexStream<Req, Res>, context: CallContext) => void): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => {
    const context = callContextOf(call.metadata);
    if (!context) {
      call.emit("error", NO_CONTEXT);
      return;
    }
    call.sendMetadata(new grpc.Metadata());
    handle(call, context);
  };
}

/** The task ID a request names, for the call's log line (not the 0 of "none"). */
function taskIdOf(request: unknown): string | undefined {
  if (typeof request !== "object" || request === null || !("ID" in request)) return undefined;
  return typeof request.ID === "string" && request.ID !== "0" ? request.ID : undefined;
}
