// The table stream function on this machine: reads the tasks table's stream from
// DynamoDB Local (or LocalStack) and hands each batch to the same code the Lambda runs
// on AWS (stream/table-stream.ts). `npm run dev`, `npm run backends` and the test
// harness run one per table: a stream must have one reader only (see there).
//
// DescribeTable names the stream; DescribeStream lists its shards; each shard is read
// from its oldest record (TRIM_HORIZON: a restarted reader finds what it counted
// before by its markers) with GetRecords, and a child shard only once its parent is
// read to the end, so a task's records are handled in order. Between reads, records
// gather for a batching window (500 ms), as the Lambda's do for up to 1 s; a full
// page (1,000 records) is followed by the next read at once.
import { DescribeTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type Shard,
} from "@aws-sdk/client-dynamodb-streams";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../store/dynamo-client.js";
import { processStreamBatch, type StreamBatchResult } from "../stream/table-stream.js";
import type { StreamRecord } from "../stream/stream-records.js";

export interface StreamRunnerOptions {
  tableName: string;
  /**
   * The DynamoDB endpoint; the emulators serve the streams API on it too.
   * @default AWS_ENDPOINT_URL_DYNAMODB_STREAMS, AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL
   */
  endpoint?: string | undefined;
  /**
   * How long records gather between reads of a shard that had less than a full page,
   * like the Lambda's batching window: fewer, larger batches (one transaction each)
   * for a lag of at most this much more.
   * @default 500
   */
  batchWindowMs?: number;
  /** Called when reading or a batch fails (it is tried again); default: ignored. */
  onError?: (error: unknown) => void;
}

export interface StreamRunnerStats {
  batches: number;
  counted: number;
  alreadyCounted: number;
  expired: number;
  parts: number;
  failures: number;
}

interface ShardState {
  id: string;
  parent: string | undefined;
  iterator: string | undefined;
  /** Records read but not done yet (a failed batch, tried again from its failed record). */
  pending: StreamRecord[];
  lastSequence: string | undefined;
  done: boolean;
}

const SHARD_REFRESH_MS = 1_000;
/** Records per GetRecords (DynamoDB's maximum), and so at most per batch, as the Lambda's batch size. */
const READ_LIMIT = 1000;
const RETRY_MS = 500;

export class StreamRunner {
  /** The document client the batches write with (its own: faults injected into a server's clients never reach it). */
  readonly db: DynamoDBDocumentClient;
  readonly stats: StreamRunnerStats = { batches: 0, counted: 0, alreadyCounted: 0, expired: 0, parts: 0, failures: 0 };
  private readonly streams: DynamoDBStreamsClient;
  private readonly shards = new Map<string, ShardState>();
  private readonly batchWindowMs: number;
  private streamArn: string | undefined;
  private lastRefresh = 0;
  private stopping = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  private constructor(private readonly options: StreamRunnerOptions) {
    const endpoint = options.endpoint ?? localStreamsEndpoint();
    this.db = createDocumentClient(endpoint ? { endpoint } : {});
    this.streams = new DynamoDBStreamsClient({ maxAttempts: 3, ...(endpoint ? { endpoint } : {}) });
    this.batchWindowMs = options.batchWindowMs ?? 500;
  }

  /** Starts reading the table's stream (it must have one: tables provisioned by local/provision.ts do). */
  static async start(options: StreamRunnerOptions): Promise<StreamRunner> {
    const runner = new StreamRunner(options);
    try {
      const { Table } = await (runner.db as unknown as DynamoDBClient).send(new DescribeTableCommand({ TableName: options.tableName }));
      if (!Table?.LatestStreamArn || !Table.StreamSpecification?.StreamEnabled) throw new Error(`table ${options.tableName} has no stream`);
      runner.streamArn = Table.LatestStreamArn;
      await runner.refreshShards();
    } catch (error) {
      runner.destroy();
      throw error;
    }
    runner.loop = runner.run();
    return runner;
  }

  /** Stops reading (a batch being written is finished first). */
  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.destroy();
  }

  private destroy(): void {
    this.db.destroy();
    this.streams.destroy();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let more = false;
      try {
        if (Date.now() - this.lastRefresh >= SHARD_REFRESH_MS) await this.refreshShards();
        for (const shard of this.readableShards()) more = (await this.readShard(shard)) || more;
      } catch (error) {
        this.stats.failures += 1;
        this.options.onError?.(error);
        await this.pause(RETRY_MS);
        continue;
      }
      if (!more) await this.pause(this.batchWindowMs);
    }
  }

  /** Open shards whose parent (if we know it) is read to the end, oldest first. */
  private readableShards(): ShardState[] {
    return [...this.shards.values()].filter((shard) => !shard.done && (!shard.parent || this.shards.get(shard.parent)?.done !== false));
  }

  /** One GetRecords of the shard and its batch; true when there may be more to read at once. */
  private async readShard(shard: ShardState): Promise<boolean> {
    if (shard.pending.length === 0) {
      shard.iterator ??= await this.iteratorOf(shard);
      let page;
      try {
        page = await this.streams.send(new GetRecordsCommand({ ShardIterator: shard.iterator, Limit: READ_LIMIT }));
      } catch (error) {
        const name = (error as Error).name;
        if (name !== "ExpiredIteratorException" && name !== "TrimmedDataAccessException") throw error;
        // Iterators expire after 15 minutes; and DynamoDB Local answers "trimmed" for an iterator
        // taken while the shard was empty once another table's record took its first sequence
        // number. Either way: a new iterator, after the last record done (or at the oldest), next poll.
        shard.iterator = undefined;
        return false;
      }
      shard.iterator = page.NextShardIterator;
      shard.pending = (page.Records ?? []) as StreamRecord[];
      if (shard.pending.length === 0) {
        if (!shard.iterator) shard.done = true;
        return false;
      }
    }
    const records = shard.pending.length;
    const result = await processStreamBatch(this.db, this.options.tableName, shard.pending);
    this.record(result);
    const failedAt = result.batchItemFailures[0]?.itemIdentifier;
    const doneUpTo = failedAt === undefined ? shard.pending.length : shard.pending.findIndex((record) => record.dynamodb?.SequenceNumber === failedAt);
    if (doneUpTo > 0) shard.lastSequence = shard.pending[doneUpTo - 1]?.dynamodb?.SequenceNumber;
    shard.pending = shard.pending.slice(Math.max(doneUpTo, 0));
    if (shard.pending.length > 0) throw result.error ?? new Error("a stream batch failed");
    if (!shard.iterator) shard.done = true;
    // A full page: there is more to read at once. Otherwise wait for the next poll, so that records gather into batches.
    return records === READ_LIMIT;
  }

  private async iteratorOf(shard: ShardState): Promise<string> {
    const { ShardIterator } = await this.streams.send(
      new GetShardIteratorCommand({
        StreamArn: this.streamArn,
        ShardId: shard.id,
        ...(shard.lastSequence
          ? { ShardIteratorType: "AFTER_SEQUENCE_NUMBER", SequenceNumber: shard.lastSequence }
          : { ShardIteratorType: "TRIM_HORIZON" }),
      }),
    );
    if (!ShardIterator) throw new Error(`no iterator for shard ${shard.id}`);
    return ShardIterator;
  }

  private async refreshShards(): Promise<void> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.streams.send(new DescribeStreamCommand({ StreamArn: this.streamArn, ExclusiveStartShardId: start }));
      shards.push(...(StreamDescription?.Shards ?? []));
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    for (const shard of shards) {
      if (!shard.ShardId || this.shards.has(shard.ShardId)) continue;
      this.shards.set(shard.ShardId, { id: shard.ShardId, parent: shard.ParentShardId, iterator: undefined, pending: [], lastSequence: undefined, done: false });
    }
    this.lastRefresh = Date.now();
  }

  private record(result: StreamBatchResult): void {
    this.stats.batches += 1;
    this.stats.counted += result.counted;
    this.stats.alreadyCounted += result.alreadyCounted;
    this.stats.expired += result.expired;
    this.stats.parts += result.parts;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** Where the streams API of the emulators is: the DynamoDB endpoint (the SDK would not look there by itself). */
export function localStreamsEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.AWS_ENDPOINT_URL_DYNAMODB_STREAMS || env.AWS_ENDPOINT_URL_DYNAMODB || env.AWS_ENDPOINT_URL || undefined;
}
