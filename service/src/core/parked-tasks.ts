// The look-ahead for tasks scheduled further ahead than SQS delays a message (15
// minutes). Such a task is stored with a parked outbox marker at its RunAt, in a
// parking shard, and nothing is sent at create. For each parking shard, one replica
// at a time holds the shard's lease (core/look-ahead-leases.ts) and reads the shard
// from where the lease's cursor stands up to LOOK_AHEAD_MS ahead, sending each
// waiting task's message delayed until its RunAt: the task is delivered on time, one
// message per task, and the create costs no extra write.
//
// The lease ends LEASE_PASSES passes after its last renewal: a replica that stops
// releases its shards at once, one that crashes leaves them to another replica within
// a lease (90 s with the default 30 s pass), long before the tasks it had not sent
// yet are due (the look-ahead sends 10 minutes ahead). Two replicas may still both
// send a task (a holder that was paused past its lease, or died between a send and
// saving its cursor): a copy is dropped on receipt, and only a conditional write
// makes a delivery. A parked task whose message never came is found by the sweeper
// `sweepAfterMs` after its RunAt and sent then (SPEC §4: never lost). Nothing is
// delivered before RunAt: the delay is rounded up to whole seconds, and a message
// that still arrives early waits (decideDelivery "defer").
import type { CoreContext } from "./context.js";
import type { ParkedPosition } from "./task-repository.js";
import type { LookAheadLeases } from "./look-ahead-leases.js";
import { dispatchOf, MAX_SQS_DELAY_MS } from "../tasks/state-machine.js";
import { RepeatingPass } from "./repeating-pass.js";
import { forEachBounded } from "./for-each-bounded.js";

/** How far ahead of RunAt a parked task's message is sent (within SQS's 15-minute delay, with room for late passes). */
export const LOOK_AHEAD_MS = 10 * 60_000;
/** A lease lasts this many passes after its renewal (and at least LEASE_MIN_MS): a late pass or two does not lose it. */
const LEASE_PASSES = 3;
/**
 * Short intervals (tests, a busy development setup) still get a lease that outlasts a stalled
 * pass: a holder whose pass runs past its lease lets another replica send the same tasks again
 * (harmless copies, but a message each). A 1 s minimum did that on a loaded 2-core machine.
 */
const LEASE_MIN_MS = 10_000;

/** How long a look-ahead lease lasts after its renewal, for passes every `intervalMs`. */
export function lookAheadLeaseMs(intervalMs: number): number {
  return Math.max(LEASE_PASSES * intervalMs, LEASE_MIN_MS);
}
/** A saved cursor this far beyond the claimer's look-ahead came from a clock far ahead: it is not trusted. */
const CURSOR_SKEW_MS = 60_000;
/** Markers read per query; a shard with more due in the window is read on until it is done. */
const PAGE = 100;
/** Tasks of a page read and sent at once (the channel's sender batches the sends). */
const SENDS_AT_ONCE = 16;

/** What this replica knows of one parking shard's lease. */
type ShardState = { holding: true; untilMs: number; cursor: ParkedPosition } | { holding: false; retryAtMs: number };

export class ParkedTasks {
  private readonly loop: RepeatingPass;
  private readonly shards = new Map<number, ShardState>();
  private readonly leaseMs: number;

  constructor(
    private readonly ctx: CoreContext,
    private readonly leases: LookAheadLeases,
    /** This replica's name in the leases (unique per process). */
    private readonly holder: string,
    intervalMs: number,
  ) {
    if (LOOK_AHEAD_MS >= MAX_SQS_DELAY_MS) throw new Error("the look-ahead must stay within SQS's delay");
    this.leaseMs = lookAheadLeaseMs(intervalMs);
    this.loop = new RepeatingPass(() => this.sendDueOnce(), intervalMs, ctx.log, "sending scheduled tasks failed; will try again");
  }

  start(): void {
    this.loop.start(0);
  }

  /** Stops the passes and hands the shards this replica holds back at once, with their cursors. */
  async stop(): Promise<void> {
    await this.loop.stop();
    const held = [...this.shards].flatMap(([shard, state]) => (state.holding ? [{ shard, cursor: state.cursor }] : []));
    this.shards.clear();
    await Promise.all(
      held.map(({ shard, cursor }) =>
        this.leases.release(shard, this.holder, cursor).catch((error: unknown) => {
          this.ctx.log.warn({ err: error, shard }, "could not release a look-ahead lease; another replica takes the shard when it ends");
        }),
      ),
    );
  }

  /** One pass over every parking shard this replica holds (or can take); returns how many messages it sent. */
  async sendDueOnce(): Promise<number> {
    const counts = await Promise.all(this.ctx.store.parkedShards.map((shard) => this.passOver(shard)));
    return counts.reduce((sum, count) => sum + count, 0);
  }

  private async passOver(shard: number): Promise<number> {
    const cursor = await this.hold(shard);
    if (!cursor) return 0;
    const { sent, next } = await this.sendDue(shard, cursor);
    const untilMs = this.ctx.now() + this.leaseMs;
    if (await this.leases.renew(shard, this.holder, next, untilMs)) {
      this.shards.set(shard, { holding: true, untilMs, cursor: next });
    } else {
      // Another replica took the shard over (this one was late): it goes on from the cursor it found.
      this.shards.set(shard, { holding: false, retryAtMs: 0 });
    }
    return sent;
  }

  /** Where to read the shard from, if this replica holds its lease (or just took it); undefined if another does. */
  private async hold(shard: number): Promise<ParkedPosition | undefined> {
    const now = this.ctx.now();
    const state = this.shards.get(shard);
    if (state?.holding && state.untilMs > now) return state.cursor;
    if (state && !state.holding && state.retryAtMs > now) return undefined;
    const claim = await this.leases.claim(shard, this.holder, now, now + this.leaseMs);
    if (!claim.held) {
      // Try again when that lease ends, and at least once a lease (a holder's clock far ahead must not keep the shard).
      this.shards.set(shard, { holding: false, retryAtMs: Math.min(claim.heldUntilMs, now + this.leaseMs) });
      return undefined;
    }
    const saved = claim.cursor;
    const from = now - this.ctx.sweepAfterMs; // older markers are the sweeper's
    const cursor = saved && saved.dueAtMs >= from && saved.dueAtMs <= now + LOOK_AHEAD_MS + CURSOR_SKEW_MS ? saved : { dueAtMs: from };
    this.shards.set(shard, { holding: true, untilMs: now + this.leaseMs, cursor });
    return cursor;
  }

  /** Sends the due tasks of the shard after `from`; returns how many, and where the next pass goes on. */
  private async sendDue(shard: number, from: ParkedPosition): Promise<{ sent: number; next: ParkedPosition }> {
    const { ctx } = this;
    let sent = 0;
    let cursor = from;
    for (;;) {
      const page = await ctx.store.parkedTaskIds(shard, cursor, ctx.now() + LOOK_AHEAD_MS, PAGE);
      await forEachBounded(page.ids, SENDS_AT_ONCE, async (id) => {
        try {
          if (await this.send(id)) sent += 1;
        } catch (error) {
          // One task must not hold up the rest of its shard: the sweeper sends it once it is overdue.
          ctx.log.warn({ err: error, taskId: String(id) }, "could not send a scheduled task's message; the sweeper will");
        }
      });
      cursor = page.next;
      if (page.ids.length < PAGE) return { sent, next: cursor };
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
    // Sent as a copy: should another replica also send one, the copy that finds the task taken costs a read, no write.
    await ctx.channels.get(task.channel).send(task, { delaySeconds: plan.delaySeconds, copy: true });
    ctx.log.debug({ taskId: String(id), delaySeconds: plan.delaySeconds }, "sent a scheduled task's message");
    return true;
  }
}
