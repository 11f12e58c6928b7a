// The tasks table, built from THE table definition the server uses
// (service/store/table-definition.ts): same key, same indexes, same TTL attribute.
import { RemovalPolicy } from "aws-cdk-lib";
import * as dynamodb from "aws-cdk-lib/aws-dynamodb";
import { Construct } from "constructs";
import { INDEXES, PARTITION_KEY, TTL_ATTRIBUTE } from "@queues/server/definitions";

export interface TaskTableProps {
  /**
   * Final tasks expire (TTL) when a retention is configured; the table then also streams removals.
   * @default false
   */
  readonly retentionConfigured?: boolean;
  /**
   * `cdk destroy` deletes the table with its tasks (no deletion protection).
   * @default false - the table is kept, deletion-protected
   */
  readonly destroyOnDelete?: boolean;
}

const attributeType = (type: "S" | "N") => (type === "S" ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER);

export class TaskTable extends Construct {
  readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, props: TaskTableProps = {}) {
    super(scope, id);
    this.table = new dynamodb.Table(this, "Table", {
      partitionKey: { name: PARTITION_KEY, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      removalPolicy: props.destroyOnDelete ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      deletionProtection: !props.destroyOnDelete,
      timeToLiveAttribute: props.retentionConfigured ? TTL_ATTRIBUTE : undefined,
      // Only TTL removals are consumed (by the cleanup function); the old image names what to clean up.
      stream: props.retentionConfigured ? dynamodb.StreamViewType.OLD_IMAGE : undefined,
    });
    for (const index of Object.values(INDEXES)) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey.name, type: attributeType(index.partitionKey.type) },
        sortKey: { name: index.sortKey.name, type: attributeType(index.sortKey.type) },
        projectionType: dynamodb.ProjectionType.KEYS_ONLY,
      });
    }
  }

  /** ARNs of the table and each of its indexes, by name (no wildcard). */
  get arns(): string[] {
    return [this.table.tableArn, ...Object.values(INDEXES).map((index) => `${this.table.tableArn}/index/${index.name}`)];
  }
}
