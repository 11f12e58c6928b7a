// Batches one kind of SQS call (SendMessage, DeleteMessage) without a timer: when no
// batch call is in flight, an entry goes out at once (a lone task waits for nothing);
// entries that arrive while one is in flight wait for it to return and then go
// together, up to SQS's 10 per call. Under load that makes one request carry many
// tasks (SQS bills per request); at low load it adds no latency.

/** SQS takes at most 10 entries per batch call. */
export const MAX_BATCH_ENTRIES = 10;

export interface BatchEntryResult {
  /** The entry's Id in the batch. */
  id: string;
  /** Set when SQS refused this entry (the rest of the batch may have succeeded). */
  error?: Error;
}

/** Sends one batch; answers per entry, or throws when the whole call failed. */
export type BatchCall<T> = (entries: { id: string; value: T }[]) => Promise<BatchEntryResult[]>;

interface Pending<T> {
  value: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RequestBatcher<T> {
  private pending: Pending<T>[] = [];
  private inFlight = 0;

  constructor(private readonly call: BatchCall<T>) {}

  /** Resolves when SQS accepted the entry; rejects with SQS's reason otherwise. */
  add(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ value, resolve, reject });
      if (this.inFlight === 0 || this.pending.length >= MAX_BATCH_ENTRIES) this.flush();
    });
  }

  private flush(): void {
    const batch = this.pending.splice(0, MAX_BATCH_ENTRIES);
    if (batch.length === 0) return;
    this.inFlight += 1;
    void this.send(batch).finally(() => {
      this.inFlight -= 1;
      // What queued up meanwhile goes now, in full batches.
      while (this.pending.length > 0 && (this.inFlight === 0 || this.pending.length >= MAX_BATCH_ENTRIES)) this.flush();
    });
  }

  private async send(batch: Pending<T>[]): Promise<void> {
    try {
      const results = await this.call(batch.map((entry, index) => ({ id: String(index), value: entry.value })));
      const byId = new Map(results.map((result) => [result.id, result]));
      batch.forEach((entry, index) => {
        const result = byId.get(String(index));
        if (!result) entry.reject(new Error("SQS did not answer for this entry of a batch"));
        else if (result.error) entry.reject(result.error);
        else entry.resolve();
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    }
  }
}
