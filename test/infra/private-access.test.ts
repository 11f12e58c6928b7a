// TLS and private access (README "TLS and private access"): the service's own DNS name
// with a DNS-validated certificate (-c domainName -c hostedZoneId), and the load balancer
// published as a PrivateLink endpoint service (-c endpointService -c allowedPrincipals).
// Every assertion is on the synthesized template.
import { Annotations, Match } from "aws-cdk-lib/assertions";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_OPTIONS, countOf, expectCleanValidationReport, only, removeSynthOutputs, resourcesOf, synth, SYNTH_TIMEOUT_MS, type Synthesized } from "./support.js";

const DOMAIN = { domainName: "queues.example.com", hostedZoneId: "Z0123456789ABCDEFGHIJ" };
const CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f0e0d0c-1111-2222-3333-444455556666";
const PRINCIPALS = ["arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:role/queues-workers"];
const PRIVATE_LINK = { endpointService: "true", allowedPrincipals: PRINCIPALS.join(",") };

let base: Synthesized;
let named: Synthesized;
let published: Synthesized;

beforeAll(() => {
  base = synth();
  named = synth(DOMAIN);
  published = synth(PRIVATE_LINK);
}, 3 * SYNTH_TIMEOUT_MS);
afterAll(() => removeSynthOutputs());

const loadBalancerId = (s: Synthesized) => only(s.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").id;

describe("domainName and hostedZoneId", () => {
  it("create an ACM certificate for the name, validated by DNS in that hosted zone", () => {
    const certificate = only(named.template, "AWS::CertificateManager::Certificate").Properties;
    expect(certificate).toMatchObject({
      DomainName: DOMAIN.domainName,
      ValidationMethod: "DNS",
      DomainValidationOptions: [{ DomainName: DOMAIN.domainName, HostedZoneId: DOMAIN.hostedZoneId }],
    });
    expect(certificate.SubjectAlternativeNames).toBeUndefined();
    expect(countOf(base.template, "AWS::CertificateManager::Certificate")).toBe(0);
  });

  it("give the listener TLS with that certificate, HTTP/2 only (gRPC), and the recommended TLS 1.3 policy", () => {
    const certificate = only(named.template, "AWS::CertificateManager::Certificate").id;
    const listener = only(named.template, "AWS::ElasticLoadBalancingV2::Listener").Properties;
    expect(listener).toMatchObject({
      Protocol: "TLS",
      Port: 50051,
      AlpnPolicy: ["HTTP2Only"],
      SslPolicy: "ELBSecurityPolicy-TLS13-1-2-2021-06",
      Certificates: [{ CertificateArn: { Ref: certificate } }],
    });
    // The target group stays TCP: TLS ends at the load balancer.
    expect(only(named.template, "AWS::ElasticLoadBalancingV2::TargetGroup").Properties.Protocol).toBe("TCP");
  });

  it("create the Route 53 alias (A) of the name to the load balancer, in that zone", () => {
    const record = only(named.template, "AWS::Route53::RecordSet").Properties;
    const lb = loadBalancerId(named);
    expect(record).toMatchObject({
      Name: `${DOMAIN.domainName}.`,
      Type: "A",
      HostedZoneId: DOMAIN.hostedZoneId,
      AliasTarget: {
        DNSName: { "Fn::Join": ["", ["dualstack.", { "Fn::GetAtt": [lb, "DNSName"] }]] },
        HostedZoneId: { "Fn::GetAtt": [lb, "CanonicalHostedZoneID"] },
      },
    });
    expect(countOf(base.template, "AWS::Route53::RecordSet")).toBe(0);
  });

  it("output the endpoint (name:port) and leave the synth without the tokens-in-clear warning", () => {
    named.template.hasOutput("Endpoint", { Value: `${DOMAIN.domainName}:50051` });
    synth({ ...DOMAIN, port: "443" }).template.hasOutput("Endpoint", { Value: `${DOMAIN.domainName}:443` });
    expect(Annotations.fromStack(named.stack).findWarning("*", Match.stringLikeRegexp("tokens cross the VPC"))).toEqual([]);
    expectCleanValidationReport(named, ["queues:no-alarm-topic"]);
  }, SYNTH_TIMEOUT_MS);

  it("with certificateArn as well: that certificate is used and none is created; the alias and the endpoint output remain", () => {
    const both = synth({ ...DOMAIN, certificateArn: CERTIFICATE_ARN });
    expect(countOf(both.template, "AWS::CertificateManager::Certificate")).toBe(0);
    expect(only(both.template, "AWS::ElasticLoadBalancingV2::Listener").Properties).toMatchObject({
      Protocol: "TLS",
      Certificates: [{ CertificateArn: CERTIFICATE_ARN }],
    });
    expect(only(both.template, "AWS::Route53::RecordSet").Properties).toMatchObject({ Name: `${DOMAIN.domainName}.`, Type: "A" });
    both.template.hasOutput("Endpoint", { Value: `${DOMAIN.domainName}:50051` });
  }, SYNTH_TIMEOUT_MS);

  it("certificateArn alone still gives a TLS listener with that certificate, and no DNS record", () => {
    const tls = synth({ certificateArn: CERTIFICATE_ARN });
    expect(only(tls.template, "AWS::ElasticLoadBalancingV2::Listener").Properties).toMatchObject({
      Protocol: "TLS",
      AlpnPolicy: ["HTTP2Only"],
      Certificates: [{ CertificateArn: CERTIFICATE_ARN }],
    });
    expect(countOf(tls.template, "AWS::Route53::RecordSet")).toBe(0);
    expect(tls.template.findOutputs("Endpoint")).toEqual({});
  }, SYNTH_TIMEOUT_MS);
});

describe("endpointService and allowedPrincipals (PrivateLink)", () => {
  it("publish the load balancer as an endpoint service, open to the allowed principals only, connecting without acceptance", () => {
    const service = only(published.template, "AWS::EC2::VPCEndpointService");
    expect(service.Properties).toEqual({ AcceptanceRequired: false, NetworkLoadBalancerArns: [{ Ref: loadBalancerId(published) }] });
    const permissions = only(published.template, "AWS::EC2::VPCEndpointServicePermissions").Properties;
    expect(permissions).toEqual({ ServiceId: { Ref: service.id }, AllowedPrincipals: PRINCIPALS });
    for (const type of ["AWS::EC2::VPCEndpointService", "AWS::EC2::VPCEndpointServicePermissions"]) expect(countOf(base.template, type)).toBe(0);
  });

  it("output the service name consumers create their interface endpoints with", () => {
    const service = only(published.template, "AWS::EC2::VPCEndpointService").id;
    published.template.hasOutput("EndpointServiceName", {
      Value: { "Fn::Join": [".", ["com.amazonaws.vpce", { Ref: "AWS::Region" }, { Ref: service }]] },
    });
  });

  it("the load balancer does not apply allowedCidrs to PrivateLink traffic (the allowlist and the consumers' endpoint groups do); without it, the setting is untouched", () => {
    expect(only(published.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").Properties.EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic).toBe("off");
    expect(only(base.template, "AWS::ElasticLoadBalancingV2::LoadBalancer").Properties.EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic).toBeUndefined();
    // Traffic from the VPC and its peers is still filtered by allowedCidrs.
    const lb = Object.entries(resourcesOf(published.template, "AWS::EC2::SecurityGroup")).find(([id]) => id.startsWith("ServerLoadBalancerSecurityGroup"));
    expect((lb?.[1].Properties?.SecurityGroupIngress as { CidrIp: string }[]).map((rule) => rule.CidrIp)).toEqual(["10.0.0.0/16"]);
  });

  it("with endpointAcceptanceRequired, each connection waits for the owner's acceptance; cdk-nag stays clean", () => {
    const accepted = synth({ ...PRIVATE_LINK, endpointAcceptanceRequired: "true" });
    expect(only(accepted.template, "AWS::EC2::VPCEndpointService").Properties.AcceptanceRequired).toBe(true);
    expectCleanValidationReport(published, ["queues:auth-without-tls", "queues:no-alarm-topic"]);
  }, SYNTH_TIMEOUT_MS);
});

describe("every option at once (the all-options template that cfn-lint checks)", () => {
  let all: Synthesized;
  beforeAll(() => {
    all = synth(ALL_OPTIONS);
  }, SYNTH_TIMEOUT_MS);

  it("synthesizes with cdk-nag (AWS Solutions) and CloudFormation's checks clean, and no warning left", () => {
    expectCleanValidationReport(all, []);
  });

  it("has the certificate, the alias, the endpoint service and the restricted default security group, and adopts instead of creating", () => {
    for (const type of [
      "AWS::CertificateManager::Certificate",
      "AWS::Route53::RecordSet",
      "AWS::EC2::VPCEndpointService",
      "AWS::EC2::VPCEndpointServicePermissions",
      "Custom::VpcRestrictDefaultSG",
    ]) {
      expect(countOf(all.template, type), type).toBe(1);
    }
    expect(countOf(all.template, "AWS::DynamoDB::Table")).toBe(0);
    // Only the channel that was not adopted (reports) has queues of its own, plus the stream function's.
    expect(countOf(all.template, "AWS::SQS::Queue")).toBe(3);
    expect(only(all.template, "AWS::ElasticLoadBalancingV2::Listener").Properties).toMatchObject({ Protocol: "TLS", Port: 8443 });
    all.template.hasOutput("Endpoint", { Value: "queues.example.com:8443" });
    expect(only(all.template, "AWS::EC2::VPCEndpointService").Properties.AcceptanceRequired).toBe(true);
  });
});
