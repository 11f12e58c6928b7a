// The look-ahead for tasks scheduled further ahead than SQS delays a message (15
// minutes). Such a task is stored with a parked outbox marker at its RunAt, in a
// parking shard, and nothing is sent at create. Every replica reads the parking
// shards from where it last stopped (a cursor per shard, in memory) up to
// LOOK_AHEAD_MS ahead, and sends each waiting task's message delayed until its RunAt:
// the task is delivered on time, and the create cost no extra write.
//
// The cursors are only an optimisation: every replica sends each task once (a copy
// per replica is dropped on receipt: only a conditional write makes a delivery), a
// restarted replica starts `sweepAfterMs` back (a few copies again), and a parked
// task whose message never came is found by the sweeper `sweepAfterMs` after its
// RunAt and sent then (SPEC §4: never lost). Nothing is delivered before RunAt: the
// delay is rounded up to whole seconds, and a message that still arrives early waits
// (decideDelivery "defer").
import type { CoreContext } from "./context.js";
import type { ParkedPosition } from "./task-repository.js";
import { dispatchOf, MAX_SQS_DELAY_MS } from "../tasks/state-machine.js";
import { RepeatingPass } from "./repeating-pass.js";

/** How far ahead of RunAt a parked task's message is sent (within SQS's 15-minute delay, with room for late passes). */
export const LOOK_AHEAD_MS = 10 * 60_000;
/** Markers read per query; a shard with more due in the window is read on until it is done. */
const PAGE = 100;

export class ParkedTasks {
  private readonly loop: RepeatingPass;
  private readonly cursors = new Map<number, ParkedPosition>();

  constructor(
    private readonly ctx: CoreContext,
    intervalMs: number,
  ) {
    if (LOOK_AHEAD_MS >= MAX_SQS_DELAY_MS) throw new Error("the look-ahead must stay within SQS's delay");
    this.loop = new RepeatingPass(() => this.sendDueOnce(), intervalMs, ctx.log, "sending scheduled tasks failed; will try again");
  }

  start(): void {
    this.loop.start(0);
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One pass over every parking shard; returns how many messages it sent. */
  async sendDueOnce(): Promise<number> {
    const counts = await Promise.all(this.ctx.store.parkedShards.map((shard) => this.sendDue(shard)));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  private async sendDue(shard: number): Promise<number> {
    const { ctx } = this;
    let sent = 0;
    for (;;) {
      const now = ctx.now();
      const after = this.cursors.get(shard) ?? { dueAtMs: now - ctx.sweepAfterMs };
      const page = await ctx.store.parkedTaskIds(shard, after, now + LOOK_AHEAD_MS, PAGE);
      for (const id of page.ids) {
        try {
          if (await this.send(id)) sent += 1;
        } catch (error) {
          // One task must not hold up the rest of its shard: the sweeper sends it once it is overdue.
          ctx.log.warn({ err: error, taskId: String(id) }, "could not send a scheduled task's message; the sweeper will");
        }
      }
      // The cursor moves past a marker only once its task was handled: a failure above reads it again next pass.
      this.cursors.set(shard, page.next);
      if (page.ids.length < PAGE) return sent;
    }
  }

  /** Sends the task's message if it still waits for its RunAt, unsent (its marker still parked). */
  private async send(id: bigint): Promise<boolean> {
    const { ctx } = this;
    const task = await ctx.store.getTask(id);
    if (!task || task.state !== "WAITING" || task.awaitsPrior || task.lease || !task.outbox?.parked) return false;
    const plan = dispatchOf(task.notBeforeMs, ctx.now());
    // Later than the window (the index lagged a move): a later pass sends it.
    if (!plan.send) return false;
    // A copy: every replica sends one, and the ones that find the task taken cost a read each, no write.
    await ctx.channels.get(task.channel).send(task.id, plan.delaySeconds, true);
    ctx.log.debug({ taskId: String(id), delaySeconds: plan.delaySeconds }, "sent a scheduled task's message");
    return true;
  }
}
