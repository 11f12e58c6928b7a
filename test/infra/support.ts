// Synthesizes the CDK app the way `npx cdk synth` does (same entry, same cdk-nag
// plugin), with the context of cdk.json (its options and its feature flags) plus
// overrides, into a temporary directory.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { expect } from "vitest";
import { buildApp } from "../../infra/src/app.js";
import type { QueuesStack } from "../../infra/src/queues-stack.js";
import { cdkJsonPath } from "../../service/src/local/cdk-channels.js";
import { lookedUpVpc } from "./contexts.js";

export const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(cdkJsonPath(), "utf8")) as { context: Record<string, unknown> }).context;
export { ALL_OPTIONS, lookedUpVpc, TEST_ENV } from "./contexts.js";

/**
 * Time allowed for one synth in a test or hook: one takes seconds on an idle machine
 * (the image asset copies the repository, the stream function is bundled), several
 * times that on a busy one.
 */
export const SYNTH_TIMEOUT_MS = 180_000;

export interface Synthesized {
  stack: QueuesStack;
  template: Template;
  /** The cloud assembly directory (asset bundles, the validation report). */
  outdir: string;
}

const outdirs: string[] = [];

export function synth(context: Record<string, unknown> = {}, env: { account?: string; region?: string } = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), "queues-cdk-"));
  outdirs.push(outdir);
  // With vpcId (and the account and region a lookup needs): the VPC as the CLI would have looked it up.
  const lookup =
    typeof context.vpcId === "string" && env.account && env.region ? lookedUpVpc(context.vpcId, { account: env.account, region: env.region }) : {};
  const { app, stack } = buildApp(new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...lookup, ...context } }), env);
  // Throws if cdk-nag reports an unacknowledged finding, as `cdk synth` fails then.
  app.synth();
  return { stack, template: Template.fromStack(stack), outdir };
}

export function removeSynthOutputs(): void {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

type Resources = Record<string, { Type: string; Properties?: Record<string, unknown> }>;

export function resourcesOf(template: Template, type: string): Resources {
  return template.findResources(type) as Resources;
}

export function countOf(template: Template, type: string): number {
  return Object.keys(resourcesOf(template, type)).length;
}

/** The one resource of a type (fails if there is not exactly one). */
export function only(template: Template, type: string): { id: string; Properties: Record<string, unknown> } {
  const entries = Object.entries(resourcesOf(template, type));
  if (entries.length !== 1) throw new Error(`expected one ${type}, found ${entries.length}`);
  const [id, resource] = entries[0] as [string, { Properties?: Record<string, unknown> }];
  return { id, Properties: resource.Properties ?? {} };
}

/** The logical id of the resource at a construct path under the stack (e.g. "Tasks/Table"). */
export function logicalId(stack: QueuesStack, path: string): string {
  const node = stack.node.findChild(path.split("/")[0] as string);
  const target = path
    .split("/")
    .slice(1)
    .reduce((construct, id) => construct.node.findChild(id), node);
  const resource = (target.node.defaultChild ?? target) as unknown as { logicalId?: string };
  return stack.resolve((resource as { logicalId: string }).logicalId) as string;
}

interface ValidationReport {
  pluginReports: { pluginName: string; conclusion?: string; violations?: { ruleName: string; severity: string }[] }[];
}

/**
 * The synth's validation report: no plugin failed, cdk-nag (AWS Solutions) and
 * CloudFormation's own checks found nothing, and the construct annotations
 * (@aws-cdk/core:annotationsInValidationReport) are exactly these warnings of ours.
 */
export function expectCleanValidationReport(s: Synthesized, warnings: readonly string[]): void {
  const report = JSON.parse(readFileSync(join(s.outdir, "validation-report.json"), "utf8")) as ValidationReport;
  expect(report.pluginReports.map((plugin) => plugin.pluginName)).toContain("AwsSolutions");
  for (const plugin of report.pluginReports) {
    expect(plugin.conclusion ?? "success", plugin.pluginName).toBe("success");
    if (plugin.pluginName === "Construct Annotations") {
      expect(plugin.violations?.map((v) => [v.ruleName, v.severity]).sort()).toEqual(warnings.map((id) => [`Annotation::${id}`, "warning"]).sort());
    } else {
      expect(plugin.violations ?? [], plugin.pluginName).toEqual([]);
    }
  }
}

/** The stack's own Lambda functions (not the handlers of CDK's custom resources, e.g. the one that empties the default security group). */
export function ourFunctions(template: Template): [string, { Type: string; Properties?: Record<string, unknown> }][] {
  return Object.entries(resourcesOf(template, "AWS::Lambda::Function")).filter(([id]) => !id.startsWith("Custom"));
}

/** A policy statement with its actions and resources in a fixed order (@aws-cdk/aws-iam:minimizePolicies sorts and merges them). */
export function sortedStatement<T extends { Action: string | string[]; Resource: unknown }>(statement: T): T & { Action: string[] } {
  const resources = Array.isArray(statement.Resource)
    ? [...(statement.Resource as unknown[])].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
    : statement.Resource;
  return { ...statement, Action: [statement.Action].flat().sort(), Resource: resources };
}
