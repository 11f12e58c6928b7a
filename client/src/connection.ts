// How the SDK connects: address, TLS, metadata sent with every call (e.g. an
// authorization header), and the default deadline of unary calls.
import * as grpc from "@grpc/grpc-js";
import { loadQueuesPackage, type QueuesServiceClient as GeneratedQueuesClient } from "@queues/protocol";

export interface ConnectionOptions {
  /** host:port of a Queues server or its load balancer. */
  address: string;
  /** TLS: `true` for the system's root certificates, or PEM roots (and a client certificate for mutual TLS). */
  tls?: boolean | { rootCerts?: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /** Sent with every call, e.g. `{ authorization: "Bearer <token>" }`. */
  metadata?: Record<string, string>;
  /** Deadline of each unary call, in ms (default 10 000). */
  deadlineMs?: number;
  /** More grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export const DEFAULT_DEADLINE_MS = 10_000;

const CHANNEL_DEFAULTS: grpc.ChannelOptions = {
  // Up to 32 MiB answers: a page of 100 tasks with 256 KiB Inputs and Outputs fits.
  "grpc.max_receive_message_length": 32 * 1024 * 1024,
  // Reconnect to a restarted server within seconds, not grpc's default of up to 2 minutes.
  "grpc.initial_reconnect_backoff_ms": 250,
  "grpc.max_reconnect_backoff_ms": 5_000,
  // Pings find a server that vanished without closing the connection (a killed task, a
  // partition), so an idle worker's stream is reopened instead of waiting forever.
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
};

export function connect(options: ConnectionOptions): GeneratedQueuesClient {
  const { proto } = loadQueuesPackage();
  return new proto.standard.Queues(options.address, credentialsOf(options.tls), { ...CHANNEL_DEFAULTS, ...options.channelOptions });
}

export function credentialsOf(tls: ConnectionOptions["tls"]): grpc.ChannelCredentials {
  if (!tls) return grpc.credentials.createInsecure();
  if (tls === true) return grpc.credentials.createSsl();
  return grpc.credentials.createSsl(tls.rootCerts ?? null, tls.privateKey ?? null, tls.certChain ?? null);
}

export function metadataOf(values: Record<string, string> | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(values ?? {})) metadata.set(key, value);
  return metadata;
}
