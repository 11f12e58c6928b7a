// One background job of a replica (the sweeper, the look-ahead, the scheduler): a pass
// every `intervalMs` after the previous one ended; a pass that fails is logged and the
// next one runs; stop() waits for the pass in flight. Its timer never keeps the
// process alive.
import type { Logger } from "pino";

export class RepeatingPass {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly log: Logger,
    /** The warning a failed pass logs. */
    private readonly failure: string,
  ) {}

  /** The first pass runs after `firstDelayMs` (default: one interval). */
  start(firstDelayMs = this.intervalMs): void {
    this.stopped = false;
    this.schedule(firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.pass()
        .catch((error: unknown) => this.log.warn({ err: error }, this.failure))
        .finally(() => this.schedule(this.intervalMs));
    }, delayMs);
    this.timer.unref();
  }
}
