// What an unauthenticated or misbehaving client cannot make the server keep: state per
// health Watch name, calls held open without a message.
import { connect } from "node:http2";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

let server: TestServer;

const FIRST_MESSAGE_TIMEOUT_MS = 1_000;

beforeAll(async () => {
  server = await startTestServer({ settings: { firstMessageTimeoutMs: FIRST_MESSAGE_TIMEOUT_MS } });
});
afterAll(async () => {
  await server?.stop();
});

/** HealthCheckRequest { service = name } as protobuf bytes (field 1, length-delimited). */
function healthRequest(name: string): Buffer {
  const body = Buffer.from(name, "utf8");
  const length: number[] = [];
  let n = body.length;
  do {
    length.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.from([0x0a, ...length]), body]);
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe("health Watch", () => {
  it("2,000 cancelled watches of distinct 100 KB names leave the heap within 20 MB of where it started", async () => {
    // A connection per 100 watches: one HTTP/2 session accumulates the cancelled streams' memory on the client side.
    const watchOnce = (client: grpc.Client, name: string) =>
      new Promise<void>((resolve, reject) => {
        const call = client.makeServerStreamRequest("/grpc.health.v1.Health/Watch", (b: Buffer) => b, (b: Buffer) => b, healthRequest(name));
        call.once("data", () => {
          call.cancel();
          resolve();
        });
        call.once("error", (error: grpc.ServiceError) => (error.code === grpc.status.CANCELLED ? resolve() : reject(error)));
      });
    const padding = "x".repeat(100 * 1024);
    const session = async (from: number, count: number) => {
      const client = new grpc.Client(server.address, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": 1 << 20 });
      try {
        for (let i = from; i < from + count; i += 10) {
          await Promise.all(Array.from({ length: 10 }, (_, j) => watchOnce(client, `${i + j}-${padding}`)));
        }
      } finally {
        client.close();
      }
    };
    await session(-10, 10); // warm-up
    const before = heapAfterGc();
    for (let from = 0; from < 2_000; from += 100) await session(from, 100);
    // The server has let go of every call (they were cancelled) and keeps nothing per name.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const grown = heapAfterGc() - before;
    expect(grown / 2 ** 20, "MiB of heap growth").toBeLessThan(20);
    expect(server.app.health.implementation.watchedNames).toBe(0);
  }, 120_000);

  it("a watch of a known name follows its status until cancelled, and then is forgotten", async () => {
    const client = new grpc.Client(server.address, grpc.credentials.createInsecure());
    try {
      const statuses: number[] = [];
      const call = client.makeServerStreamRequest("/grpc.health.v1.Health/Watch", (b: Buffer) => b, (b: Buffer) => b, healthRequest("standard.Queues"));
      call.on("data", (response: Buffer) => statuses.push(response[1] ?? -1));
      call.on("error", () => {});
      await new Promise<void>((resolve) => call.once("data", () => resolve()));
      expect(statuses).toEqual([1]); // SERVING
      expect(server.app.health.implementation.watchedNames).toBe(1);
      call.cancel();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(server.app.health.implementation.watchedNames).toBe(0);
    } finally {
      client.close();
    }
  });
});

/** Opens a gRPC call with headers only (no message, no end) on a raw HTTP/2 connection; resolves with its grpc-status and when it came. */
function headersOnly(path: string): Promise<{ status: string; afterMs: number }> {
  const session = connect(`http://${server.address}`);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    session.on("error", () => {});
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" }, { endStream: false });
    const done = (status: unknown) => {
      if (typeof status !== "string") return;
      resolve({ status, afterMs: Date.now() - started });
      stream.close();
      session.close();
    };
    // A refusal comes as a trailers-only response (the status in the headers), an ended call in its trailers.
    stream.on("response", (headers) => done(headers["grpc-status"]));
    stream.on("trailers", (trailers) => done(trailers["grpc-status"]));
    stream.on("data", () => {});
    stream.on("error", reject);
  });
}

describe("calls that send headers and no message", () => {
  for (const path of ["/standard.Queues/QueryTaskByID", "/standard.Queues/CreateTask", "/standard.Queues/ReceiveQueueByChannel"]) {
    it(`${path.split("/")[2]} ends with DEADLINE_EXCEEDED after the first-message timeout`, async () => {
      const { status, afterMs } = await headersOnly(path);
      expect(status).toBe(String(grpc.status.DEADLINE_EXCEEDED));
      expect(afterMs).toBeGreaterThanOrEqual(FIRST_MESSAGE_TIMEOUT_MS - 50);
      expect(afterMs).toBeLessThan(FIRST_MESSAGE_TIMEOUT_MS + 5_000);
      expect(server.app.streams.size).toBe(0);
    });
  }

  it("a report stream may stay quiet (a worker opens it before it has anything to report)", async () => {
    const session = connect(`http://${server.address}`);
    session.on("error", () => {});
    try {
      const stream = session.request({ ":method": "POST", ":path": "/standard.Queues/ReportTaskResult", "content-type": "application/grpc", te: "trailers" }, { endStream: false });
      let status: unknown;
      stream.on("response", (headers) => (status ??= headers["grpc-status"]));
      stream.on("trailers", (trailers) => (status ??= trailers["grpc-status"]));
      stream.on("error", () => {});
      await new Promise((resolve) => setTimeout(resolve, FIRST_MESSAGE_TIMEOUT_MS + 1_500));
      expect(status).toBeUndefined();
      expect(server.app.streams.size).toBe(1);
      stream.close();
    } finally {
      session.close();
    }
    await eventually(() => server.app.streams.size === 0, 5_000);
  });
});
