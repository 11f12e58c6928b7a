// Where the server's DynamoDB capacity lands: read and write units per partition key
// value, of the table (`pk`) and of each global secondary index (its partition key
// attribute), counted from each call's input (the keys and index attributes it
// writes or reads) and its ConsumedCapacity (table and per-index units). DynamoDB
// gives one partition key at most 1,000 write units and 3,000 read units a second;
// `npm run bench` turns these counts into the task rate at which the hottest key of
// each key family would reach that (test/harness/bench-partitions.ts: the model).
//
// Why in the server (metrics/, beside BackendUsage) and not in the bench: the units
// are only known inside the process that makes the calls, and the bench runs the
// server as a process of its own; the same counter can be attached to any other
// client (a stream reader's). The counting is off unless asked for (POST
// /usage/partitions on the health HTTP port starts a window, DELETE ends it; it ends
// by itself after WINDOW_MAX_MS), so a server in production spends nothing on it, and
// its memory is bounded (MAX_KEYS keys, MAX_TRACKED_ITEMS remembered index entries).
//
// Attribution, per call:
// - table: the units of the table go to the item keys the call names (a Put's item, an
//   Update's / Delete's / Get's key, a batch's or a transaction's keys, shared equally;
//   a Query on the table: its `pk = :v`).
// - index: an index's units go to the index partitions the call's items enter or
//   leave: a Put's item with the index's partition key attribute, an Update that SETs
//   it (the entry enters that partition) or REMOVEs it or SETs it to another value
//   (the entry leaves the partition the item was written with: remembered per item),
//   an Update of the index's sort key (the entry is rewritten where it is), a Delete.
//   A Query on an index: its `<partition attribute> = :v`.
// - what no key can be named for (a Scan; an entry that leaves a partition written
//   before the window started) is counted as unattributed.
// Events (for the bench's sampling-noise estimate): a table key has one per call
// that names it; an index key one per entry that ENTERS it (a removal or a rewrite
// follows its entry and is not an independent draw) and one per Query that reads it.
import * as tableDefinition from "../store/table-definition.js";

/** The key spaces of the table: "table" (partition key `pk`) and one per index. */
export interface KeySpace {
  /** "table", or the index's name. */
  name: string;
  /** The partition key attribute. */
  partitionKey: string;
  /** The sort key attribute (an update of it rewrites the index entry in place). */
  sortKey?: string | undefined;
}

export const TABLE_SPACE = "table";
/** Keys counted one by one (beyond: their units count in their family, not per key). */
const MAX_KEYS = 200_000;
/** Items whose index partition is remembered (for a later removal); the oldest are forgotten first. */
const MAX_TRACKED_ITEMS = 200_000;
/** A counting window nobody ends stops by itself after this long. */
const WINDOW_MAX_MS = 15 * 60_000;

interface KeyCounts {
  wru: number;
  rru: number;
  writes: number;
  reads: number;
}

export interface HottestKey {
  key: string;
  units: number;
  /** Its events (see the head of partition-load.ts). */
  events: number;
}

/** One family of keys of one key space: a table key prefix (`T#`, `C#`...), or all of an index's keys. */
export interface PartitionFamilyLoad {
  space: string;
  attribute: string;
  /** Table: the key's prefix up to its first `#` (e.g. "T#"; "" when it has none); index: "*". */
  family: string;
  wru: number;
  rru: number;
  writes: number;
  reads: number;
  /** Distinct keys written / read. */
  writeKeys: number;
  readKeys: number;
  hottestWrite?: HottestKey | undefined;
  hottestRead?: HottestKey | undefined;
}

export interface PartitionLoadSnapshot {
  counting: boolean;
  /** Length of the window so far (or of the last one). */
  seconds: number;
  families: PartitionFamilyLoad[];
  /** Units no partition key could be named for. */
  unattributed: { wru: number; rru: number };
  /** Keys beyond MAX_KEYS: their units are in their family's totals only. */
  uncountedKeys: number;
}

/** A call's ConsumedCapacity, summed over its entries: the table's units and each index's. */
export interface CallCapacity {
  table: number;
  indexes: Record<string, number>;
}

interface Touch {
  space: string;
  key: string;
  /** An index entry enters this partition (an independent placement). */
  entering: boolean;
}

/** The table's key spaces from its definition (current and legacy indexes: whichever the table has). */
export function definedKeySpaces(): KeySpace[] {
  const definitions = tableDefinition as unknown as Record<string, unknown>;
  const indexes = [definitions.INDEXES, definitions.LEGACY_INDEXES].flatMap((group) =>
    group && typeof group === "object" ? Object.values(group as Record<string, { name: string; partitionKey: { name: string }; sortKey?: { name: string } }>) : [],
  );
  return [
    { name: TABLE_SPACE, partitionKey: tableDefinition.PARTITION_KEY },
    ...indexes.map((index) => ({ name: index.name, partitionKey: index.partitionKey.name, sortKey: index.sortKey?.name })),
  ];
}

export class PartitionLoad {
  private readonly spaces: KeySpace[];
  private readonly indexes: KeySpace[];
  private counting = false;
  private startedAt = 0;
  private endedAt = 0;
  private keys = new Map<string, Map<string, KeyCounts>>();
  private familyTotals = new Map<string, KeyCounts>();
  /** index name → item key → the partition key value its entry was written with. */
  private entries = new Map<string, Map<string, string>>();
  private keyCount = 0;
  private uncountedKeys = 0;
  private unattributed = { wru: 0, rru: 0 };

  constructor(spaces: KeySpace[] = definedKeySpaces()) {
    this.spaces = spaces;
    this.indexes = spaces.filter((space) => space.name !== TABLE_SPACE);
  }

  get active(): boolean {
    if (this.counting && Date.now() - this.startedAt > WINDOW_MAX_MS) this.stop();
    return this.counting;
  }

  /** Starts a new counting window (forgets the last one). */
  start(): void {
    this.reset();
    this.counting = true;
    this.startedAt = Date.now();
  }

  /** Ends the window; its counts stay readable until the next start or reset. */
  stop(): void {
    if (this.counting) this.endedAt = Date.now();
    this.counting = false;
  }

  /** Ends the window and frees its counts. */
  reset(): void {
    this.stop();
    this.keys = new Map();
    this.familyTotals = new Map();
    this.entries = new Map();
    this.keyCount = 0;
    this.uncountedKeys = 0;
    this.unattributed = { wru: 0, rru: 0 };
    this.startedAt = this.endedAt = Date.now();
  }

  /**
   * Attributes one call's units. `succeeded` false: a write whose condition failed (its
   * unit is the table's, and the item did not change).
   */
  observe(operation: string, input: Record<string, unknown> | undefined, capacity: CallCapacity, succeeded = true): void {
    if (!this.active || !input) return;
    try {
      this.attribute(operation, input, capacity, succeeded);
    } catch {
      // A call the counter cannot read is left uncounted: counting never fails a call.
    }
  }

  private attribute(operation: string, input: Record<string, unknown>, capacity: CallCapacity, succeeded: boolean): void {
    const write = WRITES.has(operation);
    const touches: Touch[] = [];
    const key = (value: unknown) => scalar((value as Record<string, unknown> | undefined)?.[tableDefinition.PARTITION_KEY]);
    const tableTouch = (item: unknown) => {
      const value = key(item);
      if (value !== undefined) touches.push({ space: TABLE_SPACE, key: value, entering: false });
    };
    switch (operation) {
      case "PutItem":
        tableTouch(input.Item);
        if (succeeded) this.put(input.Item as Item, touches);
        break;
      case "UpdateItem":
        tableTouch(input.Key);
        if (succeeded) this.update(input as UpdateInput, touches);
        break;
      case "DeleteItem":
        tableTouch(input.Key);
        if (succeeded) this.delete(input.Key as Item, touches);
        break;
      case "GetItem":
        tableTouch(input.Key);
        break;
      case "BatchGetItem":
        for (const request of Object.values((input.RequestItems as Record<string, { Keys?: unknown[] }>) ?? {})) for (const k of request.Keys ?? []) tableTouch(k);
        break;
      case "TransactGetItems":
        for (const entry of (input.TransactItems as { Get?: { Key?: unknown } }[]) ?? []) tableTouch(entry.Get?.Key);
        break;
      case "BatchWriteItem":
        for (const requests of Object.values((input.RequestItems as Record<string, { PutRequest?: { Item: Item }; DeleteRequest?: { Key: Item } }[]>) ?? {})) {
          for (const request of requests) {
            if (request.PutRequest) {
              tableTouch(request.PutRequest.Item);
              if (succeeded) this.put(request.PutRequest.Item, touches);
            } else if (request.DeleteRequest) {
              tableTouch(request.DeleteRequest.Key);
              if (succeeded) this.delete(request.DeleteRequest.Key, touches);
            }
          }
        }
        break;
      case "TransactWriteItems":
        for (const entry of (input.TransactItems as TransactWriteEntry[]) ?? []) {
          if (entry.Put) {
            tableTouch(entry.Put.Item);
            if (succeeded) this.put(entry.Put.Item, touches);
          } else if (entry.Update) {
            tableTouch(entry.Update.Key);
            if (succeeded) this.update(entry.Update, touches);
          } else if (entry.Delete) {
            tableTouch(entry.Delete.Key);
            if (succeeded) this.delete(entry.Delete.Key, touches);
          } else if (entry.ConditionCheck) {
            tableTouch(entry.ConditionCheck.Key);
          }
        }
        break;
      case "Query":
        this.query(input as QueryInput, touches);
        break;
      default: // Scan: every partition, none in particular
        break;
    }
    // A write names the entries of every index the table might have (legacy ones too); an
    // index the write reports no units for is not there, or was not written.
    const counted = write ? touches.filter((touch) => touch.space === TABLE_SPACE || capacity.indexes[touch.space] !== undefined) : touches;
    for (const [space, units] of [[TABLE_SPACE, capacity.table] as const, ...Object.entries(capacity.indexes)]) {
      if (!units) continue;
      const here = counted.filter((touch) => touch.space === space);
      if (here.length === 0) {
        if (write) this.unattributed.wru += units;
        else this.unattributed.rru += units;
        continue;
      }
      for (const touch of here) this.count(touch, units / here.length, write);
    }
    // Events: a call per table key it names and per index key it reads; an entry entering an index key.
    for (const touch of counted) if (touch.space === TABLE_SPACE || touch.entering || !write) this.countEvent(touch, write);
  }

  snapshot(): PartitionLoadSnapshot {
    const counting = this.active;
    const families: PartitionFamilyLoad[] = [];
    const byFamily = new Map<string, PartitionFamilyLoad>();
    const familyOf = (space: string, family: string): PartitionFamilyLoad => {
      const id = `${space}\u0000${family}`;
      let entry = byFamily.get(id);
      if (!entry) {
        const totals = this.familyTotals.get(id) ?? { wru: 0, rru: 0, writes: 0, reads: 0 };
        const attribute = this.spaces.find((s) => s.name === space)?.partitionKey ?? "?";
        entry = { space, attribute, family, ...totals, writeKeys: 0, readKeys: 0 };
        byFamily.set(id, entry);
        families.push(entry);
      }
      return entry;
    };
    for (const [id, totals] of this.familyTotals) {
      const [space, family] = id.split("\u0000") as [string, string];
      if (totals.wru || totals.rru || totals.writes || totals.reads) familyOf(space, family);
    }
    for (const [space, keys] of this.keys) {
      for (const [key, counts] of keys) {
        const entry = familyOf(space, familyName(space, key));
        if (counts.wru > 0 || counts.writes > 0) {
          entry.writeKeys += 1;
          if (!entry.hottestWrite || counts.wru > entry.hottestWrite.units) entry.hottestWrite = { key, units: counts.wru, events: counts.writes };
        }
        if (counts.rru > 0 || counts.reads > 0) {
          entry.readKeys += 1;
          if (!entry.hottestRead || counts.rru > entry.hottestRead.units) entry.hottestRead = { key, units: counts.rru, events: counts.reads };
        }
      }
    }
    return {
      counting,
      seconds: ((counting ? Date.now() : this.endedAt) - this.startedAt) / 1000,
      families,
      unattributed: { ...this.unattributed },
      uncountedKeys: this.uncountedKeys,
    };
  }

  // ----- index entries -----

  private put(item: Item | undefined, touches: Touch[]): void {
    const itemKey = scalar(item?.[tableDefinition.PARTITION_KEY]);
    if (!item || itemKey === undefined) return;
    // A Put replaces the whole item: without the attribute, the item has no entry in the index.
    for (const index of this.indexes) this.moveEntry(index, itemKey, scalar(item[index.partitionKey]), true, touches);
  }

  private update(input: UpdateInput, touches: Touch[]): void {
    const itemKey = scalar(input.Key?.[tableDefinition.PARTITION_KEY]);
    if (itemKey === undefined || typeof input.UpdateExpression !== "string") return;
    const changes = parseUpdateExpression(input.UpdateExpression, input.ExpressionAttributeNames ?? {}, input.ExpressionAttributeValues ?? {});
    for (const index of this.indexes) {
      if (changes.removed.has(index.partitionKey)) this.moveEntry(index, itemKey, undefined, true, touches);
      else if (changes.set.has(index.partitionKey)) this.moveEntry(index, itemKey, changes.set.get(index.partitionKey), false, touches);
      else if (index.sortKey && (changes.set.has(index.sortKey) || changes.removed.has(index.sortKey))) {
        // The entry is rewritten (or dropped) in the partition it is in.
        const current = this.entries.get(index.name)?.get(itemKey);
        if (current !== undefined) touches.push({ space: index.name, key: current, entering: false });
        if (changes.removed.has(index.sortKey)) this.entries.get(index.name)?.delete(itemKey);
      }
    }
  }

  private delete(key: Item | undefined, touches: Touch[]): void {
    const itemKey = scalar(key?.[tableDefinition.PARTITION_KEY]);
    if (itemKey === undefined) return;
    for (const index of this.indexes) this.moveEntry(index, itemKey, undefined, true, touches);
  }

  /**
   * The item's entry in `index` now has partition `next` (undefined: none). A known
   * previous partition it leaves gets a touch; so does the one it enters (or, when
   * `next` is an unknown value that is set, the one it was in).
   */
  private moveEntry(index: KeySpace, itemKey: string, next: string | undefined, cleared: boolean, touches: Touch[]): void {
    let remembered = this.entries.get(index.name);
    const previous = remembered?.get(itemKey);
    if (next === undefined && !cleared) {
      // Set to a value we cannot read (an expression): it stays attributed where it was.
      if (previous !== undefined) touches.push({ space: index.name, key: previous, entering: false });
      return;
    }
    if (previous !== undefined && previous !== next) touches.push({ space: index.name, key: previous, entering: false });
    if (next !== undefined) touches.push({ space: index.name, key: next, entering: true });
    if (next === undefined) {
      remembered?.delete(itemKey);
      return;
    }
    if (!remembered) this.entries.set(index.name, (remembered = new Map()));
    remembered.delete(itemKey); // re-inserted: the oldest entries are the first forgotten
    remembered.set(itemKey, next);
    if (remembered.size > MAX_TRACKED_ITEMS) remembered.delete(remembered.keys().next().value as string);
  }

  private query(input: QueryInput, touches: Touch[]): void {
    const space = input.IndexName ? this.indexes.find((index) => index.name === input.IndexName) : this.spaces[0];
    if (!space || typeof input.KeyConditionExpression !== "string") return;
    const names = input.ExpressionAttributeNames ?? {};
    const values = input.ExpressionAttributeValues ?? {};
    for (const match of input.KeyConditionExpression.matchAll(/([#\w.-]+)\s*=\s*(:[\w-]+)/g)) {
      const attribute = names[match[1] as string] ?? (match[1] as string);
      if (attribute !== space.partitionKey) continue;
      const value = scalar(values[match[2] as string]);
      if (value !== undefined) touches.push({ space: input.IndexName ?? TABLE_SPACE, key: value, entering: false });
      return;
    }
  }

  // ----- counting -----

  private countsOf(touch: Touch): KeyCounts | undefined {
    let keys = this.keys.get(touch.space);
    if (!keys) this.keys.set(touch.space, (keys = new Map()));
    let counts = keys.get(touch.key);
    if (!counts) {
      if (this.keyCount >= MAX_KEYS) {
        this.uncountedKeys += 1;
        return undefined;
      }
      this.keyCount += 1;
      keys.set(touch.key, (counts = { wru: 0, rru: 0, writes: 0, reads: 0 }));
    }
    return counts;
  }

  private totalsOf(touch: Touch): KeyCounts {
    const id = `${touch.space}\u0000${familyName(touch.space, touch.key)}`;
    let totals = this.familyTotals.get(id);
    if (!totals) this.familyTotals.set(id, (totals = { wru: 0, rru: 0, writes: 0, reads: 0 }));
    return totals;
  }

  private count(touch: Touch, units: number, write: boolean): void {
    const field = write ? "wru" : "rru";
    const counts = this.countsOf(touch);
    if (counts) counts[field] += units;
    this.totalsOf(touch)[field] += units;
  }

  private countEvent(touch: Touch, write: boolean): void {
    const field = write ? "writes" : "reads";
    const counts = this.countsOf(touch);
    if (counts) counts[field] += 1;
    this.totalsOf(touch)[field] += 1;
  }
}

const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]);

type Item = Record<string, unknown>;

interface UpdateInput {
  Key?: Item;
  UpdateExpression?: unknown;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

interface QueryInput {
  IndexName?: string;
  KeyConditionExpression?: unknown;
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
}

interface TransactWriteEntry {
  Put?: { Item: Item };
  Update?: UpdateInput;
  Delete?: { Key: Item };
  ConditionCheck?: { Key: Item };
}

/** A table key's family: its prefix up to and with its first `#`; an index's keys are one family. */
export function familyName(space: string, key: string): string {
  if (space !== TABLE_SPACE) return "*";
  const hash = key.indexOf("#");
  return hash < 0 ? "" : key.slice(0, hash + 1);
}

/**
 * A key attribute's value as a string: plain (document client input: a string, number,
 * bigint or NumberValue) or an AttributeValue ({ S } / { N }); numbers in their canonical form.
 */
function scalar(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (value && typeof value === "object") {
    const attribute = value as { S?: unknown; N?: unknown; value?: unknown };
    if (typeof attribute.S === "string") return attribute.S;
    const number = typeof attribute.N === "string" ? attribute.N : typeof attribute.value === "string" ? attribute.value : undefined;
    if (number !== undefined) return /^-?\d+$/.test(number) ? String(BigInt(number)) : number;
  }
  return undefined;
}

/**
 * The top-level attributes an UpdateExpression SETs (with their value when it is a
 * plain `:value` or `if_not_exists(path, :value)`; undefined when computed) and those
 * it REMOVEs. ADD / DELETE never touch key attributes (DynamoDB allows them on numbers
 * and sets only, and a key attribute used there would be a number: counted as set).
 */
export function parseUpdateExpression(
  expression: string,
  names: Record<string, string>,
  values: Record<string, unknown>,
): { set: Map<string, string | undefined>; removed: Set<string> } {
  const set = new Map<string, string | undefined>();
  const removed = new Set<string>();
  const attribute = (path: string) => {
    const root = path.trim().split(/[.[]/)[0] ?? "";
    return names[root] ?? root;
  };
  // SET, REMOVE, ADD and DELETE are reserved words: in an expression they are always its clauses.
  const clauses = expression.split(/\b(SET|REMOVE|ADD|DELETE)\b/i);
  for (let i = 1; i < clauses.length; i += 2) {
    const keyword = (clauses[i] as string).toUpperCase();
    const body = clauses[i + 1] ?? "";
    for (const part of splitTopLevel(body)) {
      if (keyword === "REMOVE") removed.add(attribute(part));
      else if (keyword === "SET") {
        const equals = part.indexOf("=");
        if (equals < 0) continue;
        const valueExpression = part.slice(equals + 1).trim();
        const plain = /^(:[\w-]+)$/.exec(valueExpression) ?? /^if_not_exists\s*\([^,]+,\s*(:[\w-]+)\s*\)$/i.exec(valueExpression);
        set.set(attribute(part.slice(0, equals)), plain ? scalar(values[plain[1] as string]) : undefined);
      } else {
        const path = part.trim().split(/\s+/)[0] ?? "";
        if (path) set.set(attribute(path), undefined);
      }
    }
  }
  return { set, removed };
}

/** Splits on commas outside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === "(") depth += 1;
    else if (char === ")") depth -= 1;
    else if (char === "," && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim()).filter((part) => part.length > 0);
}
