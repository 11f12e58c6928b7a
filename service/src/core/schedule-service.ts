// The schedule use cases: PutSchedule, DeleteSchedule, QuerySchedules (SPEC §7.1).
import type { CoreContext } from "./context.js";
import type { ScheduleRepository, StoredSchedule } from "./schedule-repository.js";
import { nextTick, type ScheduleSpec } from "../tasks/schedule-rules.js";
import { notFound } from "../tasks/status.js";

export class ScheduleService {
  constructor(
    private readonly ctx: CoreContext,
    private readonly schedules: ScheduleRepository,
  ) {}

  /** Creates or replaces; its next tick counts from now (a paused schedule has none). */
  async put(spec: ScheduleSpec): Promise<StoredSchedule> {
    const now = this.ctx.now();
    const next = spec.paused ? undefined : nextTick(spec, now);
    const stored = await this.schedules.put(spec, next, new Date(now).toISOString());
    this.ctx.log.info({ schedule: spec.name, channel: spec.template.channel, paused: spec.paused }, "schedule put");
    return stored;
  }

  async delete(name: string): Promise<void> {
    if (!(await this.schedules.delete(name))) throw notFound(`No schedule is named "${name}"`);
    this.ctx.log.info({ schedule: name }, "schedule deleted");
  }

  /** The channel's schedules ("" : all), by name. */
  async list(channel: string): Promise<StoredSchedule[]> {
    const all = await this.schedules.list();
    return channel === "" ? all : all.filter((schedule) => schedule.template.channel === channel);
  }
}
