// The sweeper finishes what a crashed replica left undone (SPEC §4, "no task is
// lost"). It looks at tasks whose outbox marker is due: a queued task whose SQS
// message may never have been sent is sent (again), and a final task's chain
// follow-up is run (again). Every replica sweeps; a conditional claim on the marker
// makes sure only one acts on a task each time, and duplicates of a message are
// harmless because only a conditional WAITING → PROCEEDING write makes a delivery.
import type { CoreContext } from "./context.js";
import { StaleTask } from "../store/task-store.js";
import { isFinal } from "../tasks/task.js";
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
      const delay = Math.min(MAX_SWEEP_DELAY_MS, ctx.sweepAfterMs * 2 ** task.outbox.sweeps);
      const claimed = await ctx.store.claimOutbox(task, now + Math.max(delay, 1_000));
      if (isFinal(claimed.state)) {
        ctx.log.info({ taskId: String(id), state: claimed.state }, "sweeper: running a chain follow-up");
        await runFollowUp(ctx, claimed);
      } else if (claimed.state === "WAITING" && !claimed.awaitsPrior) {
        ctx.log.info({ taskId: String(id), sweeps: claimed.outbox?.sweeps }, "sweeper: sending a task that was never leased");
        await ctx.channels.get(claimed.channel).send(claimed.id);
      } else {
        await ctx.store.clearOutbox(claimed);
      }
      return true;
    } catch (error) {
      if (error instanceof StaleTask) return false; // another replica claimed it
      ctx.log.warn({ err: error, taskId: String(id) }, "sweeper could not handle a task");
      return false;
    }
  }
}
