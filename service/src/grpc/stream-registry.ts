// The open long-lived streams of this replica, so a graceful shutdown can end them.

export interface ClosableStream {
  /** Finishes what is in flight, then ends the stream with UNAVAILABLE. */
  shutdown(): Promise<void>;
}

export class StreamRegistry {
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
