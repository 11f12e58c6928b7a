// Context for synthesizing the stack in tests and in lint-templates.ts: the VPC a
// lookup would find, and the "all options" deployment. No test framework here, so
// that a plain script can import it.

/** The account and region of the tests that look a VPC up (vpcId). */
export const TEST_ENV = { account: "123456789012", region: "us-east-1" } as const;

/**
 * What `cdk synth` looks up for -c vpcId (and caches in cdk.context.json): a VPC with a
 * public, a private (with a NAT route) and an isolated subnet group over two AZs. The
 * CLI would look it up with credentials; without this, CDK's placeholder subnet ids
 * (not of the subnet-… form) fail the template validation of
 * @aws-cdk/core:validateAgainstDefaultRules.
 */
export function lookedUpVpc(vpcId: string, env: { account: string; region: string } = TEST_ENV): Record<string, unknown> {
  const group = (name: string, type: string, third: number) => ({
    name,
    type,
    subnets: ["a", "b"].map((az, index) => ({
      availabilityZone: `${env.region}${az}`,
      subnetId: `subnet-0${third}${index}00000000000000`,
      routeTableId: `rtb-0${third}${index}00000000000000`,
      cidr: `10.1.${third * 2 + index}.0/24`,
    })),
  });
  return {
    [`vpc-provider:account=${env.account}:filter.vpc-id=${vpcId}:region=${env.region}:returnAsymmetricSubnets=true`]: {
      vpcId,
      vpcCidrBlock: "10.1.0.0/16",
      ownerAccountId: env.account,
      availabilityZones: [],
      subnetGroups: [group("Public", "Public", 1), group("Private", "Private", 2), group("Isolated", "Isolated", 3)],
    },
  };
}

/**
 * Every option at once, the new ones included (the "all options" template that
 * cfn-lint checks, see lint-templates.ts): TLS through domainName (a created
 * certificate), the PrivateLink endpoint service, an adopted table and the adopted
 * queues of two of cdk.json's three channels (the third gets new ones).
 */
export const ALL_OPTIONS: Record<string, string> = {
  vpcCidr: "10.42.0.0/16",
  allowedCidrs: "10.20.0.0/16,192.168.1.0/24",
  desiredCount: "3",
  maxCount: "6",
  cpu: "512",
  memoryMiB: "1024",
  port: "8443",
  domainName: "queues.example.com",
  hostedZoneId: "Z0123456789ABCDEFGHIJ",
  endpointService: "true",
  allowedPrincipals: "arn:aws:iam::111122223333:root,arn:aws:iam::444455556666:role/queues-workers",
  endpointAcceptanceRequired: "true",
  existingTableName: "Queues-TasksTable45D1B62D-1ABCDEF",
  existingTableStreamArn: "arn:aws:dynamodb:us-east-1:123456789012:table/Queues-TasksTable45D1B62D-1ABCDEF/stream/2026-01-01T00:00:00.000",
  existingQueues: JSON.stringify({
    default: {
      queue: "Queues-ChannelsdefaultQueue6A4C0E7B-AbCdEf123456",
      deadLetterQueue: "https://sqs.us-east-1.amazonaws.com/123456789012/Queues-ChannelsdefaultDeadLetterQueue1F4D2C8A-AbCdEf123456",
    },
    emails: { queue: "Queues-ChannelsemailsQueue2B7E9D10-AbCdEf123456", deadLetterQueue: "Queues-ChannelsemailsDeadLetterQueue8C3A5F21-AbCdEf123456" },
  }),
  taskRetentionDays: "30",
  alarmTopicArn: "arn:aws:sns:us-east-1:123456789012:queues-ops",
  oldestMessageAlarmSeconds: "600",
  logRetentionDays: "90",
  reflection: "true",
  legacyOwnerIndex: "true",
};

/**
 * Channels with priority levels (the "priorities" template that cfn-lint checks, and
 * priorities.test.ts): "jobs" with 3 levels, created (3 queues, 1 dead-letter queue);
 * "ranked" with 2 levels, adopted with its level queue (one of them by URL); "default"
 * with one level, as in cdk.json.
 */
export const PRIORITY_CHANNELS = ["default", { name: "jobs", visibilityTimeoutSeconds: 120, maxReceiveCount: 50, priorities: 3 }, { name: "ranked", priorities: 2 }];
export const KEPT_RANKED_QUEUES = {
  queue: "Queues-ChannelsrankedQueue5D1C2B3A-Rk1Rk2Rk3Rk4",
  deadLetterQueue: "Queues-ChannelsrankedDeadLetterQueue9E8F7A6B-Rk5Rk6Rk7Rk8",
  levelQueues: ["https://sqs.us-east-1.amazonaws.com/123456789012/Queues-ChannelsrankedQueuep2C4D5E6F7-Rk9Rk0RkARkB"],
};
export const PRIORITIES: Record<string, string> = {
  channels: JSON.stringify(PRIORITY_CHANNELS),
  existingQueues: JSON.stringify({ ranked: KEPT_RANKED_QUEUES }),
};
