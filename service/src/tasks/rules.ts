// Input rules of SPEC §3: every bad request becomes a 400 whose Message names the
// field and the rule. Pure functions, no I/O.
// What both sides of the wire know (the payload limit, report codes, uint64 parsing)
// lives in @queues/protocol; this file turns a breach of it into the server's 400.
import { MAX_PAYLOAD_BYTES, parseUint64, payloadOverLimit, REPORT_CODES, reportKindOf, type ReportKind } from "@queues/protocol";
import { invalid } from "./status.js";
import { taskIdOfGeneratedHashCode } from "./ids.js";

export { MAX_PAYLOAD_BYTES, type ReportKind };
export const DEFAULT_RETRY_MAX_LIMIT = 3n;
export const MAX_RETRY_MAX_LIMIT = 100n;
export const HASH_CODE_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** The HashCodes of schedule ticks' tasks ("schedule:<name>:<tick>", tasks/schedule-rules.ts): reserved, a create with one is 400. */
export const SCHEDULE_HASH_CODE_PREFIX = "schedule:";
export const DEFAULT_PAGE_LIMIT = 20n;
export const MAX_PAGE_LIMIT = 100n;

/** What CreateTask needs after validation; the server fills in everything else. */
export interface NewTask {
  owner: bigint;
  channel: string;
  input: string;
  /** Empty: the server generates one. */
  hashCode: string;
  retryMaxLimit: bigint;
  prior: bigint;
  /** Task.RunAt as epoch ms; 0: not scheduled (empty, or in the past when it was created). */
  runAtMs: number;
  /** The priority level, 1 .. the channel's `priorities` (Task.Priority 0 resolved to the middle level). */
  priority: number;
  /** Task.ConcurrencyKey; "": none. */
  concurrencyKey: string;
  /** The create call's W3C traceparent (its metadata, not a field the caller sets); absent: none. */
  traceParent?: string;
}

/** The request Task as it comes off the wire (uint64 as decimal strings). */
export interface WireTaskFields {
  Next: string;
  Prior: string;
  Owner: string;
  Input: string;
  Channel: string;
  HashCode: string;
  RetryMaxLimit: string;
  /** Absent on the wire from clients generated from the seed (proto3 default ""). */
  RunAt?: string;
  ConcurrencyKey?: string;
  Priority?: string;
}

/** What validation needs to know of the configured channels: their names and each one's priority levels. */
export interface ChannelCatalog {
  readonly names: ReadonlySet<string>;
  /** The channel's `priorities` (1: none). */
  levelsOf(channel: string): number;
}

export const CONCURRENCY_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Task.Priority → the channel's level: 1 (highest) to `levels`; 0: the middle level, ceil(levels / 2) (SPEC §7.2). */
export function priorityLevel(value: string | undefined, levels: number, field = "Priority"): number {
  const priority = uint64(value, field);
  if (priority === 0n) return Math.ceil(levels / 2);
  if (priority > BigInt(levels)) {
    throw invalid(`${field} is ${priority}; this channel has ${levels === 1 ? "no priorities (1 level)" : `${levels} levels`}: 1 (the highest) to ${levels}, or 0 for the middle one`);
  }
  return Number(priority);
}

export function checkConcurrencyKey(key: string | undefined, field = "ConcurrencyKey"): string {
  if (key === undefined || key === "") return "";
  if (!CONCURRENCY_KEY_PATTERN.test(key)) {
    throw invalid(`${field} must be 1 to 128 characters of [A-Za-z0-9._:-], got ${JSON.stringify(key.slice(0, 40))}${key.length > 40 ? "..." : ""}`);
  }
  return key;
}

/** Parses a uint64 that arrived as a decimal string; never goes through a JS number. */
export function uint64(value: string | undefined, field: string): bigint {
  if (value === undefined || value === "") return 0n;
  const parsed = parseUint64(value);
  if (parsed === undefined) throw invalid(`${field} must be an unsigned 64-bit integer, got "${value.slice(0, 40)}"`);
  return parsed;
}

export function requireId(value: string | undefined, field = "ID"): bigint {
  const id = uint64(value, field);
  if (id === 0n) throw invalid(`${field} must be a task ID greater than 0`);
  return id;
}

export function checkPayload(value: string, field: "Input" | "Output"): void {
  const bytes = payloadOverLimit(value);
  if (bytes !== undefined) throw invalid(`${field} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes of UTF-8`);
}

export function checkChannel(channel: string, configured: ReadonlySet<string>): void {
  if (channel === "") throw invalid("Channel is required");
  if (!configured.has(channel)) {
    throw invalid(`Channel "${channel.slice(0, 80)}" is not configured; configured channels: ${[...configured].join(", ")}`);
  }
}

/** QueryTaskByHashCode: a caller's key, or a HashCode the server generated (which has a "~"). */
export function checkHashCodeLookup(hashCode: string): void {
  if (taskIdOfGeneratedHashCode(hashCode) === undefined) checkHashCode(hashCode);
}

export function checkHashCode(hashCode: string): void {
  if (!HASH_CODE_PATTERN.test(hashCode)) {
    throw invalid(`HashCode must be 1 to 128 characters of [A-Za-z0-9._:-], got ${JSON.stringify(hashCode.slice(0, 40))}${hashCode.length > 40 ? "..." : ""}`);
  }
}

/** CreateTask: server-managed fields (ID, State, Output, RetryCount, times) are ignored. */
export function validateNewTask(task: WireTaskFields | null | undefined, channels: ChannelCatalog, nowMs: number): NewTask {
  if (!task) throw invalid("Task is required");
  if (uint64(task.Next, "Next") !== 0n) throw invalid("Next must be 0: chains are made by setting Prior on the later task");
  checkChannel(task.Channel, channels.names);
  checkPayload(task.Input, "Input");
  const hashCode = task.HashCode;
  // A generated HashCode is let through: CreateTask answers 409 if its task exists (see TaskService.create).
  if (hashCode !== "") checkHashCodeLookup(hashCode);
  // The scheduler's keys: a producer taking one first would stop that tick from creating its task.
  if (hashCode.startsWith(SCHEDULE_HASH_CODE_PREFIX)) {
    throw invalid(`HashCodes starting with "${SCHEDULE_HASH_CODE_PREFIX}" are reserved for the tasks of recurring schedules; choose another`);
  }
  let retryMaxLimit = uint64(task.RetryMaxLimit, "RetryMaxLimit");
  if (retryMaxLimit > MAX_RETRY_MAX_LIMIT) throw invalid(`RetryMaxLimit is ${retryMaxLimit}; the limit is ${MAX_RETRY_MAX_LIMIT}`);
  if (retryMaxLimit === 0n) retryMaxLimit = DEFAULT_RETRY_MAX_LIMIT;
  return {
    owner: uint64(task.Owner, "Owner"),
    channel: task.Channel,
    input: task.Input,
    hashCode,
    retryMaxLimit,
    prior: uint64(task.Prior, "Prior"),
    runAtMs: runAt(task.RunAt ?? "", nowMs),
    priority: priorityLevel(task.Priority, channels.levelsOf(task.Channel)),
    concurrencyKey: checkConcurrencyKey(task.ConcurrencyKey),
  };
}

/** How far ahead RunAt may be (SPEC §7.1). */
export const MAX_RUN_AT_AHEAD_MS = 366 * 86_400_000;

const RFC_3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Task.RunAt: RFC 3339 with a time zone offset ("2026-12-01T09:00:00Z",
 * "2026-12-01T10:00:00.5+01:00"); fractions below a millisecond are cut (never
 * earlier than asked: rounded up). Empty, or not after `nowMs`: 0 (now). More
 * than MAX_RUN_AT_AHEAD_MS ahead, or not a real date and time: 400.
 */
export function runAt(value: string, nowMs: number): number {
  if (value === "") return 0;
  const ms = parseRfc3339(value);
  if (ms === undefined) {
    throw invalid(`RunAt must be an RFC 3339 date and time with a zone, like 2026-12-01T09:00:00Z, got ${JSON.stringify(value.slice(0, 40))}`);
  }
  if (ms <= nowMs) return 0;
  if (ms - nowMs > MAX_RUN_AT_AHEAD_MS) throw invalid(`RunAt ${new Date(ms).toISOString()} is more than 366 days ahead`);
  return ms;
}

/** Epoch ms of an RFC 3339 timestamp (rounded up to the millisecond), or undefined if it is not one. */
export function parseRfc3339(value: string): number | undefined {
  const match = RFC_3339.exec(value);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) return undefined;
  const zone = match[8] as string;
  const offsetMinutes = zone === "Z" || zone === "z" ? 0 : (zone[0] === "-" ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  if (Math.abs(offsetMinutes) > 23 * 60 + 59) return undefined;
  const fraction = match[7] ? Math.ceil(Number(`0${match[7]}`) * 1000) : 0;
  return Date.UTC(year, month - 1, day, hour, minute, second) + fraction - offsetMinutes * 60_000;
}

/**
 * The most task bytes one QueryTaskByOwner answer carries: 4 MiB (grpc-js's default
 * receive limit, which clients generated from the seed keep) less 64 KiB for the
 * message's framing. A page of large tasks stops earlier and says where to go on.
 */
export const PAGE_MAX_BYTES = 4 * 1024 * 1024 - 64 * 1024;

/** About what a task takes in an answer: its strings' UTF-8 bytes and ~100 bytes of numbers and framing. */
export function answerBytes(task: { input: string; output: string; hashCode: string; channel: string }): number {
  return Buffer.byteLength(task.input) + Buffer.byteLength(task.output) + Buffer.byteLength(task.hashCode) + Buffer.byteLength(task.channel) + 150;
}

/**
 * The deepest Offset QueryTaskByOwner reads to (an Offset of k reads about 1.25 k
 * index keys: 100,000 is about 12 MB of index, ~1,500 read units). An Offset at or
 * past the owner's Total is answered empty without reading, whatever its size.
 */
export const MAX_OFFSET = 100_000n;

/** An Offset within the owner's tasks but deeper than MAX_OFFSET: 400. */
export function checkOffset(offset: bigint): void {
  if (offset > MAX_OFFSET) {
    throw invalid(`Offset is ${offset}; pages go down to Offset ${MAX_OFFSET} (a deeper page would read all the index entries before it)`);
  }
}

/** How much of PAGE_MAX_BYTES (or another cap) the tasks taken into an answer use. */
export class AnswerBudget {
  private used = 0;
  private taken = 0;

  constructor(private readonly maxBytes: number) {}

  /** Takes the task if the answer stays within the cap (the first task always fits); false: the answer is full. */
  take(task: { input: string; output: string; hashCode: string; channel: string }): boolean {
    const size = answerBytes(task);
    if (this.taken > 0 && this.used + size > this.maxBytes) return false;
    this.used += size;
    this.taken += 1;
    return true;
  }
}

export interface Page {
  limit: bigint;
  offset: bigint;
}

/** QueryTaskByOwner: Limit 0 means 20, more than 100 is clamped to 100. */
export function page(limit: bigint, offset: bigint): Page {
  const effective = limit === 0n ? DEFAULT_PAGE_LIMIT : limit > MAX_PAGE_LIMIT ? MAX_PAGE_LIMIT : limit;
  return { limit: effective, offset };
}

/** What a bad report code is told: "1 (SUCCESS), 2 (FAILURE), 4 (CANCEL) or 6 (PROCEEDING, a heartbeat)". */
const REPORT_CODE_LIST = (() => {
  const codes = Object.entries(REPORT_CODES).map(([kind, code]) => `${code} (${kind}${kind === "PROCEEDING" ? ", a heartbeat" : ""})`);
  return `${codes.slice(0, -1).join(", ")} or ${codes.at(-1)}`;
})();

export function reportKind(code: bigint): ReportKind {
  const kind = reportKindOf(code);
  if (kind === undefined) throw invalid(`State ${code} is not a report code; use ${REPORT_CODE_LIST}`);
  return kind;
}
