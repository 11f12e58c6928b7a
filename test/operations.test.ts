// Operating the server (SPEC §2, §4, §5): health, reflection, request ids, transport
// limits, graceful shutdown, deadlines, and bad input — through real gRPC clients.
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueuesApp } from "../service/src/app.js";
import { loadQueuesPackage } from "@queues/protocol";
import { SERVER_OPTIONS } from "../service/src/grpc/server.js";
import { MAX_PAYLOAD_BYTES } from "../service/src/tasks/rules.js";
import { createLogger } from "../service/src/logging.js";
import { Api, ReceiveStream, ReportState, ReportStream } from "./support/client.js";
import { varint } from "./harness/fuzz-wire.js";
import { eventually, sleep, startTestServer, testLogger, type TestServer } from "./support/harness.js";
import { itemKeyOf } from "./support/aws-calls.js";

const MAX_U64 = "18446744073709551615";
const LOADER = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// ---------------------------------------------------------------- health client

type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
interface HealthResponse {
  status: ServingStatus;
}
interface HealthClient extends grpc.Client {
  Check(request: { service: string }, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null, response?: HealthResponse) => void): void;
  Watch(request: { service: string }): grpc.ClientReadableStream<HealthResponse>;
}

function healthClient(address: string): HealthClient {
  const loaded = grpc.loadPackageDefinition(loadSync(healthProtoPath, LOADER)) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient } } };
  };
  return new loaded.grpc.health.v1.Health(address, grpc.credentials.createInsecure());
}

function check(client: HealthClient, service: string): Promise<ServingStatus> {
  return new Promise((resolve, reject) =>
    client.Check({ service }, { deadline: Date.now() + 5_000 }, (error, response) => (error ? reject(error) : resolve((response as HealthResponse).status))),
  );
}

// ------------------------------------------------------------ reflection client

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}
interface ReflectionClient extends grpc.Client {
  ServerReflectionInfo(): grpc.ClientDuplexStream<object, ReflectionResponse>;
}

function reflectionClient(address: string, version: "v1" | "v1alpha"): ReflectionClient {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("@grpc/reflection/package.json"));
  const file = join(root, "build", "proto", "grpc", "reflection", version, "reflection.proto");
  const loaded = grpc.loadPackageDefinition(loadSync(file, LOADER)) as unknown as {
    grpc: { reflection: Record<string, { ServerReflection: new (address: string, credentials: grpc.ChannelCredentials) => ReflectionClient }> };
  };
  const service = loaded.grpc.reflection[version];
  if (!service) throw new Error(`reflection ${version} not loaded`);
  return new service.ServerReflection(address, grpc.credentials.createInsecure());
}

function reflect(client: ReflectionClient, request: object): Promise<ReflectionResponse> {
  return new Promise((resolve, reject) => {
    const call = client.ServerReflectionInfo();
    call.on("data", (response: ReflectionResponse) => {
      resolve(response);
      call.end();
    });
    call.on("error", reject);
    call.write({ host: "", ...request });
  });
}

// -------------------------------------------------- unary calls with metadata

type RawUnary = (
  request: object,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response?: { State?: string; Message?: string }) => void,
) => grpc.ClientUnaryCall;

const UNARY_METHODS = ["CreateTask", "QueryTaskByID", "QueryTaskByHashCode", "QueryTaskByOwner", "CancelTaskByID", "QueryLengthByChannel"] as const;

async function callWithMetadata(
  server: TestServer,
  method: (typeof UNARY_METHODS)[number],
  request: object,
  requestId?: string,
): Promise<{ response: { State?: string; Message?: string }; metadata: grpc.Metadata }> {
  const raw = server.api.raw;
  const invoke = (raw[method] as unknown as RawUnary).bind(raw);
  const sent = new grpc.Metadata();
  if (requestId !== undefined) sent.set("x-request-id", requestId);
  return new Promise((resolve, reject) => {
    let metadata: grpc.Metadata | undefined;
    const call = invoke(request, sent, { deadline: Date.now() + 10_000 }, (error, response) => {
      if (error) return reject(error);
      // The callback can run before the "metadata" event is observed; let it land.
      setImmediate(() => resolve({ response: response ?? {}, metadata: metadata ?? new grpc.Metadata() }));
    });
    call.on("metadata", (received: grpc.Metadata) => (metadata = received));
  });
}

function requestIdOf(metadata: grpc.Metadata): string | undefined {
  const value = metadata.get("x-request-id")[0];
  return typeof value === "string" ? value : undefined;
}

// ------------------------------------------------------------------ the servers

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ channels: ["default", "other", "burst"] });
});
afterAll(async () => {
  await server?.stop();
});

describe("health (grpc.health.v1.Health)", () => {
  it("answers SERVING for the whole server and for standard.Queues when the backends answer", async () => {
    const client = healthClient(server.address);
    try {
      expect(await check(client, "")).toBe("SERVING");
      expect(await check(client, "standard.Queues")).toBe("SERVING");
    } finally {
      client.close();
    }
  });

  it("is NOT_SERVING when the table does not exist", async () => {
    const app = new QueuesApp({
      settings: { ...server.settings, port: 0, tableName: `missing-${Date.now()}` },
      logger: testLogger(),
    });
    const port = await app.start();
    const client = healthClient(`127.0.0.1:${port}`);
    try {
      await app.health.check();
      expect(app.health.serving).toBe(false);
      expect(await check(client, "")).toBe("NOT_SERVING");
      expect(await check(client, "standard.Queues")).toBe("NOT_SERVING");
    } finally {
      client.close();
      await app.shutdown({ abandonLongPolls: true });
    }
  });

  it("goes NOT_SERVING while DynamoDB fails and SERVING again once it answers", async () => {
    const client = healthClient(server.address);
    try {
      server.faults.failAlways("DescribeTableCommand");
      await server.app.health.check();
      expect(await check(client, "")).toBe("NOT_SERVING");
      expect(await check(client, "standard.Queues")).toBe("NOT_SERVING");
      server.faults.clear();
      await server.app.health.check();
      expect(await check(client, "")).toBe("SERVING");
      expect(await check(client, "standard.Queues")).toBe("SERVING");
    } finally {
      server.faults.clear();
      client.close();
    }
  });

  it("goes NOT_SERVING while SQS fails and recovers on its own (periodic re-check)", async () => {
    const client = healthClient(server.address);
    try {
      server.faults.failAlways("GetQueueAttributesCommand");
      await eventually(async () => (await check(client, "")) === "NOT_SERVING", 5_000, 50);
      server.faults.clear();
      await eventually(async () => (await check(client, "standard.Queues")) === "SERVING", 5_000, 50);
    } finally {
      server.faults.clear();
      client.close();
    }
  });
});

describe("liveness (the load balancer's and the container's health check)", () => {
  it("stays SERVING through a backend outage once the backends answered, so ECS does not replace every replica", async () => {
    const live = await startTestServer({ replicaOf: server, settings: { httpPort: 0 } });
    const client = healthClient(live.address);
    const healthz = async () => (await fetch(`http://127.0.0.1:${live.app.httpPort}/healthz`)).status;
    try {
      expect(await check(client, "liveness")).toBe("SERVING");
      expect(await healthz()).toBe(200);
      live.faults.failAlways("DescribeTableCommand");
      await live.app.health.check();
      // Readiness shows the outage; liveness does not.
      expect(await check(client, "")).toBe("NOT_SERVING");
      expect(await check(client, "liveness")).toBe("SERVING");
      expect(await healthz()).toBe(200);
      live.faults.clear();
      await live.app.health.check();
      expect(await check(client, "")).toBe("SERVING");
      // Draining: liveness goes NOT_SERVING at once.
      const stopping = live.app.shutdown();
      expect(await check(client, "liveness").catch(() => "gone")).toMatch(/NOT_SERVING|gone/);
      expect(live.app.health.live).toBe(false);
      await stopping;
    } finally {
      client.close();
      await live.stop();
    }
  });

  it("is NOT_SERVING (and /healthz 503) while the backends have never answered", async () => {
    const app = new QueuesApp({
      settings: { ...server.settings, port: 0, httpPort: 0, tableName: `missing-${Date.now()}` },
      logger: testLogger(),
    });
    const port = await app.start();
    const client = healthClient(`127.0.0.1:${port}`);
    try {
      await app.health.check();
      expect(await check(client, "liveness")).toBe("NOT_SERVING");
      expect((await fetch(`http://127.0.0.1:${app.httpPort}/healthz`)).status).toBe(503);
    } finally {
      client.close();
      await app.shutdown({ abandonLongPolls: true });
    }
  });
});

describe("server reflection", () => {
  for (const version of ["v1alpha", "v1"] as const) {
    it(`${version}: lists standard.Queues and the health service`, async () => {
      const client = reflectionClient(server.address, version);
      try {
        const listed = await reflect(client, { list_services: "" });
        const names = (listed.list_services_response?.service ?? []).map((service) => service.name);
        expect(names).toContain("standard.Queues");
        expect(names).toContain("grpc.health.v1.Health");
        const file = await reflect(client, { file_containing_symbol: "standard.Queues" });
        const descriptors = file.file_descriptor_response?.file_descriptor_proto ?? [];
        expect(descriptors.length).toBeGreaterThan(0);
        const text = Buffer.concat(descriptors.map((descriptor) => Buffer.from(descriptor))).toString("latin1");
        for (const method of ["CreateTask", "ReceiveQueueByChannel", "ReportTaskResult"]) expect(text).toContain(method);
      } finally {
        client.close();
      }
    });
  }

  it("is off with QUEUES_REFLECTION=false (the CDK stack's default): UNIMPLEMENTED", async () => {
    const quiet = await startTestServer({ settings: { reflection: false } });
    const client = reflectionClient(quiet.address, "v1");
    try {
      const error = await reflect(client, { list_services: "" }).catch((e: unknown) => e);
      expect((error as grpc.ServiceError).code).toBe(grpc.status.UNIMPLEMENTED);
    } finally {
      client.close();
      await quiet.stop();
    }
  });
});

describe("request ids (x-request-id response metadata)", () => {
  const requests: Record<(typeof UNARY_METHODS)[number], object> = {
    CreateTask: { Task: { Channel: "other", Input: "request-id" } },
    QueryTaskByID: { ID: MAX_U64 },
    QueryTaskByHashCode: { HashCode: "no-such-hash-code" },
    QueryTaskByOwner: { Owner: "1", Limit: "1", Offset: "0" },
    CancelTaskByID: { ID: "0" },
    QueryLengthByChannel: { Channel: "other" },
  };

  for (const method of UNARY_METHODS) {
    it(`${method} answers with a request id, and echoes the caller's`, async () => {
      const generated = await callWithMetadata(server, method, requests[method]);
      expect(generated.response.State).toMatch(/^\d{3}$/);
      const made = requestIdOf(generated.metadata);
      expect(made).toBeDefined();
      expect((made ?? "").length).toBeGreaterThan(0);
      const again = await callWithMetadata(server, method, requests[method]);
      expect(requestIdOf(again.metadata)).not.toBe(made);

      const mine = `req-${method}.${Date.now()}`;
      const echoed = await callWithMetadata(server, method, requests[method], mine);
      expect(requestIdOf(echoed.metadata)).toBe(mine);
    });
  }

  it("streams answer with the caller's request id too", async () => {
    const metadata = new grpc.Metadata();
    metadata.set("x-request-id", "stream-req-1");
    const call = server.api.raw.ReportTaskResult(metadata);
    const received = new Promise<grpc.Metadata>((resolve) => call.on("metadata", resolve));
    call.on("error", () => {});
    call.write({ ID: "0", State: "1", Output: "" });
    expect(requestIdOf(await received)).toBe("stream-req-1");
    call.end();
  });
});

describe("transport settings", () => {
  it("keepalive pings well under the NLB's 350 s idle timeout; receive size fits a 256 KiB payload and its envelope", () => {
    const keepalive = SERVER_OPTIONS["grpc.keepalive_time_ms"];
    expect(typeof keepalive).toBe("number");
    expect(keepalive as number).toBeGreaterThan(0);
    expect(keepalive as number).toBeLessThanOrEqual(60_000);
    const maxReceive = SERVER_OPTIONS["grpc.max_receive_message_length"];
    // -1 would mean unlimited; otherwise it must leave room for the payload plus the other fields.
    if (maxReceive !== -1) expect(maxReceive as number).toBeGreaterThanOrEqual(MAX_PAYLOAD_BYTES + 16 * 1024);
  });

  it("a CreateTask with a 300000-byte Input gets a readable 400, not a transport error", async () => {
    const answer = await server.api.createTask({ Channel: "other", Input: "x".repeat(300_000) });
    expect(answer.State).toBe("400");
    expect(answer.Message).toContain("Input");
    expect(answer.Message).toContain(String(MAX_PAYLOAD_BYTES));
  });

  it("a report with a 300000-byte Output gets a readable 400 on an open stream", async () => {
    const reports = new ReportStream(server.api);
    try {
      const answer = await reports.report(MAX_U64, ReportState.SUCCESS, "y".repeat(300_000));
      expect(answer.State).toBe("400");
      expect(answer.Message).toContain("Output");
      // The stream is still usable.
      expect((await reports.report("0", ReportState.SUCCESS)).State).toBe("400");
    } finally {
      reports.end();
    }
  });
});

describe("deadlines", () => {
  it("a QueryTaskByID whose backend hangs answers 503 before its deadline, not DEADLINE_EXCEEDED", async () => {
    const task = await server.api.create({ Channel: "other", Input: "deadline" });
    server.faults.hook = async (command) => {
      if (command === "GetItemCommand") await sleep(5_000);
    };
    try {
      // A 2 s deadline: the server answers 200 ms before it, a margin a loaded machine keeps.
      const started = Date.now();
      const answer = await server.api.queryById(task.ID, 2_000);
      const elapsed = Date.now() - started;
      expect(answer.State).toBe("503");
      expect(answer.Message.length).toBeGreaterThan(0);
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      server.faults.clear();
    }
    // And the server answers normally again.
    expect((await server.api.queryById(task.ID)).State).toBe("200");
  });
});

describe("bad input never crashes the server", () => {
  function streamStatus(stream: ReceiveStream, timeoutMs = 10_000): Promise<grpc.StatusObject> {
    return Promise.race([
      stream.status,
      sleep(timeoutMs).then(() => {
        throw new Error(`stream did not end within ${timeoutMs} ms`);
      }),
    ]);
  }

  it("answers a burst of malformed requests and keeps serving valid calls", async () => {
    const api = server.api;
    const reports = new ReportStream(api);
    const unknownChannel = new ReceiveStream(api, "no-such-channel").credit();
    const emptyChannel = new ReceiveStream(api, "").credit();
    const cancelledWorker = new ReceiveStream(api, "burst").credit(3);
    const cancelledReports = new ReportStream(api);
    cancelledReports.call.write({ ID: MAX_U64, State: "1", Output: "" });
    cancelledReports.call.write({ ID: "0", State: "7", Output: "" });

    const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
    const rawCall = (path: string, bytes: Buffer) =>
      new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          path,
          (value: Buffer) => value,
          (value: Buffer) => value,
          bytes,
          new grpc.Metadata(),
          { deadline: Date.now() + 10_000 },
          (error) => resolve(error),
        ),
      );

    const createResponse = loadQueuesPackage().definition["standard.Queues"] as Record<string, { responseDeserialize(bytes: Buffer): { State: string } }>;
    const rawAnswer = (path: string, bytes: Buffer) =>
      new Promise<string>((resolve) =>
        raw.makeUnaryRequest(path, (value: Buffer) => value, (value: Buffer) => value, bytes, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, value) =>
          resolve(error ? `error ${error.code}` : (createResponse.CreateTask?.responseDeserialize(value as Buffer).State ?? "?")),
        ),
      );

    const answers = await Promise.all([
      api.createTask({ Channel: "no-such-channel", Input: "x" }).then((r) => ["create unknown channel", r.State, "400"]),
      api.createTask({ Channel: "", Input: "x" }).then((r) => ["create empty channel", r.State, "400"]),
      api.createTask({ Channel: "burst", HashCode: "h".repeat(100_000) }).then((r) => ["create huge HashCode", r.State, "400"]),
      api.createTask({ Channel: "burst", HashCode: "bad hash/code" }).then((r) => ["create bad HashCode", r.State, "400"]),
      api.createTask({ Channel: "burst", RetryMaxLimit: MAX_U64 }).then((r) => ["create huge RetryMaxLimit", r.State, "400"]),
      api.createTask({ Channel: "burst", Next: MAX_U64 }).then((r) => ["create with Next", r.State, "400"]),
      api.createTask({ Channel: "burst", Prior: MAX_U64 }).then((r) => ["create with missing Prior", r.State, "404"]),
      api.createTask(null).then((r) => ["create without Task", r.State, "400"]),
      api.queryByHashCode("x".repeat(200_000)).then((r) => ["query huge HashCode", r.State, "400"]),
      api.queryByHashCode("").then((r) => ["query empty HashCode", r.State, "400"]),
      api.queryById("0").then((r) => ["query ID 0", r.State, "400"]),
      api.queryById(MAX_U64).then((r) => ["query ID 2^64-1", r.State, "404"]),
      api.cancel("0").then((r) => ["cancel ID 0", r.State, "400"]),
      api.cancel(MAX_U64).then((r) => ["cancel ID 2^64-1", r.State, "404"]),
      api.queryByOwner(MAX_U64, MAX_U64, MAX_U64).then((r) => ["owner 2^64-1 page", `${r.State}/${r.Total}/${r.Data.length}`, "200/0/0"]),
      api.length("no-such-channel").then((r) => ["length unknown channel", r.State, "400"]),
      api.length("").then((r) => ["length empty channel", r.State, "400"]),
      reports.report("1", MAX_U64).then((r) => ["report code 2^64-1", r.State, "400"]),
      reports.report("1", "3").then((r) => ["report code 3", r.State, "400"]),
      reports.report("0", ReportState.SUCCESS).then((r) => ["report ID 0", r.State, "400"]),
      reports.report(MAX_U64, ReportState.FAILURE).then((r) => ["report ID 2^64-1", r.State, "404"]),
      // A message that does not decode is bad input like any other: OK with State 400.
      rawAnswer("/standard.Queues/CreateTask", Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01])).then((state) => ["malformed frame", state, "400"]),
      rawCall("/standard.Queues/NoSuchMethod", Buffer.alloc(0)).then((e) => ["unknown method", String(e?.code), String(grpc.status.UNIMPLEMENTED)]),
    ]);
    for (const [what, got, expected] of answers) expect(`${what}: ${got}`).toBe(`${what}: ${expected}`);

    expect((await streamStatus(unknownChannel)).code).toBe(grpc.status.INVALID_ARGUMENT);
    const emptyStatus = await streamStatus(emptyChannel);
    expect(emptyStatus.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(emptyStatus.details.length).toBeGreaterThan(0);
    cancelledWorker.cancel();
    cancelledReports.call.cancel();
    reports.end();
    raw.close();

    // Valid calls still work, and a task reaches a live worker (not the cancelled one's credits).
    const task = await api.create({ Channel: "burst", Input: "after the burst", Owner: MAX_U64 });
    expect((await api.queryById(task.ID)).State).toBe("200");
    const worker = new ReceiveStream(api, "burst").credit();
    const delivered = await worker.next(10_000);
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", Input: "after the burst" });
    const done = new ReportStream(api);
    expect((await done.report(task.ID, ReportState.SUCCESS, "ok")).State).toBe("200");
    expect(await api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "ok", Owner: MAX_U64 });
    worker.end();
    done.end();
    const health = healthClient(server.address);
    expect(await check(health, "")).toBe("SERVING");
    health.close();
  });
});

describe("graceful shutdown (SPEC §4)", () => {
  const DRAIN_TIMEOUT_MS = 4_000;
  let leaving: TestServer;
  let staying: TestServer;

  beforeAll(async () => {
    leaving = await startTestServer({ settings: { drainTimeoutMs: DRAIN_TIMEOUT_MS } });
    staying = await startTestServer({ replicaOf: leaving });
  });
  afterAll(async () => {
    await staying?.stop();
    await leaving?.stop();
  });

  it("stops serving, ends streams with UNAVAILABLE, finishes in-flight reports, keeps leases and releases messages", async () => {
    // A worker on the leaving replica holds two credits; one is answered, one stays outstanding (a long poll in flight).
    const first = await leaving.api.create({ Channel: "default", Input: "leased before shutdown" });
    const worker = new ReceiveStream(leaving.api).credit(2);
    const leased = await worker.next(10_000);
    expect(leased.ID).toBe(first.ID);
    const reports = new ReportStream(leaving.api);
    expect((await reports.report(leased.ID, ReportState.PROCEEDING, "warming up")).State).toBe("200");

    // Watch health over the wire.
    const health = healthClient(leaving.address);
    const watch = health.Watch({ service: "" });
    const seen: ServingStatus[] = [];
    watch.on("data", (response: HealthResponse) => seen.push(response.status));
    watch.on("error", () => {});
    await eventually(() => seen.includes("SERVING"), 5_000, 20);

    // A report whose DynamoDB read is slow is in flight when the shutdown starts.
    let reached!: () => void;
    const reportReachedBackend = new Promise<void>((resolve) => (reached = resolve));
    leaving.faults.hook = async (command, input) => {
      if (command === "GetItemCommand" && itemKeyOf({ command, input }) === `T#${leased.ID}`) {
        reached();
        await sleep(500);
      }
    };
    const inFlightReport = reports.report(leased.ID, ReportState.PROCEEDING, "still working");
    await reportReachedBackend;

    const started = Date.now();
    const shutdown = leaving.app.shutdown();
    expect(leaving.app.health.serving).toBe(false);

    const answer = await inFlightReport;
    expect(answer).toMatchObject({ State: "200", Data: leased.ID });
    leaving.faults.hook = undefined;

    await eventually(() => seen.includes("NOT_SERVING"), 5_000, 20);
    watch.cancel();
    health.close();

    const workerStatus = await worker.status;
    expect(workerStatus.code, `receive stream ended with ${grpc.status[workerStatus.code]}: ${workerStatus.details}`).toBe(grpc.status.UNAVAILABLE);
    const reportStatus = await reports.status;
    expect(reportStatus.code, `report stream ended with ${grpc.status[reportStatus.code]}: ${reportStatus.details}`).toBe(grpc.status.UNAVAILABLE);

    // A task created on the other replica during the shutdown: if the leaving replica's
    // outstanding long poll takes its message, it must release it at once.
    const second = await staying.api.create({ Channel: "default", Input: "created during shutdown" });
    await shutdown;
    const elapsed = Date.now() - started;
    // Bounded by the drain timeout, not by the 20 s long poll still outstanding; the margin
    // holds with every call 3x slower on a loaded machine.
    expect(elapsed).toBeLessThan(DRAIN_TIMEOUT_MS + 5_000);

    const otherWorker = new ReceiveStream(staying.api).credit();
    try {
      // Well before the channel's 30 s visibility timeout.
      const delivered = await otherWorker.next(8_000);
      expect(delivered).toMatchObject({ ID: second.ID, State: "PROCEEDING", RetryCount: "0" });
      // The task delivered before the shutdown kept its lease: still PROCEEDING, reportable on the other replica.
      expect(await staying.api.get(leased.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0", Output: "still working" });
      const otherReports = new ReportStream(staying.api);
      expect(await otherReports.report(leased.ID, ReportState.SUCCESS, "done elsewhere")).toMatchObject({ State: "200", Data: leased.ID });
      expect((await otherReports.report(delivered.ID, ReportState.SUCCESS, "ok")).State).toBe("200");
      otherReports.end();
      expect(await staying.api.get(leased.ID)).toMatchObject({ State: "SUCCESS", Output: "done elsewhere" });
    } finally {
      otherWorker.end();
    }
  });
});

describe("logs", () => {
  it("carry the request id and the task ID, and never an Input or Output", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) };
    const app = new QueuesApp({ settings: { ...server.settings, port: 0 }, logger: createLogger("debug", destination) });
    const port = await app.start();
    await app.health.check();
    const api = new Api(`127.0.0.1:${port}`);
    try {
      const secretInput = "input-that-must-not-be-logged";
      const secretOutput = "output-that-must-not-be-logged";
      const created = await callWithRequestId(api, "CreateTask", { Task: { Channel: "other", Input: secretInput } }, "req-create-1");
      const task = await api.create({ Channel: "other", Input: secretInput });
      const worker = new ReceiveStream(api, "other").credit(2);
      const delivered = [await worker.next(), await worker.next()];
      const reports = new ReportStream(api);
      for (const t of delivered) expect((await reports.report(t.ID, ReportState.SUCCESS, secretOutput)).State).toBe("200");
      reports.end();
      worker.cancel();
      await api.queryById(task.ID);

      const text = lines.map((line) => JSON.stringify(line)).join("\n");
      expect(text).not.toContain(secretInput);
      expect(text).not.toContain(secretOutput);
      // The service's own line about the created task carries the request id of the call that created it.
      const createdLine = lines.find((line) => line.msg === "task created" && line.requestId === "req-create-1");
      expect(createdLine?.taskId).toMatch(/^\d+$/);
      expect(created.State).toBe("200");
      // Reports are logged with their task ID and their stream's request id.
      const finished = lines.filter((line) => line.msg === "task finished");
      expect(finished.map((line) => line.taskId).sort()).toEqual(delivered.map((t) => t.ID).sort());
      for (const line of finished) expect(typeof line.requestId).toBe("string");
      // A unary call with an ID logs it.
      expect(lines.find((line) => line.method === "QueryTaskByID")).toMatchObject({ taskId: task.ID, state: 200 });
    } finally {
      api.close();
      await app.shutdown({ abandonLongPolls: true });
    }
  });
});

function callWithRequestId(api: Api, method: "CreateTask", request: object, requestId: string): Promise<{ State: string }> {
  const metadata = new grpc.Metadata();
  metadata.set("x-request-id", requestId);
  return new Promise((resolve, reject) =>
    (api.raw[method] as unknown as RawUnary).call(api.raw, request, metadata, { deadline: Date.now() + 10_000 }, (error, response) =>
      error ? reject(error) : resolve(response as { State: string }),
    ),
  );
}

describe("undecodable messages", () => {
  const raw = () => new grpc.Client(server.address, grpc.credentials.createInsecure());
  const identity = (value: Buffer) => value;
  const methods = loadQueuesPackage().definition["standard.Queues"] as Record<string, { responseDeserialize(bytes: Buffer): { State: string; Message: string } }>;
  const decode = (method: string, bytes: Buffer) => methods[method]?.responseDeserialize(bytes) as { State: string; Message: string };

  it("a unary request that does not decode (truncated varint, wrong wire type) answers State 400, not a gRPC error", async () => {
    for (const bytes of [Buffer.from([0x08, 0xff]), Buffer.from([0x0a, 0x05, 0x01]), Buffer.from("08ffffffffffffffffffff01", "hex")]) {
      const client = raw();
      const answer = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest("/standard.Queues/QueryTaskByID", identity, identity, bytes, { deadline: Date.now() + 5_000 }, (error, value) =>
          error ? reject(error) : resolve(value as Buffer),
        ),
      );
      client.close();
      const response = decode("QueryTaskByID", answer);
      expect(response.State).toBe("400");
      expect(response.Message).toMatch(/not a valid QueryTaskByIDRequest message/);
    }
  });

  it("an undecodable report gets its own in-order 400 and the stream goes on", async () => {
    const task = await server.api.create({ Channel: "burst", Input: "undecodable neighbours" });
    const worker = new ReceiveStream(server.api, "burst").credit();
    expect((await worker.next(10_000)).ID).toBe(task.ID);
    const client = raw();
    const call = client.makeBidiStreamRequest("/standard.Queues/ReportTaskResult", identity, identity);
    const answers: Buffer[] = [];
    call.on("data", (answer: Buffer) => answers.push(answer));
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    // Reports are worked on concurrently and answered in order: neighbours that cannot race each other.
    const report = (id: bigint, state: number) => Buffer.concat([Buffer.from([0x08]), varint(id), Buffer.from([0x10, state])]);
    call.write(report(1n, 1)); // no such task: 404
    call.write(Buffer.from([0x08, 0xff])); // a truncated varint
    call.write(report(BigInt(task.ID), 1)); // SUCCESS
    call.end();
    expect((await status).code).toBe(grpc.status.OK);
    client.close();
    worker.end();
    const decoded = answers.map((answer) => decode("ReportTaskResult", answer));
    expect(decoded.map((answer) => answer.State)).toEqual(["404", "400", "200"]);
    expect(decoded[1]?.Message).toMatch(/not a valid ReportTaskResultRequest message/);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS" });
  });
});
