// How answers are judged and counted. The rules (SPEC §2, §4):
// - a unary call whose message the server can decode must end with gRPC OK and one
//   well-formed response whose State is 200/400/404/409 (500/503 are counted apart);
// - a gRPC error is acceptable only for input that is not a decodable message of the
//   method (garbage, wrong framing, oversized): counted in grpcErrors by code;
// - no call is left without an answer;
// - flow control (SPEC §7.2), by what the server decoded: a task (CreateTask, each of
//   CreateTasks, PutSchedule's Template) whose Priority is above its channel's levels
//   or whose ConcurrencyKey breaks the rule is answered 400; a 400 never blames a valid
//   one; a stored schedule shows the level it resolved and the key as given;
// - RerunTaskByID (SPEC §7.3): 200 (Data the new task's HashCode), 404 for an absent
//   task, 409 for one not final, 400 for ID 0 and only for it.
import type { CallOutcome } from "./fuzz-h2.js";
import { decodeResponse, type Method } from "./fuzz-proto.js";
import { CONCURRENCY_KEY_PATTERN, priorityLevels, type Known } from "./fuzz-values.js";
import { grpcCodeName } from "./fuzz-wire.js";

export const ANSWER_STATES = new Set(["200", "400", "404", "409"]);
export const SERVER_ERROR_STATES = new Set(["500", "503"]);
/** Examples kept per distinct problem, and in all: enough to see every kind of finding. */
const EXAMPLES_PER_REASON = 2;
const MAX_EXAMPLES = 24;

export interface Example {
  category: string;
  method: string;
  problem: string;
  request: string;
  answer: string;
}

/** Counts of one case, or of the whole run (cases are merged in when the server survived them). */
export class Tally {
  requests = 0;
  readonly categories: Record<string, number> = {};
  malformedAnswers = 0;
  readonly malformedReasons: Record<string, number> = {};
  status5xx = 0;
  grpcErrors = 0;
  readonly grpcErrorCodes: Record<string, number> = {};
  /**
   * Outcomes decided by grpc-js or Node's HTTP/2 layer, not by the service (README,
   * "Operations"): a grpc-timeout too long for grpc-js (its arithmetic overflows above
   * 2^31 ms, so it answers DEADLINE_EXCEEDED at once), a connection cut off by Node's
   * HTTP/2 session memory limit after oversized messages, and a stream whose oversized
   * message grpc-js refused while the service's answers were in flight.
   */
  transportLimits = 0;
  readonly transportLimitReasons: Record<string, number> = {};
  /** Response States of well-formed answers, "Method State" → count. */
  readonly states: Record<string, number> = {};
  creditCapHits = 0;
  invalidChannelEnds = 0;
  abandoned = 0;
  tasksDelivered = 0;
  creditsSent = 0;
  reportsSent = 0;
  reportsAnswered = 0;
  floodStreams = 0;
  floodStreamsAnswered = 0;
  /** Answers judged against the Priority / ConcurrencyKey rules (a task on a configured channel, or with a bad key). */
  flowControlJudged = 0;
  /** Of those: 200 for a task that set a valid Priority (not 0) or ConcurrencyKey. */
  flowControlAccepted = 0;
  /** Of those: 400 for a task with a Priority above its channel's levels or a bad ConcurrencyKey. */
  flowControlRefused = 0;
  /** RerunTaskByID answers judged (ID 0: 400; else 200 with a HashCode, 404 or 409). */
  rerunsJudged = 0;
  /** Of those: 200, a new task created from a final one. */
  rerunsCreated = 0;
  readonly malformedExamples: Example[] = [];
  readonly status5xxExamples: Example[] = [];

  constructor(
    private readonly category = "",
    private readonly method = "",
  ) {}

  malformed(problem: string, request: string, outcome?: CallOutcome | string): void {
    this.malformedAnswers += 1;
    const reason = reasonOf(problem);
    this.malformedReasons[reason] = (this.malformedReasons[reason] ?? 0) + 1;
    keepExample(this.malformedExamples, this.example(problem, request, outcome));
  }

  serverError(state: string, message: string, request: string): void {
    this.status5xx += 1;
    keepExample(this.status5xxExamples, this.example(`State ${state}: ${message}`, request));
  }

  transportLimit(reason: string): void {
    this.transportLimits += 1;
    this.transportLimitReasons[reason] = (this.transportLimitReasons[reason] ?? 0) + 1;
  }

  grpcError(code: string): void {
    this.grpcErrors += 1;
    this.grpcErrorCodes[code] = (this.grpcErrorCodes[code] ?? 0) + 1;
  }

  answered(method: string, state: string): void {
    const key = `${method} ${state}`;
    this.states[key] = (this.states[key] ?? 0) + 1;
  }

  /** Adds a case's counts to the run's. */
  merge(other: Tally): void {
    for (const key of Object.keys(this) as (keyof Tally)[]) {
      const mine = this[key];
      const theirs = other[key];
      if (typeof mine === "number" && typeof theirs === "number") (this as unknown as Record<string, number>)[key] = mine + theirs;
    }
    addCounts(this.categories, other.categories);
    addCounts(this.malformedReasons, other.malformedReasons);
    addCounts(this.grpcErrorCodes, other.grpcErrorCodes);
    addCounts(this.transportLimitReasons, other.transportLimitReasons);
    addCounts(this.states, other.states);
    for (const example of other.malformedExamples) keepExample(this.malformedExamples, example);
    for (const example of other.status5xxExamples) keepExample(this.status5xxExamples, example);
  }

  private example(problem: string, request: string, outcome?: CallOutcome | string): Example {
    return {
      category: this.category,
      method: this.method,
      problem,
      request: request.slice(0, 600),
      answer: typeof outcome === "string" ? outcome : outcome ? summarizeOutcome(outcome) : "",
    };
  }
}

/** A problem without its numbers, so the same finding is counted under one reason. */
function reasonOf(problem: string): string {
  return problem.replace(/\b\d+\b/g, "N").slice(0, 120);
}

function keepExample(examples: Example[], example: Example): void {
  const reason = reasonOf(example.problem);
  const same = examples.filter((kept) => reasonOf(kept.problem) === reason).length;
  if (same < EXAMPLES_PER_REASON && examples.length < MAX_EXAMPLES) examples.push(example);
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, count] of Object.entries(from)) into[key] = (into[key] ?? 0) + count;
}

export function summarizeOutcome(outcome: CallOutcome): string {
  const parts = [`http ${outcome.httpStatus ?? "-"}`, `grpc-status ${outcome.grpcStatus === undefined ? "-" : grpcCodeName(outcome.grpcStatus)}`];
  if (outcome.grpcMessage) parts.push(`"${outcome.grpcMessage.slice(0, 160)}"`);
  parts.push(`${outcome.frames.length} message(s)`);
  if (outcome.rstCode) parts.push(`RST_STREAM ${outcome.rstCode}`);
  if (outcome.transportError) parts.push(`error: ${outcome.transportError}`);
  if (outcome.timedOut) parts.push("timed out");
  return parts.join(", ");
}

/** The single response of an OK unary call, or what is wrong with it. */
export function readUnaryResponse(method: Method, outcome: CallOutcome): { response: Record<string, unknown> } | { problem: string } {
  if (outcome.httpStatus !== 200) return { problem: `grpc-status OK with HTTP status ${outcome.httpStatus}` };
  if (outcome.frames.length !== 1) return { problem: `${outcome.frames.length} response messages on a unary call` };
  if (outcome.leftoverBytes > 0) return { problem: `an incomplete response frame (${outcome.leftoverBytes} bytes)` };
  const frame = outcome.frames[0] as { compressedFlag: number; payload: Buffer };
  if (frame.compressedFlag !== 0) return { problem: `response compressed flag ${frame.compressedFlag} without grpc-encoding` };
  try {
    return { response: decodeResponse(method, frame.payload) };
  } catch (error) {
    return { problem: `response does not decode as ${method}Response: ${(error as Error).message}` };
  }
}

/** Judges a response's State and Message; returns the State when it is a well-formed answer. */
export function judgeState(tally: Tally, method: string, response: Record<string, unknown>, request: string): string | undefined {
  const state = String(response.State);
  if (SERVER_ERROR_STATES.has(state)) {
    tally.serverError(state, String(response.Message), request);
    return undefined;
  }
  if (!ANSWER_STATES.has(state)) {
    tally.malformed(`State ${state} is not one of 200/400/404/409`, request, JSON.stringify(response).slice(0, 300));
    return undefined;
  }
  if (typeof response.Message !== "string" || response.Message.trim() === "") {
    tally.malformed(`State ${state} with an empty Message`, request, JSON.stringify(response).slice(0, 300));
    return undefined;
  }
  tally.answered(method, state);
  return state;
}

/**
 * A unary call's outcome. `decodable`: the server's own deserializer accepts the
 * request (and it is under the max message size), so only an OK answer with a
 * State is acceptable.
 */
export function judgeUnary(
  tally: Tally,
  method: Method,
  outcome: CallOutcome,
  decodable: boolean,
  request: string,
  known: Known,
  /** The request as the server decodes it (for the flow-control rules); leave out when unknown. */
  decoded?: Record<string, unknown>,
): void {
  if (outcome.grpcStatus === 0) {
    const read = readUnaryResponse(method, outcome);
    if ("problem" in read) return tally.malformed(read.problem, request, outcome);
    const state = judgeState(tally, method, read.response, request);
    if (state) learn(known, method, state, read.response);
    if (state && decoded && decodable) judgeFlowControl(tally, method, decoded, state, read.response, request);
    if (state && decoded && decodable && method === "RerunTaskByID") judgeRerun(tally, decoded, state, read.response, request);
    return;
  }
  if (outcome.grpcStatus !== undefined) {
    const code = grpcCodeName(outcome.grpcStatus);
    if (code === "DEADLINE_EXCEEDED" && beyondGrpcJsDeadlines(request)) return tally.transportLimit("grpc-timeout beyond what grpc-js can represent");
    if (decodable) return tally.malformed(`gRPC ${code} for a decodable message (unary RPCs answer OK with a State)`, request, outcome);
    return tally.grpcError(code);
  }
  if (outcome.timedOut) return tally.malformed("no answer (no gRPC status) before the harness gave up", request, outcome);
  if (decodable) return tally.malformed("the call ended without a gRPC status", request, outcome);
  tally.grpcError(outcome.httpStatus !== undefined && outcome.httpStatus !== 200 ? `HTTP_${outcome.httpStatus}` : `RST_STREAM_${outcome.rstCode}`);
}

/** A task's flow-control fields as the server decoded them. */
interface FlowFields {
  channel: string;
  priority: bigint;
  key: string;
}

function flowFieldsOf(task: unknown): FlowFields | undefined {
  if (typeof task !== "object" || task === null) return undefined;
  const fields = task as { Channel?: unknown; Priority?: unknown; ConcurrencyKey?: unknown };
  try {
    return { channel: String(fields.Channel ?? ""), priority: BigInt(String(fields.Priority ?? "0")), key: String(fields.ConcurrencyKey ?? "") };
  } catch {
    return undefined;
  }
}

/** The flow-control rules on the tasks of CreateTask, CreateTasks (each result) and PutSchedule (its Template). */
function judgeFlowControl(tally: Tally, method: Method, decoded: Record<string, unknown>, state: string, response: Record<string, unknown>, request: string): void {
  const message = String(response.Message ?? "");
  if (method === "CreateTask") {
    const fields = flowFieldsOf(decoded.Task);
    if (fields) judgeFlowFields(tally, fields, "", state, message, request);
  } else if (method === "CreateTasks") {
    // A batch refused as a whole (0 or over 100 tasks) has no results to judge.
    const tasks = Array.isArray(decoded.Tasks) ? decoded.Tasks : [];
    const results = Array.isArray(response.Results) ? (response.Results as { State?: unknown; Message?: unknown }[]) : [];
    if (state !== "200" || results.length !== tasks.length) return;
    tasks.forEach((task, index) => {
      const fields = flowFieldsOf(task);
      const result = results[index];
      const resultState = String(result?.State);
      // 5xx of one task are not the rules' business (the judge counts States of calls, not of results).
      if (fields && ANSWER_STATES.has(resultState)) judgeFlowFields(tally, fields, "", resultState, String(result?.Message ?? ""), `${request} (task ${index})`);
    });
  } else if (method === "PutSchedule") {
    const template = (decoded.Schedule as { Template?: unknown } | null | undefined)?.Template;
    const fields = flowFieldsOf(template);
    if (!fields) return;
    const stored = state === "200" ? ((response.Data as { Template?: { Priority?: unknown; ConcurrencyKey?: unknown } | null } | null)?.Template ?? undefined) : undefined;
    judgeFlowFields(tally, fields, "Template.", state, message, request, stored ?? undefined);
  }
}

function judgeFlowFields(
  tally: Tally,
  fields: FlowFields,
  prefix: "" | "Template.",
  state: string,
  message: string,
  request: string,
  stored?: { Priority?: unknown; ConcurrencyKey?: unknown },
): void {
  const levels = priorityLevels(fields.channel);
  const keyValid = fields.key === "" || CONCURRENCY_KEY_PATTERN.test(fields.key);
  // Unknown channel: its levels are unknown too (and the task is refused for the channel anyway).
  const priorityValid = levels === undefined ? undefined : fields.priority <= BigInt(levels);
  if (!keyValid || priorityValid !== undefined) tally.flowControlJudged += 1;
  const broken = [
    ...(priorityValid === false ? [`${prefix}Priority ${fields.priority} on channel "${fields.channel}" of ${levels} level(s)`] : []),
    ...(keyValid ? [] : [`${prefix}ConcurrencyKey ${JSON.stringify(fields.key.slice(0, 40))} (${fields.key.length} chars)`]),
  ];
  if (broken.length > 0) {
    if (state === "400") tally.flowControlRefused += 1;
    else tally.malformed(`State ${state} for ${broken.join(" and ")}: must be 400`, request, message);
    return;
  }
  if (state === "400") {
    if (priorityValid === true && message.startsWith(`${prefix}Priority is `)) tally.malformed(`400 blaming a valid ${prefix}Priority ${fields.priority} (channel of ${levels} level(s))`, request, message);
    if (message.startsWith(`${prefix}ConcurrencyKey must`)) tally.malformed(`400 blaming a valid ${prefix}ConcurrencyKey ${JSON.stringify(fields.key)}`, request, message);
    return;
  }
  if (state !== "200" || levels === undefined) return;
  if (fields.priority !== 0n || fields.key !== "") tally.flowControlAccepted += 1;
  if (stored) {
    const level = fields.priority === 0n ? Math.ceil(levels / 2) : Number(fields.priority);
    if (String(stored.Priority) !== String(level) || String(stored.ConcurrencyKey ?? "") !== fields.key) {
      tally.malformed(
        `stored ${prefix}Priority ${String(stored.Priority)} / ConcurrencyKey ${JSON.stringify(stored.ConcurrencyKey)}, asked ${fields.priority} (level ${level}) / ${JSON.stringify(fields.key)}`,
        request,
        JSON.stringify(stored),
      );
    }
  }
}

/** RerunTaskByID's answer by the ID the server decoded: 400 for ID 0 (and for no other); a 200 carries the new task's HashCode. */
function judgeRerun(tally: Tally, decoded: Record<string, unknown>, state: string, response: Record<string, unknown>, request: string): void {
  const id = String(decoded.ID ?? "0");
  tally.rerunsJudged += 1;
  if (id === "0") {
    if (state !== "400") tally.malformed(`RerunTaskByID of ID 0 answered State ${state}: must be 400`, request, JSON.stringify(response).slice(0, 300));
    return;
  }
  if (state === "400") return tally.malformed(`RerunTaskByID of ID ${id} answered 400 (only ID 0 is a bad request; absent: 404, not final: 409)`, request, JSON.stringify(response).slice(0, 300));
  if (state === "200") {
    if (typeof response.Data !== "string" || response.Data === "") return tally.malformed("RerunTaskByID 200 without the new task's HashCode in Data", request, JSON.stringify(response).slice(0, 300));
    tally.rerunsCreated += 1;
  }
}

const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * The request carried a grpc-timeout that grpc-js misreads: above 2^31 ms its `| 0`
 * overflows, and its unanchored pattern reads only the last 8 digits of a longer value.
 */
export function beyondGrpcJsDeadlines(request: string): boolean {
  const match = /"grpc-timeout":"(\d+)([HMSmun])"/.exec(request);
  if (!match) return false;
  const digits = match[1] as string;
  return digits.length > 8 || Number(digits) * (TIMEOUT_UNIT_MS[match[2] as string] ?? 1) >= 2 ** 31;
}

/** Remembers real IDs and HashCodes, so later requests reach 200/404/409 paths. */
function learn(known: Known, method: Method, state: string, response: Record<string, unknown>): void {
  const task = (value: unknown) => {
    const t = value as { ID?: string; HashCode?: string } | null | undefined;
    if (t?.ID && t.ID !== "0") known.ids.add(t.ID);
    if (t?.HashCode) known.hashCodes.add(t.HashCode);
  };
  if ((method === "CreateTask" || method === "RerunTaskByID") && (state === "200" || state === "409") && typeof response.Data === "string" && response.Data) {
    known.hashCodes.add(response.Data);
  } else if (Array.isArray(response.Data)) {
    for (const item of response.Data.slice(0, 5)) task(item);
  } else if (state === "200") {
    task(response.Data);
  }
}
