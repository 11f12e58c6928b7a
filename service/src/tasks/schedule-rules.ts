// Recurring schedules (SPEC §7.1): what a valid schedule is, and when its ticks are.
// Pure: no I/O. Cron expressions are parsed by croner (5 fields, or 6 with leading
// seconds; standard day-of-month OR day-of-week), in an IANA time zone.
import { Cron } from "croner";
import { invalid } from "./status.js";
import {
  checkChannel,
  checkConcurrencyKey,
  checkPayload,
  DEFAULT_RETRY_MAX_LIMIT,
  MAX_RETRY_MAX_LIMIT,
  priorityLevel,
  SCHEDULE_HASH_CODE_PREFIX,
  uint64,
  type ChannelCatalog,
} from "./rules.js";

export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9._:-]{1,64}$/;

/** What a tick's task is made of (the Template's fields a schedule uses). */
export interface ScheduleTemplate {
  channel: string;
  input: string;
  owner: bigint;
  retryMaxLimit: bigint;
  /** The priority level of the ticks' tasks (Template.Priority resolved on the channel's levels). */
  priority: number;
  /** Template.ConcurrencyKey; "": none. */
  concurrencyKey: string;
}

/** A schedule as given by PutSchedule, validated. */
export interface ScheduleSpec {
  name: string;
  cron: string;
  /** IANA name; "" is UTC. */
  timeZone: string;
  template: ScheduleTemplate;
  paused: boolean;
}

/** A stored schedule. */
export interface ScheduleRecord extends ScheduleSpec {
  /** The next tick (epoch ms); undefined while paused. */
  nextRunAtMs: number | undefined;
  /** The last tick that created a task (epoch ms); undefined before the first. */
  lastRunAtMs: number | undefined;
  createTime: string;
}

/** The wire Schedule's fields PutSchedule reads. */
export interface WireScheduleFields {
  Name: string;
  Cron: string;
  TimeZone: string;
  Template?: { Channel: string; Input: string; Owner: string; RetryMaxLimit: string; Priority?: string; ConcurrencyKey?: string } | null;
  Paused: boolean;
}

export function checkScheduleName(name: string): void {
  if (!SCHEDULE_NAME_PATTERN.test(name)) {
    throw invalid(`Name must be 1 to 64 characters of [A-Za-z0-9._:-], got ${JSON.stringify(name.slice(0, 70))}`);
  }
}

/** PutSchedule's Schedule, validated: 400 on a bad name, cron, time zone or template. */
export function validateSchedule(schedule: WireScheduleFields | null | undefined, channels: ChannelCatalog): ScheduleSpec {
  if (!schedule) throw invalid("Schedule is required");
  checkScheduleName(schedule.Name);
  const timeZone = schedule.TimeZone;
  checkTimeZone(timeZone);
  cronOf(schedule.Cron, timeZone); // 400 when it does not parse
  const template = schedule.Template;
  if (!template) throw invalid("Template is required: the task each tick creates (at least its Channel)");
  checkChannel(template.Channel, channels.names);
  checkPayload(template.Input, "Input");
  let retryMaxLimit = uint64(template.RetryMaxLimit, "Template.RetryMaxLimit");
  if (retryMaxLimit > MAX_RETRY_MAX_LIMIT) throw invalid(`Template.RetryMaxLimit is ${retryMaxLimit}; the limit is ${MAX_RETRY_MAX_LIMIT}`);
  if (retryMaxLimit === 0n) retryMaxLimit = DEFAULT_RETRY_MAX_LIMIT;
  return {
    name: schedule.Name,
    cron: schedule.Cron.trim(),
    timeZone,
    template: {
      channel: template.Channel,
      input: template.Input,
      owner: uint64(template.Owner, "Template.Owner"),
      retryMaxLimit,
      priority: priorityLevel(template.Priority, channels.levelsOf(template.Channel), "Template.Priority"),
      concurrencyKey: checkConcurrencyKey(template.ConcurrencyKey, "Template.ConcurrencyKey"),
    },
    paused: schedule.Paused === true,
  };
}

function checkTimeZone(timeZone: string): void {
  if (timeZone === "") return;
  try {
    new Intl.DateTimeFormat("en-US", { timeZone });
  } catch {
    throw invalid(`TimeZone "${timeZone.slice(0, 64)}" is not an IANA time zone name (like Europe/Berlin or America/New_York); empty means UTC`);
  }
}

/** The parsed expression; 400 when it is not 5 fields (or 6 with leading seconds) croner accepts. */
export function cronOf(expression: string, timeZone: string): Cron {
  const fields = expression.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6 || fields[0]?.startsWith("@")) {
    throw invalid(`Cron must have 5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds, got ${JSON.stringify(expression.slice(0, 80))}`);
  }
  try {
    return new Cron(expression.trim(), { mode: "5-or-6-parts", timezone: timeZone || "UTC", paused: true });
  } catch (error) {
    throw invalid(`Cron ${JSON.stringify(expression.slice(0, 80))} is not valid: ${(error as Error).message.replace(/^CronPattern: /, "")}`);
  }
}

/** The first tick after `afterMs` (ticks are whole seconds); undefined when the expression has no further tick. */
export function nextTick(spec: Pick<ScheduleSpec, "cron" | "timeZone">, afterMs: number): number | undefined {
  return cronOf(spec.cron, spec.timeZone).nextRun(new Date(afterMs))?.getTime();
}

/**
 * The latest tick at or before `nowMs`, and not before `fromMs` (the schedule's due
 * tick): missed ticks collapse into this one. undefined when none is due.
 */
export function dueTick(spec: Pick<ScheduleSpec, "cron" | "timeZone">, fromMs: number, nowMs: number): number | undefined {
  if (fromMs > nowMs) return undefined;
  // previousRuns excludes its reference and works in whole seconds: the second after now's.
  const reference = Math.floor(nowMs / 1000) * 1000 + 1000;
  const latest = cronOf(spec.cron, spec.timeZone).previousRuns(1, new Date(reference))[0]?.getTime();
  return latest !== undefined && latest >= fromMs ? latest : fromMs;
}

/** The HashCode of the task a tick creates: one task per schedule and tick, whichever replica creates it. */
export function tickHashCode(name: string, tickMs: number): string {
  return `${SCHEDULE_HASH_CODE_PREFIX}${name}:${tickMs}`;
}
