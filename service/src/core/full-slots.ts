// What this replica knows of full flow-control slots (tasks/flow-slots.ts): a slot
// refused a lease a moment ago is taken as still full for a while, so the next task
// that needs it is held back without a refused transaction, and a channel whose
// maxInFlight is full stops receiving until then (the poller asks pauseMs). The while
// starts at FIRST_MS and doubles, up to MAX_MS, as long as the slot keeps refusing;
// a lease that takes the slot clears it. Only an optimisation: the transaction decides.

const FIRST_MS = 100;
const MAX_MS = 2_000;
/** Remembered slots at most (keys can be many); expired ones go first. */
const MAX_ENTRIES = 10_000;

export class FullSlots {
  private readonly slots = new Map<string, { untilMs: number; backoffMs: number }>();

  constructor(private readonly now: () => number) {}

  /** The slot refused a lease. */
  refused(slotId: string): void {
    const now = this.now();
    const known = this.slots.get(slotId);
    const backoffMs = known ? Math.min(MAX_MS, known.backoffMs * 2) : FIRST_MS;
    if (!known && this.slots.size >= MAX_ENTRIES) this.evictExpired(now);
    if (this.slots.size < MAX_ENTRIES || known) this.slots.set(slotId, { untilMs: now + backoffMs, backoffMs });
  }

  /** A lease took the slot: it had room. */
  took(slotId: string): void {
    this.slots.delete(slotId);
  }

  /** How long the slot is still taken as full (0: try it). */
  remainingMs(slotId: string): number {
    const known = this.slots.get(slotId);
    return known ? Math.max(0, known.untilMs - this.now()) : 0;
  }

  private evictExpired(now: number): void {
    for (const [slotId, known] of this.slots) if (known.untilMs <= now) this.slots.delete(slotId);
  }
}
