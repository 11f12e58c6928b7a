// The client SDK's options, compiled once (client/src: compileConnectionOptions,
// compileBackoffOptions, compileWorkerOptions): every default filled in, every bad
// value a RangeError at construction that names the option. Nothing connects here.
import { describe, expect, it } from "vitest";
import { Backoff, compileBackoffOptions } from "../../client/src/backoff.js";
import { CHANNEL_DEFAULTS, compileConnectionOptions, DEFAULT_DEADLINE_MS, type ConnectionOptions } from "../../client/src/connection.js";
import { MAX_TIMER_MS } from "../../client/src/option-rules.js";
import { compileWorkerOptions, MAX_CONCURRENCY, type WorkerOptions } from "../../client/src/worker-options.js";
import { QueuesClient, Worker } from "@queues/client";

const ADDRESS = "127.0.0.1:50051";

function worker(options: Partial<WorkerOptions> = {}): WorkerOptions {
  return { address: ADDRESS, channel: "emails", handler: () => "done", ...options };
}

describe("compileConnectionOptions", () => {
  it("fills in the defaults", () => {
    const compiled = compileConnectionOptions({ address: ADDRESS });
    expect(compiled.address).toBe(ADDRESS);
    expect(compiled.deadlineMs).toBe(DEFAULT_DEADLINE_MS);
    expect(compiled.credentials._isSecure()).toBe(false);
    expect(compiled.metadata.getMap()).toEqual({});
    expect(compiled.channelOptions).toEqual(CHANNEL_DEFAULTS);
  });

  it("builds the credentials and metadata, and puts the caller's channel options over the SDK's", () => {
    const compiled = compileConnectionOptions({
      address: ADDRESS,
      tls: true,
      metadata: { authorization: "Bearer t" },
      deadlineMs: 2_500,
      channelOptions: { "grpc.keepalive_time_ms": 5_000, "grpc.primary_user_agent": "test" },
    });
    expect(compiled.credentials._isSecure()).toBe(true);
    expect(compiled.metadata.getMap()).toEqual({ authorization: "Bearer t" });
    expect(compiled.deadlineMs).toBe(2_500);
    expect(compiled.channelOptions).toMatchObject({
      "grpc.keepalive_time_ms": 5_000,
      "grpc.primary_user_agent": "test",
      "grpc.max_receive_message_length": CHANNEL_DEFAULTS["grpc.max_receive_message_length"],
    });
  });

  it("takes host:port and the gRPC targets grpc-js resolves", () => {
    for (const address of [
      ADDRESS,
      "localhost:1",
      "queues.internal:65535",
      "queues_worker-1:50051",
      "[::1]:50051",
      "[fe80::1%eth0]:50051",
      "dns:///queues.internal:50051",
      "dns:queues.internal:50051",
      "ipv4:10.0.0.1:50051,10.0.0.2:50051",
      "ipv6:[::1]:50051",
      "unix:/run/queues.sock",
      "unix:///run/queues.sock",
    ]) {
      expect(compileConnectionOptions({ address }).address, address).toBe(address);
    }
  });

  it("refuses an address that is neither host:port nor a gRPC target", () => {
    for (const address of [
      "",
      " ",
      "127.0.0.1",
      "localhost",
      ":50051",
      "127.0.0.1:",
      "127.0.0.1:0",
      "127.0.0.1:65536",
      "127.0.0.1:50051x",
      "127.0.0.1 :50051",
      " 127.0.0.1:50051",
      "http://127.0.0.1:50051",
      "dns:",
      "unix:",
      undefined,
      50051,
    ]) {
      expect(() => compileConnectionOptions({ address } as unknown as ConnectionOptions), String(address)).toThrow(RangeError);
    }
    expect(() => compileConnectionOptions({ address: "" })).toThrow(/^address must be host:port \(e\.g\. "127\.0\.0\.1:50051"\) or a gRPC target.*, got ""$/);
  });

  it("refuses a deadline that is not a number of ms from 1 to 2^31-1", () => {
    expect(compileConnectionOptions({ address: ADDRESS, deadlineMs: 1 }).deadlineMs).toBe(1);
    expect(compileConnectionOptions({ address: ADDRESS, deadlineMs: MAX_TIMER_MS }).deadlineMs).toBe(MAX_TIMER_MS);
    for (const deadlineMs of [0, -1, 0.5, MAX_TIMER_MS + 1, Number.NaN, Number.POSITIVE_INFINITY, "100"]) {
      expect(() => compileConnectionOptions({ address: ADDRESS, deadlineMs } as ConnectionOptions), String(deadlineMs)).toThrow(
        /^deadlineMs must be a number of ms from 1 to 2147483647, got /,
      );
    }
  });

  it("refuses metadata grpc cannot send", () => {
    expect(() => compileConnectionOptions({ address: ADDRESS, metadata: { "bad key": "x" } })).toThrow();
  });
});

describe("compileBackoffOptions", () => {
  it("fills in 200 ms and 10 s", () => {
    expect(compileBackoffOptions(undefined)).toEqual({ initialMs: 200, maxMs: 10_000 });
    expect(compileBackoffOptions({})).toEqual({ initialMs: 200, maxMs: 10_000 });
    expect(compileBackoffOptions({ initialMs: 100, maxMs: 1_000 })).toEqual({ initialMs: 100, maxMs: 1_000 });
  });

  it("starts at a cap below the default first delay", () => {
    expect(compileBackoffOptions({ maxMs: 50 })).toEqual({ initialMs: 50, maxMs: 50 });
  });

  it("refuses delays that are not positive, beyond a timer's range, or a first delay above the cap", () => {
    for (const bad of [{ initialMs: 0 }, { initialMs: -5 }, { maxMs: 0 }, { maxMs: MAX_TIMER_MS + 1 }, { initialMs: Number.NaN }]) {
      expect(() => compileBackoffOptions(bad), JSON.stringify(bad)).toThrow(/^reconnect\.(initialMs|maxMs) must be a number of ms from 1 to 2147483647/);
    }
    expect(() => compileBackoffOptions({ initialMs: 2_000, maxMs: 1_000 })).toThrow("reconnect.initialMs (2000) must not be above reconnect.maxMs (1000)");
  });

  it("compiles the delays a Backoff uses", () => {
    const backoff = new Backoff(compileBackoffOptions({ initialMs: 100, maxMs: 1_000 }), () => 1);
    expect(Array.from({ length: 6 }, () => backoff.next())).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    backoff.reset();
    expect(backoff.next()).toBe(100);
  });
});

describe("compileWorkerOptions", () => {
  it("fills in the defaults", () => {
    const handler = () => "done";
    const compiled = compileWorkerOptions({ address: ADDRESS, channel: "emails", handler });
    expect(compiled).toMatchObject({
      channel: "emails",
      handler,
      concurrency: 1,
      heartbeatFraction: 1 / 3,
      drainTimeoutMs: 30_000,
      reconnect: { initialMs: 200, maxMs: 10_000 },
      reportConnection: undefined,
    });
    expect(compiled.connection).toMatchObject({ address: ADDRESS, deadlineMs: DEFAULT_DEADLINE_MS });
  });

  it("keeps the values given", () => {
    const compiled = compileWorkerOptions(
      worker({ concurrency: MAX_CONCURRENCY, heartbeatFraction: 0.5, drainTimeoutMs: 0, reconnect: { initialMs: 100, maxMs: 1_000 }, deadlineMs: 3_000 }),
    );
    expect(compiled).toMatchObject({ concurrency: MAX_CONCURRENCY, heartbeatFraction: 0.5, drainTimeoutMs: 0, reconnect: { initialMs: 100, maxMs: 1_000 } });
    expect(compiled.connection.deadlineMs).toBe(3_000);
  });

  it("gives the report stream its own address, with the same credentials and metadata", () => {
    const compiled = compileWorkerOptions(worker({ reportAddress: "127.0.0.1:50052", metadata: { authorization: "Bearer t" } }));
    expect(compiled.reportConnection?.address).toBe("127.0.0.1:50052");
    expect(compiled.reportConnection?.metadata).toBe(compiled.connection.metadata);
    expect(compiled.reportConnection?.credentials).toBe(compiled.connection.credentials);
    // An empty reportAddress is no report address (the receive connection takes the reports).
    expect(compileWorkerOptions(worker({ reportAddress: "" })).reportConnection).toBeUndefined();
    expect(() => compileWorkerOptions(worker({ reportAddress: "somewhere" }))).toThrow(/^reportAddress must be host:port/);
  });

  it("refuses a concurrency that is not an integer from 1 to the maximum", () => {
    for (const concurrency of [0, -1, 1.5, MAX_CONCURRENCY + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => compileWorkerOptions(worker({ concurrency })), String(concurrency)).toThrow(
        new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}, got ${concurrency}`),
      );
    }
  });

  it("refuses a heartbeat fraction outside (0, 1)", () => {
    for (const heartbeatFraction of [0, 1, -0.5, 1.5, Number.NaN]) {
      expect(() => compileWorkerOptions(worker({ heartbeatFraction })), String(heartbeatFraction)).toThrow(/^heartbeatFraction must be a number between 0 and 1/);
    }
  });

  it("refuses a drain timeout that is negative or beyond a timer's range", () => {
    for (const drainTimeoutMs of [-1, MAX_TIMER_MS + 1, Number.NaN]) {
      expect(() => compileWorkerOptions(worker({ drainTimeoutMs })), String(drainTimeoutMs)).toThrow(/^drainTimeoutMs must be a number of ms from 0 to 2147483647/);
    }
  });

  it("refuses bad reconnect delays, connection options, channel and handler", () => {
    expect(() => compileWorkerOptions(worker({ reconnect: { initialMs: 0 } }))).toThrow(/^reconnect\.initialMs must be/);
    expect(() => compileWorkerOptions(worker({ address: "" }))).toThrow(/^address must be host:port/);
    expect(() => compileWorkerOptions(worker({ deadlineMs: 0 }))).toThrow(/^deadlineMs must be/);
    expect(() => compileWorkerOptions(worker({ channel: "" }))).toThrow('channel must be a non-empty channel name, got ""');
    expect(() => compileWorkerOptions(worker({ handler: undefined }))).toThrow(new TypeError("handler must be a function, got undefined"));
  });
});

describe("the constructors compile their options", () => {
  it("new Worker and new QueuesClient throw at once for a bad option, before connecting", () => {
    expect(() => new Worker(worker({ concurrency: 0 }))).toThrow(RangeError);
    expect(() => new Worker(worker({ address: "nowhere" }))).toThrow(RangeError);
    expect(() => new QueuesClient({ address: ADDRESS, deadlineMs: -1 })).toThrow(RangeError);
    expect(() => new QueuesClient({ address: "" })).toThrow(RangeError);
  });

  it("a Worker exposes its compiled concurrency; a call refuses a bad per-call deadline", async () => {
    const good = new Worker(worker({ concurrency: 4 }));
    expect(good.concurrency).toBe(4);
    await good.close();
    const client = new QueuesClient({ address: ADDRESS });
    try {
      await expect(client.getTask("1", { deadlineMs: 0 })).rejects.toThrow(/^deadlineMs must be/);
    } finally {
      client.close();
    }
  });
});
