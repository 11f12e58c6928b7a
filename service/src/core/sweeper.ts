// The sweeper finishes what a crashed replica left undone and finds tasks whose SQS
// message went missing (SPEC §4, "no task is lost"). It looks at tasks whose outbox
// marker is due (decideSweep says what to do): a queued task whose message may never
// have been sent, or was moved to the dead-letter queue or expired, gets a copy; a
// final task's chain follow-up is run (again). Every replica sweeps; a conditional
// claim on the marker makes sure only one acts on a task each time, and copies of a
// message are harmless because only a conditional write makes a delivery.
//
// Markers are spread over many shards (the repository's `outboxShards`, 128 on
// DynamoDB: no partition takes all markers' writes). A pass reads a rotating window
// of SHARDS_PER_PASS of them, so its cost does not grow with the shard count: each
// shard is read once every outboxShards / SHARDS_PER_PASS passes (8 on DynamoDB), and
// a shard that came back full (a backlog) is read again on the next pass too (up to
// SHARDS_PER_PASS of them). Every replica starts its rotation at a random shard.
import type { CoreContext } from "./context.js";
import { randomInt } from "node:crypto";
import { StaleTask, type DueOutboxShard } from "./task-repository.js";
import { decideSweep } from "../tasks/state-machine.js";
import { runFollowUp } from "./chains.js";
import { RepeatingPass } from "./repeating-pass.js";

/** Outbox shards read per pass: all of them every outboxShards / SHARDS_PER_PASS passes. */
export const SHARDS_PER_PASS = 16;
/**
 * Due markers read per shard and pass: a pass acts on at most 16 × 25 = 400 tasks from
 * its window, and as many again from shards that came back full (at most
 * SHARDS_PER_PASS of them are read again), so a backlog is worked off at a steady pace.
 */
export const BATCH_PER_SHARD = 25;
/** Re-sends of one task are spaced out exponentially (a deep backlog is not a lost message), up to this. */
const MAX_SWEEP_DELAY_MS = 60 * 60_000;

export class Sweeper {
  private readonly loop: RepeatingPass;
  /** The first shard of the next pass's window. */
  private cursor: number | undefined;
  /** Shards whose last read came back full: read again on the next pass. */
  private backlogged: number[] = [];
  /** The parking shard whose overdue markers the next pass reads (one per pass). */
  private parkedCursor: number | undefined;

  constructor(
    private readonly ctx: CoreContext,
    intervalMs: number,
  ) {
    this.loop = new RepeatingPass(() => this.sweepOnce(), intervalMs, ctx.log, "sweep failed; will try again");
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One pass over the due markers of this pass's shards; returns how many tasks it acted on. */
  async sweepOnce(): Promise<number> {
    const { store } = this.ctx;
    const [found, parked] = await Promise.all([
      store.dueOutboxTaskIds(this.nextShards(), BATCH_PER_SHARD),
      // A parked marker sits at its task's RunAt: it is overdue `sweepAfterMs` after it (its message was due then).
      store.parkedShards.length === 0
        ? { ids: [] }
        : store.parkedTaskIds(this.nextParkedShard(), { dueAtMs: 0 }, this.ctx.now() - this.ctx.sweepAfterMs, BATCH_PER_SHARD),
    ]);
    this.backlogged = found.filter((shard) => shard.ids.length >= BATCH_PER_SHARD).map((shard) => shard.shard);
    const results = await Promise.all([...found.flatMap((shard: DueOutboxShard) => shard.ids), ...parked.ids].map((id) => this.sweepTask(id)));
    return results.filter(Boolean).length;
  }

  /** This pass's shards: the next window of the rotation, and the shards that came back full last time. */
  private nextShards(): number[] {
    const total = this.ctx.store.outboxShards;
    const count = Math.min(total, SHARDS_PER_PASS);
    const first = this.cursor ?? randomInt(total);
    this.cursor = (first + count) % total;
    const window = Array.from({ length: count }, (_, i) => (first + i) % total);
    return [...window, ...this.backlogged.filter((shard) => !window.includes(shard)).slice(0, SHARDS_PER_PASS)];
  }

  /** Parking shards are read for overdue markers one per pass, in turn. */
  private nextParkedShard(): number {
    const shards = this.ctx.store.parkedShards;
    const index = this.parkedCursor ?? randomInt(shards.length);
    this.parkedCursor = (index + 1) % shards.length;
    return shards[index] as number;
  }

  private async sweepTask(id: bigint): Promise<boolean> {
    const { ctx } = this;
    try {
      const task = await ctx.store.getTask(id);
      const now = ctx.now();
      // The index lags behind the table; a parked marker is overdue only sweepAfterMs after its RunAt.
      if (!task?.outbox || task.outbox.dueAtMs + (task.outbox.parked ? ctx.sweepAfterMs : 0) > now) return false;
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
        case "park":
          // Scheduled beyond what SQS can delay (a chain successor queued early): the look-ahead sends it near its RunAt.
          await ctx.store.claimOutbox(task, decision.untilMs, sweeps, true);
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
          await ctx.channels.get(claimed.channel).send(claimed, { copy: true });
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
