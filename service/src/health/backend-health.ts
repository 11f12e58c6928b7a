// grpc.health.v1.Health, two meanings:
// - "" and "standard.Queues" (readiness, SPEC §5): NOT_SERVING until both DynamoDB and
//   SQS answer, re-checked every few seconds, so an outage shows and recovery too.
// - "liveness": SERVING once the backends have answered at least once, until the
//   server drains. The load balancer and the container health check use it: an outage
//   of a backend that every replica shares must not make ECS replace every replica
//   (they answer 503 meanwhile and recover on their own), while a replica that never
//   got going, or is shutting down, is taken out of service.
// All are NOT_SERVING for good once the server starts draining.
import type { ServingStatus } from "grpc-health-check";
import { HealthService } from "./health-service.js";
import type { Logger } from "pino";

export const QUEUES_SERVICE_NAME = "standard.Queues";
export const LIVENESS_SERVICE_NAME = "liveness";

/** A backend the server needs (the task store, the channels' queues). */
export interface BackendProbe {
  /**
   * Resolves when the backend answers, rejects otherwise. `thorough` (while the server
   * is not SERVING): check every resource; else a cheap sample will do.
   */
  probe(thorough: boolean): Promise<void>;
}

export class BackendHealth {
  readonly implementation = new HealthService({
    "": "NOT_SERVING",
    [QUEUES_SERVICE_NAME]: "NOT_SERVING",
    [LIVENESS_SERVICE_NAME]: "NOT_SERVING",
  });
  private status: ServingStatus = "NOT_SERVING";
  private wasServing = false;
  private timer: NodeJS.Timeout | undefined;
  private draining = false;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly backends: readonly BackendProbe[],
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Readiness: both backends answered at the last check. */
  get serving(): boolean {
    return this.status === "SERVING";
  }

  /** Liveness: the backends answered at least once since start, and the server is not draining. */
  get live(): boolean {
    return this.wasServing && !this.draining;
  }

  start(): void {
    void this.check();
  }

  /**
   * Runs one probe now (also used by tests and at startup). A probe already under way
   * may have started before what the caller wants checked: it is waited for, then a new
   * one runs.
   */
  check(): Promise<void> {
    if (this.checking) return this.checking.then(() => this.check());
    this.checking = Promise.all(this.backends.map((backend) => backend.probe(!this.serving)))
      .then(
        () => this.set("SERVING"),
        (error: unknown) => {
          if (this.status !== "NOT_SERVING" || !this.timer) this.log.warn({ err: error }, "a backend does not answer");
          this.set("NOT_SERVING");
        },
      )
      .finally(() => {
        this.checking = undefined;
        clearTimeout(this.timer);
        if (!this.draining) {
          this.timer = setTimeout(() => void this.check(), this.intervalMs);
          this.timer.unref();
        }
      });
    return this.checking;
  }

  markDraining(): void {
    this.draining = true;
    clearTimeout(this.timer);
    this.set("NOT_SERVING");
  }

  private set(status: ServingStatus): void {
    if (this.draining) status = "NOT_SERVING";
    if (status !== this.status) this.log.info({ status }, "health changed");
    this.status = status;
    if (status === "SERVING") this.wasServing = true;
    this.implementation.setStatus("", status);
    this.implementation.setStatus(QUEUES_SERVICE_NAME, status);
    this.implementation.setStatus(LIVENESS_SERVICE_NAME, this.live ? "SERVING" : "NOT_SERVING");
  }
}
