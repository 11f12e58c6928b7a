// Tracing in the SDK (SPEC §7.3), with an OpenTelemetry SDK and an in-memory exporter
// installed in this process: QueuesClient sends the active span's traceparent, so a
// task created inside a producer's span carries it (Task.TraceParent); the Worker runs
// the task's handler in a CONSUMER span whose parent is that context, in the same
// trace as the producer's span and the server's CreateTask span. Without an active
// span: no traceparent sent, and the handler's span is a root span.
// (@opentelemetry/api is an optional peer dependency of the client: test/packages.test.ts
// runs the packed client where it is not installed.)
import { context, propagation, SpanKind, SpanStatusCode, trace, type SpanContext } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NonRetryableError, QueuesClient, Worker, type Task, type TaskHandler } from "@queues/client";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";

const exporter = new InMemorySpanExporter();
const tracer = trace.getTracer("client-tracing-test");
let server: TestServer;
let client: QueuesClient;
const workers: Worker[] = [];

beforeAll(async () => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  server = await startTestServer({ channels: ["traced", "plain", "refused"] });
  client = new QueuesClient({ address: server.address });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((worker) => worker.close()));
});
afterAll(async () => {
  client?.close();
  await server?.stop();
  trace.disable();
  context.disable();
  propagation.disable();
});

/** Runs one task of `channel` with `handler` in a new Worker; resolves with the task once its result is acknowledged. */
function runOne(channel: string, handler: TaskHandler): Promise<Task> {
  const worker = new Worker({ address: server.address, channel, drainTimeoutMs: 5_000, handler });
  workers.push(worker);
  void worker.run().catch(() => {});
  return new Promise((resolve) => {
    for (const event of ["taskSucceeded", "taskFailed", "taskCancelled"] as const) worker.once(event, (task: Task) => resolve(task));
  });
}

const finished = (name: string, traceId?: string) =>
  exporter.getFinishedSpans().filter((span) => span.name === name && (traceId === undefined || span.spanContext().traceId === traceId));

/** The one finished span of this name (in this trace), once it has ended. */
const oneSpan = (name: string, traceId?: string) =>
  eventually(async () => {
    const spans = finished(name, traceId);
    return spans.length === 1 ? spans[0] : undefined;
  });

const traceparentOf = (span: SpanContext) => `00-${span.traceId}-${span.spanId}-0${span.traceFlags}`;

describe("SDK tracing with an OpenTelemetry SDK installed", () => {
  it("a task created in a producer span is handled in a CONSUMER span of the same trace, the producer span its parent", async () => {
    let producer: SpanContext | undefined;
    const hashCode = await tracer.startActiveSpan("producer", async (span) => {
      producer = span.spanContext();
      try {
        return await client.createTask({ channel: "traced", input: "follow me" });
      } finally {
        span.end();
      }
    });
    if (!producer) throw new Error("no producer span");
    const { traceId, spanId } = producer;
    // The SDK sent the producer span's context; the server kept it on the task.
    const created = await client.getTaskByHashCode(hashCode);
    expect(created.TraceParent).toBe(traceparentOf(producer));
    // The server's CreateTask span: in the producer's trace, its child.
    const createSpan = await oneSpan("standard.Queues/CreateTask", traceId);
    expect(createSpan?.parentSpanContext?.spanId).toBe(spanId);

    let inHandler: SpanContext | undefined;
    const done = await runOne("traced", async (task) => {
      inHandler = trace.getActiveSpan()?.spanContext();
      // A call the handler makes continues the trace too.
      await client.getTask(task.ID);
      return "followed";
    });
    expect(done.ID).toBe(created.ID);
    const handled = (await oneSpan("queues.task traced", traceId)) as ReadableSpan;
    expect(handled.spanContext().traceId).toBe(traceId);
    expect(handled.spanContext().traceId).toBe(createSpan?.spanContext().traceId);
    expect(handled.parentSpanContext?.spanId).toBe(spanId);
    expect(handled.parentSpanContext?.isRemote).toBe(true);
    expect(handled.kind).toBe(SpanKind.CONSUMER);
    expect(handled.status.code).toBe(SpanStatusCode.OK);
    expect(handled.attributes).toMatchObject({ "queues.task.id": created.ID, "queues.channel": "traced", "queues.task.retry_count": 0, "queues.task.outcome": "SUCCESS" });
    // The handler ran with its span active.
    expect(inHandler?.spanId).toBe(handled.spanContext().spanId);
    const query = (await oneSpan("standard.Queues/QueryTaskByID", traceId)) as ReadableSpan;
    expect(query.parentSpanContext?.spanId).toBe(handled.spanContext().spanId);
  });

  it("without an active span: no traceparent is sent, and the handler's span is a root span", async () => {
    const hashCode = await client.createTask({ channel: "plain", input: "untraced" });
    const created = await client.getTaskByHashCode(hashCode);
    expect(created.TraceParent).toBe("");
    await runOne("plain", () => "ok");
    const handled = (await oneSpan("queues.task plain")) as ReadableSpan;
    expect(handled.parentSpanContext).toBeUndefined();
    expect(handled.attributes["queues.task.id"]).toBe(created.ID);
    // The create's server span is a root span of another trace.
    const creates = finished("standard.Queues/CreateTask").filter((span) => span.parentSpanContext === undefined);
    expect(creates.length).toBeGreaterThan(0);
    expect(creates.map((span) => span.spanContext().traceId)).not.toContain(handled.spanContext().traceId);
  });

  it("a handler that throws ends its span with an ERROR status and the exception", async () => {
    const hashCode = await tracer.startActiveSpan("producer of a refused task", async (span) => {
      try {
        return await client.createTask({ channel: "refused", input: "no" });
      } finally {
        span.end();
      }
    });
    const created = await client.getTaskByHashCode(hashCode);
    await runOne("refused", () => {
      throw new NonRetryableError("not this one");
    });
    const handled = (await oneSpan("queues.task refused")) as ReadableSpan;
    expect(traceparentOf(handled.parentSpanContext as SpanContext)).toBe(created.TraceParent);
    expect(handled.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "not this one" });
    expect(handled.attributes["queues.task.outcome"]).toBe("CANCEL");
    expect(handled.events.map((event) => event.name)).toContain("exception");
  });
});
