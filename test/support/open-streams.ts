// The worker and report streams a test file opens, so that each test can close all
// of its own and wait until the servers have let go of them.
import { ReceiveStream, ReportStream } from "./client.js";
import { eventually, type TestServer } from "./harness.js";

export class OpenStreams {
  private readonly open: { end(): void }[] = [];

  /** `server` gives the server streams open on when none is named (it may not exist yet at construction). */
  constructor(private readonly server: () => TestServer) {}

  /** A worker's receive stream; closed by cancelling it, which releases whatever it was waiting for. */
  worker(channel: string, on: TestServer = this.server()): ReceiveStream {
    const stream = new ReceiveStream(on.api, channel);
    this.open.push({ end: () => stream.cancel() });
    return stream;
  }

  reporter(on: TestServer = this.server()): ReportStream {
    const stream = new ReportStream(on.api);
    this.open.push(stream);
    return stream;
  }

  /** Ends every stream opened so far and waits until none is open on the given servers. */
  async closeAll(...servers: (TestServer | undefined)[]): Promise<void> {
    for (const stream of this.open.splice(0)) stream.end();
    await eventually(() => servers.every((server) => (server?.app.streams.size ?? 0) === 0));
  }
}
