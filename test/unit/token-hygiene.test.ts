// Tokens never end up in an error message, a log line or a child's environment.
import { pino } from "pino";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { AuthConfigError, parseTokens } from "../../service/src/auth/tokens.js";
import { RefusalLog } from "../../service/src/auth/refusal-log.js";
import { redactGrpcMessage } from "../../service/src/grpc/grpc-logger.js";
import { commandEnvironment } from "../../cli/src/work-command.js";

const TOKEN = "s3cr3t-token-0123456789abcdef";

function errorOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error("no error");
}

describe("token configuration errors", () => {
  it("invalid JSON says where, never what", () => {
    for (const json of [`{"admin": "${TOKEN}"`, `{"admin": ${TOKEN}}`, `{"admin": "${TOKEN}",}`]) {
      const error = errorOf(() => parseTokens(json, "QUEUES_AUTH_TOKENS"));
      expect(error).toBeInstanceOf(AuthConfigError);
      expect(error.message).toMatch(/^QUEUES_AUTH_TOKENS is not valid JSON/);
      expect(error.message).not.toContain(TOKEN.slice(0, 6));
    }
  });

  it("a token where a role belongs is not echoed; a short unknown role is", () => {
    expect(errorOf(() => parseTokens(`{"${TOKEN}": "admin"}`, "T")).message).not.toContain(TOKEN);
    expect(errorOf(() => parseTokens(`{"producers": "${TOKEN}"}`, "T")).message).toContain('"producers"');
  });

  it("a bad token is located, not shown", () => {
    for (const json of [`{"admin": "${TOKEN} x"}`, `{"admin": ["ok-token-0123456789abc", "short"]}`]) {
      const message = errorOf(() => parseTokens(json, "T")).message;
      expect(message).not.toContain(TOKEN);
      expect(message).not.toContain("short");
    }
  });
});

describe("grpc-js log lines", () => {
  it("a metadata entry's value is never kept", () => {
    const line = `Failed to add metadata entry authorization: Bearer ${TOKEN}\t. Metadata string value "Bearer ${TOKEN}\t" contains illegal characters. For more information see https://github.com/grpc/grpc-node/issues/1173`;
    const redacted = redactGrpcMessage(line);
    expect(redacted).not.toContain(TOKEN);
    expect(redacted).toMatch(/metadata entry authorization: .*value not logged/);
  });

  it("anything after authorization or Bearer is redacted elsewhere", () => {
    expect(redactGrpcMessage(`headers: {"authorization":"Bearer ${TOKEN}"}`)).not.toContain(TOKEN);
    expect(redactGrpcMessage(`sending Bearer ${TOKEN} now`)).toBe("sending Bearer [redacted] now");
    expect(redactGrpcMessage("Connection reset by peer")).toBe("Connection reset by peer");
  });
});

describe("refusal log lines", () => {
  it("at most `burst` lines per window, then one line counting the rest", () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino({ level: "info" }, new Writable({ write: (chunk: Buffer, _e, done) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) }));
    let now = 1_000_000;
    const refusals = new RefusalLog(log, 3, 10_000, () => now);
    for (let i = 0; i < 10; i++) refusals.record({ rpc: "CreateTask", peer: "ipv4:10.0.0.1:5000", reason: "UNAUTHENTICATED: Unknown token", requestId: `r${i}` });
    now += 10_000;
    refusals.record({ rpc: "CreateTask", peer: "ipv4:10.0.0.1:5000", reason: "UNAUTHENTICATED: Unknown token", requestId: "later" });
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        expect(lines.filter((line) => line.msg === "call refused").map((line) => line.requestId)).toEqual(["r0", "r1", "r2", "later"]);
        expect(lines.find((line) => line.suppressed !== undefined)).toMatchObject({ suppressed: 7 });
        resolve();
      }),
    );
  });
});

describe("queues work", () => {
  it("a task's command inherits no credential", () => {
    const env = commandEnvironment({ PATH: "/bin", QUEUES_TOKEN: TOKEN, QUEUES_TOKEN_FILE: "/run/token", QUEUES_ADDRESS: "h:1" });
    expect(env).toEqual({ PATH: "/bin", QUEUES_ADDRESS: "h:1" });
  });
});
