// How the SDK connects: address, TLS, metadata sent with every call (e.g. an
// authorization header), and the default deadline of unary calls. ConnectionOptions
// are compiled once (compileConnectionOptions: defaults filled in, checked, the
// credentials and metadata built); the rest of the SDK reads only the compiled form.
import * as grpc from "@grpc/grpc-js";
import { loadQueuesPackage, type QueuesServiceClient as GeneratedQueuesClient } from "@queues/protocol";
import { durationOption, optionError } from "./option-rules.js";

export interface ConnectionOptions {
  /**
   * Where the Queues server (or its load balancer) is: `host:port` (`127.0.0.1:50051`,
   * `queues.internal:50051`, `[::1]:50051`) or a gRPC target (`dns:///host:port`,
   * `ipv4:10.0.0.1:50051`, `unix:/path/to/socket`). Required.
   */
  address: string;
  /**
   * TLS: `true` for the system's root certificates, or PEM roots (and a client certificate for mutual TLS).
   * @default false (plaintext)
   */
  tls?: boolean | { rootCerts?: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /**
   * Sent with every call, e.g. `{ authorization: "Bearer <token>" }`.
   * @default {} (none)
   */
  metadata?: Record<string, string>;
  /**
   * Deadline of each unary call, in ms: a number from 1 to 2^31-1 (a call may set its own).
   * @default 10_000
   */
  deadlineMs?: number;
  /**
   * More grpc-js channel options, over the SDK's own (CHANNEL_DEFAULTS: answers up to
   * 32 MiB, reconnects within 5 s, keepalive pings every 30 s).
   * @default {}
   */
  channelOptions?: grpc.ChannelOptions;
}

/** ConnectionOptions with their defaults filled in and checked, ready to connect with (compileConnectionOptions). */
export interface CompiledConnectionOptions {
  readonly address: string;
  readonly credentials: grpc.ChannelCredentials;
  /** Sent with every call and stream. */
  readonly metadata: grpc.Metadata;
  readonly deadlineMs: number;
  /** CHANNEL_DEFAULTS and the caller's channelOptions over them. */
  readonly channelOptions: grpc.ChannelOptions;
}

export const DEFAULT_DEADLINE_MS = 10_000;

export const CHANNEL_DEFAULTS: Readonly<grpc.ChannelOptions> = {
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

/** Fills in the defaults of `options` and checks them; throws a RangeError naming a bad option. */
export function compileConnectionOptions(options: ConnectionOptions): CompiledConnectionOptions {
  return {
    address: checkAddress("address", options.address),
    credentials: credentialsOf(options.tls),
    metadata: metadataOf(options.metadata),
    deadlineMs: checkDeadlineMs("deadlineMs", options.deadlineMs, DEFAULT_DEADLINE_MS),
    channelOptions: { ...CHANNEL_DEFAULTS, ...options.channelOptions },
  };
}

/** A deadline in ms (the client's, or one call's): `fallback` when left out. */
export function checkDeadlineMs(name: string, value: number | undefined, fallback: number): number {
  return durationOption(name, value, fallback, 1);
}

/** Schemes of the gRPC targets grpc-js resolves itself. */
const TARGET = /^(?:dns|ipv4|ipv6|unix|unix-abstract):\S+$/;
/** host:port, the host a name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(?:[\w.-]+|\[[0-9A-Fa-f:.]+(?:%[\w.-]+)?\]):(\d{1,5})$/;

/** An address as ConnectionOptions documents it (host:port or a gRPC target); throws a RangeError otherwise. */
export function checkAddress(name: string, value: unknown): string {
  if (typeof value === "string") {
    const port = HOST_PORT.exec(value)?.[1];
    if (port !== undefined ? Number(port) >= 1 && Number(port) <= 65_535 : TARGET.test(value)) return value;
  }
  throw optionError(name, 'host:port (e.g. "127.0.0.1:50051") or a gRPC target (e.g. "dns:///queues.internal:50051", "unix:/run/queues.sock")', value);
}

export function connect(options: CompiledConnectionOptions): GeneratedQueuesClient {
  const { proto } = loadQueuesPackage();
  return new proto.standard.Queues(options.address, options.credentials, options.channelOptions);
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
