// Sends one FuzzCase to the server and judges what comes back (fuzz-judge.ts).
import type * as http2 from "node:http2";
import { connect } from "node:net";
import { caseMethod, describeMessage, type AbandonCase, type FloodCase, type FrameCase, type FuzzCase, type ReceiveCase, type ReportCase, type TcpCase, type UnaryCase } from "./fuzz-cases.js";
import { openSession, RawCall, type CallOptions, type SessionPool } from "./fuzz-h2.js";
import { judgeState, judgeUnary, summarizeOutcome, Tally } from "./fuzz-judge.js";
import { decodeRequest, decodeResponse, encodeRequest, methodPath } from "./fuzz-proto.js";
import type { ServerCaps, ServerProcess } from "./fuzz-server.js";
import { CONFIGURED_CHANNELS, type Known } from "./fuzz-values.js";
import { grpcCodeName, grpcFrame, hexPreview } from "./fuzz-wire.js";

const Code = { OK: 0, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, INTERNAL: 13 } as const;

export interface ExecContext {
  server: ServerProcess;
  /** Sessions for calls a well-behaved client makes and sees through (judged strictly). */
  clean: SessionPool;
  /**
   * Sessions for calls we reset or frame badly, so they cannot disturb the clean ones.
   * Calls that may leave the server's side of a stream hanging get a connection of
   * their own instead (fresh()), so a leak shows on that call alone.
   */
  rough: SessionPool;
  /** The connection oversized messages go to (replaced when the server stops taking calls on it). */
  oversize: SessionPool;
  known: Known;
  caps: ServerCaps;
  /** A call without a status after this long is a hang. */
  callTimeoutMs: number;
}

/** Runs one case; returns its tally, or undefined when the server crashed (or restarted) under it. */
export async function execute(ctx: ExecContext, fuzzCase: FuzzCase): Promise<Tally | undefined> {
  const generation = ctx.server.generation;
  const tally = new Tally(fuzzCase.category, caseMethod(fuzzCase));
  tally.requests = 1;
  tally.categories[fuzzCase.category] = 1;
  switch (fuzzCase.kind) {
    case "unary":
      await runUnary(ctx, fuzzCase, tally);
      break;
    case "frame":
      await runFrame(ctx, fuzzCase, tally);
      break;
    case "abandon":
      await runAbandon(ctx, fuzzCase, tally);
      break;
    case "receive":
      await runReceive(ctx, fuzzCase, tally);
      break;
    case "report":
      await runReport(ctx, fuzzCase, tally);
      break;
    case "flood":
      await runFlood(ctx, fuzzCase, tally);
      break;
    case "tcp":
      await runTcp(ctx, fuzzCase);
      break;
  }
  // Answers cut off by a crash say nothing about the input that caused them; the crash is counted instead.
  return ctx.server.generation === generation && ctx.server.alive ? tally : undefined;
}

/** Starts a call; a pooled session that is closing is replaced once. */
function startCall(session: () => http2.ClientHttp2Session, path: string, options: CallOptions): RawCall {
  try {
    return new RawCall(session(), path, options);
  } catch {
    return new RawCall(session(), path, options);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// --- unary ----------------------------------------------------------------------------

async function runUnary(ctx: ExecContext, c: UnaryCase, tally: Tally): Promise<void> {
  const frame = grpcFrame(c.payload);
  const call = startCall(() => ctx.clean.get(), methodPath(c.method), { timeoutMs: ctx.callTimeoutMs, headers: c.headers });
  if (c.chunked) for (const piece of chunks(frame)) await call.write(piece);
  else await call.write(frame);
  call.end();
  const outcome = await call.done;
  const decoded = decodeRequest(c.method, c.payload);
  const decodable = decoded !== undefined && c.payload.length <= ctx.caps.maxMessageBytes;
  judgeUnary(tally, c.method, outcome, decodable, describeUnary(c, decoded), ctx.known, decoded);
}

/** A frame cut so the 5-byte header itself is split, then the rest in up to 32 pieces. */
function chunks(frame: Buffer): Buffer[] {
  const cuts = [1, 2, 3, 5];
  const step = Math.max(1, Math.ceil((frame.length - 5) / 32));
  for (let at = 5 + step; at < frame.length; at += step) cuts.push(at);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const cut of cuts.filter((at) => at < frame.length)) {
    pieces.push(frame.subarray(from, cut));
    from = cut;
  }
  pieces.push(frame.subarray(from));
  return pieces;
}

function describeUnary(c: UnaryCase, decoded: Record<string, unknown> | undefined): string {
  const as = decoded ? ` decodes as ${describeMessage(decoded)}` : " (not decodable)";
  const headers = Object.keys(c.headers).length ? `; headers ${JSON.stringify(c.headers)}` : "";
  return `${c.method} [${c.note}]${c.chunked ? " split across writes" : ""}${headers}; payload ${hexPreview(c.payload)}${as}`;
}

// --- broken framing --------------------------------------------------------------------

async function runFrame(ctx: ExecContext, c: FrameCase, tally: Tally): Promise<void> {
  const pool = c.oversize ? ctx.oversize : ctx.rough;
  const call = startCall(() => pool.get(), c.path, { timeoutMs: ctx.callTimeoutMs, headers: c.headers });
  for (const bytes of c.writes) await call.write(bytes);
  const request = `${c.path} [${c.note}]; bytes ${hexPreview(Buffer.concat(c.writes))}${Object.keys(c.headers).length ? `; headers ${JSON.stringify(c.headers)}` : ""}`;
  if (!c.end) {
    // Nothing is owed before the half-close: give the server a moment, then give up on the call.
    await Promise.race([call.done, sleep(100)]);
    if (!call.hasStatus) {
      call.cancel();
      await call.done;
      tally.abandoned += 1;
      return;
    }
  } else {
    call.end();
  }
  const outcome = await call.done;
  // Framing was broken on purpose: any gRPC error is fine, an OK answer must still be well-formed.
  judgeUnary(tally, c.method, outcome, false, request, ctx.known);
  if (c.oversize) await probeAfterOversize(ctx, tally, request);
}

/** After an oversized message, the same connection must still answer a small valid call. */
async function probeAfterOversize(ctx: ExecContext, tally: Tally, after: string): Promise<void> {
  const payload = encodeRequest("QueryTaskByID", { ID: "0" });
  const probe = startCall(() => ctx.oversize.get(), methodPath("QueryTaskByID"), { timeoutMs: ctx.callTimeoutMs });
  await probe.write(grpcFrame(payload));
  probe.end();
  const outcome = await probe.done;
  const request = `QueryTaskByID {"ID":"0"} on the connection that just carried: ${after}`;
  if (outcome.grpcStatus !== undefined || outcome.timedOut) return judgeUnary(tally, "QueryTaskByID", outcome, true, request, ctx.known);
  // Node's HTTP/2 session memory limit cut this connection off (grpc-js leaves a refused
  // oversized message buffered): a transport-level refusal of that client, not an answer.
  tally.transportLimit("connection refused after oversized messages (ENHANCE_YOUR_CALM)");
  // Count each lost connection once: the next oversized message gets a new one.
  ctx.oversize.closeAll(true);
}

// --- abandoned calls ---------------------------------------------------------------------

async function runAbandon(ctx: ExecContext, c: AbandonCase, tally: Tally): Promise<void> {
  const session = c.how === "destroy" ? openSession(ctx.server.address) : undefined;
  const call = startCall(() => session ?? ctx.rough.get(), c.path, { timeoutMs: 10_000 });
  if (c.bytes.length > 0) await Promise.race([call.write(c.bytes), sleep(1_000)]);
  await sleep(c.delayMs);
  if (session) session.destroy();
  else call.cancel();
  await call.done;
  tally.abandoned += 1;
}

// --- ReceiveQueueByChannel ---------------------------------------------------------------

/** What the server must do with a sequence of credits, ignoring deliveries (which only ever delay the cap). */
interface ReceivePlan {
  /** Decodable credits for configured channels, before the first bad one. */
  validCredits: number;
  /** How the server must end the stream, or undefined when it must stay open. */
  end: "cap" | "unknown-channel" | "undecodable" | "half-close-ok" | undefined;
  /** For "cap": a bad credit after the overflow point, which deliveries could make the stream reach first. */
  laterBad: "unknown-channel" | "undecodable" | undefined;
  /**
   * Some credit cannot be decoded. grpc-js decodes the messages of a DATA frame before the
   * handler has seen the earlier ones, and ends the call at the first it cannot decode: so
   * any gRPC error is then a fair end, whatever came before it.
   */
  undecodable: boolean;
}

export function planReceive(credits: Buffer[], halfClose: boolean, caps: ServerCaps): ReceivePlan {
  const undecodable = credits.some((credit) => credit.length > caps.maxMessageBytes || decodeRequest("ReceiveQueueByChannel", credit) === undefined);
  return { ...planInOrder(credits, halfClose, caps), undecodable };
}

function planInOrder(credits: Buffer[], halfClose: boolean, caps: ServerCaps): Omit<ReceivePlan, "undecodable"> {
  let valid = 0;
  let overflowAt: number | undefined;
  for (let i = 0; i < credits.length; i++) {
    const credit = credits[i] as Buffer;
    const decoded = decodeRequest("ReceiveQueueByChannel", credit);
    const bad = decoded === undefined || credit.length > caps.maxMessageBytes ? "undecodable" : CONFIGURED_CHANNELS.includes(String(decoded.Channel)) ? undefined : "unknown-channel";
    if (overflowAt !== undefined) {
      if (bad) return { validCredits: valid, end: "cap", laterBad: bad };
      continue;
    }
    if (bad) return { validCredits: valid, end: bad, laterBad: undefined };
    valid += 1;
    if (valid > caps.maxCreditsPerStream) overflowAt = i;
  }
  if (overflowAt !== undefined) return { validCredits: valid, end: "cap", laterBad: undefined };
  return { validCredits: valid, end: halfClose && valid === 0 ? "half-close-ok" : undefined, laterBad: undefined };
}

async function runReceive(ctx: ExecContext, c: ReceiveCase, tally: Tally): Promise<void> {
  const plan = planReceive(c.credits, c.halfClose, ctx.caps);
  const request = `ReceiveQueueByChannel [${c.note}]`;
  let delivered = 0;
  let badDelivery: string | undefined;
  const session = c.how === "destroy" || plan.undecodable ? openSession(ctx.server.address) : undefined;
  // A stream that must end gets time to do so; one that must stay open is held, then dropped.
  const call = startCall(() => session ?? ctx.rough.get(), methodPath("ReceiveQueueByChannel"), {
    timeoutMs: plan.end ? ctx.callTimeoutMs : c.holdMs,
    onFrame: (frame) => {
      delivered += 1;
      badDelivery ??= checkDelivery(frame.payload, frame.compressedFlag, ctx.known);
    },
  });
  if (session && !plan.end) setTimeout(() => session.destroy(), c.holdMs);
  tally.creditsSent += c.credits.length;
  if (c.credits.length > 0) await call.write(Buffer.concat(c.credits.map((credit) => grpcFrame(credit))));
  if (c.halfClose) call.end();
  const outcome = await call.done;
  session?.destroy();
  tally.tasksDelivered += delivered;

  if (badDelivery) return tally.malformed(`bad delivery: ${badDelivery}`, request, outcome);
  if (delivered > plan.validCredits) return tally.malformed(`${delivered} tasks delivered for ${plan.validCredits} credits`, request, outcome);
  const status = outcome.grpcStatus;
  const ended = status !== undefined;
  if (plan.undecodable && ended && status !== Code.OK) return tally.grpcError(grpcCodeName(status));
  switch (plan.end) {
    case undefined:
      // Every credit was valid: the server has no reason to end the stream (a half-closed one ends OK once all credits are answered).
      if (ended && !(status === Code.OK && c.halfClose && delivered === plan.validCredits)) {
        tally.malformed(`stream ended with ${grpcCodeName(status)} although every credit was valid`, request, outcome);
      }
      return;
    case "half-close-ok":
      if (status !== Code.OK) tally.malformed("a half-closed stream with no credits did not end with OK", request, outcome);
      return;
    case "unknown-channel":
      if (status === Code.INVALID_ARGUMENT) {
        tally.invalidChannelEnds += 1;
        tally.grpcError("INVALID_ARGUMENT");
      } else tally.malformed("a credit for an unknown channel did not end the stream with INVALID_ARGUMENT", request, outcome);
      return;
    case "undecodable":
      if (ended && status !== Code.OK) tally.grpcError(grpcCodeName(status));
      else tally.malformed("an undecodable credit did not end the stream with an error", request, outcome);
      return;
    case "cap":
      judgeCap(tally, plan, ctx.caps, delivered, outcome.grpcStatus, request, summarizeOutcome(outcome));
      return;
  }
}

function judgeCap(tally: Tally, plan: ReceivePlan, caps: ServerCaps, delivered: number, status: number | undefined, request: string, answer: string): void {
  if (status === Code.RESOURCE_EXHAUSTED) {
    tally.creditCapHits += 1;
    tally.grpcError("RESOURCE_EXHAUSTED");
    return;
  }
  // Tasks delivered while credits arrive lower the outstanding count, so the cap may come later, or never.
  const absorbed = delivered > 0;
  if (absorbed && status === undefined) return;
  if (absorbed && plan.laterBad === "unknown-channel" && status === Code.INVALID_ARGUMENT) return void tally.grpcError("INVALID_ARGUMENT");
  if (absorbed && plan.laterBad === "undecodable" && status !== undefined && status !== Code.OK) return void tally.grpcError(grpcCodeName(status));
  tally.malformed(`${plan.validCredits} credits on one stream (cap ${caps.maxCreditsPerStream}) did not end it with RESOURCE_EXHAUSTED`, request, answer);
}

/** A delivered task must decode and be PROCEEDING with an ID; remembers its lease for reports. */
function checkDelivery(payload: Buffer, compressedFlag: number, known: Known): string | undefined {
  if (compressedFlag !== 0) return `compressed flag ${compressedFlag}`;
  let response: Record<string, unknown>;
  try {
    response = decodeResponse("ReceiveQueueByChannel", payload);
  } catch (error) {
    return `does not decode: ${(error as Error).message}`;
  }
  const task = response.Tasks as { ID?: string; State?: string; LeaseToken?: string } | null;
  if (!task) return "a response without a Task";
  if (task.State !== "PROCEEDING" || !task.ID || task.ID === "0") return `task ${task.ID} in State ${task.State}`;
  known.ids.add(task.ID);
  known.leases.add({ id: task.ID, token: task.LeaseToken ?? "0" });
  return undefined;
}

// --- ReportTaskResult ----------------------------------------------------------------------

async function runReport(ctx: ExecContext, c: ReportCase, tally: Tally): Promise<void> {
  // The server answers every report in order, one each (State 400 for one it cannot decode),
  // until the first one over the max message size, which grpc-js refuses for the whole stream.
  const oversized = c.reports.map((report) => report.length > ctx.caps.maxMessageBytes);
  const decoded = c.reports.map((report, index) => (oversized[index] ? undefined : decodeRequest("ReportTaskResult", report)));
  const firstBad = oversized.indexOf(true);
  const answerable = firstBad === -1 ? c.reports.length : firstBad;
  const request = (index: number) => {
    const report = c.reports[index] as Buffer;
    const as = decoded[index] ? describeMessage(decoded[index]) : "(not decodable)";
    return `ReportTaskResult [${c.note}] report ${index}: ${hexPreview(report)} = ${as}`;
  };
  let answers = 0;
  let wantCancel: () => void = () => {};
  const cancelPoint = new Promise<void>((resolve) => (wantCancel = resolve));
  if (c.cancelAfter === 0) wantCancel();
  // Reports the server cannot read can leave its side of the stream hanging: own connection.
  const session = firstBad !== -1 ? openSession(ctx.server.address) : undefined;
  const pool = c.cancelAfter === undefined ? ctx.clean : ctx.rough;
  const call = startCall(() => session ?? pool.get(), methodPath("ReportTaskResult"), {
    // Hundreds of reports can take longer than one call's timeout to answer when every
    // call is slow: the stream hangs only if it stays silent that long.
    timeoutMs: ctx.callTimeoutMs,
    idle: true,
    onFrame: (frame) => {
      const index = answers++;
      judgeReportAnswer(tally, frame.payload, decoded[index], index < answerable, () => request(index));
      if (c.cancelAfter !== undefined && answers >= c.cancelAfter) wantCancel();
    },
  });
  tally.reportsSent += c.reports.length;
  await call.write(Buffer.concat(c.reports.map((report) => grpcFrame(report))));
  if (c.cancelAfter !== undefined) {
    await Promise.race([cancelPoint, call.done]);
    call.cancel();
  } else {
    call.end();
  }
  const outcome = await call.done;
  session?.destroy();
  tally.reportsAnswered += answers;
  const summary = `${answers} answers; ${summarizeOutcome(outcome)}`;
  if (answers > answerable) return tally.malformed(`${answers} answers for ${answerable} readable reports`, request(0), summary);
  const hung = outcome.timedOut && outcome.grpcStatus === undefined;
  if (c.cancelAfter !== undefined && !hung) return;
  if (hung) {
    if (firstBad !== -1) return tally.transportLimit("report stream with an oversized message ended without a status");
    return tally.malformed(`no answer nor gRPC status for ${ctx.callTimeoutMs} ms (the stream hangs)`, request(0), summary);
  }
  if (firstBad === -1) {
    if (outcome.grpcStatus !== Code.OK) tally.malformed(`a report stream of readable reports ended with ${grpcCodeName(outcome.grpcStatus ?? -1)}`, request(0), summary);
    else if (answers !== answerable) tally.malformed(`${answers} answers for ${answerable} reports`, request(0), summary);
    return;
  }
  if (outcome.grpcStatus === undefined || outcome.grpcStatus === Code.OK) {
    return tally.malformed(`report ${firstBad} cannot be read, yet the stream ended with ${outcome.grpcStatus === undefined ? "no status" : "OK"}`, request(firstBad), summary);
  }
  tally.grpcError(grpcCodeName(outcome.grpcStatus));
}

/**
 * One answer of a report stream: decodes, carries a State, and its Data is the ID of the
 * report it answers (in order); a report that does not decode is answered 400 with Data 0.
 */
function judgeReportAnswer(tally: Tally, payload: Buffer, report: Record<string, unknown> | undefined, readable: boolean, request: () => string): void {
  let response: Record<string, unknown>;
  try {
    response = decodeResponse("ReportTaskResult", payload);
  } catch (error) {
    return tally.malformed(`report answer does not decode: ${(error as Error).message}`, request(), hexPreview(payload));
  }
  if (!readable) return tally.malformed("an answer for a report past an oversized one", request(), JSON.stringify(response));
  if (!report) {
    if (response.State !== "400" || response.Data !== "0") {
      tally.malformed(`an undecodable report answered ${String(response.State)} (Data ${String(response.Data)}), not 400`, request(), JSON.stringify(response));
    } else {
      tally.answered("ReportTaskResult", "400");
    }
    return;
  }
  const state = judgeState(tally, "ReportTaskResult", response, request());
  if (state && response.Data !== report.ID) {
    tally.malformed(`answer out of order: Data ${String(response.Data)} for the report of ID ${String(report.ID)}`, request(), JSON.stringify(response));
  }
}

// --- too many streams on one connection -------------------------------------------------

async function runFlood(ctx: ExecContext, c: FloodCase, tally: Tally): Promise<void> {
  const session = openSession(ctx.server.address);
  const credit = grpcFrame(encodeRequest("ReceiveQueueByChannel", { Channel: "other" }));
  const calls: RawCall[] = [];
  for (let i = 0; i < c.streams; i++) {
    try {
      const call = new RawCall(session, methodPath("ReceiveQueueByChannel"), { timeoutMs: 10_000 });
      void call.write(credit);
      calls.push(call);
    } catch {
      break; // the session refused more streams: that is the cap working
    }
  }
  await sleep(300);
  session.destroy();
  const outcomes = await Promise.all(calls.map((call) => call.done));
  tally.floodStreams += c.streams;
  tally.floodStreamsAnswered += outcomes.filter((outcome) => outcome.httpStatus !== undefined).length;
}

// --- not HTTP/2 at all -------------------------------------------------------------------

async function runTcp(ctx: ExecContext, c: TcpCase): Promise<void> {
  const [host, port] = ctx.server.address.split(":") as [string, string];
  await new Promise<void>((resolve) => {
    const socket = connect({ host, port: Number(port) });
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 500);
    socket.on("error", done);
    socket.on("close", done);
    socket.on("connect", () => socket.write(c.bytes));
  });
}
