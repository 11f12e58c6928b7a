// Tracing (SPEC §7.3) through a real gRPC client against a real server, with an
// OpenTelemetry SDK and an in-memory exporter installed in this process: a server span
// per call, child of the caller's traceparent; the create's traceparent kept on the
// task (Task.TraceParent) and delivered with it.
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Api, ReceiveStream } from "./support/client.js";
import { startTestServer, type TestServer } from "./support/harness.js";

const exporter = new InMemorySpanExporter();
let server: TestServer;

beforeAll(async () => {
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  server = await startTestServer({ channels: ["default"] });
});
afterAll(async () => {
  await server?.stop();
  trace.disable();
  context.disable();
  propagation.disable();
});

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${PARENT_ID}-01`;

describe("tracing", () => {
  it("CreateTask with a traceparent: a server span in the caller's trace, and the task keeps the traceparent and is delivered with it", async () => {
    const producer = new Api(server.address, { traceparent: TRACEPARENT });
    const created = await producer.create({ Channel: "default", Input: "traced" });
    expect(created.TraceParent).toBe(TRACEPARENT);
    const span = exporter.getFinishedSpans().find((each) => each.name === "standard.Queues/CreateTask" && each.spanContext().traceId === TRACE_ID);
    expect(span).toBeDefined();
    expect(span?.parentSpanContext?.spanId).toBe(PARENT_ID);
    expect(span?.attributes["rpc.method"]).toBe("CreateTask");
    const stream = new ReceiveStream(server.api, "default").credit(1);
    const delivered = await stream.next(10_000);
    stream.cancel();
    expect(delivered.ID).toBe(created.ID);
    expect(delivered.TraceParent).toBe(TRACEPARENT);
  });

  it("a missing or malformed traceparent: no TraceParent on the task; every call still has its span", async () => {
    for (const traceparent of [undefined, "nonsense", `00-${"0".repeat(32)}-${PARENT_ID}-01`, `ff-${TRACE_ID}-${PARENT_ID}-01`]) {
      const api = new Api(server.address, traceparent === undefined ? {} : { traceparent });
      const created = await api.create({ Channel: "default", Input: "plain" });
      expect(created.TraceParent).toBe("");
      expect((await server.api.cancel(created.ID)).State).toBe("200");
    }
    const failed = exporter.getFinishedSpans().filter((each) => each.name === "standard.Queues/CancelTaskByID");
    expect(failed.length).toBeGreaterThanOrEqual(4);
  });
});
