// Which replica sends the messages of a parking shard (core/parked-tasks.ts). One
// lease per shard, held by one replica at a time and renewed by every pass of its
// look-ahead, so each parked task's message is sent once, not once per replica. The
// lease carries the shard's cursor (how far the look-ahead has read), so a replica
// that takes a shard over goes on from there. The DynamoDB store
// (store/look-ahead-lease-store.ts) implements it with conditional writes.
import type { ParkedPosition } from "./task-repository.js";

export type LeaseClaim =
  /** Held by the caller now; `cursor` is where the last holder stopped (none: never read). */
  | { held: true; cursor: ParkedPosition | undefined }
  /** Held by another replica until `heldUntilMs` (its clock). */
  | { held: false; heldUntilMs: number };

export interface LookAheadLeases {
  /** Takes the shard's lease until `untilMs` if it is free, expired at `nowMs`, or already the holder's. */
  claim(shard: number, holder: string, nowMs: number, untilMs: number): Promise<LeaseClaim>;
  /** Saves the cursor and extends the lease to `untilMs` if `holder` still holds it; false when another took it over. */
  renew(shard: number, holder: string, cursor: ParkedPosition, untilMs: number): Promise<boolean>;
  /** Saves the cursor and ends the lease at once (a replica stopping), if `holder` still holds it. */
  release(shard: number, holder: string, cursor: ParkedPosition): Promise<void>;
}
