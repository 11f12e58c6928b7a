// Where the servers and the load balancer live. Either the user's VPC (imported by
// id), or a VPC created for the service with NO NAT gateway: its servers sit in
// public subnets with a public IP for outbound calls (SQS, ECR, CloudWatch Logs)
// and a security group that admits nothing from the internet, and DynamoDB and S3
// (ECR's image layers) go through free gateway endpoints. That is the cheapest way
// out of a VPC: a NAT gateway costs ~$33/month per AZ, interface endpoints for
// SQS, ECR (api + dkr) and Logs ~$58/month over two AZs; two public IPv4 addresses
// cost ~$7/month (README, "Deploy: what it costs idle").
import { RemovalPolicy } from "aws-cdk-lib";
import * as ec2 from "aws-cdk-lib/aws-ec2";
import * as logs from "aws-cdk-lib/aws-logs";
import { Construct } from "constructs";
import { CONFIG_DEFAULTS } from "../config.js";

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
        this.assignPublicIp = this.vpc.selectSubnets(this.subnets).subnets.every((subnet) => this.vpc.publicSubnets.includes(subnet));
      } else if (this.vpc.privateSubnets.length > 0) {
        // Private subnets with a route out (NAT) are the usual home of services in an existing VPC.
        this.subnets = { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, onePerAz: true };
        this.assignPublicIp = false;
      } else if (this.vpc.isolatedSubnets.length > 0) {
        // Needs endpoints for SQS, ECR, Logs (interface) and DynamoDB, S3 (gateway) in that VPC (see README).
        this.subnets = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED, onePerAz: true };
        this.assignPublicIp = false;
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
}
