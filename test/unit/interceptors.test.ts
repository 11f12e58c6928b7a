// The server's interceptors (request id and call context, authentication, refusal
// while draining) and the two handler wrappers, on a real grpc-js server in this
// process with stub handlers: no emulator, no backend.
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { HealthService } from "../../service/src/health/health-service.js";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadQueuesPackage, type QueuesHandlers, type QueuesServiceClient } from "@queues/protocol";
import { Authorizer } from "../../service/src/auth/authorizer.js";
import { parseTokens } from "../../service/src/auth/tokens.js";
import type { CallContext } from "../../service/src/grpc/call-context.js";
import { streamRpc, unaryRpc, type UnaryResponse } from "../../service/src/grpc/rpc.js";
import { bind, createGrpcServer } from "../../service/src/grpc/server.js";
import { SHUTTING_DOWN } from "../../service/src/grpc/stream-registry.js";
import { withSafeDeserializers } from "../../service/src/grpc/undecodable.js";

const TOKENS = { admin: "admin-token-0123456789abcdef", producer: "producer-token-0123456789abcdef", worker: "worker-token-0123456789abcdef" };

/** What the handlers saw: one context per call that reached a handler. */
const seen: CallContext[] = [];

function unaryStub(): grpc.handleUnaryCall<unknown, UnaryResponse> {
  return unaryRpc(
    async (_request, context) => {
      seen.push(context);
      context.log.info("handled");
      return { State: 200, Message: context.principal?.role ?? "anonymous" };
    },
    ({ state, message }) => ({ State: state, Message: message }),
  );
}

const handlers: QueuesHandlers = {
  CreateTask: unaryStub(),
  QueryTaskByID: unaryStub(),
  QueryTaskByHashCode: unaryStub(),
  QueryTaskByOwner: unaryStub(),
  CancelTaskByID: unaryStub(),
  QueryLengthByChannel: unaryStub(),
  CreateTasks: unaryStub(),
  PutSchedule: unaryStub(),
  DeleteSchedule: unaryStub(),
  QuerySchedules: unaryStub(),
  RerunTaskByID: unaryStub(),
  ReceiveQueueByChannel: streamRpc((call, context) => {
    seen.push(context);
    call.on("data", () => call.write({ Tasks: { ID: "1", Channel: context.principal?.role ?? "anonymous" } }));
    call.on("end", () => call.end());
  }),
  ReportTaskResult: streamRpc((call, context) => {
    seen.push(context);
    call.on("data", (report) => call.write({ State: 200, Message: context.principal?.role ?? "anonymous", Data: report.ID }));
    call.on("end", () => call.end());
  }),
};

interface Running {
  server: grpc.Server;
  client: QueuesServiceClient;
  address: string;
  drain: { draining: boolean };
  logs: Record<string, unknown>[];
}

async function start(authorizer: Authorizer | undefined): Promise<Running> {
  const logs: Record<string, unknown>[] = [];
  const log = pino(
    { level: "debug" },
    new Writable({ write: (chunk: Buffer, _encoding, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }),
  );
  const drain = { draining: false };
  const health = { implementation: new HealthService({ "": "SERVING" }) };
  const server = createGrpcServer(handlers, health, { log, authorizer, drain, reflection: true });
  const port = await bind(server, "127.0.0.1", 0);
  const address = `127.0.0.1:${port}`;
  const client = new (loadQueuesPackage().proto.standard.Queues)(address, grpc.credentials.createInsecure());
  return { server, client, address, drain, logs };
}

function stop(running: Running | undefined): void {
  running?.client.close();
  running?.server.forceShutdown();
}

function metadataOf(entries: Record<string, string>): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(entries)) metadata.set(key, value);
  return metadata;
}

interface UnaryOutcome {
  error: grpc.ServiceError | null;
  response: { State?: string; Message?: string } | undefined;
  headers: grpc.Metadata | undefined;
  status: grpc.StatusObject;
}

/** A CreateTask with this metadata: its answer, its response headers and its status (with trailers). */
function createTask(running: Running, entries: Record<string, string> = {}): Promise<UnaryOutcome> {
  return new Promise((resolve) => {
    let headers: grpc.Metadata | undefined;
    let settled: Pick<UnaryOutcome, "error" | "response"> | undefined;
    let status: grpc.StatusObject | undefined;
    const done = () => settled && status && resolve({ ...settled, headers, status });
    const call = running.client.CreateTask({ Task: { Channel: "default" } }, metadataOf(entries), { deadline: Date.now() + 5_000 }, (error, response) => {
      settled = { error, response };
      done();
    });
    call.on("metadata", (received: grpc.Metadata) => (headers = received));
    call.on("status", (received: grpc.StatusObject) => {
      status = received;
      done();
    });
  });
}

interface StreamOutcome {
  headers: grpc.Metadata | undefined;
  answers: { State?: string; Message?: string; Data?: string }[];
  status: grpc.StatusObject;
}

/** A report stream with this metadata that sends one report and half-closes. */
function reportOnce(running: Running, entries: Record<string, string> = {}): Promise<StreamOutcome> {
  return new Promise((resolve) => {
    const call = running.client.ReportTaskResult(metadataOf(entries), { deadline: Date.now() + 5_000 });
    let headers: grpc.Metadata | undefined;
    const answers: StreamOutcome["answers"] = [];
    call.on("metadata", (received: grpc.Metadata) => (headers = received));
    call.on("data", (answer: StreamOutcome["answers"][number]) => answers.push(answer));
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => resolve({ headers, answers, status }));
    call.write({ ID: "7", State: "1", Output: "" });
    call.end();
  });
}

const requestIdIn = (metadata: grpc.Metadata | undefined) => metadata?.get("x-request-id")[0];

afterEach(() => {
  seen.length = 0;
});

describe("with authentication", () => {
  let running: Running;
  beforeAll(async () => {
    running = await start(new Authorizer(parseTokens(JSON.stringify(TOKENS), "test")));
  });
  afterAll(() => stop(running));

  it("refuses a call without a token or with an unknown one (UNAUTHENTICATED) before its handler runs, and echoes the request id", async () => {
    const missing = await createTask(running, { "x-request-id": "refused-1" });
    expect(missing.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(missing.error?.details).toBe("Missing credentials: send the metadata 'authorization: Bearer <token>'");
    expect(requestIdIn(missing.status.metadata)).toBe("refused-1");
    const unknown = await createTask(running, { authorization: "Bearer not-a-known-token-at-all" });
    expect(unknown.error?.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(unknown.error?.details).toBe("Unknown token");
    expect(requestIdIn(unknown.status.metadata)).toMatch(/^[0-9a-f-]{36}$/);
    const stream = await reportOnce(running);
    expect(stream.status.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(stream.answers).toEqual([]);
    expect(seen).toEqual([]);
  });

  it("refuses a token without the role (PERMISSION_DENIED), on unary calls and streams", async () => {
    const worker = await createTask(running, { authorization: `Bearer ${TOKENS.worker}` });
    expect(worker.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(worker.error?.details).toBe("A worker token may not call CreateTask");
    const producer = await reportOnce(running, { authorization: `Bearer ${TOKENS.producer}` });
    expect(producer.status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(producer.status.details).toBe("A producer token may not call ReportTaskResult");
    expect(seen).toEqual([]);
  });

  it("hands the handler the caller's role and request id in its context", async () => {
    const producer = await createTask(running, { authorization: `Bearer ${TOKENS.producer}`, "x-request-id": "req-producer" });
    expect(producer.error).toBeNull();
    expect(producer.response).toMatchObject({ State: "200", Message: "producer" });
    expect(requestIdIn(producer.headers)).toBe("req-producer");
    const worker = await reportOnce(running, { authorization: `Bearer ${TOKENS.worker}`, "x-request-id": "req-worker" });
    expect(worker.status.code).toBe(grpc.status.OK);
    expect(worker.answers).toMatchObject([{ State: "200", Message: "worker", Data: "7" }]);
    expect(requestIdIn(worker.headers)).toBe("req-worker");
    expect(seen.map((context) => [context.method, context.requestId, context.principal?.role])).toEqual([
      ["CreateTask", "req-producer", "producer"],
      ["ReportTaskResult", "req-worker", "worker"],
    ]);
    // The request-scoped logger carries the request id and the RPC.
    expect(running.logs.find((line) => line.msg === "handled")).toMatchObject({ requestId: "req-producer", rpc: "CreateTask" });
    expect(running.logs.find((line) => line.msg === "call")).toMatchObject({ requestId: "req-producer", method: "CreateTask", state: 200 });
    expect(JSON.stringify(running.logs)).not.toContain(TOKENS.producer);
  });

  it("leaves health open, without a request id", async () => {
    const raw = new grpc.Client(running.address, grpc.credentials.createInsecure());
    const answer = await new Promise<{ bytes: Buffer | undefined; headers: grpc.Metadata | undefined }>((resolve, reject) => {
      let headers: grpc.Metadata | undefined;
      const call = raw.makeUnaryRequest(
        "/grpc.health.v1.Health/Check",
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.alloc(0), // service ""
        (error, bytes) => (error ? reject(error) : setImmediate(() => resolve({ bytes, headers }))),
      );
      call.on("metadata", (received: grpc.Metadata) => (headers = received));
    });
    raw.close();
    expect(answer.bytes).toEqual(Buffer.from([0x08, 0x01])); // status: SERVING
    expect(requestIdIn(answer.headers)).toBeUndefined();
  });

  it("while draining: an unauthenticated stream is still UNAUTHENTICATED; an allowed one is UNAVAILABLE; unary calls are served", async () => {
    running.drain.draining = true;
    try {
      expect((await reportOnce(running)).status.code).toBe(grpc.status.UNAUTHENTICATED);
      const refused = await reportOnce(running, { authorization: `Bearer ${TOKENS.admin}`, "x-request-id": "late-stream" });
      expect(refused.status).toMatchObject(SHUTTING_DOWN);
      expect(requestIdIn(refused.status.metadata)).toBe("late-stream");
      expect(seen).toEqual([]);
      expect((await createTask(running, { authorization: `Bearer ${TOKENS.admin}` })).response).toMatchObject({ State: "200", Message: "admin" });
    } finally {
      running.drain.draining = false;
    }
  });
});

describe("without authentication", () => {
  let running: Running;
  beforeAll(async () => {
    running = await start(undefined);
  });
  afterAll(() => stop(running));

  it("serves every call with no principal, makes up a request id when there is none or it is not sensible, and echoes a good one", async () => {
    const made = await createTask(running);
    expect(made.response).toMatchObject({ State: "200", Message: "anonymous" });
    expect(requestIdIn(made.headers)).toMatch(/^[0-9a-f-]{36}$/);
    const again = await createTask(running);
    expect(requestIdIn(again.headers)).not.toBe(requestIdIn(made.headers));
    const bad = await createTask(running, { "x-request-id": "not a sensible id/" });
    expect(requestIdIn(bad.headers)).toMatch(/^[0-9a-f-]{36}$/);
    const mine = await createTask(running, { "x-request-id": "req-1.a:b_c" });
    expect(requestIdIn(mine.headers)).toBe("req-1.a:b_c");
    expect(seen.map((context) => context.requestId)).toEqual([made, again, bad, mine].map((outcome) => requestIdIn(outcome.headers)));
    expect(seen.every((context) => context.principal === undefined)).toBe(true);
  });

  it("a stream answers with its headers (and request id) at once, before any message", async () => {
    const call = running.client.ReceiveQueueByChannel(metadataOf({ "x-request-id": "worker-stream" }));
    call.on("error", () => {});
    const headers = await new Promise<grpc.Metadata>((resolve) => call.on("metadata", resolve));
    expect(requestIdIn(headers)).toBe("worker-stream");
    call.write({ Channel: "default" });
    const task = await new Promise<{ Tasks?: { ID: string; Channel: string } }>((resolve) => call.once("data", resolve));
    expect(task.Tasks).toMatchObject({ ID: "1", Channel: "anonymous" });
    call.end();
    await new Promise((resolve) => call.on("status", resolve));
  });

  it("refuses new streams while draining (UNAVAILABLE), not unary calls", async () => {
    running.drain.draining = true;
    try {
      const stream = await reportOnce(running);
      expect(stream.status).toMatchObject(SHUTTING_DOWN);
      expect(stream.answers).toEqual([]);
      expect(seen).toEqual([]);
      expect((await createTask(running)).response).toMatchObject({ State: "200" });
    } finally {
      running.drain.draining = false;
    }
    expect((await reportOnce(running)).status.code).toBe(grpc.status.OK);
  });
});

describe("a handler wrapper on a server without the interceptors", () => {
  it("ends the call with INTERNAL instead of serving it without a context", async () => {
    const server = new grpc.Server();
    server.addService(withSafeDeserializers(loadQueuesPackage().proto.standard.Queues.service), handlers);
    const port = await bind(server, "127.0.0.1", 0);
    const client = new (loadQueuesPackage().proto.standard.Queues)(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const error = await new Promise<grpc.ServiceError | null>((resolve) => client.CreateTask({}, (e) => resolve(e)));
      expect(error?.code).toBe(grpc.status.INTERNAL);
      expect(seen).toEqual([]);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
