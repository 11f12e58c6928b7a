// maxInFlight and concurrencyPerKey (SPEC §7.2) as slots: a PROCEEDING task of a
// limited channel holds one slot of each limit that applies to it, taken by the
// lease in the same transaction as the lease itself, and given back by whatever
// write takes the task out of PROCEEDING (a result, a retry, an expired lease, a
// cancel, a hand-back). Pure: which slots a task needs; the store keeps the counts.

/** A channel's slot limits (undefined: none). */
export interface SlotLimits {
  maxInFlight?: number | undefined;
  concurrencyPerKey?: number | undefined;
}

/** One limit a lease must fit in: `id` names its count (the channel's, or one key's), `max` its size. */
export interface Slot {
  id: string;
  max: number;
}

/** The slots a lease of this task takes on a channel with these limits (none: the lease is not limited). */
export function slotsFor(task: { channel: string; concurrencyKey: string }, limits: SlotLimits): Slot[] {
  const slots: Slot[] = [];
  if (limits.maxInFlight !== undefined) slots.push({ id: `IF#${task.channel}`, max: limits.maxInFlight });
  if (limits.concurrencyPerKey !== undefined && task.concurrencyKey !== "") {
    slots.push({ id: `CK#${task.channel}#${task.concurrencyKey}`, max: limits.concurrencyPerKey });
  }
  return slots;
}

/** Whether a channel limits leases at all (its leases then take the read path, to know the task's key). */
export function limitsSlots(limits: SlotLimits): boolean {
  return limits.maxInFlight !== undefined || limits.concurrencyPerKey !== undefined;
}

/**
 * How long a task held back by a full slot waits before it is tried again: 1 s, then
 * twice as long each time it is held back again, at most `maxSeconds`
 * (QUEUES_HOLD_BACK_MAX_SECONDS: a waiting task's start after a slot frees, against
 * what its tries cost).
 */
export const DEFAULT_HOLD_BACK_MAX_SECONDS = 10;
export function holdBackSeconds(timesHeld: number, maxSeconds = DEFAULT_HOLD_BACK_MAX_SECONDS): number {
  return Math.min(maxSeconds, 2 ** Math.max(0, timesHeld));
}
