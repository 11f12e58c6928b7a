// The schedule use cases: PutSchedule, DeleteSchedule, QuerySchedules (SPEC §7.1).
// With a producer token scoped to owners (tasks/scope.ts), a schedule whose Template
// Owner is outside the scope is answered as absent (listing, delete), and its Name
// cannot be taken over (409); creating one for another owner is refused by the
// handler before this runs.
import type { CoreContext } from "./context.js";
import { StaleSchedule, type ScheduleRepository, type StoredSchedule } from "./schedule-repository.js";
import { nextTick, type ScheduleSpec } from "../tasks/schedule-rules.js";
import { inScope, type TaskScope } from "../tasks/scope.js";
import { conflict, notFound } from "../tasks/status.js";

/** The most owners a put's condition names (DynamoDB's IN). */
const MAX_CONDITION_OWNERS = 100;

export class ScheduleService {
  constructor(
    private readonly ctx: CoreContext,
    private readonly schedules: ScheduleRepository,
  ) {}

  /** Creates or replaces; its next tick counts from now (a paused schedule has none). */
  async put(spec: ScheduleSpec, scope?: TaskScope): Promise<StoredSchedule> {
    const now = this.ctx.now();
    const next = spec.paused ? undefined : nextTick(spec, now);
    let stored: StoredSchedule;
    const owners = scope?.owners ? [...scope.owners] : undefined;
    // DynamoDB's IN takes 100 values: a scope of more owners is checked by a read first (not atomic with the write).
    if (owners && owners.length > MAX_CONDITION_OWNERS) {
      const existing = await this.schedules.get(spec.name);
      if (existing && !visibleTo(scope, existing)) throw conflict(`The schedule name "${spec.name}" is taken; choose another`, spec.name);
    }
    try {
      // Conditional on the owner: two tokens scoped to different owners cannot both take one name.
      stored = await this.schedules.put(spec, next, new Date(now).toISOString(), owners && owners.length <= MAX_CONDITION_OWNERS ? owners : undefined);
    } catch (error) {
      if (error instanceof StaleSchedule) throw conflict(`The schedule name "${spec.name}" is taken; choose another`, spec.name);
      throw error;
    }
    this.ctx.log.info({ schedule: spec.name, channel: spec.template.channel, paused: spec.paused }, "schedule put");
    return stored;
  }

  async delete(name: string, scope?: TaskScope): Promise<void> {
    const absent = () => notFound(`No schedule is named "${name}"`);
    if (scope) {
      const existing = await this.schedules.get(name);
      if (!existing || !visibleTo(scope, existing)) throw absent();
    }
    if (!(await this.schedules.delete(name))) throw absent();
    this.ctx.log.info({ schedule: name }, "schedule deleted");
  }

  /** The channel's schedules ("" : all) the caller may see, by name. */
  async list(channel: string, scope?: TaskScope): Promise<StoredSchedule[]> {
    const all = await this.schedules.list();
    return all.filter((schedule) => (channel === "" || schedule.template.channel === channel) && visibleTo(scope, schedule));
  }
}

/** A schedule is seen by whoever may see the tasks it creates. */
function visibleTo(scope: TaskScope | undefined, schedule: StoredSchedule): boolean {
  return inScope(scope, { owner: schedule.template.owner, channel: schedule.template.channel });
}
