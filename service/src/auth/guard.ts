// Puts the Authorizer in front of every Queues handler. A refused unary call ends
// with the gRPC status (SPEC §2 reserves UNAUTHENTICATED for it); a refused stream
// ends before its handler ever sees it.
import type * as grpc from "@grpc/grpc-js";
import type { QueuesHandlers } from "@queues/protocol";
import type { Authorizer } from "./authorizer.js";

type AnyCall = { metadata: grpc.Metadata; emit(event: "error", error: Partial<grpc.StatusObject>): boolean };

export function guardHandlers(handlers: QueuesHandlers, authorizer: Authorizer): QueuesHandlers {
  const guarded: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(handlers) as [string, (...args: unknown[]) => void][]) {
    guarded[method] = (call: AnyCall, callback?: grpc.sendUnaryData<unknown>) => {
      const verdict = authorizer.check(call.metadata, method);
      if (verdict.allowed) return handler(call, callback);
      const status = { code: verdict.code, details: verdict.details };
      if (callback) callback(status);
      else call.emit("error", status);
    };
  }
  return guarded as unknown as QueuesHandlers;
}
