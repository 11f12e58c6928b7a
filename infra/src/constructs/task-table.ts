// The tasks table, built from THE table definition the server uses
// (service/store/table-definition.ts): same key, same indexes, same TTL attribute,
// same stream (read by the table stream function). Or, after a destroy kept it, that
// table adopted by name (README "Keeping data across a destroy").
import { RemovalPolicy, Stack, Tags } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { INDEXES, LEGACY_INDEXES, PARTITION_KEY, STREAM_VIEW_TYPE, TTL_ATTRIBUTE, type IndexDefinition } from "@queues/server/definitions";

export interface TaskTableProps {
  /**
   * `cdk destroy` deletes the table with its tasks (no deletion protection).
   * @default false - the table is kept, deletion-protected
   */
  readonly destroyOnDelete?: boolean;
  /**
   * Keep the owner index of earlier versions (`byOwner`) beside `byOwnerShard`, for
   * the deploy that adds the new index while `npm run migrate` backfills it
   * (CloudFormation adds or drops one index per update; README "Upgrading").
   * @default false - only the current indexes
   */
  readonly legacyOwnerIndex?: boolean;
  /**
   * Create the sparse index of channels' recent failures (`byChannelFailures`). Off for
   * the owner-shard upgrade's first deploys, since CloudFormation creates or drops one
   * index per update (README "Upgrading").
   * @default true - unless legacyOwnerIndex
   */
  readonly failuresIndex?: boolean;
  /**
   * Adopt this existing table (one a destroyed stack kept) instead of creating one:
   * the stack then neither changes nor deletes it.
   * @default - a new table
   */
  readonly existing?: { readonly tableName: string; readonly streamArn: string };
}

/**
 * Tags of the kept resources (table, channel queues): they name them after a destroy,
 * when the stack's outputs are gone. `level`: on a channel's queues of priority levels 2 and below.
 */
export const KEPT_RESOURCE_TAGS = { stack: "queues:stack", resource: "queues:resource", channel: "queues:channel", level: "queues:level" } as const;

const attributeType = (type: "S" | "N") => (type === "S" ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER);

export class TaskTable extends Construct {
  readonly table: dynamodb.ITable;
  /** The table was adopted (existing), not created by this stack. */
  readonly adopted: boolean;

  /** The table's indexes: the current ones, and the legacy owner index while a migration needs it. */
  readonly indexes: readonly IndexDefinition[];

  constructor(scope: Construct, id: string, props: TaskTableProps = {}) {
    super(scope, id);
    const failuresIndex = props.failuresIndex ?? !props.legacyOwnerIndex;
    this.indexes = [
      ...Object.values(INDEXES).filter((index) => failuresIndex || index.name !== INDEXES.byChannelFailures.name),
      ...(props.legacyOwnerIndex ? [LEGACY_INDEXES.byOwner] : []),
    ];
    this.adopted = props.existing !== undefined;
    if (props.existing) {
      // The stream ARN names the table's region and account: the table's ARN is its prefix.
      const { tableName, streamArn } = props.existing;
      const tableArn = streamArn.slice(0, streamArn.indexOf("/stream/"));
      if (!tableArn.endsWith(`:table/${tableName}`)) throw new Error(`${streamArn} is not the stream of table ${tableName}`);
      this.table = dynamodb.Table.fromTableAttributes(this, "Table", { tableArn, tableStreamArn: streamArn });
      return;
    }
    const table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      deletionProtection: !props.destroyOnDelete,
      // Always on: the table stream function's markers expire by it, and so do final tasks when a retention is configured.
      timeToLiveAttribute: TTL_ATTRIBUTE,
      // Always on: owners' Totals are counted from it (new images), expired tasks cleaned up (old images).
      stream: dynamodb.StreamViewType[STREAM_VIEW_TYPE],
    });
    for (const index of this.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey.name, type: attributeType(index.partitionKey.type) },
        sortKey: { name: index.sortKey.name, type: attributeType(index.sortKey.type) },
        projectionType: dynamodb.ProjectionType.KEYS_ONLY,
      });
    }
    Tags.of(table).add(KEPT_RESOURCE_TAGS.stack, Stack.of(this).stackName);
    Tags.of(table).add(KEPT_RESOURCE_TAGS.resource, "table");
    this.table = table;
  }

  /** ARNs of the table and each of its indexes, by name (no wildcard). */
  get arns(): string[] {
    return [this.table.tableArn, ...this.indexes.map((index) => `${this.table.tableArn}/index/${index.name}`)];
  }
}
