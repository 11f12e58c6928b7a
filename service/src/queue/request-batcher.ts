// Batches one kind of SQS call (SendMessage, DeleteMessage). When no batch call is in
// flight, an entry goes out at once (a lone task waits for nothing); entries that
// arrive while one is in flight go together when it returns, up to SQS's 10 per call,
// or after MAX_WAIT_MS if it is slow (one stuck call must not hold up a channel).
// Under load one request carries many tasks (SQS bills per request); at low load
// batching adds no latency. An entry SQS refuses through no fault of the sender is
// tried again, as the SDK would have retried a single call.

/** SQS takes at most 10 entries per batch call. */
export const MAX_BATCH_ENTRIES = 10;
/** How long an entry waits for a call in flight before it goes in a call of its own. */
export const MAX_WAIT_MS = 20;
/** Tries of one entry that SQS refuses with a server-side error. */
const MAX_ENTRY_ATTEMPTS = 3;

export interface BatchEntryResult {
  /** The entry's Id in the batch. */
  id: string;
  /** Set when SQS refused this entry (the rest of the batch may have succeeded). */
  error?: Error;
  /** The refusal was SQS's fault (not the request's): the entry may be tried again. */
  retryable?: boolean;
}

/** Sends one batch; answers per entry, or throws when the whole call failed. */
export type BatchCall<T> = (entries: { id: string; value: T }[]) => Promise<BatchEntryResult[]>;

interface Pending<T> {
  value: T;
  attempts: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class RequestBatcher<T> {
  private pending: Pending<T>[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly call: BatchCall<T>,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {}

  /** Resolves when SQS accepted the entry; rejects with SQS's reason otherwise. */
  add(value: T): Promise<void> {
    return new Promise<void>((resolve, reject) => this.enqueue({ value, attempts: 0, resolve, reject }));
  }

  private enqueue(entry: Pending<T>): void {
    this.pending.push(entry);
    if (this.inFlight === 0 || this.pending.length >= MAX_BATCH_ENTRIES) this.flush();
    else this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.maxWaitMs);
  }

  private flush(): void {
    const batch = this.pending.splice(0, MAX_BATCH_ENTRIES);
    if (this.pending.length === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (batch.length === 0) return;
    this.inFlight += 1;
    void this.send(batch).finally(() => {
      this.inFlight -= 1;
      // What queued up meanwhile goes now, in full batches.
      while (this.pending.length > 0 && (this.inFlight === 0 || this.pending.length >= MAX_BATCH_ENTRIES)) this.flush();
    });
  }

  private async send(batch: Pending<T>[]): Promise<void> {
    for (const entry of batch) entry.attempts += 1;
    try {
      const results = await this.call(batch.map((entry, index) => ({ id: String(index), value: entry.value })));
      const byId = new Map(results.map((result) => [result.id, result]));
      batch.forEach((entry, index) => {
        const result = byId.get(String(index));
        if (!result) entry.reject(new Error("SQS did not answer for this entry of a batch"));
        else if (!result.error) entry.resolve();
        else if (result.retryable && entry.attempts < MAX_ENTRY_ATTEMPTS) this.enqueue(entry);
        else entry.reject(result.error);
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    }
  }
}
