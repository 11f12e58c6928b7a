// The open long-lived streams of this replica, so a graceful shutdown can end them,
// and whether it is draining (the draining interceptor then refuses new streams).
import * as grpc from "@grpc/grpc-js";

/** How a stream ends, or is refused, while the server shuts down. */
export const SHUTTING_DOWN = { code: grpc.status.UNAVAILABLE, details: "The server is shutting down; reconnect to another replica" } as const;

export interface ClosableStream {
  /** Finishes what is in flight, then ends the stream with UNAVAILABLE. */
  shutdown(): Promise<void>;
}

export interface DrainState {
  readonly draining: boolean;
}

export class StreamRegistry implements DrainState {
  private readonly streams = new Set<ClosableStream>();
  draining = false;

  add(stream: ClosableStream): void {
    this.streams.add(stream);
  }

  remove(stream: ClosableStream): void {
    this.streams.delete(stream);
  }

  get size(): number {
    return this.streams.size;
  }

  async shutdownAll(): Promise<void> {
    this.draining = true;
    await Promise.all([...this.streams].map((stream) => stream.shutdown()));
  }
}
