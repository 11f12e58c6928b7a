// Who may call what: every Queues RPC needs a bearer token (`authorization: Bearer
// <token>` metadata) whose role allows it. A missing or unknown token is
// UNAUTHENTICATED, a known token without the role PERMISSION_DENIED. Health and
// reflection are not Queues RPCs and stay open (load balancers, grpcurl).
import { timingSafeEqual } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { digestOf, type Role, type TokenEntry } from "./tokens.js";

/** The RPCs each role may call (admin: all). */
export const PERMISSIONS: Record<Role, ReadonlySet<string>> = {
  producer: new Set(["CreateTask", "QueryTaskByID", "QueryTaskByHashCode", "QueryTaskByOwner", "CancelTaskByID", "QueryLengthByChannel"]),
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
  ]),
};

export type Verdict = { allowed: true; role: Role } | { allowed: false; code: grpc.status; details: string };

export class Authorizer {
  constructor(private readonly tokens: readonly TokenEntry[]) {}

  check(metadata: grpc.Metadata, method: string): Verdict {
    const header = metadata.get("authorization")[0];
    const match = typeof header === "string" ? /^Bearer ([^\s]+)$/i.exec(header.trim()) : null;
    if (!match) {
      return { allowed: false, code: grpc.status.UNAUTHENTICATED, details: "Missing credentials: send the metadata 'authorization: Bearer <token>'" };
    }
    const role = this.roleOf(match[1] as string);
    if (!role) return { allowed: false, code: grpc.status.UNAUTHENTICATED, details: "Unknown token" };
    if (!PERMISSIONS[role].has(method)) {
      return { allowed: false, code: grpc.status.PERMISSION_DENIED, details: `A ${role} token may not call ${method}` };
    }
    return { allowed: true, role };
  }

  /** Compares the digest with every configured one, without stopping early: the time taken does not depend on the token. */
  private roleOf(token: string): Role | undefined {
    const digest = digestOf(token);
    let found: Role | undefined;
    for (const entry of this.tokens) {
      if (timingSafeEqual(entry.digest, digest) && found === undefined) found = entry.role;
    }
    return found;
  }
}
