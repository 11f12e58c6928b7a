// What the scheduler and the schedule use cases need from storage. The DynamoDB store
// (store/schedule-store.ts) implements it; every tick's write is conditional on the
// version read, so replicas never both advance one schedule from the same read.
import type { ScheduleRecord, ScheduleSpec } from "../tasks/schedule-rules.js";

/** A schedule as read, with the version its tick is conditioned on. */
export interface StoredSchedule extends ScheduleRecord {
  version: bigint;
  /** When a replica last moved it on (or it was put), epoch ms: tells missed ticks (no replica ran) from late ones. */
  advancedAtMs: number;
  /** Drawn when the schedule is made (again, after a delete): a tick read from an earlier one cannot move it. */
  incarnation: string;
}

/** The schedule changed (or went) since it was read. */
export class StaleSchedule extends Error {}

export interface ScheduleRepository {
  /**
   * Creates or replaces the schedule (keeps CreateTime and LastRunTime); returns it as
   * written. With `ownedBy`, an existing schedule is replaced only if its Template
   * Owner is one of them (StaleSchedule otherwise).
   */
  put(spec: ScheduleSpec, nextRunAtMs: number | undefined, nowIso: string, ownedBy?: readonly bigint[]): Promise<StoredSchedule>;
  /** false when there was none. */
  delete(name: string): Promise<boolean>;
  /** Consistent read, with the Template Input. */
  get(name: string): Promise<StoredSchedule | undefined>;
  /** Names of schedules whose next tick is at or before `nowMs` (may lag: re-read before acting). */
  dueNames(nowMs: number, limit: number): Promise<string[]>;
  /** Every schedule, by name (large Template Inputs show empty). */
  list(): Promise<StoredSchedule[]>;
  /** Records the tick and moves to the next one, if unchanged since read (StaleSchedule otherwise). */
  advance(schedule: StoredSchedule, tickMs: number, nextRunAtMs: number | undefined, nowMs: number): Promise<void>;
}
