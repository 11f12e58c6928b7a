// Fires the ticks of recurring schedules (SPEC §7.1). Every replica looks for due
// schedules every interval; a due tick creates its task through CreateTask's own
// path with the HashCode "schedule:<name>:<tick>", so a tick creates one task however
// many replicas fire it and whatever crashes when (the second create answers 409).
// Then the schedule moves to its next tick with a write conditional on the version
// read. Ticks missed while no replica ran collapse into one catch-up task: the latest
// due tick.
import type { CoreContext } from "./context.js";
import { StaleSchedule, type ScheduleRepository } from "./schedule-repository.js";
import type { TaskService } from "./task-service.js";
import { dueTick, nextTick, tickHashCode } from "../tasks/schedule-rules.js";
import { Rejection, Status } from "../tasks/status.js";
import { RepeatingPass } from "./repeating-pass.js";

/** Due schedules handled per pass (more wait for the next pass, an interval later). */
const BATCH = 100;
/**
 * A schedule nobody moved on for this long (plus 3 intervals) had no replica running:
 * its missed ticks collapse into one catch-up task, the latest due tick. One moved on
 * more recently (replicas run; a pass was slow) gets each due tick fired in turn.
 */
export const CATCH_UP_GRACE_MS = 2_000;
/** Ticks of one schedule fired in one pass (a per-second schedule a few ticks behind catches up at once). */
const MAX_TICKS_PER_PASS = 10;

export class Scheduler {
  private readonly loop: RepeatingPass;

  constructor(
    private readonly ctx: CoreContext,
    private readonly schedules: ScheduleRepository,
    private readonly tasks: TaskService,
    private readonly intervalMs: number,
  ) {
    this.loop = new RepeatingPass(() => this.fireDueOnce(), intervalMs, ctx.log, "looking for due schedules failed; will try again");
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One pass: fires every due schedule's tick; returns how many ticks this replica created a task for. */
  async fireDueOnce(): Promise<number> {
    const names = await this.schedules.dueNames(this.ctx.now(), BATCH);
    const fired = await Promise.all(names.map((name) => this.fire(name)));
    return fired.reduce((sum, count) => sum + count, 0);
  }

  /** Fires the schedule's due ticks, one after the other (at most MAX_TICKS_PER_PASS); returns how many tasks this replica created. */
  private async fire(name: string): Promise<number> {
    let created = 0;
    for (let round = 0; round < MAX_TICKS_PER_PASS; round++) {
      const outcome = await this.fireOne(name);
      if (outcome === "none") break;
      if (outcome === "created") created += 1;
    }
    return created;
  }

  private async fireOne(name: string): Promise<"created" | "existed" | "none"> {
    const { ctx } = this;
    try {
      const schedule = await this.schedules.get(name);
      const now = ctx.now();
      if (!schedule || schedule.paused || schedule.nextRunAtMs === undefined || schedule.nextRunAtMs > now) return "none";
      // Its next tick; but if no replica moved it on for a while (none ran), the ticks missed collapse into the latest.
      const idle = now - schedule.advancedAtMs > 3 * this.intervalMs + CATCH_UP_GRACE_MS;
      const tick = idle ? (dueTick(schedule, schedule.nextRunAtMs, now) ?? schedule.nextRunAtMs) : schedule.nextRunAtMs;
      const { template } = schedule;
      let outcome: "created" | "existed" = "created";
      try {
        await this.tasks.create({ ...template, hashCode: tickHashCode(name, tick), prior: 0n, runAtMs: 0 });
      } catch (error) {
        if (!(error instanceof Rejection)) throw error; // the backends: the next pass tries again
        // 409: this tick's task exists (another replica, or this one before a crash).
        if (error.status === Status.CONFLICT) outcome = "existed";
        // Any other answer (its channel is no longer configured...) would be the same next time: the tick is skipped, loudly.
        else ctx.log.error({ schedule: name, tick: new Date(tick).toISOString(), state: error.status, reason: error.message }, "schedule tick skipped: its task cannot be created");
      }
      await this.schedules.advance(schedule, tick, nextTick(schedule, tick), now);
      if (outcome === "created") ctx.log.info({ schedule: name, tick: new Date(tick).toISOString() }, "schedule tick: task created");
      return outcome;
    } catch (error) {
      if (error instanceof StaleSchedule) return "none"; // another replica advanced it, or it was replaced
      ctx.log.warn({ err: error, schedule: name }, "schedule tick failed; will try again");
      return "none";
    }
  }
}
