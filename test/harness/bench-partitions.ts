// The benchmark's partition-load model: from the units the server's DynamoDB calls
// put on each partition key value during a run (service/src/metrics/partition-load.ts,
// read at /usage/partitions), the task rate at which the hottest key of each key
// family would reach DynamoDB's limit for one partition key: 1,000 write units or
// 3,000 read units a second.
//
// Families: the table's items by key prefix (T# tasks, I#/O# payloads, H# HashCode
// guards, C# owner counters, S# stream markers, others) and each index's keys (by its
// partition key attribute: `ownerKey` / legacy `owner`, `outboxShard`). Three kinds:
// - per-task: every key belongs to one task (T#, I#/O#, H#, E#) or to one stream batch
//   (S#): a key takes a few writes over its task's life whatever the task rate, so
//   these families have no ceiling;
// - owner: keys of one owner (C# counters, the owner index): they limit one owner's
//   rate, and spread over owners when tasks do;
// - shared: keys shared by all tasks of all owners (the outbox index; any family the
//   model does not know): they limit the whole table.
//
// The model is linear: at R tasks a second the hottest key takes R × (its units in
// the run / tasks in the run), so its ceiling is limit × tasks / hottest units. Load
// that does not grow with the task rate (the sweeper's reads, the stream's counter
// writes, which are one per batch and batches grow with the rate) is counted as if it
// did: the ceilings err low.
//
// Sampling noise: where keys are drawn at random (outbox shards) or spread by a hash
// (owner shards), a run of n tasks over N keys has a hottest key above the mean by
// about z(N)·sqrt(n/N) tasks (z(N): the expected maximum of N standard normal draws,
// 2.6 for 128 keys), which a short run mistakes for skew: at 50,000 tasks a second a
// partition sees far more tasks a second than the whole run has. So the hottest
// key's share is also given less the excess that random spreading alone produces
// ("adjusted"); the ceilings use it. Skew beyond the noise (a bad hash, a key that
// takes a fixed share) stays in.
import type { HottestKey, PartitionFamilyLoad, PartitionLoadSnapshot } from "../../service/src/metrics/partition-load.js";
import { round, table } from "./bench-report.js";

/** DynamoDB's throughput limit of one partition key, per second. */
export const PARTITION_LIMITS = { writeUnits: 1_000, readUnits: 3_000 } as const;

export type FamilyKind = "per-task" | "owner" | "shared";

export interface FamilyLoad {
  /** e.g. "T# tasks", "index byOutboxDue (outboxShard)". */
  family: string;
  kind: FamilyKind;
  wruPerTask: number;
  rruPerTask: number;
  /** Distinct keys written, read. */
  writeKeys: number;
  readKeys: number;
  hottestWrite?: HotKey | undefined;
  hottestRead?: HotKey | undefined;
  /** Tasks a second at which the hottest key reaches a limit (undefined: none, per-task keys). */
  ceilingTasksPerSecond?: number | undefined;
  /** Which limit that is. */
  limitedBy?: "writes" | "reads" | undefined;
}

export interface HotKey {
  key: string;
  /** Its units per task of the run. */
  unitsPerTask: number;
  /** Its share of the family's units, as measured and less sampling noise. */
  share: number;
  adjustedShare: number;
}

export interface PartitionModel {
  tasks: number;
  seconds: number;
  families: FamilyLoad[];
  /** Lowest ceiling over all families (the run: one owner, one channel). */
  ceilingTasksPerSecondOneOwner: number;
  /** Lowest over the families whose keys do not depend on the owner (tasks spread over many owners). */
  ceilingTasksPerSecondManyOwners: number;
  /** Units no key could be named for (per task). */
  unattributedWruPerTask: number;
  unattributedRruPerTask: number;
  /** Keys beyond the server's per-key limit (their units are in their family only). */
  uncountedKeys: number;
}

const TABLE_FAMILIES: Record<string, { label: string; kind: FamilyKind }> = {
  "T#": { label: "T# tasks", kind: "per-task" },
  "I#": { label: "I#/O# payloads", kind: "per-task" },
  "O#": { label: "I#/O# payloads", kind: "per-task" },
  "H#": { label: "H# HashCode guards", kind: "per-task" },
  "E#": { label: "E# expiry markers", kind: "per-task" },
  "S#": { label: "S# stream markers", kind: "per-task" },
  "C#": { label: "C# owner counters", kind: "owner" },
};

/** The family label and kind of a family of the server's counts. */
export function classify(load: Pick<PartitionFamilyLoad, "space" | "attribute" | "family">): { label: string; kind: FamilyKind } {
  if (load.space !== "table") {
    return { label: `index ${load.space} (${load.attribute})`, kind: /^owner/i.test(load.attribute) ? "owner" : "shared" };
  }
  return TABLE_FAMILIES[load.family] ?? { label: `${load.family || "(no prefix)"} other`, kind: "shared" };
}

/**
 * The model of one run of `tasks` tasks from the counts of its window (several
 * snapshots, e.g. the server's and a stream reader's, are added up; a key counted by
 * both is taken as two keys, which only matters for keys both write).
 */
export function partitionModel(snapshots: PartitionLoadSnapshot[], tasks: number): PartitionModel {
  const merged = new Map<string, PartitionFamilyLoad & { kind: FamilyKind }>();
  for (const snapshot of snapshots) {
    for (const load of snapshot.families) {
      const { label, kind } = classify(load);
      const into = merged.get(label);
      if (!into) {
        merged.set(label, { ...load, kind });
        continue;
      }
      into.wru += load.wru;
      into.rru += load.rru;
      into.writes += load.writes;
      into.reads += load.reads;
      into.writeKeys += load.writeKeys;
      into.readKeys += load.readKeys;
      into.hottestWrite = hotter(into.hottestWrite, load.hottestWrite);
      into.hottestRead = hotter(into.hottestRead, load.hottestRead);
    }
  }
  const families: FamilyLoad[] = [...merged].map(([family, load]) => {
    const hottestWrite = hotKey(load.hottestWrite, load.wru, load.writes, load.writeKeys, tasks);
    const hottestRead = hotKey(load.hottestRead, load.rru, load.reads, load.readKeys, tasks);
    const result: FamilyLoad = {
      family,
      kind: load.kind,
      wruPerTask: load.wru / tasks,
      rruPerTask: load.rru / tasks,
      writeKeys: load.writeKeys,
      readKeys: load.readKeys,
      hottestWrite,
      hottestRead,
    };
    if (load.kind !== "per-task") {
      const byWrites = ceiling(PARTITION_LIMITS.writeUnits, hottestWrite);
      const byReads = ceiling(PARTITION_LIMITS.readUnits, hottestRead);
      if (byWrites !== undefined || byReads !== undefined) {
        const writesLimit = byReads === undefined || (byWrites !== undefined && byWrites <= byReads);
        result.ceilingTasksPerSecond = writesLimit ? byWrites : byReads;
        result.limitedBy = writesLimit ? "writes" : "reads";
      }
    }
    return result;
  });
  families.sort((a, b) => order(a) - order(b) || a.family.localeCompare(b.family));
  const lowest = (of: FamilyLoad[]) => Math.min(...of.flatMap((family) => (family.ceilingTasksPerSecond === undefined ? [] : [family.ceilingTasksPerSecond])));
  const seconds = Math.max(0, ...snapshots.map((snapshot) => snapshot.seconds));
  return {
    tasks,
    seconds,
    families,
    ceilingTasksPerSecondOneOwner: lowest(families),
    ceilingTasksPerSecondManyOwners: lowest(families.filter((family) => family.kind === "shared")),
    unattributedWruPerTask: snapshots.reduce((sum, snapshot) => sum + snapshot.unattributed.wru, 0) / tasks,
    unattributedRruPerTask: snapshots.reduce((sum, snapshot) => sum + snapshot.unattributed.rru, 0) / tasks,
    uncountedKeys: snapshots.reduce((sum, snapshot) => sum + snapshot.uncountedKeys, 0),
  };
}

/** The per-family table of the bench's output. */
export function partitionTable(model: PartitionModel): string {
  const share = (key: HotKey | undefined) => (key ? `${percent(key.share)} (${percent(key.adjustedShare)})` : "-");
  const rows = model.families.map((family) => [
    family.family,
    family.kind,
    family.wruPerTask,
    family.rruPerTask,
    String(Math.max(family.writeKeys, family.readKeys)),
    family.hottestWrite ? `${family.hottestWrite.key} ${round(family.hottestWrite.unitsPerTask, 4)}` : "-",
    share(family.hottestWrite),
    family.hottestRead ? `${family.hottestRead.key} ${round(family.hottestRead.unitsPerTask, 4)}` : "-",
    share(family.hottestRead),
    family.ceilingTasksPerSecond === undefined ? "none" : `${Math.round(family.ceilingTasksPerSecond)} (${family.limitedBy})`,
  ]);
  return table(
    ["key family", "kind", "WRU/task", "RRU/task", "keys", "hottest written key WRU/task", "its share (adj.)", "hottest read key RRU/task", "its share (adj.)", "ceiling tasks/s"],
    rows,
  );
}

function order(family: FamilyLoad): number {
  return family.family.startsWith("index") ? 1 : 0;
}

function hotter(a: HottestKey | undefined, b: HottestKey | undefined): HottestKey | undefined {
  if (!a) return b;
  if (!b) return a;
  return b.units > a.units ? b : a;
}

function hotKey(hottest: HottestKey | undefined, units: number, events: number, keys: number, tasks: number): HotKey | undefined {
  if (!hottest || units <= 0) return undefined;
  const share = hottest.units / units;
  return { key: hottest.key, unitsPerTask: hottest.units / tasks, share, adjustedShare: adjustedShare(hottest.units, units, events, keys) };
}

/**
 * The hottest key's share less the excess that spreading `events` at random over
 * `keys` keys produces by itself (see the head of this file); never below an even share.
 */
export function adjustedShare(hottestUnits: number, units: number, events: number, keys: number): number {
  if (keys <= 1 || events <= 0 || units <= 0) return hottestUnits / Math.max(units, Number.MIN_VALUE);
  const mean = units / keys;
  const unitsPerEvent = units / events;
  const eventsPerKey = events / keys;
  const noise = unitsPerEvent * Math.sqrt(eventsPerKey * (1 - 1 / keys)) * expectedMaxOfNormals(keys);
  const skew = Math.max(0, hottestUnits - mean - noise);
  return (mean + skew) / units;
}

function ceiling(limit: number, hottest: HotKey | undefined): number | undefined {
  if (!hottest) return undefined;
  const unitsPerTask = hottest.unitsPerTask * (hottest.adjustedShare / hottest.share);
  return unitsPerTask > 0 ? limit / unitsPerTask : undefined;
}

const maxOfNormals = new Map<number, number>();

/** E[max of n independent standard normal draws], by numerical integration (0 for n ≤ 1). */
export function expectedMaxOfNormals(n: number): number {
  if (n <= 1) return 0;
  const cached = maxOfNormals.get(n);
  if (cached !== undefined) return cached;
  const step = 0.005;
  let sum = 0;
  for (let x = -10; x <= 10; x += step) {
    const density = Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI);
    sum += x * n * density * normalCdf(x) ** (n - 1) * step;
  }
  maxOfNormals.set(n, sum);
  return sum;
}

function normalCdf(x: number): number {
  return 0.5 * (1 + erf(x / Math.SQRT2));
}

/** Abramowitz & Stegun 7.1.26 (error below 1.5e-7). */
function erf(x: number): number {
  const sign = x < 0 ? -1 : 1;
  const t = 1 / (1 + 0.3275911 * Math.abs(x));
  const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return sign * y;
}

function percent(value: number): string {
  return `${round(value * 100, value < 0.01 ? 3 : 1)}%`;
}
