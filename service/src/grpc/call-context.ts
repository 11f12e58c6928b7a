// What every Queues RPC shares: its per-call context (request id, method,
// request-scoped logger, the authenticated principal), made by the interceptors
// (interceptors.ts, auth/interceptor.ts) and handed to the handlers by the wrappers
// (rpc.ts); the mapping from errors to response States; and the call's deadline.
import { randomUUID } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";
import type { Role } from "../auth/tokens.js";
import { backendFailure } from "../core/backend-errors.js";
import { requestScope } from "../logging.js";
import type { TaskScope } from "../tasks/scope.js";
import { Rejection, Status, type StatusCode } from "../tasks/status.js";

export interface Answer {
  state: StatusCode;
  message: string;
  data?: unknown;
}

/** The metadata key a caller may set, and the server always answers with. */
export const REQUEST_ID_KEY = "x-request-id";

/** The caller's request id when it is a sensible one, else a fresh one. */
export function requestIdOf(metadata: grpc.Metadata): string {
  const given = metadata.get(REQUEST_ID_KEY)[0];
  return typeof given === "string" && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
}

/** Who is calling: the role of the bearer token (authentication on), and its scope. */
export interface Principal {
  readonly role: Role;
  /** The tasks the token may see and act on (a scoped token); undefined: all that its role allows. */
  readonly scope?: TaskScope | undefined;
}

/** One Queues call as its handler sees it. */
export class CallContext {
  #principal: Principal | undefined;

  constructor(
    readonly requestId: string,
    /** The RPC's name, e.g. "CreateTask". */
    readonly method: string,
    /** Every line carries the request id and the RPC. */
    readonly log: Logger,
    /** The caller's W3C traceparent ("" : none or not valid): CreateTask keeps it on the task. */
    readonly traceParent = "",
  ) {}

  /** The authenticated caller; undefined when authentication is off. */
  get principal(): Principal | undefined {
    return this.#principal;
  }

  /** The tasks this call may see and act on; undefined: all of them (an unscoped token, or authentication off). */
  get taskScope(): TaskScope | undefined {
    return this.#principal?.scope;
  }

  /** Set once, by the authentication interceptor, before the handler runs. */
  authenticate(principal: Principal): void {
    if (this.#principal) throw new Error(`${this.method} call ${this.requestId} is already authenticated`);
    this.#principal = principal;
  }

  /** Runs `work` with the request id in scope: the lines logged below it (the task service's too) carry it. */
  scope<T>(work: () => T): T {
    return requestScope.run({ requestId: this.requestId }, work);
  }
}

// The request metadata object is what grpc-js hands from the interceptors to the
// handler (`call.metadata`), so it keys the call's context. No interceptor may
// replace it with a copy after the context is attached.
const contexts = new WeakMap<grpc.Metadata, CallContext>();

export function attachCallContext(metadata: grpc.Metadata, context: CallContext): void {
  contexts.set(metadata, context);
}

/** The context the call-context interceptor attached; undefined for a call it did not see. */
export function callContextOf(metadata: grpc.Metadata): CallContext | undefined {
  return contexts.get(metadata);
}

/**
 * A call refused with a gRPC status rather than answered with a State: a scoped token
 * asking for what its scope forbids outright (a CreateTask for another Owner:
 * PERMISSION_DENIED), like a token without the role. The auth interceptor logs it.
 */
export class CallRefused extends Error {
  constructor(
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(details);
    this.name = "CallRefused";
  }
}

/** The log line (its `msg`) of every State-500 answer; the stack's "server errors" alarm counts these lines. */
export const UNEXPECTED_ERROR_LOG_MESSAGE = "unexpected server error";

/** Any error → the State and Message the caller gets. 500s are bugs: logged with the request id. */
export function toAnswer(error: unknown, context: CallContext): Answer {
  if (error instanceof Rejection) return { state: error.status, message: error.message, data: error.data };
  const failure = backendFailure(error);
  if (failure) {
    context.log.warn({ err: error }, `${failure.backend} unavailable`);
    return { state: Status.UNAVAILABLE, message: `${failure.backend} is unavailable or throttling (${failure.reason}); safe to retry` };
  }
  context.log.error({ err: error }, UNEXPECTED_ERROR_LOG_MESSAGE);
  return { state: Status.INTERNAL, message: `Unexpected server error; it was logged with request id ${context.requestId}` };
}

/** Milliseconds left before the call's deadline (Infinity when it has none). */
export function timeLeftMs(deadline: grpc.Deadline): number {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at - Date.now() : Infinity;
}

/** What a handler tells the deadline answer while it runs. */
export interface CallProgress {
  /**
   * Set once a write is under way: if the deadline comes first, the answer must not
   * say "safe to retry" but that the outcome is unknown, and how to find it out.
   */
  outcomeUnknown?: { message: string; data?: unknown };
  /** Aborted when the call's answer has gone out at its deadline, or the caller cancelled: work for it may stop. */
  signal?: AbortSignal;
}

/**
 * How long before the deadline the 503 goes out: 10 % of the time left, at least 50 ms
 * and at most 500 ms, so the answer still arrives in time on a loaded event loop.
 */
export function answerMarginMs(leftMs: number): number {
  return Math.min(500, Math.max(50, leftMs * 0.1));
}

/**
 * Settles with a 503 shortly before the call's deadline, so a caller always gets
 * an answer it can act on instead of DEADLINE_EXCEEDED when a backend hangs.
 */
export function beforeDeadline(deadline: grpc.Deadline, progress: CallProgress = {}): { promise: Promise<never>; clear: () => void } {
  const left = timeLeftMs(deadline);
  if (!Number.isFinite(left)) return { promise: new Promise<never>(() => {}), clear: () => {} };
  let timer: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const unknown = progress.outcomeUnknown;
      reject(
        unknown
          ? new Rejection(Status.UNAVAILABLE, unknown.message, unknown.data)
          : new Rejection(Status.UNAVAILABLE, "The backends did not answer before the call's deadline; safe to retry"),
      );
    }, Math.max(0, left - answerMarginMs(left)));
  });
  return { promise, clear: () => clearTimeout(timer) };
}
