// Tracing (SPEC §7.3) with the OpenTelemetry API, when the application has it.
// `@opentelemetry/api` is an OPTIONAL peer dependency: it is imported on first use
// (a dynamic import, tried once and cached), and without it, or without an
// OpenTelemetry SDK registered, everything here is a no-op.
// - QueuesClient: every call sends the active context's `traceparent` / `tracestate`
//   metadata (propagation.inject) when a span is active, so a task created inside a
//   producer's span carries that span's context (Task.TraceParent).
// - Worker: each handler runs inside a CONSUMER span, `queues.task <channel>`, whose
//   parent is the delivered task's TraceParent (a root span without one); the
//   handler's outcome sets its status.
//
// No type of @opentelemetry/api appears in the SDK's public declarations, so an
// application without it type-checks too.
import type * as grpc from "@grpc/grpc-js";
import type { Task__Output } from "@queues/protocol";

type OpenTelemetryApi = typeof import("@opentelemetry/api");

const TRACER_NAME = "@queues/client";

/** undefined: not tried yet (or still loading); null: not installed (or not loadable). */
let loaded: OpenTelemetryApi | null | undefined;
let loading: Promise<OpenTelemetryApi | null> | undefined;

/** Imports @opentelemetry/api once; resolves null when the application does not have it. */
function loadOpenTelemetry(): Promise<OpenTelemetryApi | null> {
  loading ??= (async () => {
    try {
      const module = (await import("@opentelemetry/api")) as OpenTelemetryApi & { default?: OpenTelemetryApi };
      // Named exports, or (a loader that offers only the CommonJS object) its default.
      const api = typeof module.propagation?.inject === "function" ? module : module.default;
      loaded = api && typeof api.propagation?.inject === "function" && typeof api.trace?.getTracer === "function" ? api : null;
    } catch {
      loaded = null;
    }
    return loaded;
  })();
  return loading;
}

/** The API if the import has finished: no await on the hot path once it is known. */
function openTelemetry(): OpenTelemetryApi | null | Promise<OpenTelemetryApi | null> {
  return loaded !== undefined ? loaded : loadOpenTelemetry();
}

/**
 * The metadata of a call: `metadata` itself, or a copy with the active context's
 * trace headers (traceparent, tracestate) when a span is active.
 */
export async function traceMetadata(metadata: grpc.Metadata): Promise<grpc.Metadata> {
  const found = openTelemetry();
  const api = found instanceof Promise ? await found : found;
  if (!api) return metadata;
  try {
    const active = api.context.active();
    const spanContext = api.trace.getSpanContext(active);
    if (!spanContext || !api.isSpanContextValid(spanContext)) return metadata;
    const carrier: Record<string, string> = {};
    api.propagation.inject(active, carrier);
    const entries = Object.entries(carrier).filter(([, value]) => typeof value === "string" && value !== "");
    if (entries.length === 0) return metadata;
    const traced = metadata.clone();
    for (const [key, value] of entries) traced.set(key.toLowerCase(), value);
    return traced;
  } catch {
    // Tracing never breaks a call.
    return metadata;
  }
}

/** How a handler ended, for its span. */
export type TaskOutcome = { kind: "SUCCESS" } | { kind: "FAILURE" | "CANCEL"; error: unknown; message: string };

/** A task's handler span: run() makes it the active one; end() sets the outcome and ends it. */
export interface TaskSpan {
  run<T>(handler: () => T): T;
  end(outcome: TaskOutcome): void;
}

const NO_SPAN: TaskSpan = { run: (handler) => handler(), end: () => {} };

/** Starts loading the API ahead of the first task (a worker calls it when it starts). */
export function prepareTracing(): void {
  void loadOpenTelemetry();
}

/**
 * The span a task's handler runs in: `queues.task <channel>`, CONSUMER, child of the
 * context in the task's TraceParent (extracted by the registered propagator), else a
 * root span. Synchronous once the API is loaded; a task that arrives while it is still
 * loading waits for it.
 */
export function startTaskSpan(task: Task__Output, channel: string): TaskSpan | Promise<TaskSpan> {
  const found = openTelemetry();
  return found instanceof Promise ? found.then((api) => taskSpan(api, task, channel)) : taskSpan(found, task, channel);
}

function taskSpan(api: OpenTelemetryApi | null, task: Task__Output, channel: string): TaskSpan {
  if (!api) return NO_SPAN;
  try {
    const { context, propagation, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode } = api;
    const parent = task.TraceParent ? propagation.extract(ROOT_CONTEXT, { traceparent: task.TraceParent }) : ROOT_CONTEXT;
    const taskChannel = task.Channel || channel;
    const span = trace.getTracer(TRACER_NAME).startSpan(
      `queues.task ${taskChannel}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "queues",
          "messaging.operation.type": "process",
          "messaging.destination.name": taskChannel,
          "messaging.message.id": task.ID,
          "queues.task.id": task.ID,
          "queues.channel": taskChannel,
          "queues.task.retry_count": Number(task.RetryCount),
        },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    let ended = false;
    return {
      run: (handler) => context.with(active, handler),
      end: (outcome) => {
        if (ended) return;
        ended = true;
        try {
          span.setAttribute("queues.task.outcome", outcome.kind);
          if (outcome.kind === "SUCCESS") span.setStatus({ code: SpanStatusCode.OK });
          else {
            if (outcome.error instanceof Error) span.recordException(outcome.error);
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.message });
          }
        } finally {
          span.end();
        }
      },
    };
  } catch {
    return NO_SPAN;
  }
}
