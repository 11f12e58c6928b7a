// Authentication (bearer tokens with roles) through real gRPC clients: who gets
// UNAUTHENTICATED, who gets PERMISSION_DENIED, what stays open, and that a token
// never reaches the logs.
import { spawn } from "node:child_process";
import { connect } from "node:http2";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueuesApp } from "../service/src/app.js";
import { routeGrpcLogs } from "../service/src/grpc/grpc-logger.js";
import { parseTokens } from "../service/src/auth/tokens.js";
import { settingsFromEnv, SettingsError } from "../service/src/config/settings.js";
import { QueuesClient, Worker } from "@queues/client";
import { startTestServer, type TestServer } from "./support/harness.js";

const TOKENS = {
  admin: "admin-token-0123456789abcdef",
  producer: "producer-token-0123456789abcdef",
  worker: "worker-token-0123456789abcdef",
};

let server: TestServer;
let logs = "";
const logger = pino({ level: "debug" }, new Writable({ write: (chunk, _encoding, done) => ((logs += chunk.toString()), done()) }));

beforeAll(async () => {
  const base = await startTestServer({ channels: ["default", "jobs"] });
  await base.stop();
  // The same table and queues, now with tokens, and a logger whose output the tests read.
  const app = new QueuesApp({
    settings: { ...base.settings, authTokens: parseTokens(JSON.stringify({ ...TOKENS, producer: [TOKENS.producer] }), "test") },
    logger,
  });
  const port = await app.start();
  await app.health.check();
  server = { ...base, app, address: `127.0.0.1:${port}`, stop: () => app.shutdown({ abandonLongPolls: true }) };
});
afterAll(async () => {
  await server?.stop();
});

const client = (token?: string, scheme = "Bearer") =>
  new QueuesClient({ address: server.address, metadata: token === undefined ? {} : { authorization: `${scheme} ${token}` } });

async function codeOf(promise: Promise<unknown>): Promise<number | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return (error as grpc.ServiceError).code ?? -1;
  }
}

/**
 * How a stream of `method` ends for this token: its status code, or "open" if it serves.
 * A report stream proves it is open by answering a report (400 for ID 0); a receive
 * stream has nothing to answer, so it counts as open when it is still there after 3 s
 * (a refusal comes at once; 3 s leaves room for a loaded machine).
 */
function streamStatus(method: "ReceiveQueueByChannel" | "ReportTaskResult", token?: string): Promise<number | "open"> {
  const c = client(token);
  const metadata = new grpc.Metadata();
  if (token) metadata.set("authorization", `Bearer ${token}`);
  const call = c.raw[method](metadata) as grpc.ClientDuplexStream<object, unknown>;
  return new Promise((resolve) => {
    const open = () => {
      clearTimeout(timer);
      call.removeAllListeners("data");
      call.on("error", () => {});
      call.cancel();
      c.close();
      resolve("open");
    };
    const timer = setTimeout(open, 3_000);
    call.on("error", (error: grpc.ServiceError) => {
      clearTimeout(timer);
      c.close();
      resolve(error.code);
    });
    call.on("data", open);
    if (method === "ReceiveQueueByChannel") call.write({ Channel: "jobs" });
    else call.write({ ID: "0", State: "1", Output: "" });
  });
}

describe("authentication", () => {
  it("refuses a call without a token, with a wrong token or with another scheme: UNAUTHENTICATED", async () => {
    for (const c of [client(), client("not-a-known-token-at-all"), client(TOKENS.admin, "Basic"), client("", "Bearer")]) {
      expect(await codeOf(c.createTask({ channel: "default" }))).toBe(grpc.status.UNAUTHENTICATED);
      expect(await codeOf(c.getTask("1"))).toBe(grpc.status.UNAUTHENTICATED);
      c.close();
    }
    expect(await streamStatus("ReceiveQueueByChannel")).toBe(grpc.status.UNAUTHENTICATED);
    expect(await streamStatus("ReportTaskResult", "not-a-known-token-at-all")).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("a producer may create, query, cancel and measure, but not receive or report: PERMISSION_DENIED", async () => {
    const producer = client(TOKENS.producer);
    try {
      const hashCode = await producer.createTask({ channel: "jobs", input: "from a producer" });
      const task = await producer.getTaskByHashCode(hashCode);
      expect(await codeOf(producer.getTask(task.ID))).toBe("ok");
      expect(await codeOf(producer.listTasksByOwner(0))).toBe("ok");
      expect(await codeOf(producer.queueLength("jobs"))).toBe("ok");
      expect(await codeOf(producer.cancelTask(task.ID))).toBe("ok");
    } finally {
      producer.close();
    }
    expect(await streamStatus("ReceiveQueueByChannel", TOKENS.producer)).toBe(grpc.status.PERMISSION_DENIED);
    expect(await streamStatus("ReportTaskResult", TOKENS.producer)).toBe(grpc.status.PERMISSION_DENIED);
  });

  it("a worker may receive, report and query, but not create, cancel or measure", async () => {
    const worker = client(TOKENS.worker);
    try {
      expect(await codeOf(worker.createTask({ channel: "jobs" }))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(worker.cancelTask("1"))).toBe(grpc.status.PERMISSION_DENIED);
      expect(await codeOf(worker.queueLength("jobs"))).toBe(grpc.status.PERMISSION_DENIED);
      // Query is allowed: the answer is the server's own (404 here), not a refusal.
      expect(await worker.getTask("1").catch((error: { state?: number }) => error.state)).toBe(404);
    } finally {
      worker.close();
    }
    expect(await streamStatus("ReceiveQueueByChannel", TOKENS.worker)).toBe("open");
    expect(await streamStatus("ReportTaskResult", TOKENS.worker)).toBe("open");
  });

  it("the SDK's Worker with a worker token and QueuesClient with a producer token run a task end to end; admin may do everything", async () => {
    const producer = client(TOKENS.producer);
    const worker = new Worker({
      address: server.address,
      channel: "jobs",
      metadata: { authorization: `Bearer ${TOKENS.worker}` },
      handler: (task) => `done: ${task.Input}`,
    });
    void worker.run();
    try {
      const hashCode = await producer.createTask({ channel: "jobs", input: "end to end" });
      const done = await new Promise<string>((resolve) => worker.once("taskSucceeded", (_task, output) => resolve(output)));
      expect(done).toBe("done: end to end");
      expect((await producer.getTaskByHashCode(hashCode)).State).toBe("SUCCESS");
    } finally {
      await worker.close();
      producer.close();
    }
    const admin = client(TOKENS.admin);
    try {
      expect(await codeOf(admin.queueLength("jobs"))).toBe("ok");
    } finally {
      admin.close();
    }
    expect(await streamStatus("ReceiveQueueByChannel", TOKENS.admin)).toBe("open");
  });

  it("the queues command sends --token; a refused one exits 9", async () => {
    const bin = fileURLToPath(new URL("../cli/bin/queues.mjs", import.meta.url));
    // Not spawnSync: the server runs in this process and must keep answering.
    const run = (token: string, how: "--token" | "--token-file" = "--token") =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        let credential = token;
        if (how === "--token-file") {
          credential = join(mkdtempSync(join(tmpdir(), "queues-token-")), "token");
          writeFileSync(credential, `${token}\n`, { mode: 0o600 });
        }
        const child = spawn(process.execPath, [bin, "--address", server.address, how, credential, "length", "jobs"]);
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
        child.on("close", (status) => resolve({ status, stdout, stderr }));
      });
    const ok = await run(TOKENS.producer);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout.trim()).toMatch(/^\d+$/);
    expect((await run(TOKENS.worker)).status).toBe(9);
    expect((await run("an-unknown-token-0123456789")).status).toBe(9);
    // --token-file: the token stays out of the command line and the environment.
    const fromFile = await run(TOKENS.producer, "--token-file");
    expect(fromFile.status, fromFile.stderr).toBe(0);
    expect((await run(TOKENS.worker, "--token-file")).status).toBe(9);
  });

  it("health and reflection stay open", async () => {
    const loaded = grpc.loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
      grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & { Check: Function } } } };
    };
    const health = new loaded.grpc.health.v1.Health(server.address, grpc.credentials.createInsecure());
    const status = await new Promise<string>((resolve, reject) =>
      health.Check({ service: "" }, (error: Error | null, response: { status: string }) => (error ? reject(error) : resolve(response.status))),
    );
    health.close();
    expect(status).toBe("SERVING");
  });

  it("never logs a token, right or wrong", async () => {
    const c = client(TOKENS.admin);
    await c.createTask({ channel: "default", input: "logged call" });
    c.close();
    await codeOf(client("a-wrong-token-that-must-not-be-logged").getTask("1"));
    expect(logs).toContain('"method":"CreateTask"');
    for (const token of [...Object.values(TOKENS), "a-wrong-token-that-must-not-be-logged"]) expect(logs).not.toContain(token);
  });
});

describe("token configuration", () => {
  it("reads tokens from QUEUES_AUTH_TOKENS or a file, and refuses bad ones without echoing them", () => {
    const env = { QUEUES_CHANNELS: '["default"]' };
    expect(settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: JSON.stringify(TOKENS) }).authTokens?.map((t) => t.role).sort()).toEqual(["admin", "producer", "worker"]);
    const dir = mkdtempSync(join(tmpdir(), "queues-tokens-"));
    try {
      const file = join(dir, "tokens.json");
      writeFileSync(file, JSON.stringify({ worker: [TOKENS.worker, "another-worker-token-42"] }));
      expect(settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS_FILE: file }).authTokens).toHaveLength(2);
      expect(() => settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS_FILE: join(dir, "missing.json") })).toThrow(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const bad: [string, RegExp][] = [
      ['{"root": "0123456789abcdefgh"}', /unknown role "root"/],
      ['{"admin": "short"}', /admin must be a string of at least 16 characters/],
      ['{"admin": "0123456789abcdefgh", "worker": "0123456789abcdefgh"}', /listed twice/],
      ["{}", /lists no token/],
      ["[1]", /must be a JSON object/],
      ["{bad json", /not valid JSON/],
    ];
    for (const [json, message] of bad) {
      const attempt = () => settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: json });
      expect(attempt).toThrow(SettingsError);
      expect(attempt).toThrow(message);
    }
    expect(() => settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: '{"admin": "short"}' })).not.toThrow(/short/);
    expect(() => settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: "{}", QUEUES_AUTH_TOKENS_FILE: "x" })).toThrow(/not both/);
  });

  it("with no tokens the server runs open and logs one warning at start", async () => {
    let output = "";
    const base = await startTestServer();
    await base.stop();
    const app = new QueuesApp({
      settings: { ...base.settings, authTokens: undefined },
      logger: pino({ level: "info" }, new Writable({ write: (chunk, _encoding, done) => ((output += chunk.toString()), done()) })),
    });
    await app.start();
    await app.shutdown();
    expect(output.match(/authentication is off/g)).toHaveLength(1);
  });
});

describe("token hygiene", () => {
  /** Lines logged while `work` runs, and what went to stderr meanwhile. */
  async function capture(work: () => Promise<unknown>): Promise<{ lines: Record<string, unknown>[]; stderr: string }> {
    // grpc-js has one logger per process: the last server made in this file took it.
    routeGrpcLogs(logger);
    const from = logs.length;
    let stderr = "";
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      stderr += chunk.toString();
      return (write as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    try {
      await work();
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      process.stderr.write = write;
    }
    const lines = logs
      .slice(from)
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { lines, stderr };
  }

  it("an authorization header grpc-js cannot take (a tab in it) logs no token, anywhere", async () => {
    const secret = "secret-token-with-a-tab-0123456789";
    const [before, after] = [secret.slice(0, 16), secret.slice(16)];
    const { lines, stderr } = await capture(
      () =>
        new Promise<void>((resolve) => {
          const session = connect(`http://${server.address}`);
          session.on("error", () => {});
          const stream = session.request({ ":method": "POST", ":path": "/standard.Queues/QueryLengthByChannel", "content-type": "application/grpc", te: "trailers", authorization: `Bearer ${before}\t${after}` });
          stream.on("response", () => {});
          stream.on("error", () => {});
          stream.on("close", () => {
            session.close();
            resolve();
          });
          stream.end(Buffer.from([0, 0, 0, 0, 0]));
        }),
    );
    const text = JSON.stringify(lines);
    for (const piece of [before, after]) {
      expect(text).not.toContain(piece);
      expect(stderr).not.toContain(piece);
    }
    // grpc-js's own line went through the server's logger, naming the header but not its value...
    expect(lines.some((line) => line.source === "grpc-js" && /metadata entry authorization: .*value not logged/.test(String(line.msg)))).toBe(true);
    // ...and the refusal (the header was dropped: no credentials) is logged with the method and the peer.
    const refused = lines.find((line) => line.msg === "call refused");
    expect(refused).toMatchObject({ rpc: "QueryLengthByChannel", reason: expect.stringMatching(/^UNAUTHENTICATED/) });
    expect(String(refused?.peer)).toMatch(/127\.0\.0\.1/);
  });

  it("a refused call is logged with its reason, never its token", async () => {
    const unknown = "an-unknown-token-abcdefghijklmnop";
    const { lines } = await capture(async () => {
      const denied = client(unknown);
      try {
        expect(await codeOf(denied.queueLength("jobs"))).toBe(grpc.status.UNAUTHENTICATED);
      } finally {
        denied.close();
      }
      const worker = client(TOKENS.worker);
      try {
        expect(await codeOf(worker.createTask({ channel: "jobs" }))).toBe(grpc.status.PERMISSION_DENIED);
      } finally {
        worker.close();
      }
    });
    const refusals = lines.filter((line) => line.msg === "call refused");
    expect(refusals.map((line) => [line.rpc, String(line.reason).split(":")[0]])).toEqual([
      ["QueryLengthByChannel", "UNAUTHENTICATED"],
      ["CreateTask", "PERMISSION_DENIED"],
    ]);
    const text = JSON.stringify(lines);
    expect(text).not.toContain(unknown);
    expect(text).not.toContain(TOKENS.worker);
  });
});
