// The cross-cutting concerns of the Queues RPCs as grpc-js server interceptors,
// installed on the server (server.ts) in this order, outermost first:
//
// 0. tracingInterceptor (tracing.ts): a server span per call, child of the caller's
//    W3C traceparent.
// 1. callContextInterceptor: the request id (the caller's `x-request-id` or a fresh
//    one) and the call's context (request-scoped logger; see call-context.ts); every
//    answer carries the id in its response metadata, a refusal too.
// 2. authInterceptor (auth/interceptor.ts, when tokens are configured): refuses a
//    call without a token allowed to call the RPC (UNAUTHENTICATED,
//    PERMISSION_DENIED), else puts the caller's role in the context.
// 3. drainingInterceptor: refuses a new stream while the server shuts down (UNAVAILABLE).
// 4. firstMessageInterceptor: ends a unary call or a receive stream that sends no
//    message within QUEUES_FIRST_MESSAGE_TIMEOUT_MS (headers alone hold nothing open).
//
// They act on the Queues service's methods only: health and reflection pass
// untouched (open to load balancers and grpcurl, no request id).
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import { attachCallContext, CallContext, REQUEST_ID_KEY, requestIdOf } from "./call-context.js";
import { SHUTTING_DOWN, type DrainState } from "./stream-registry.js";
import { traceParentOf } from "./tracing.js";

/** The RPCs an interceptor acts on: method path ("/standard.Queues/CreateTask") → RPC name ("CreateTask"). */
export type QueuesMethods = ReadonlyMap<string, string>;

export function queuesMethods(service: grpc.ServiceDefinition): QueuesMethods {
  return new Map(Object.entries(service).map(([name, method]) => [method.path, name]));
}

/** The gRPC status a call is refused with. */
export interface Refusal {
  code: grpc.status;
  details: string;
}

/**
 * A call that asks `refuse` about the request metadata before anything else runs:
 * a refusal ends the call with that status and the handler never runs (nor reads a
 * message); otherwise the call goes on unchanged.
 */
export function admissionCall(call: grpc.ServerInterceptingCallInterface, refuse: (metadata: grpc.Metadata) => Refusal | undefined): grpc.ServerInterceptingCall {
  let refused = false;
  return new grpc.ServerInterceptingCall(call, {
    start: (next) =>
      next({
        onReceiveMetadata: (metadata, admit) => {
          const refusal = refuse(metadata);
          if (!refusal) return admit(metadata);
          refused = true;
          call.sendStatus({ ...refusal, metadata: null });
        },
        onReceiveMessage: (message, pass) => {
          if (!refused) pass(message);
        },
        onReceiveHalfClose: (pass) => {
          if (!refused) pass();
        },
      }),
  });
}

/** Makes each Queues call's context and echoes its request id in the response metadata (the trailers of a refusal). */
export function callContextInterceptor(log: Logger, methods: QueuesMethods): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const method = methods.get(descriptor.path);
    if (method === undefined) return new grpc.ServerInterceptingCall(call);
    let requestId: string | undefined;
    let headersSent = false;
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            requestId = requestIdOf(metadata);
            attachCallContext(metadata, new CallContext(requestId, method, log.child({ requestId, rpc: method }), traceParentOf(metadata)));
            pass(metadata);
          },
        }),
      sendMetadata: (metadata, pass) => {
        headersSent = true;
        if (requestId !== undefined) metadata.set(REQUEST_ID_KEY, requestId);
        pass(metadata);
      },
      sendStatus: (status, pass) => {
        // Without headers the status goes out alone (trailers only): the id goes with it.
        if (headersSent || requestId === undefined) return pass(status);
        const metadata = status.metadata?.clone() ?? new grpc.Metadata();
        metadata.set(REQUEST_ID_KEY, requestId);
        pass({ ...status, metadata });
      },
    });
  };
}

/**
 * Refuses a new Queues stream with UNAVAILABLE once the server drains: the open ones
 * are being ended (StreamRegistry.shutdownAll) and a new one would outlive them.
 * Unary calls are still served (a graceful shutdown lets them finish).
 */
export function drainingInterceptor(server: DrainState, methods: QueuesMethods): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const stream = descriptor.requestStream || descriptor.responseStream;
    if (!stream || !methods.has(descriptor.path)) return new grpc.ServerInterceptingCall(call);
    return admissionCall(call, () => (server.draining ? SHUTTING_DOWN : undefined));
  };
}

/**
 * Ends a call that has sent headers but no message within `timeoutMs`: a unary call's
 * request, or a receive stream's first credit (DEADLINE_EXCEEDED). A report stream is
 * exempt: a worker opens it at start and may have nothing to report for a long time
 * (connection age and its grace bound how long any call lives, see server.ts).
 */
export function firstMessageInterceptor(timeoutMs: number, methods: QueuesMethods): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const exempt = descriptor.requestStream && descriptor.responseStream && methods.get(descriptor.path) === "ReportTaskResult";
    if (exempt || !methods.has(descriptor.path)) return new grpc.ServerInterceptingCall(call);
    let timer: NodeJS.Timeout | undefined;
    const stop = () => clearTimeout(timer);
    return new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        timer = setTimeout(() => {
          call.sendStatus({ code: grpc.status.DEADLINE_EXCEEDED, details: `No request message within ${timeoutMs} ms`, metadata: null });
        }, timeoutMs);
        timer.unref();
        next({
          onReceiveMessage: (message, pass) => {
            stop();
            pass(message);
          },
          onReceiveHalfClose: (pass) => {
            stop();
            pass();
          },
          onCancel: stop,
        });
      },
      sendStatus: (status, pass) => {
        stop();
        pass(status);
      },
    });
  };
}
