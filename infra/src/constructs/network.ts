// Where the servers and the load balancer live. Either the user's VPC (imported by
// id), or a VPC created for the service with NO NAT gateway: its servers sit in
// public subnets with a public IP for outbound calls (SQS, ECR, CloudWatch Logs)
// and a security group that admits nothing from the internet, and DynamoDB and S3
// (ECR's image layers) go through free gateway endpoints. That is the cheapest way
// out of a VPC: a NAT gateway costs ~$33/month per AZ, interface endpoints for
// SQS, ECR (api + dkr) and Logs ~$58/month over two AZs; two public IPv4 addresses
// cost ~$7/month (README, "Deploy: what it costs idle").
import { Annotations, RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { CONFIG_DEFAULTS } from "../config.js";

/**
 * What servers in subnets without a route out need in the VPC, by service name
 * (`com.amazonaws.<region>.<name>`): ECR to pull the image, Logs for the log driver,
 * SQS and DynamoDB for the work, S3 for ECR's image layers, and Secrets Manager for
 * the auth tokens ECS injects at task start (with auth on).
 */
export const ISOLATED_SUBNET_ENDPOINTS = {
  interface: ["ecr.api", "ecr.dkr", "logs", "sqs"],
  interfaceWithAuth: ["secretsmanager"],
  gateway: ["dynamodb", "s3"],
} as const;

/** The endpoint list for servers in isolated subnets, as the synth warning and the README give it. */
export function isolatedSubnetEndpoints(auth: boolean): string {
  const interfaces = [...ISOLATED_SUBNET_ENDPOINTS.interface, ...(auth ? ISOLATED_SUBNET_ENDPOINTS.interfaceWithAuth : [])];
  return `interface endpoints ${interfaces.join(", ")}; gateway endpoints ${ISOLATED_SUBNET_ENDPOINTS.gateway.join(", ")}`;
}

export interface NetworkProps {
  /**
   * Import this VPC instead of creating one.
   * @default - a new VPC with two public subnets in two AZs and no NAT gateway
   */
  readonly vpcId?: string;
  /**
   * In an imported VPC, the subnet group to use.
   * @default - the first of: private subnets with egress, isolated subnets, public subnets
   */
  readonly subnetGroupName?: string;
  /**
   * The address range of a created VPC.
   * @default "10.0.0.0/16"
   */
  readonly vpcCidr?: string;
  /**
   * Retention of the VPC flow log (rejected traffic).
   * @default 30
   */
  readonly logRetentionDays?: number;
  /**
   * Bearer-token auth is on (its secret is read at task start: isolated subnets then
   * need a Secrets Manager endpoint too).
   * @default true
   */
  readonly auth?: boolean;
}

export class Network extends Construct {
  readonly vpc: ec2.IVpc;
  /** The VPC's address range as a literal (the default for who may connect). */
  readonly cidr: string;
  /** Subnets of the servers and of the internal load balancer (at least two AZs). */
  readonly subnets: ec2.SubnetSelection;
  /** Servers in public subnets need a public IP to reach AWS APIs (there is no NAT). */
  readonly assignPublicIp: boolean;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    if (props.vpcId) {
      this.vpc = ec2.Vpc.fromLookup(this, "Vpc", { vpcId: props.vpcId });
      this.cidr = this.vpc.vpcCidrBlock;
      // One subnet per AZ: a load balancer takes at most one per AZ, and a VPC may have several tiers of a type.
      if (props.subnetGroupName) {
        this.subnets = { subnetGroupName: props.subnetGroupName, onePerAz: true };
        const chosen = this.vpc.selectSubnets(this.subnets).subnets;
        this.assignPublicIp = chosen.every((subnet) => this.vpc.publicSubnets.includes(subnet));
        if (chosen.every((subnet) => this.vpc.isolatedSubnets.includes(subnet))) this.warnIsolated(props);
      } else if (this.vpc.privateSubnets.length > 0) {
        // Private subnets with a route out (NAT) are the usual home of services in an existing VPC.
        this.subnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, onePerAz: true };
        this.assignPublicIp = false;
      } else if (this.vpc.isolatedSubnets.length > 0) {
        // Needs the endpoints of ISOLATED_SUBNET_ENDPOINTS in that VPC (see README).
        this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED, onePerAz: true };
        this.assignPublicIp = false;
        this.warnIsolated(props);
      } else {
        this.subnets = { subnetType: ec2.SubnetType.PUBLIC, onePerAz: true };
        this.assignPublicIp = true;
      }
      return;
    }
    const cidr = props.vpcCidr ?? CONFIG_DEFAULTS.vpcCidr;
    const vpc = new ec2.Vpc(this, "Vpc", {
      ipAddresses: ec2.IpAddresses.cidr(cidr),
      maxAzs: 2,
      natGateways: 0,
      // The VPC's default security group admits nothing and sends nothing (nothing here uses
      // it): a CDK custom resource removes its rules at deploy time (a CIS AWS Foundations check).
      restrictDefaultSecurityGroup: true,
      subnetConfiguration: [{ name: "public", subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: {
        DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      },
    });
    // Rejected connections are the ones worth seeing (someone knocking on a closed port).
    const flowLogGroup = new logs.LogGroup(this, "RejectedTrafficLog", {
      retention: (props.logRetentionDays ?? CONFIG_DEFAULTS.logRetentionDays) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    vpc.addFlowLog("RejectedTraffic", {
      trafficType: ec2.FlowLogTrafficType.REJECT,
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup),
      maxAggregationInterval: ec2.FlowLogMaxAggregationInterval.TEN_MINUTES,
    });
    this.vpc = vpc;
    this.cidr = cidr;
    this.subnets = { subnetType: ec2.SubnetType.PUBLIC };
    this.assignPublicIp = true;
  }

  /** Servers in isolated subnets start only if the VPC has these endpoints: the synth says which. */
  private warnIsolated(props: NetworkProps): void {
    Annotations.of(this).addWarningV2(
      "queues:isolated-subnet-endpoints",
      `The servers go to isolated subnets of ${props.vpcId}: they start only if that VPC has ${isolatedSubnetEndpoints(props.auth ?? true)}.`,
    );
  }
}
