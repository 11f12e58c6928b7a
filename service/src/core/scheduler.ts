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

/** Due schedules handled per pass (more wait for the next pass, an interval later). */
const BATCH = 100;

export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly ctx: CoreContext,
    private readonly schedules: ScheduleRepository,
    private readonly tasks: TaskService,
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

  /** One pass: fires every due schedule's tick; returns how many ticks this replica created a task for. */
  async fireDueOnce(): Promise<number> {
    const names = await this.schedules.dueNames(this.ctx.now(), BATCH);
    const fired = await Promise.all(names.map((name) => this.fire(name)));
    return fired.filter(Boolean).length;
  }

  private async fire(name: string): Promise<boolean> {
    const { ctx } = this;
    try {
      const schedule = await this.schedules.get(name);
      const now = ctx.now();
      if (!schedule || schedule.paused || schedule.nextRunAtMs === undefined) return false;
      const tick = dueTick(schedule, schedule.nextRunAtMs, now);
      if (tick === undefined) return false; // the index lags behind the table
      const { template } = schedule;
      let created = true;
      try {
        await this.tasks.create({ ...template, hashCode: tickHashCode(name, tick), prior: 0n, runAtMs: 0 });
      } catch (error) {
        // 409: this tick's task exists (another replica, or this one before a crash).
        if (!(error instanceof Rejection && error.status === Status.CONFLICT)) throw error;
        created = false;
      }
      await this.schedules.advance(schedule, tick, nextTick(schedule, Math.max(now, tick)));
      if (created) ctx.log.info({ schedule: name, tick: new Date(tick).toISOString() }, "schedule tick: task created");
      return created;
    } catch (error) {
      if (error instanceof StaleSchedule) return false; // another replica advanced it, or it was replaced
      ctx.log.warn({ err: error, schedule: name }, "schedule tick failed; will try again");
      return false;
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.fireDueOnce()
        .catch((error) => this.ctx.log.warn({ err: error }, "looking for due schedules failed; will try again"))
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}
