// The look-ahead's leases in memory (core/look-ahead-leases.ts), with the DynamoDB
// store's conditions: a claim takes a free, expired or own lease; renew and release
// only by the holder. `writes` counts the writes (failed conditions included), as
// DynamoDB bills them.
import type { LeaseClaim, LookAheadLeases } from "../../service/src/core/look-ahead-leases.js";
import type { ParkedPosition } from "../../service/src/core/task-repository.js";

interface Lease {
  holder: string;
  untilMs: number;
  cursor?: ParkedPosition;
}

export class MemoryLeases implements LookAheadLeases {
  readonly leases = new Map<number, Lease>();
  writes = 0;

  async claim(shard: number, holder: string, nowMs: number, untilMs: number): Promise<LeaseClaim> {
    this.writes += 1;
    const lease = this.leases.get(shard);
    if (lease && lease.holder !== holder && lease.untilMs >= nowMs) return { held: false, heldUntilMs: lease.untilMs };
    this.leases.set(shard, { ...lease, holder, untilMs });
    return { held: true, cursor: lease?.cursor };
  }

  async renew(shard: number, holder: string, cursor: ParkedPosition, untilMs: number): Promise<boolean> {
    this.writes += 1;
    const lease = this.leases.get(shard);
    if (lease?.holder !== holder) return false;
    this.leases.set(shard, { holder, untilMs, cursor });
    return true;
  }

  async release(shard: number, holder: string, cursor: ParkedPosition): Promise<void> {
    await this.renew(shard, holder, cursor, 0);
  }
}
