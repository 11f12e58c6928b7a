// Tracing (SPEC §7.3) with the OpenTelemetry API: a no-op until the process installs
// an OpenTelemetry SDK (README "Tracing"). Each Queues call gets a server span,
// `standard.Queues/<Method>`, child of the caller's context when its metadata carries
// W3C `traceparent` (and `tracestate`). CreateTask keeps the caller's traceparent on
// the task (Task.TraceParent), so the worker that gets the task continues that trace.
import * as grpc from "@grpc/grpc-js";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type TextMapGetter } from "@opentelemetry/api";
import type { QueuesMethods } from "./interceptors.js";

/** W3C Trace Context: version 00, a trace id and a parent id that are not all zeros, flags. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The call's `traceparent` when it is a valid W3C one, else "" (a bad one is ignored, not refused). */
export function traceParentOf(metadata: grpc.Metadata): string {
  const value = metadata.get("traceparent")[0];
  return typeof value === "string" && TRACEPARENT.test(value) ? value : "";
}

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (metadata) => Object.keys(metadata.getMap()),
  get: (metadata, key) => {
    const values = metadata.get(key).filter((value): value is string => typeof value === "string");
    return values.length === 0 ? undefined : values.length === 1 ? values[0] : values;
  },
};

const tracer = trace.getTracer("@queues/server");

/** A server span per Queues call, ended with the call's status. */
export function tracingInterceptor(methods: QueuesMethods): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const method = methods.get(descriptor.path);
    if (method === undefined) return new grpc.ServerInterceptingCall(call);
    let span: ReturnType<typeof tracer.startSpan> | undefined;
    const end = (code: grpc.status, details?: string) => {
      if (!span) return;
      span.setAttribute("rpc.grpc.status_code", code);
      if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: details });
      span.end();
      span = undefined;
    };
    return new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, pass) => {
            const parent = propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
            span = tracer.startSpan(
              `standard.Queues/${method}`,
              { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": "standard.Queues", "rpc.method": method } },
              parent,
            );
            context.with(trace.setSpan(parent, span), () => pass(metadata));
          },
          onCancel: () => end(grpc.status.CANCELLED, "cancelled by the client"),
        }),
      sendStatus: (status, pass) => {
        end(status.code, status.details);
        pass(status);
      },
    });
  };
}
