// A test worker: takes tasks of a channel with some credits, reports SUCCESS after a
// hold, gives the credit back, and records each delivery with the time it arrived.
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./client.js";
import { sleep, type TestServer } from "./harness.js";

/** A worker on `on`: takes tasks of `channel` with `credits` credits, reports SUCCESS after `holdMs`, and records each delivery. */
export class RecordingWorker {
  readonly deliveries: { task: WireTask; at: number }[] = [];
  private readonly stream: ReceiveStream;
  private readonly reports: ReportStream;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(
    on: TestServer,
    channel: string,
    credits: number,
    private readonly holdMs = 0,
  ) {
    this.stream = new ReceiveStream(on.api, channel).credit(credits);
    this.reports = new ReportStream(on.api);
    this.done = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const task = await this.stream.next(60_000).catch(() => undefined);
      if (!task || this.stopped) return;
      this.deliveries.push({ task, at: Date.now() });
      void this.finish(task);
    }
  }

  private async finish(task: WireTask): Promise<void> {
    if (this.holdMs > 0) await sleep(this.holdMs);
    if (this.stopped) return;
    await this.reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken);
    if (!this.stopped) this.stream.credit(1);
  }

  /** Stops taking tasks; the ones it holds are left as they are (a crash: their leases run out). */
  stop(): void {
    this.stopped = true;
    this.stream.cancel();
    this.reports.end();
  }
}

