// grpc-js's own log lines, through the server's logger, never with a header value.
//
// grpc-js logs to stderr by default, and some of its lines carry metadata values:
// "Failed to add metadata entry authorization: Bearer <token>... contains illegal
// characters" for a header with a tab or a non-ASCII character, for one. Here every
// grpc-js line goes to the server's (JSON) logger, a metadata entry's value is never
// kept, and anything after "authorization" or "Bearer" is redacted.
import { format } from "node:util";
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "pino";

const METADATA_ENTRY = /^Failed to add metadata entry ([^:]*):[\s\S]*$/;

/** A grpc-js log message with no header value and no token left in it. */
export function redactGrpcMessage(message: string): string {
  const entry = METADATA_ENTRY.exec(message);
  if (entry) return `Failed to add metadata entry ${(entry[1] ?? "").slice(0, 100)}: its value is not valid in gRPC metadata (value not logged)`;
  return message.replace(/(authorization)[\s\S]*/gi, "$1 [redacted]").replace(/(bearer)\s+\S+/gi, "$1 [redacted]");
}

/** Sends grpc-js's log lines to `log` (process-wide: grpc-js has one logger). */
export function routeGrpcLogs(log: Logger): void {
  const child = log.child({ source: "grpc-js" });
  const line = (level: "error" | "info" | "debug") => (...args: unknown[]) => child[level](redactGrpcMessage(format(...args)));
  grpc.setLogger({ error: line("error"), info: line("info"), debug: line("debug") });
}
