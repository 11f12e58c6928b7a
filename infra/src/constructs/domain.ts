// The service's own DNS name (-c domainName=... -c hostedZoneId=...): a Route 53 alias
// of it to the internal load balancer and, unless the deployment brings its own
// certificate (certificateArn), an ACM certificate for it, validated through a DNS
// record in the same hosted zone, for the TLS listener.
import * as acm from "aws-cdk-lib/aws-certificatemanager";
import type * as elbv2 from "aws-cdk-lib/aws-elasticloadbalancingv2";
import * as route53 from "aws-cdk-lib/aws-route53";
import * as targets from "aws-cdk-lib/aws-route53-targets";
import { Construct } from "constructs";

export interface DomainProps {
  /** The name clients connect to, e.g. queues.example.com. */
  readonly domainName: string;
  /**
   * The Route 53 hosted zone that holds domainName. It must be public: ACM reads the
   * validation record through public DNS (the alias then resolves to the load
   * balancer's private addresses, which only the VPC and its peers can reach).
   */
  readonly hostedZoneId: string;
  /**
   * Use this certificate (it must cover domainName) instead of creating one.
   * @default - a DNS-validated ACM certificate for domainName
   */
  readonly certificateArn?: string;
}

export class Domain extends Construct {
  readonly domainName: string;
  readonly zone: route53.IHostedZone;
  /** The listener's certificate: created (and validated) here, or the one given. */
  readonly certificate: acm.ICertificate;

  constructor(scope: Construct, id: string, props: DomainProps) {
    super(scope, id);
    this.domainName = props.domainName;
    // By id alone: the records below are given as fully qualified names, so the zone's name is not needed.
    this.zone = route53.HostedZone.fromHostedZoneId(this, "Zone", props.hostedZoneId);
    this.certificate = props.certificateArn
      ? acm.Certificate.fromCertificateArn(this, "Certificate", props.certificateArn)
      : new acm.Certificate(this, "Certificate", {
          domainName: props.domainName,
          // CloudFormation writes the validation record into the zone and waits until ACM has issued the certificate.
          validation: acm.CertificateValidation.fromDns(this.zone),
        });
  }

  /** The A record (alias) of domainName to the load balancer. */
  aliasTo(loadBalancer: elbv2.INetworkLoadBalancer): route53.ARecord {
    return new route53.ARecord(this, "Alias", {
      zone: this.zone,
      recordName: `${this.domainName}.`,
      target: route53.RecordTarget.fromAlias(new targets.LoadBalancerTarget(loadBalancer)),
      comment: "Queues: the gRPC endpoint (internal load balancer)",
    });
  }
}
