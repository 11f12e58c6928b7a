// A log line per refused call (method, peer, reason; never the token), at most
// `burst` lines per window: a client hammering the server with bad tokens cannot
// flood the logs. What was held back is counted in one line when the window ends.
import type { Logger } from "pino";

export interface Refused {
  rpc: string;
  peer: string;
  /** UNAUTHENTICATED or PERMISSION_DENIED, and why (the details the caller got). */
  reason: string;
  requestId: string | undefined;
}

export class RefusalLog {
  private windowStart = 0;
  private logged = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly burst = 20,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  record(refused: Refused): void {
    const now = this.now();
    if (now - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) this.log.warn({ suppressed: this.suppressed, windowMs: this.windowMs }, "more calls were refused (lines held back)");
      this.windowStart = now;
      this.logged = 0;
      this.suppressed = 0;
    }
    if (this.logged < this.burst) {
      this.logged += 1;
      this.log.warn(refused, "call refused");
    } else {
      this.suppressed += 1;
    }
  }
}
