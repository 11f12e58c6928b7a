// What the fuzzer sends: one FuzzCase per counted request, drawn from a seeded PRNG.
// Every case is plain data (bytes and plans); fuzz-exec.ts sends it and judges the answer.
import { gzipSync } from "node:zlib";
import { encodeRequest, methodPath, REQUEST_FIELDS, SCHEDULE_FIELDS, TASK_FIELDS, ALL_METHODS, UNARY_METHODS, type FieldKind, type FieldSchema, type Method, type UnaryMethod } from "./fuzz-proto.js";
import type { Random } from "./fuzz-random.js";
import {
  CONFIGURED_CHANNELS,
  invalidUtf8Around,
  pickChannel,
  pickConcurrencyKey,
  pickHashCode,
  pickPriority,
  pickRequestId,
  pickString,
  pickUint64,
  priorityLevels,
  randomText,
  type Known,
} from "./fuzz-values.js";
import { fixed32Field, fixed64Field, grpcFrame, lenField, MAX_UINT64, tag, varint, varintField, WireType } from "./fuzz-wire.js";

/** A valid W3C traceparent, and ones the server must ignore (all zeros, version ff, too short, not hex, too long). */
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACEPARENTS = [
  TRACEPARENT,
  TRACEPARENT,
  `00-${"0".repeat(32)}-00f067aa0ba902b7-01`,
  `00-4bf92f3577b34da6a3ce929d0e0e4736-${"0".repeat(16)}-01`,
  "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
  "00-XYZ92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  `${TRACEPARENT}-extra`,
  "nonsense",
  "",
  "x".repeat(4096),
];

/** Schedule names the fuzzer reuses: puts replace and deletes find them, and valid per-second crons stay a few. */
const SCHEDULE_NAMES = ["fuzz-a", "fuzz-b", "fuzz:c.1"];

export interface UnaryCase {
  kind: "unary";
  category: "unary.extreme" | "unary.handcrafted" | "unary.garbage";
  method: UnaryMethod;
  payload: Buffer;
  /** Send the frame in many small writes (a well-formed message split across DATA frames). */
  chunked: boolean;
  headers: Record<string, string>;
  note: string;
}

/** A unary call whose framing or headers are wrong: any gRPC error is acceptable, but an OK answer must still be well-formed. */
export interface FrameCase {
  kind: "frame";
  category: "frame";
  method: UnaryMethod;
  path: string;
  writes: Buffer[];
  end: boolean;
  headers: Record<string, string>;
  /**
   * Over the max message size: sent on a connection kept for such calls, followed by a
   * small valid call on the same connection, which must still be answered (a client
   * that once sent too much must not lose its connection).
   */
  oversize: boolean;
  note: string;
}

/** A call opened and given up on mid-message: RST_STREAM, or the whole connection dropped. */
export interface AbandonCase {
  kind: "abandon";
  category: "abandon";
  path: string;
  bytes: Buffer;
  how: "rst" | "destroy";
  delayMs: number;
  note: string;
}

/** One ReceiveQueueByChannel stream: credits (some bad), then held or half-closed, then dropped. */
export interface ReceiveCase {
  kind: "receive";
  category: "receive";
  credits: Buffer[];
  halfClose: boolean;
  holdMs: number;
  how: "rst" | "destroy";
  note: string;
}

/** One ReportTaskResult stream with a burst of reports (mostly bad ones). */
export interface ReportCase {
  kind: "report";
  category: "report";
  reports: Buffer[];
  /** Give up (RST) after this many answers instead of half-closing. */
  cancelAfter: number | undefined;
  note: string;
}

/** More streams on one connection than QUEUES_MAX_CONCURRENT_STREAMS allows. */
export interface FloodCase {
  kind: "flood";
  category: "flood";
  streams: number;
  note: string;
}

/** Bytes that are not HTTP/2 at all, on a raw TCP connection. */
export interface TcpCase {
  kind: "tcp";
  category: "tcp";
  bytes: Buffer;
  note: string;
}

export type FuzzCase = UnaryCase | FrameCase | AbandonCase | ReceiveCase | ReportCase | FloodCase | TcpCase;

export interface GeneratorCaps {
  maxCreditsPerStream: number;
  maxConcurrentStreams: number;
  maxMessageBytes: number;
}

export const CATEGORIES = ["unary.extreme", "unary.handcrafted", "unary.garbage", "frame", "abandon", "receive", "report", "flood", "tcp"] as const;
export type Category = (typeof CATEGORIES)[number];

export class CaseGenerator {
  private readonly mix: (readonly [number, () => FuzzCase])[];

  /** `only`: draw from these categories alone (to chase one finding). */
  constructor(
    private readonly rng: Random,
    private readonly known: Known,
    private readonly caps: GeneratorCaps,
    only?: readonly Category[],
  ) {
    const weights: Record<Category, readonly [number, () => FuzzCase]> = {
      "unary.extreme": [32, () => this.unaryExtreme()],
      "unary.handcrafted": [18, () => this.unaryHandcrafted()],
      "unary.garbage": [10, () => this.unaryGarbage()],
      frame: [8, () => this.frame()],
      abandon: [8, () => this.abandon()],
      receive: [10, () => this.receive()],
      report: [11, () => this.report()],
      flood: [0.5, () => this.flood()],
      tcp: [0.5, () => this.tcp()],
    };
    this.mix = CATEGORIES.filter((category) => !only?.length || only.includes(category)).map((category) => weights[category]);
  }

  next(): FuzzCase {
    return this.rng.weighted(this.mix)();
  }

  // --- unary: structurally valid messages with extreme values -----------------------

  private unaryExtreme(): UnaryCase {
    const method = this.rng.pick(UNARY_METHODS);
    const message = this.extremeMessage(method);
    return this.unaryCase("unary.extreme", method, encodeRequest(method, message), describeMessage(message));
  }

  private extremeMessage(method: UnaryMethod): object {
    const { rng, known } = this;
    switch (method) {
      case "CreateTask":
        return rng.chance(0.04) ? {} : { Task: this.extremeTask() };
      case "QueryTaskByID":
      case "CancelTaskByID":
      case "RerunTaskByID":
        return { ID: pickUint64(rng, known) };
      case "QueryTaskByOwner":
        return { Owner: this.owner(), Limit: pickUint64(rng), Offset: pickUint64(rng) };
      case "QueryTaskByHashCode":
        return { HashCode: pickHashCode(rng, known) };
      case "QueryLengthByChannel":
      case "QuerySchedules":
        return { Channel: rng.chance(0.3) ? "" : pickChannel(rng) };
      case "CreateTasks": {
        // Up to 20: a full batch of 100 creates can outlast the harness's call timeout on a loaded machine
        // (test/scheduling.test.ts creates 100); 101 is refused before anything is created.
        const count = rng.weighted([[1, 0], [6, rng.int(1, 5)], [2, rng.int(6, 20)], [1, 101]]);
        return { Tasks: Array.from({ length: count }, () => this.extremeTask()) };
      }
      case "PutSchedule":
        return rng.chance(0.04) ? {} : { Schedule: this.extremeSchedule() };
      case "DeleteSchedule":
        return { Name: rng.chance(0.7) ? rng.pick(SCHEDULE_NAMES) : pickString(rng) };
    }
  }

  /** A schedule: some valid (yearly ticks, or every second under a few names, so the fuzzed server is not flooded), most breaking a rule. */
  private extremeSchedule(): Record<string, unknown> {
    const { rng } = this;
    return {
      Name: rng.chance(0.7) ? rng.pick(SCHEDULE_NAMES) : pickString(rng),
      Cron: rng.pick(["0 0 1 1 *", "0 0 1 1 *", "*/5 * * * * *", "* * * *", "61 * * * *", "@daily", "", "* * * * * * *", pickString(rng)]),
      TimeZone: rng.pick(["", "", "Europe/Berlin", "America/New_York", "Mars/Olympus", pickString(rng)]),
      Paused: rng.chance(0.3),
      ...(rng.chance(0.9) ? { Template: this.extremeTask() } : {}),
      ...(rng.chance(0.2) ? { NextRunTime: pickString(rng), LastRunTime: pickString(rng), CreateTime: pickString(rng) } : {}),
    };
  }

  /** A new task: about a third are valid (so chains, duplicates and deliveries happen), the rest break one rule or more. */
  private extremeTask(): Record<string, string> {
    const { rng, known } = this;
    const channel = rng.chance(0.7) ? rng.pick(CONFIGURED_CHANNELS) : pickChannel(rng);
    const task: Record<string, string> = {
      Channel: channel,
      Input: rng.chance(0.6) ? randomText(rng, rng.int(0, 40)) : pickString(rng, true),
      Owner: this.owner(),
      HashCode: rng.chance(0.5) ? "" : pickHashCode(rng, known),
      RetryMaxLimit: rng.chance(0.6) ? String(rng.int(0, 100)) : pickUint64(rng),
      Prior: rng.chance(0.75) ? "0" : pickUint64(rng, known),
      Next: rng.chance(0.85) ? "0" : pickUint64(rng, known),
      RunAt: rng.weighted<() => string>([
        [6, () => ""],
        [1, () => new Date(Date.now() + rng.int(1, 20) * 1000).toISOString()],
        [1, () => new Date(Date.now() + rng.int(16, 600) * 60_000).toISOString()],
        [1, () => new Date(Date.now() + 400 * 86_400_000).toISOString()],
        [1, () => rng.pick(["2026-02-30T00:00:00Z", "tomorrow", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", pickString(rng)])],
      ])(),
      // Mostly the middle level or one the channel has (so most tasks stay valid), else anything (SPEC §7.2).
      Priority: rng.weighted<() => string>([
        [5, () => "0"],
        [3, () => String(rng.int(1, priorityLevels(channel) ?? 1))],
        [3, () => pickPriority(rng)],
      ])(),
      ConcurrencyKey: rng.chance(0.5) ? "" : pickConcurrencyKey(rng),
    };
    // Server-managed fields must be ignored, whatever they hold.
    if (rng.chance(0.2)) {
      Object.assign(task, {
        ID: pickUint64(rng, known),
        State: rng.pick(["SUCCESS", "PROCEEDING", "", "nonsense"]),
        Output: pickString(rng),
        RetryCount: pickUint64(rng),
        CreateTime: rng.pick(["", "2026-11-23T19:44:00.123Z", "yesterday"]),
        UpdateTime: pickString(rng),
        LeaseToken: pickUint64(rng),
        LeaseExpireTime: pickString(rng),
        // Set by the server from the call's traceparent metadata, never from the message.
        TraceParent: rng.pick([TRACEPARENT, "nonsense", "", pickString(rng)]),
      });
    }
    return task;
  }

  /** Owners from a small set, so some owners collect many tasks and pages are not all empty. */
  private owner(): string {
    return this.rng.weighted<() => string>([
      [5, () => this.rng.pick(["7", "0", String(MAX_UINT64), String(2n ** 53n + 1n)])],
      [1, () => pickUint64(this.rng)],
    ])();
  }

  // --- unary: hand-encoded protobuf -------------------------------------------------

  private unaryHandcrafted(): UnaryCase {
    const method = this.rng.pick(UNARY_METHODS);
    const { bytes, notes } = this.handcraft(REQUEST_FIELDS[method], 0);
    return this.unaryCase("unary.handcrafted", method, bytes, notes.join(", ") || "fields in odd order");
  }

  /**
   * A message of the schema, each field a plausible or extreme value (strings often
   * not UTF-8), plus 0–3 mutations: unknown fields, wrong or invalid wire types,
   * groups, overlong varints; and sometimes a tail that truncates the message.
   */
  handcraft(schema: FieldSchema, depth: number): { bytes: Buffer; notes: string[] } {
    const { rng } = this;
    const parts: Buffer[] = [];
    const notes: string[] = [];
    for (const [number, kind, name] of schema) {
      if (!rng.chance(kind === "Task" || kind === "Schedule" ? 0.9 : 0.7)) continue;
      parts.push(this.fieldBytes(number, kind, name, depth, notes));
    }
    for (let i = rng.weighted([[3, 0], [4, 1], [2, 2], [1, 3]]); i > 0; i--) {
      const mutation = this.mutation(schema, notes);
      parts.splice(rng.int(0, parts.length), 0, mutation);
    }
    if (rng.chance(0.15)) parts.push(this.truncatingTail(schema, notes));
    return { bytes: Buffer.concat(parts), notes };
  }

  private fieldBytes(number: number, kind: FieldKind, name: string, depth: number, notes: string[]): Buffer {
    const { rng } = this;
    if (kind === "uint64") {
      // Priority: its levels and edges; a negative one as a client's two's complement, 2^64 and up as a varint over 64 bits.
      const picked = BigInt(name === "Priority" && rng.chance(0.7) ? pickPriority(rng) : pickUint64(rng, this.known));
      const value = picked < 0n ? BigInt.asUintN(64, picked) : picked;
      if (rng.chance(0.1)) {
        notes.push(`${name}: non-minimal varint`);
        return Buffer.concat([tag(number, WireType.VARINT), nonMinimalVarint(value)]);
      }
      return varintField(number, value);
    }
    if (kind === "Task" || kind === "Schedule") {
      const inner = depth < 2 ? this.handcraft(kind === "Task" ? TASK_FIELDS : SCHEDULE_FIELDS, depth + 1) : { bytes: Buffer.alloc(0), notes: [] };
      notes.push(...inner.notes.map((note) => `${kind}.${note}`));
      return lenField(number, inner.bytes);
    }
    const plausible =
      name === "Channel"
        ? pickChannel(rng)
        : name === "HashCode"
          ? pickHashCode(rng, this.known)
          : name === "ConcurrencyKey"
            ? pickConcurrencyKey(rng)
            : pickString(rng, name === "Input" || name === "Output");
    if (rng.chance(0.35)) {
      notes.push(`${name}: invalid UTF-8`);
      return lenField(number, invalidUtf8Around(rng, plausible));
    }
    return lenField(number, plausible);
  }

  private mutation(schema: FieldSchema, notes: string[]): Buffer {
    const { rng } = this;
    const [number, kind, name] = rng.pick(schema);
    return rng.weighted<() => Buffer>([
      [5, () => {
        const unknown = rng.pick([4, 5, 15, 16, 99, 1000, 2047, 2048, 19000, 536_870_911]);
        notes.push(`unknown field ${unknown}`);
        return this.anyWireValue(unknown);
      }],
      [5, () => {
        notes.push(`${name}: wrong wire type`);
        if (kind === "uint64") {
          return rng.pick([() => lenField(number, rng.bytes(rng.int(0, 12))), () => fixed32Field(number, rng.uint32()), () => fixed64Field(number, rng.uint64())])();
        }
        return rng.pick([() => varintField(number, rng.uint64()), () => fixed32Field(number, rng.uint32()), () => fixed64Field(number, rng.uint64())])();
      }],
      [2, () => {
        notes.push(`${name}: invalid wire type`);
        return Buffer.concat([tag(number, rng.pick([WireType.BAD6, WireType.BAD7])), rng.bytes(rng.int(0, 8))]);
      }],
      [2, () => {
        notes.push(`${name}: as a group`);
        return Buffer.concat([tag(number, WireType.START_GROUP), varintField(1, 1n), tag(number, WireType.END_GROUP)]);
      }],
      [1, () => {
        notes.push("unclosed group");
        return tag(rng.pick([number, 77]), WireType.START_GROUP);
      }],
      [1, () => {
        notes.push("stray end-group");
        return tag(rng.pick([number, 77]), WireType.END_GROUP);
      }],
      [1, () => {
        // Nested unknown groups: a decoder that recurses on them needs a deep stack.
        const depth = rng.pick([100, 5_000, 60_000]);
        notes.push(`${depth} nested groups`);
        return Buffer.concat([Buffer.alloc(depth, tag(50, WireType.START_GROUP)), Buffer.alloc(depth, tag(50, WireType.END_GROUP))]);
      }],
      [2, () => {
        notes.push(`${name}: 11-byte varint`);
        return Buffer.concat([tag(number, WireType.VARINT), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])]);
      }],
      [2, () => {
        notes.push(`${name}: varint above 2^64`);
        return Buffer.concat([tag(number, WireType.VARINT), varint((1n << 70n) + 5n)]);
      }],
      [1, () => {
        notes.push("field number 0");
        return Buffer.concat([tag(0, rng.pick([WireType.VARINT, WireType.LEN])), varint(1n), Buffer.from("x")]);
      }],
      [1, () => {
        notes.push("field number above 2^29-1");
        return Buffer.concat([varint((1n << 32n) | 0n), varint(1n)]);
      }],
      [2, () => {
        notes.push(`${name}: repeated`);
        return this.fieldBytes(number, kind, name, 2, notes);
      }],
    ])();
  }

  private anyWireValue(number: number): Buffer {
    const { rng } = this;
    return rng.pick([
      () => varintField(number, rng.uint64()),
      () => fixed64Field(number, rng.uint64()),
      () => lenField(number, rng.bytes(rng.int(0, 64))),
      () => fixed32Field(number, rng.uint32()),
    ])();
  }

  /** Ends the message in the middle of something: a varint, a length-delimited field, a fixed64. */
  private truncatingTail(schema: FieldSchema, notes: string[]): Buffer {
    const { rng } = this;
    const [number] = rng.pick(schema);
    return rng.weighted<() => Buffer>([
      [3, () => {
        notes.push("truncated varint");
        return Buffer.concat([tag(number, WireType.VARINT), Buffer.from([0xff, 0xff])]);
      }],
      [3, () => {
        const declared = rng.pick([10n, 1000n, 2n ** 31n, 2n ** 32n + 5n, MAX_UINT64]);
        notes.push(`length ${declared} past the end`);
        return Buffer.concat([tag(number, WireType.LEN), varint(declared), Buffer.from("abc")]);
      }],
      [1, () => {
        notes.push("truncated fixed64");
        return Buffer.concat([tag(number, WireType.FIXED64), Buffer.from([1, 2, 3])]);
      }],
      [1, () => {
        notes.push("truncated tag");
        return Buffer.from([0x80]);
      }],
    ])();
  }

  // --- unary: garbage ---------------------------------------------------------------

  private unaryGarbage(): UnaryCase {
    const method = this.rng.pick(UNARY_METHODS);
    const bytes = this.garbage();
    return this.unaryCase("unary.garbage", method, bytes, `${bytes.length} garbage bytes`);
  }

  private garbage(): Buffer {
    const { rng } = this;
    return rng.weighted<() => Buffer>([
      [5, () => Buffer.alloc(0)],
      [55, () => rng.bytes(rng.int(1, 64))],
      [20, () => rng.bytes(rng.int(65, 4096))],
      [5, () => rng.bytes(rng.int(4097, 100_000))],
      [5, () => Buffer.alloc(rng.int(1, 5000), 0xff)],
      [5, () => Buffer.alloc(rng.int(1, 5000), 0x00)],
      [5, () => Buffer.from(JSON.stringify({ Task: { Channel: "default", Input: "json, not protobuf" } }))],
    ])();
  }

  private unaryCase(category: UnaryCase["category"], method: UnaryMethod, payload: Buffer, note: string): UnaryCase {
    const headers: Record<string, string> = {};
    if (this.rng.chance(0.1)) headers["x-request-id"] = pickRequestId(this.rng);
    // W3C trace context (SPEC §7.3): a valid one continues the caller's trace, anything else is ignored, never refused.
    if (this.rng.chance(0.05)) {
      headers.traceparent = this.rng.pick(TRACEPARENTS);
      if (this.rng.chance(0.3)) headers.tracestate = this.rng.pick(["vendor=value", "a=1,b=2", "=", "x".repeat(600)]);
    }
    // Long but valid deadlines (at most 8 digits and a unit, as the gRPC spec allows): the
    // call must be answered as if it had none. Some are beyond 2^31 ms (24.8 days).
    if (this.rng.chance(0.01)) headers["grpc-timeout"] = this.rng.pick(["24H", "500H", "600H", "3000000S", "9999999H", "99999999H", "99999999M"]);
    return { kind: "unary", category, method, payload, chunked: this.rng.chance(0.05), headers, note };
  }

  // --- frames that are not a well-formed gRPC request -------------------------------

  private frame(): FrameCase {
    const { rng } = this;
    const method = rng.pick(UNARY_METHODS);
    const valid = encodeRequest(method, this.extremeMessage(method));
    const make = (note: string, writes: Buffer[], extra: Partial<FrameCase> = {}): FrameCase => ({
      kind: "frame",
      category: "frame",
      method,
      path: methodPath(method),
      writes,
      end: true,
      headers: {},
      oversize: false,
      note,
      ...extra,
    });
    const oversize = this.caps.maxMessageBytes + rng.int(1, 256 * 1024);
    return rng.weighted<() => FrameCase>([
      [3, () => make("compressed flag 1 without grpc-encoding", [grpcFrame(valid, 1)])],
      [2, () => make(`compressed flag ${rng.int(2, 255)}`, [grpcFrame(valid, rng.int(2, 255))])],
      [2, () => make("grpc-encoding gzip, payload not gzip", [grpcFrame(valid, 1)], { headers: { "grpc-encoding": "gzip" } })],
      [2, () => make("grpc-encoding gzip, real gzip", [grpcFrame(gzipSync(valid), 1)], { headers: { "grpc-encoding": "gzip" } })],
      [1, () => make("gzip bomb: 8 MiB of zeros", [grpcFrame(gzipBomb(), 1)], { headers: { "grpc-encoding": "gzip" } })],
      [1, () => make("grpc-encoding snappy", [grpcFrame(valid, 1)], { headers: { "grpc-encoding": "snappy" } })],
      [4, () => make("declared length longer than the bytes sent", [grpcFrame(valid, 0, valid.length + rng.int(1, 1000))])],
      [2, () => make("declared length 2^32-1", [grpcFrame(valid, 0, 0xffffffff)])],
      [3, () => make(`message of ${oversize} bytes (over the max message size)`, [grpcFrame(rng.chance(0.5) ? rng.bytes(oversize) : encodeRequest("CreateTask", { Task: { Channel: "default", Input: "x".repeat(oversize) } }))], { oversize: true })],
      [2, () => make("two messages in a unary call", [grpcFrame(valid), grpcFrame(valid)])],
      [2, () => make("no message at all", [])],
      [2, () => make("frame then a partial header", [grpcFrame(valid), Buffer.from([0, 0, 0])])],
      [1, () => make("only a partial header", [Buffer.from([0, 0])])],
      [2, () => make("unknown method", [grpcFrame(valid)], { path: rng.pick(["/standard.Queues/Nope", "/standard.Queues/", "/standard.Nope/CreateTask", "/", "/standard.Queues/createtask"]) })],
      [1, () => make("wrong content-type", [grpcFrame(valid)], { headers: { "content-type": rng.pick(["application/json", "text/plain", "application/grpc-web"]) } })],
      [1, () => make("malformed grpc-timeout", [grpcFrame(valid)], { headers: { "grpc-timeout": rng.pick(["abc", "S", "-", "1", "1X", "-5S"]) } })],
      [1, () => make("unary message with the stream left open, then RST", [grpcFrame(valid)], { end: false })],
    ])();
  }

  // --- streams abandoned mid-message ------------------------------------------------

  private abandon(): AbandonCase {
    const { rng } = this;
    const method = rng.pick(ALL_METHODS);
    const message = method === "ReceiveQueueByChannel" ? { Channel: "default" } : method === "ReportTaskResult" ? { ID: "1", State: "1" } : this.extremeMessage(method);
    const frame = grpcFrame(encodeRequest(method, message));
    const cut = rng.weighted<() => [string, Buffer]>([
      [2, () => ["headers only", Buffer.alloc(0)]],
      [2, () => ["part of the 5-byte header", frame.subarray(0, rng.int(1, 4))]],
      [4, () => ["header and part of the message", frame.subarray(0, rng.int(5, Math.max(5, frame.length - 1)))]],
      [2, () => ["a declared 64 KiB message, 10 bytes sent", Buffer.concat([grpcFrame(Buffer.alloc(0), 0, 65_536), rng.bytes(10)])]],
      [2, () => ["a whole message, no half-close", frame]],
    ])();
    const how = rng.chance(0.2) ? "destroy" : "rst";
    return {
      kind: "abandon",
      category: "abandon",
      path: methodPath(method),
      bytes: cut[1],
      how,
      delayMs: rng.int(0, 50),
      note: `${method}: ${cut[0]}, then ${how === "rst" ? "RST_STREAM" : "the connection dropped"}`,
    };
  }

  // --- streams --------------------------------------------------------------------

  private receive(): ReceiveCase {
    const { rng } = this;
    const cap = this.caps.maxCreditsPerStream;
    const count = rng.weighted<() => number>([
      [5, () => 0],
      [30, () => rng.int(1, 10)],
      [20, () => rng.int(11, cap)],
      [10, () => cap + rng.int(1, 5)],
      [25, () => rng.int(1_000, 5_000)],
    ])();
    const channel = rng.pick(CONFIGURED_CHANNELS);
    const credit = encodeRequest("ReceiveQueueByChannel", { Channel: channel });
    const credits: Buffer[] = new Array(count).fill(credit);
    const notes = [`${count} credits for ${channel}`];
    if (count > 0 && rng.chance(0.15)) {
      const at = rng.int(0, count - 1);
      const bad = pickChannel(rng);
      credits[at] = encodeRequest("ReceiveQueueByChannel", { Channel: bad });
      notes.push(`credit ${at} for ${JSON.stringify(bad.slice(0, 20))}`);
    }
    if (count > 0 && rng.chance(0.05)) {
      const at = rng.int(0, count - 1);
      credits[at] = lenField(1, invalidUtf8Around(rng, channel));
      notes.push(`credit ${at}: invalid UTF-8 channel`);
    }
    if (count > 0 && rng.chance(0.05)) {
      const at = rng.int(0, count - 1);
      credits[at] = this.garbage();
      notes.push(`credit ${at}: garbage`);
    }
    const halfClose = rng.chance(count === 0 ? 0.7 : 0.3);
    if (halfClose) notes.push("half-closed");
    const how = rng.chance(0.15) ? "destroy" : "rst";
    return { kind: "receive", category: "receive", credits, halfClose, holdMs: rng.int(10, 300), how, note: notes.join(", ") };
  }

  private report(): ReportCase {
    const { rng } = this;
    const count = rng.weighted<() => number>([
      [60, () => rng.int(1, 20)],
      [30, () => rng.int(21, 100)],
      [10, () => rng.int(101, 300)],
    ])();
    const reports: Buffer[] = [];
    const notes: string[] = [`${count} reports`];
    for (let i = 0; i < count; i++) reports.push(this.reportPayload());
    if (rng.chance(0.08)) {
      const at = rng.int(0, count - 1);
      reports[at] = this.garbage();
      notes.push(`report ${at}: garbage`);
    }
    if (rng.chance(0.02)) {
      const at = rng.int(0, count - 1);
      reports[at] = encodeRequest("ReportTaskResult", { ID: "1", State: "1", Output: "x".repeat(this.caps.maxMessageBytes + 10) });
      notes.push(`report ${at}: over the max message size`);
    }
    const cancelAfter = rng.chance(0.1) ? rng.int(0, count) : undefined;
    if (cancelAfter !== undefined) notes.push(`cancelled after ${cancelAfter} answers`);
    return { kind: "report", category: "report", reports, cancelAfter, note: notes.join(", ") };
  }

  /** Mostly reports the server must refuse (bad code, unknown task, stale lease), some real ones. */
  private reportPayload(): Buffer {
    const { rng, known } = this;
    if (rng.chance(0.2)) return this.handcraft(REQUEST_FIELDS.ReportTaskResult, 0).bytes;
    const lease = rng.chance(0.35) ? known.leases.pick(rng) : undefined;
    const state = rng.weighted<() => string>([
      [6, () => rng.pick(["1", "2", "4", "6"])],
      [3, () => rng.pick(["0", "3", "5", "7", "8", "100"])],
      [1, () => pickUint64(rng)],
    ])();
    return encodeRequest("ReportTaskResult", {
      ID: lease?.id ?? pickUint64(rng, known),
      State: state,
      Output: rng.chance(0.7) ? randomText(rng, rng.int(0, 30)) : pickString(rng, true),
      LeaseToken: lease && rng.chance(0.7) ? lease.token : rng.chance(0.5) ? "0" : pickUint64(rng),
    });
  }

  private flood(): FloodCase {
    const streams = this.caps.maxConcurrentStreams + this.rng.int(1, 32);
    return { kind: "flood", category: "flood", streams, note: `${streams} receive streams on one connection` };
  }

  private tcp(): TcpCase {
    const { rng } = this;
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const [note, bytes] = rng.weighted<() => [string, Buffer]>([
      [2, () => ["random bytes", rng.bytes(rng.int(1, 4096))]],
      [2, () => ["HTTP/2 preface, then random bytes", Buffer.concat([preface, rng.bytes(rng.int(1, 4096))])]],
      [1, () => ["HTTP/1.1 request", Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]],
      [1, () => ["HTTP/2 preface, then a frame claiming 16 MiB", Buffer.concat([preface, Buffer.from([0xff, 0xff, 0xff, 0x00, 0x00, 0, 0, 0, 1])])]],
    ])();
    return { kind: "tcp", category: "tcp", bytes, note };
  }
}

let bomb: Buffer | undefined;

/** 8 MiB of zeros, gzipped to a few KiB (made once). */
function gzipBomb(): Buffer {
  bomb ??= gzipSync(Buffer.alloc(8 * 1024 * 1024));
  return bomb;
}

/** The same value with extra continuation bytes (legal protobuf, not canonical). */
function nonMinimalVarint(value: bigint): Buffer {
  const canonical = varint(value);
  if (canonical.length >= 10) return canonical;
  const out = Buffer.alloc(10, 0x80);
  canonical.copy(out);
  for (let i = 0; i < canonical.length; i++) out[i] = (canonical[i] as number) | 0x80;
  out[9] = 0x00;
  return out;
}

/** A request object for the report, with long strings shortened. */
export function describeMessage(message: unknown): string {
  return JSON.stringify(message, (_key, value: unknown) =>
    typeof value === "string" && value.length > 60 ? `<${value.length} chars: ${JSON.stringify(value.slice(0, 12))}…>` : value,
  );
}

/** For the report: which method a case talked to. */
export function caseMethod(fuzzCase: FuzzCase): Method | string {
  switch (fuzzCase.kind) {
    case "unary":
    case "frame":
      return fuzzCase.method;
    case "abandon":
      return fuzzCase.path;
    case "receive":
    case "flood":
      return "ReceiveQueueByChannel";
    case "report":
      return "ReportTaskResult";
    case "tcp":
      return "(tcp)";
  }
}
