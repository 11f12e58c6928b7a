// The sweeper finishes what a crashed replica left undone and finds tasks whose SQS
// message went missing (SPEC §4, "no task is lost"). It looks at tasks whose outbox
// marker is due (decideSweep says what to do): a queued task whose message may never
// have been sent, or was moved to the dead-letter queue or expired, gets a copy; a
// final task's chain follow-up is run (again). Every replica sweeps; a conditional
// claim on the marker makes sure only one acts on a task each time, and copies of a
// message are harmless because only a conditional write makes a delivery.
import type { CoreContext } from "./context.js";
import { StaleTask } from "./task-repository.js";
import { decideSweep } from "../tasks/state-machine.js";
import { runFollowUp } from "./chains.js";

const BATCH_PER_SHARD = 50;
/** Re-sends of one task are spaced out exponentially (a deep backlog is not a lost message), up to this. */
const MAX_SWEEP_DELAY_MS = 60 * 60_000;

export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: CoreContext,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One pass over every due marker; returns how many tasks it acted on. */
  async sweepOnce(): Promise<number> {
    const ids = await this.ctx.store.dueOutboxTaskIds(BATCH_PER_SHARD);
    const results = await Promise.all(ids.map((id) => this.sweepTask(id)));
    return results.filter(Boolean).length;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.sweepOnce()
        .catch((error) => this.ctx.log.warn({ err: error }, "sweep failed; will try again"))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async sweepTask(id: bigint): Promise<boolean> {
    const { ctx } = this;
    try {
      const task = await ctx.store.getTask(id);
      const now = ctx.now();
      if (!task?.outbox || task.outbox.dueAtMs > now) return false; // the index lags behind the table
      const decision = decideSweep(task, now, ctx.sweepAfterMs);
      // Repeated actions on one task are spaced out exponentially (a deep backlog is not a lost message).
      const sweeps = task.outbox.sweeps;
      const spacedMs = now + Math.max(1_000, Math.min(MAX_SWEEP_DELAY_MS, ctx.sweepAfterMs * 2 ** sweeps));
      switch (decision.action) {
        case "clear":
          await ctx.store.clearOutbox(task);
          return true;
        case "watch":
          // The claim is conditional: only one replica moves the marker.
          await ctx.store.claimOutbox(task, decision.untilMs, sweeps);
          return true;
        case "followUp": {
          const claimed = await ctx.store.claimOutbox(task, spacedMs, sweeps + 1);
          ctx.log.info({ taskId: String(id), state: claimed.state }, "sweeper: running a chain follow-up");
          await runFollowUp(ctx, claimed);
          return true;
        }
        case "resend": {
          const claimed = await ctx.store.claimOutbox(task, spacedMs, sweeps + 1);
          ctx.log.info({ taskId: String(id), state: claimed.state, sweeps: sweeps + 1 }, "sweeper: its message is overdue; sending a copy");
          await ctx.channels.get(claimed.channel).send(claimed.id);
          return true;
        }
      }
    } catch (error) {
      if (error instanceof StaleTask) return false; // another replica claimed it, or the task moved on
      ctx.log.warn({ err: error, taskId: String(id) }, "sweeper could not handle a task");
      return false;
    }
  }
}
