// What the server has cost in AWS terms since it started: DynamoDB capacity units
// (read and write, indexes included, as DynamoDB reports them in ConsumedCapacity)
// and SQS requests by action. SDK middleware asks every DynamoDB call for its
// consumed capacity (free of charge) and counts every SQS call. Served as JSON at
// GET /usage on the health HTTP port; `npm run bench` turns it into cost per task.
// The same middleware feeds the partition-load counter (partition-load.ts: units per
// partition key value, off unless a window is started at /usage/partitions).
import type { MiddlewareClient } from "../core/backend-errors.js";
import { PartitionLoad, type CallCapacity } from "./partition-load.js";

/** DynamoDB operations that accept ReturnConsumedCapacity, and whether they read or write. */
const DYNAMODB_OPERATIONS: Record<string, "read" | "write"> = {
  GetItem: "read",
  BatchGetItem: "read",
  Query: "read",
  Scan: "read",
  TransactGetItems: "read",
  PutItem: "write",
  UpdateItem: "write",
  DeleteItem: "write",
  BatchWriteItem: "write",
  TransactWriteItems: "write",
};

export interface DynamoDbUsage {
  calls: number;
  readUnits: number;
  writeUnits: number;
  /** Calls and capacity units by operation (e.g. "UpdateItem"). */
  byOperation: Record<string, { calls: number; units: number }>;
}

export interface UsageSnapshot {
  /** CPU time of this process (user + system) since it started. */
  cpuMicros: number;
  dynamodb: DynamoDbUsage;
  /** SQS requests (a batch call is one request), in all and by action. */
  sqs: { requests: number; byAction: Record<string, number> };
}

interface ConsumedCapacity {
  CapacityUnits?: number;
  Table?: { CapacityUnits?: number };
  GlobalSecondaryIndexes?: Record<string, { CapacityUnits?: number }>;
}

export class BackendUsage {
  /** Units per partition key value, while a window is open (GET/POST/DELETE /usage/partitions). */
  readonly partitions: PartitionLoad;
  private readonly dynamodb: DynamoDbUsage = { calls: 0, readUnits: 0, writeUnits: 0, byOperation: {} };
  private readonly sqs = { requests: 0, byAction: {} as Record<string, number> };

  constructor(partitions: PartitionLoad = new PartitionLoad()) {
    this.partitions = partitions;
  }

  /** Counts a DynamoDB client's calls and the capacity each consumed (document clients too). */
  attachDynamoDb(client: MiddlewareClient): void {
    client.middlewareStack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: { input?: Record<string, unknown> }) => {
        const operation = operationName(context.commandName);
        const kind = DYNAMODB_OPERATIONS[operation];
        if (kind && args.input) args.input.ReturnConsumedCapacity = "INDEXES";
        let result: { output?: { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] } };
        try {
          result = (await next(args)) as typeof result;
        } catch (error) {
          // A write whose condition failed is billed (at least 1 unit) but reports no capacity.
          if (kind && (error as { name?: string })?.name === "ConditionalCheckFailedException") {
            const capacity = this.countDynamoDb(operation, kind, { CapacityUnits: 1 }, 0);
            this.partitions.observe(operation, args.input, capacity, false);
          }
          throw error;
        }
        if (kind) {
          const capacity = this.countDynamoDb(operation, kind, result.output?.ConsumedCapacity, transactionItems(operation, args.input));
          this.partitions.observe(operation, args.input, capacity);
        }
        return result;
      },
      { step: "initialize", name: "backendUsage-DynamoDB", override: true },
    );
  }

  /** Counts an SQS client's requests by action, every attempt the SDK makes (SQS bills failed ones too). */
  attachSqs(client: MiddlewareClient): void {
    (client.middlewareStack as unknown as { add(middleware: unknown, options: object): void }).add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
        const action = operationName(context.commandName);
        this.sqs.requests += 1;
        this.sqs.byAction[action] = (this.sqs.byAction[action] ?? 0) + 1;
        return next(args);
      },
      // Inside the SDK's retry loop (finalizeRequest, after the retry middleware): one count per attempt.
      { step: "finalizeRequest", priority: "low", name: "backendUsage-SQS", override: true },
    );
  }

  snapshot(): UsageSnapshot {
    const cpu = process.cpuUsage();
    return {
      cpuMicros: cpu.user + cpu.system,
      dynamodb: structuredClone(this.dynamodb),
      sqs: structuredClone(this.sqs),
    };
  }

  private countDynamoDb(
    operation: string,
    kind: "read" | "write",
    consumed: ConsumedCapacity | ConsumedCapacity[] | undefined,
    transactionItemCount: number,
  ): CallCapacity {
    const entries = Array.isArray(consumed) ? consumed : consumed ? [consumed] : [];
    let units = entries.reduce((sum, entry) => sum + (entry.CapacityUnits ?? 0), 0);
    // The table's and each index's share (a report without them: all the table's).
    const capacity: CallCapacity = { table: 0, indexes: {} };
    for (const entry of entries) {
      let indexUnits = 0;
      for (const [index, { CapacityUnits = 0 }] of Object.entries(entry.GlobalSecondaryIndexes ?? {})) {
        capacity.indexes[index] = (capacity.indexes[index] ?? 0) + CapacityUnits;
        indexUnits += CapacityUnits;
      }
      capacity.table += entry.Table?.CapacityUnits ?? Math.max(0, (entry.CapacityUnits ?? 0) - indexUnits);
    }
    // DynamoDB bills a transaction 2 units per item (up to 1 KB). DynamoDB Local reports
    // less for transactions of three or more items (measured: 4 table units for 3 items),
    // so the table's share is never counted below that; on AWS the report is never lower.
    const tableUnits = entries.reduce((sum, entry) => sum + (entry.Table?.CapacityUnits ?? 0), 0);
    if (transactionItemCount > 0 && tableUnits < 2 * transactionItemCount) {
      units += 2 * transactionItemCount - tableUnits;
      capacity.table += 2 * transactionItemCount - tableUnits;
    }
    this.dynamodb.calls += 1;
    if (kind === "read") this.dynamodb.readUnits += units;
    else this.dynamodb.writeUnits += units;
    const entry = (this.dynamodb.byOperation[operation] ??= { calls: 0, units: 0 });
    entry.calls += 1;
    entry.units += units;
    return capacity;
  }
}

/** Items in a TransactWriteItems call (0 for any other call). */
function transactionItems(operation: string, input: Record<string, unknown> | undefined): number {
  if (operation !== "TransactWriteItems") return 0;
  const items = input?.TransactItems;
  return Array.isArray(items) ? items.length : 0;
}

/** "UpdateCommand" / "UpdateItemCommand" → "UpdateItem" (document client commands keep their table operation's name). */
function operationName(commandName: string | undefined): string {
  const name = (commandName ?? "Unknown").replace(/Command$/, "");
  const documentClientNames: Record<string, string> = {
    Get: "GetItem",
    Put: "PutItem",
    Update: "UpdateItem",
    Delete: "DeleteItem",
    BatchGet: "BatchGetItem",
    BatchWrite: "BatchWriteItem",
    TransactGet: "TransactGetItems",
    TransactWrite: "TransactWriteItems",
  };
  return documentClientNames[name] ?? name;
}
