// Who may call what: every Queues RPC needs a bearer token (`authorization: Bearer
// <token>` metadata) whose role allows it. A missing or unknown token is
// UNAUTHENTICATED, a known token without the role PERMISSION_DENIED. Health and
// reflection are not Queues RPCs and stay open (load balancers, grpcurl). A scoped
// token's scope (tokens.ts) goes with the verdict into the call's context; the
// handlers apply it to the tasks they touch.
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { TaskScope } from "../tasks/scope.js";
import { digestOf, type Role, type TokenEntry } from "./tokens.js";

/** The RPCs each role may call (admin: all). */
export const PERMISSIONS: Record<Role, ReadonlySet<string>> = {
  producer: new Set([
    "CreateTask",
    "CreateTasks",
    "QueryTaskByID",
    "QueryTaskByHashCode",
    "QueryTaskByOwner",
    "CancelTaskByID",
    "QueryLengthByChannel",
    "PutSchedule",
    "DeleteSchedule",
    "QuerySchedules",
    "RerunTaskByID",
  ]),
  worker: new Set(["ReceiveQueueByChannel", "ReportTaskResult", "QueryTaskByID", "QueryTaskByHashCode", "QueryTaskByOwner"]),
  admin: new Set([
    "CreateTask",
    "QueryTaskByID",
    "QueryTaskByHashCode",
    "QueryTaskByOwner",
    "CancelTaskByID",
    "QueryLengthByChannel",
    "ReceiveQueueByChannel",
    "ReportTaskResult",
    "CreateTasks",
    "PutSchedule",
    "DeleteSchedule",
    "QuerySchedules",
    "RerunTaskByID",
  ]),
};

/**
 * The RPCs a token scoped to channels may not call although its role may: an owner's
 * page and Total span every channel, and could only be limited to the token's
 * channels by reading all of the owner's tasks.
 */
export const CHANNEL_SCOPED_EXCLUSIONS: ReadonlySet<string> = new Set(["QueryTaskByOwner"]);

export type Verdict = { allowed: true; role: Role; scope: TaskScope | undefined } | { allowed: false; code: grpc.status; details: string };

export class Authorizer {
  constructor(private readonly tokens: readonly TokenEntry[]) {}

  check(metadata: grpc.Metadata, method: string): Verdict {
    const header = metadata.get("authorization")[0];
    const match = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header.trim()) : null;
    if (!match) {
      return { allowed: false, code: grpc.status.UNAUTHENTICATED, details: "Missing credentials: send the metadata 'authorization: Bearer <token>'" };
    }
    const entry = this.entryOf(match[1] as string);
    if (!entry) return { allowed: false, code: grpc.status.UNAUTHENTICATED, details: "Unknown token" };
    const { role, scope } = entry;
    if (!PERMISSIONS[role].has(method)) {
      return { allowed: false, code: grpc.status.PERMISSION_DENIED, details: `A ${role} token may not call ${method}` };
    }
    if (scope?.channels && CHANNEL_SCOPED_EXCLUSIONS.has(method)) {
      return { allowed: false, code: grpc.status.PERMISSION_DENIED, details: `A ${role} token scoped to channels may not call ${method}: an owner's tasks span channels` };
    }
    return { allowed: true, role, scope };
  }

  /** Whether an HTTP `authorization` header carries an admin token without a scope (the HTTP port's /usage, the console). */
  isAdmin(authorization: string | undefined): boolean {
    const match = typeof authorization === "string" ? /^Bearer ([^\s]+)$/i.exec(authorization.trim()) : null;
    const entry = match ? this.entryOf(match[1] as string) : undefined;
    return entry?.role === "admin" && entry.scope === undefined;
  }

  /** Compares the digest with every configured one, without stopping early: the time taken does not depend on the token. */
  private entryOf(token: string): TokenEntry | undefined {
    const digest = digestOf(token);
    let found: TokenEntry | undefined;
    for (const entry of this.tokens) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry;
    }
    return found;
  }
}
