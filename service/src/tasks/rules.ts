// Input rules of SPEC §3: every bad request becomes a 400 whose Message names the
// field and the rule. Pure functions, no I/O.
import { invalid } from "./status.js";
import { taskIdOfGeneratedHashCode } from "./ids.js";

export const MAX_PAYLOAD_BYTES = 256 * 1024;
export const DEFAULT_RETRY_MAX_LIMIT = 3n;
export const MAX_RETRY_MAX_LIMIT = 100n;
export const HASH_CODE_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
export const DEFAULT_PAGE_LIMIT = 20n;
export const MAX_PAGE_LIMIT = 100n;
const MAX_UINT64 = (1n << 64n) - 1n;

/** Request `State` codes of ReportTaskResult (numbers of the seed project's State enum). */
export const ReportCode = { SUCCESS: 1n, FAILURE: 2n, CANCEL: 4n, PROCEEDING: 6n } as const;
export type ReportKind = keyof typeof ReportCode;

/** What CreateTask needs after validation; the server fills in everything else. */
export interface NewTask {
  owner: bigint;
  channel: string;
  input: string;
  /** Empty: the server generates one. */
  hashCode: string;
  retryMaxLimit: bigint;
  prior: bigint;
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
}

/** Parses a uint64 that arrived as a decimal string; never goes through a JS number. */
export function uint64(value: string | undefined, field: string): bigint {
  if (value === undefined || value === "") return 0n;
  if (!/^\d{1,20}$/.test(value)) throw invalid(`${field} must be an unsigned 64-bit integer, got "${value.slice(0, 40)}"`);
  const parsed = BigInt(value);
  if (parsed > MAX_UINT64) throw invalid(`${field} must be an unsigned 64-bit integer, got ${value}`);
  return parsed;
}

export function requireId(value: string | undefined, field = "ID"): bigint {
  const id = uint64(value, field);
  if (id === 0n) throw invalid(`${field} must be a task ID greater than 0`);
  return id;
}

export function checkPayload(value: string, field: "Input" | "Output"): void {
  // Cheap bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (value.length * 3 <= MAX_PAYLOAD_BYTES) return;
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_PAYLOAD_BYTES) throw invalid(`${field} is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} bytes of UTF-8`);
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
export function validateNewTask(task: WireTaskFields | null | undefined, channels: ReadonlySet<string>): NewTask {
  if (!task) throw invalid("Task is required");
  if (uint64(task.Next, "Next") !== 0n) throw invalid("Next must be 0: chains are made by setting Prior on the later task");
  checkChannel(task.Channel, channels);
  checkPayload(task.Input, "Input");
  const hashCode = task.HashCode;
  // A generated HashCode is let through: CreateTask answers 409 if its task exists (see TaskService.create).
  if (hashCode !== "") checkHashCodeLookup(hashCode);
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
  };
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

export function reportKind(code: bigint): ReportKind {
  for (const [kind, value] of Object.entries(ReportCode)) if (value === code) return kind as ReportKind;
  throw invalid(`State ${code} is not a report code; use 1 (SUCCESS), 2 (FAILURE), 4 (CANCEL) or 6 (PROCEEDING, a heartbeat)`);
}
