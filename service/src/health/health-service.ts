// grpc.health.v1.Health (Check, Watch, List) for a fixed set of service names.
//
// It replaces grpc-health-check's HealthImplementation (2.1.0), whose Watch keeps an
// entry per watched name forever: a cancelled watch of an unknown name leaves its
// (empty) watcher set in a map keyed by the name, so an unauthenticated client that
// watches ever-new names (up to the message size each) grows the server's memory
// without bound. Here only the known names can be watched for changes; a watch of an
// unknown name is answered SERVICE_UNKNOWN, as the health protocol says, and keeps no
// state beyond its call; a watcher set is removed with its last watcher. The service
// definition (the .proto) is still the library's.
import type * as grpc from "@grpc/grpc-js";
import { service as healthServiceDefinition, type ServingStatus } from "grpc-health-check";

type WatchStatus = ServingStatus | "SERVICE_UNKNOWN";

interface HealthRequest {
  service: string;
}

/** List answers at most this many services (the protocol's RESOURCE_EXHAUSTED rule). */
const LIST_LIMIT = 100;

export class HealthService {
  private readonly statuses: Map<string, ServingStatus>;
  private readonly watchers = new Map<string, Set<(status: ServingStatus) => void>>();

  /** `initial`: every service name this server answers for, with its first status. */
  constructor(initial: Record<string, ServingStatus>) {
    this.statuses = new Map(Object.entries(initial));
  }

  setStatus(service: string, status: ServingStatus): void {
    if (!this.statuses.has(service)) throw new Error(`health: unknown service name ${JSON.stringify(service)}`);
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const watcher of this.watchers.get(service) ?? []) watcher(status);
  }

  statusOf(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** How many watch calls are registered (for tests: bounded by the known names' open watches). */
  get watcherCount(): number {
    let count = 0;
    for (const set of this.watchers.values()) count += set.size;
    return count;
  }

  /** How many names have a watcher set (never more than the known names). */
  get watchedNames(): number {
    return this.watchers.size;
  }

  addToServer(server: grpc.Server): void {
    server.addService(healthServiceDefinition, {
      check: (call: grpc.ServerUnaryCall<HealthRequest, unknown>, callback: grpc.sendUnaryData<{ status: ServingStatus }>) => {
        const status = this.statuses.get(call.request.service);
        if (status) callback(null, { status });
        else callback({ code: 5 /* NOT_FOUND */, details: "Health status unknown for this service" });
      },
      watch: (call: grpc.ServerWritableStream<HealthRequest, { status: WatchStatus }>) => {
        const name = call.request.service;
        const status = this.statuses.get(name);
        if (!status) {
          // The set of names is fixed: an unknown one never becomes known. Nothing is kept for it.
          call.write({ status: "SERVICE_UNKNOWN" });
          return;
        }
        const watcher = (next: ServingStatus) => call.write({ status: next });
        this.addWatcher(name, watcher);
        const remove = () => this.removeWatcher(name, watcher);
        call.once("cancelled", remove);
        call.once("close", remove);
        call.once("error", remove);
        call.write({ status });
      },
      list: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<{ statuses: Record<string, { status: ServingStatus }> }>) => {
        if (this.statuses.size > LIST_LIMIT) {
          callback({ code: 8 /* RESOURCE_EXHAUSTED */, details: "Too many services to list." });
          return;
        }
        const statuses: Record<string, { status: ServingStatus }> = {};
        for (const [name, status] of this.statuses) statuses[name] = { status };
        callback(null, { statuses });
      },
    });
  }

  private addWatcher(name: string, watcher: (status: ServingStatus) => void): void {
    let set = this.watchers.get(name);
    if (!set) this.watchers.set(name, (set = new Set()));
    set.add(watcher);
  }

  private removeWatcher(name: string, watcher: (status: ServingStatus) => void): void {
    const set = this.watchers.get(name);
    if (!set) return;
    set.delete(watcher);
    if (set.size === 0) this.watchers.delete(name);
  }
}
