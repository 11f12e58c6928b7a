// Puts the Authorizer in front of every Queues RPC, as a grpc-js server interceptor
// (installed after the call-context interceptor: grpc/interceptors.ts). A refused
// call ends with its gRPC status (SPEC §2 reserves UNAUTHENTICATED for it) before
// its handler ever runs; an allowed one carries the caller's role and scope in its
// context. A call its handler refuses for the token's scope (PERMISSION_DENIED: a
// CreateTask for another Owner, a credit for another channel) is logged here too.
// Health and reflection are not Queues RPCs and pass untouched.
import * as grpc from "@grpc/grpc-js";
import { callContextOf } from "../grpc/call-context.js";
import { admissionCall, type QueuesMethods } from "../grpc/interceptors.js";
import type { Authorizer } from "./authorizer.js";
import type { RefusalLog } from "./refusal-log.js";

export function authInterceptor(authorizer: Authorizer, methods: QueuesMethods, refusals?: RefusalLog): grpc.ServerInterceptor {
  return (descriptor, call) => {
    const method = methods.get(descriptor.path);
    if (method === undefined) return new grpc.ServerInterceptingCall(call);
    let admitted: grpc.Metadata | undefined;
    const admission = admissionCall(call, (metadata) => {
      const verdict = authorizer.check(metadata, method);
      if (!verdict.allowed) {
        refusals?.record({ rpc: method, peer: call.getPeer(), reason: `${grpc.status[verdict.code]}: ${verdict.details}`, requestId: callContextOf(metadata)?.requestId });
        return { code: verdict.code, details: verdict.details };
      }
      callContextOf(metadata)?.authenticate({ role: verdict.role, scope: verdict.scope });
      admitted = metadata;
      return undefined;
    });
    // The admission's own refusals go straight to `call`; what passes here comes from the handler (or an inner interceptor).
    return new grpc.ServerInterceptingCall(admission, {
      sendStatus: (status, next) => {
        if (admitted && status.code === grpc.status.PERMISSION_DENIED) {
          refusals?.record({ rpc: method, peer: call.getPeer(), reason: `PERMISSION_DENIED: ${status.details}`, requestId: callContextOf(admitted)?.requestId });
        }
        next(status);
      },
    });
  };
}
