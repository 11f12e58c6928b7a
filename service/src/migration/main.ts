// `npm run migrate -- --table <name>`: moves a table of an earlier version to the
// owner shards (owner-shards.ts says how and why). With the AWS credentials and region
// of the environment, or the emulators' / LocalStack's AWS_ENDPOINT_URL_DYNAMODB.
//
//   --table <name>         the tasks table (required)
//   --segments <n>         parallel Scan segments (default 4)
//   --concurrency <n>      updates in flight per segment (default 8)
//   --drop-legacy-index    afterwards, delete the old index byOwner (emulators and
//                          LocalStack; on AWS deploy again without legacyOwnerIndex)
import { DescribeTableCommand, UpdateTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { parseArgs } from "node:util";
import { createDocumentClient } from "../store/dynamo-client.js";
import { INDEXES, LEGACY_INDEXES } from "../store/table-definition.js";
import { backfillOwnerKeys } from "./owner-shards.js";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      table: { type: "string" },
      segments: { type: "string", default: "4" },
      concurrency: { type: "string", default: "8" },
      "drop-legacy-index": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help || !values.table) {
    console.error("usage: npm run migrate -- --table <name> [--segments 4] [--concurrency 8] [--drop-legacy-index]");
    return values.help ? 0 : 2;
  }
  const table = values.table;
  const segments = wholeNumber(values.segments, "--segments");
  const concurrency = wholeNumber(values.concurrency, "--concurrency");
  const db = createDocumentClient();
  try {
    const indexes = await indexNames(db as unknown as DynamoDBClient, table);
    if (!indexes.includes(INDEXES.byOwnerShard.name)) {
      console.error(
        `note: table ${table} has no index ${INDEXES.byOwnerShard.name} yet; the backfill works without it, but owners' pages need it ` +
          "(deploy with -c legacyOwnerIndex=true; a server on the emulators or LocalStack adds it when it starts)",
      );
    }
    const started = Date.now();
    const result = await backfillOwnerKeys(db, table, {
      segments,
      concurrency,
      onProgress: (progress) => console.error(`  ${progress.found} found, ${progress.updated} updated, ${progress.skipped} skipped`),
    });
    console.error(`table ${table}: ${result.updated} task items given their ownerKey, ${result.skipped} skipped, in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (values["drop-legacy-index"] && indexes.includes(LEGACY_INDEXES.byOwner.name)) {
      await (db as unknown as DynamoDBClient).send(
        new UpdateTableCommand({ TableName: table, GlobalSecondaryIndexUpdates: [{ Delete: { IndexName: LEGACY_INDEXES.byOwner.name } }] }),
      );
      console.error(`table ${table}: index ${LEGACY_INDEXES.byOwner.name} is being deleted`);
    }
    console.log(JSON.stringify({ table, ...result }));
    return 0;
  } finally {
    db.destroy();
  }
}

async function indexNames(db: DynamoDBClient, table: string): Promise<string[]> {
  const { Table } = await db.send(new DescribeTableCommand({ TableName: table }));
  return (Table?.GlobalSecondaryIndexes ?? []).flatMap((index) => (index.IndexName ? [index.IndexName] : []));
}

function wholeNumber(text: string, name: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new UsageError(`${name} must be a whole number of at least 1, not "${text}"`);
  return Number(text);
}

class UsageError extends Error {}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof UsageError ? error.message : `migrate: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
