// The load balancer published as an AWS PrivateLink endpoint service
// (-c endpointService=true -c allowedPrincipals=...): workers in other VPCs and other
// accounts create an interface endpoint to it and connect through that, with no
// peering, no route between the networks, and overlapping address ranges allowed.
import * as ec2 from "aws-cdk-lib/aws-ec2";
import type * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as iam from "aws-cdk-lib/aws-iam";
import { Construct } from "constructs";

export interface EndpointServiceProps {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  /** IAM ARNs (accounts as arn:aws:iam::<account>:root, roles, users) allowed to create endpoints to the service. */
  readonly allowedPrincipals: readonly string[];
  /**
   * Each endpoint connection waits until the service's owner accepts it.
   * @default false - an allowed principal's endpoint connects at once
   */
  readonly acceptanceRequired?: boolean;
}

export class EndpointService extends Construct {
  readonly service: ec2.VpcEndpointService;

  constructor(scope: Construct, id: string, props: EndpointServiceProps) {
    super(scope, id);
    this.service = new ec2.VpcEndpointService(this, "Service", {
      vpcEndpointServiceLoadBalancers: [props.loadBalancer],
      // The allowlist is the gate; acceptance on top of it is an option.
      acceptanceRequired: props.acceptanceRequired ?? false,
      allowedPrincipals: props.allowedPrincipals.map((arn) => new iam.ArnPrincipal(arn)),
    });
  }

  /** What consumers name in `aws ec2 create-vpc-endpoint --service-name`. */
  get serviceName(): string {
    return this.service.vpcEndpointServiceName;
  }
}
