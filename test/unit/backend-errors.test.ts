// Which errors are "a backend is unavailable or throttling; safe to retry" (503)
// and which are bugs (500): service/core/backend-errors.ts, SPEC §2.
import {
  ConditionalCheckFailedException,
  ProvisionedThroughputExceededException,
  ResourceNotFoundException,
  ThrottlingException,
  TransactionCanceledException,
} from "@aws-sdk/client-dynamodb";
import { OverLimit, QueueDoesNotExist, RequestThrottled } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { backendFailure, tagBackendErrors, type MiddlewareClient } from "../../service/src/core/backend-errors.js";

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

function named(name: string, extra: object = {}): Error {
  return Object.assign(new Error(`${name} (test)`), { name }, extra);
}

describe("backendFailure: 503-worthy", () => {
  const cases: [string, unknown][] = [
    ["DynamoDB ThrottlingException", new ThrottlingException({ message: "slow down", ...meta(400) })],
    ["DynamoDB ProvisionedThroughputExceededException", new ProvisionedThroughputExceededException({ message: "x", ...meta(400) })],
    ["SQS RequestThrottled", new RequestThrottled({ message: "x", ...meta(400) })],
    ["SQS OverLimit", new OverLimit({ message: "x", ...meta(403) })],
    ["a plain Throttling error", named("Throttling", meta(400))],
    ["RequestLimitExceeded", named("RequestLimitExceeded", meta(400))],
    ["missing table (ResourceNotFoundException)", new ResourceNotFoundException({ message: "Requested resource not found", ...meta(400) })],
    ["missing queue (QueueDoesNotExist)", new QueueDoesNotExist({ message: "x", ...meta(400) })],
    ["missing queue (query-protocol name)", named("AWS.SimpleQueueService.NonExistentQueue", meta(400))],
    ["ECONNREFUSED", Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" })],
    ["ECONNRESET", Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })],
    ["ETIMEDOUT", Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })],
    ["ENOTFOUND", Object.assign(new Error("getaddrinfo ENOTFOUND"), { code: "ENOTFOUND" })],
    ["EPIPE", Object.assign(new Error("write EPIPE"), { code: "EPIPE" })],
    ["a TimeoutError", named("TimeoutError")],
    ["HTTP 500", named("InternalServerError", meta(500))],
    ["HTTP 502 with an unknown name", named("BadGateway", meta(502))],
    ["HTTP 503 with an unknown name", named("Whatever", meta(503))],
    ["ServiceUnavailable", named("ServiceUnavailable", meta(503))],
    ["a transaction cancelled by a conflict", new TransactionCanceledException({ message: "x", ...meta(400), CancellationReasons: [{ Code: "None" }, { Code: "TransactionConflict" }] })],
    ["a transaction cancelled by throttling", new TransactionCanceledException({ message: "x", ...meta(400), CancellationReasons: [{ Code: "ThrottlingError" }] })],
  ];

  for (const [label, error] of cases) {
    it(label, () => {
      const failure = backendFailure(error);
      expect(failure).toBeDefined();
      expect(failure?.reason.length).toBeGreaterThan(0);
    });
  }

  it("names the backend the error was tagged with", () => {
    const error = Object.assign(named("ThrottlingException", meta(400)), { $backend: "DynamoDB" });
    expect(backendFailure(error)).toEqual({ backend: "DynamoDB", reason: "ThrottlingException" });
    const network = Object.assign(new Error("refused"), { code: "ECONNREFUSED", $backend: "SQS" });
    expect(backendFailure(network)).toEqual({ backend: "SQS", reason: "ECONNREFUSED" });
  });
});

describe("backendFailure: not a backend outage (500 or a domain answer)", () => {
  const cases: [string, unknown][] = [
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'x')")],
    ["a RangeError", new RangeError("Invalid array length")],
    ["a plain Error", new Error("boom")],
    ["ValidationException", named("ValidationException", meta(400))],
    ["ConditionalCheckFailedException", new ConditionalCheckFailedException({ message: "x", ...meta(400) })],
    [
      "a transaction cancelled by a failed condition",
      new TransactionCanceledException({ message: "x", ...meta(400), CancellationReasons: [{ Code: "ConditionalCheckFailed" }, { Code: "None" }] }),
    ],
    ["HTTP 400 with an unknown name", named("SomethingInvalid", meta(400))],
    ["a string", "ECONNREFUSED"],
    ["null", null],
    ["undefined", undefined],
    ["a number", 503],
  ];

  for (const [label, error] of cases) {
    it(label, () => {
      expect(backendFailure(error)).toBeUndefined();
    });
  }
});

describe("tagBackendErrors", () => {
  it("adds $backend to errors the client throws, without replacing an existing one", async () => {
    let middleware: ((next: (args: unknown) => Promise<unknown>) => (args: unknown) => Promise<unknown>) | undefined;
    const client: MiddlewareClient = {
      middlewareStack: {
        add(added: typeof middleware) {
          middleware = added;
        },
      },
    };
    tagBackendErrors(client, "SQS");
    expect(middleware).toBeDefined();
    const failing = middleware!(async () => {
      throw Object.assign(new Error("refused"), { code: "ECONNREFUSED" });
    });
    const error = await failing({}).catch((e: unknown) => e);
    expect((error as { $backend?: string }).$backend).toBe("SQS");
    expect(backendFailure(error)?.backend).toBe("SQS");
    const alreadyTagged = middleware!(async () => {
      throw Object.assign(new Error("x"), { $backend: "DynamoDB" });
    });
    expect(((await alreadyTagged({}).catch((e: unknown) => e)) as { $backend?: string }).$backend).toBe("DynamoDB");
    const passing = middleware!(async () => "ok");
    expect(await passing({})).toBe("ok");
  });
});
