// The gRPC server: the Queues service plus health and reflection, with the
// transport settings SPEC §4 asks for and the interceptors every Queues call goes
// through (request id and context, authentication, refusal while draining).
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { protoPath as healthProtoPath } from "grpc-health-check";
import type { Logger } from "pino";
import { loadQueuesPackage, PROTO_LOADER_OPTIONS, type QueuesHandlers } from "@queues/protocol";
import { MAX_PAYLOAD_BYTES } from "../tasks/rules.js";
import type { BackendHealth } from "../health/backend-health.js";
import type { Authorizer } from "../auth/authorizer.js";
import { authInterceptor } from "../auth/interceptor.js";
import { RefusalLog } from "../auth/refusal-log.js";
import { callContextInterceptor, drainingInterceptor, firstMessageInterceptor, queuesMethods } from "./interceptors.js";
import { tracingInterceptor } from "./tracing.js";
import type { DrainState } from "./stream-registry.js";
import { withSafeDeserializers } from "./undecodable.js";

/**
 * Limits that protect the server from one client (configurable: QUEUES_MAX_MESSAGE_BYTES,
 * QUEUES_MAX_CONCURRENT_STREAMS, QUEUES_FIRST_MESSAGE_TIMEOUT_MS, QUEUES_CONNECTION_IDLE_MS,
 * QUEUES_CONNECTION_AGE_GRACE_MS).
 */
export interface TransportCaps {
  /** The largest request message read. */
  maxMessageBytes: number;
  /** Streams (calls) open at once on one connection. */
  maxConcurrentStreams: number;
  /** A unary call or receive stream with no message this long after its headers is ended. */
  firstMessageTimeoutMs: number;
  /** A connection with no open call is closed after this long. */
  connectionIdleMs: number;
  /** Calls on a connection past its age get this long before the connection is closed. */
  connectionAgeGraceMs: number;
}

export const DEFAULT_TRANSPORT_CAPS: TransportCaps = {
  // Room for a 256 KiB payload and its envelope, and enough headroom that an
  // oversized Input or Output still gets a readable 400 rather than a transport error.
  maxMessageBytes: 4 * MAX_PAYLOAD_BYTES,
  maxConcurrentStreams: 1_000,
  firstMessageTimeoutMs: 10_000,
  connectionIdleMs: 5 * 60_000,
  connectionAgeGraceMs: 10 * 60_000,
};

export function serverOptions(caps: TransportCaps = DEFAULT_TRANSPORT_CAPS): grpc.ServerOptions {
  return {
    // Ping idle connections every 30 s: far below the NLB's 350 s idle timeout.
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
    // After 30 min a connection takes no new calls (GOAWAY); its open streams go on. Clients
    // then reconnect through the load balancer, so new replicas get a share of the load.
    "grpc.max_connection_age_ms": 30 * 60_000,
    // ...and its calls get this long before it is closed: no call, held or not, lives for ever
    // (workers' streams reconnect, the SDK re-sends what was not acknowledged).
    "grpc.max_connection_age_grace_ms": caps.connectionAgeGraceMs,
    "grpc.max_connection_idle_ms": caps.connectionIdleMs,
    "grpc.max_receive_message_length": caps.maxMessageBytes,
    "grpc.max_concurrent_streams": caps.maxConcurrentStreams,
  };
}

export const SERVER_OPTIONS = serverOptions();

/** What the interceptors need. */
export interface CallPolicy {
  /** The logger each call's request-scoped logger derives from. */
  log: Logger;
  /** Checks every Queues call's bearer token; absent, authentication is off. */
  authorizer: Authorizer | undefined;
  /** Once draining, new streams are refused. */
  drain: DrainState;
  /** Serve grpc.reflection (grpcurl, Postman). */
  reflection: boolean;
}

export function createGrpcServer(handlers: QueuesHandlers, health: Pick<BackendHealth, "implementation">, policy: CallPolicy, caps: TransportCaps = DEFAULT_TRANSPORT_CAPS): grpc.Server {
  const { definition, proto } = loadQueuesPackage();
  const service = withSafeDeserializers(proto.standard.Queues.service);
  const methods = queuesMethods(service);
  // Outermost first: the context exists (and the id is echoed) before a refusal; authentication precedes the drain check, as before.
  const interceptors = [
    tracingInterceptor(methods),
    callContextInterceptor(policy.log, methods),
    ...(policy.authorizer ? [authInterceptor(policy.authorizer, methods, new RefusalLog(policy.log))] : []),
    drainingInterceptor(policy.drain, methods),
    firstMessageInterceptor(caps.firstMessageTimeoutMs, methods),
  ];
  const server = new grpc.Server({ ...serverOptions(caps), interceptors });
  server.addService(service, handlers);
  health.implementation.addToServer(server);
  if (policy.reflection) {
    const healthDefinition = loadSync(healthProtoPath, PROTO_LOADER_OPTIONS);
    new ReflectionService({ ...definition, ...healthDefinition }).addToServer(server);
  }
  return server;
}

export function bind(server: grpc.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolve(boundPort),
    );
  });
}
