// Synthesizes the CDK app the way `npx cdk synth` does (same entry, same cdk-nag
// plugin), with the context of cdk.json plus overrides, into a temporary directory.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { App } from "aws-cdk-lib";
import { Template } from "aws-cdk-lib/assertions";
import { buildApp } from "../../infra/src/app.js";
import type { QueuesStack } from "../../infra/src/queues-stack.js";
import { cdkJsonPath } from "../../service/src/local/cdk-channels.js";

export const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(cdkJsonPath(), "utf8")) as { context: Record<string, unknown> }).context;

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
  const { app, stack } = buildApp(new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...context } }), env);
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
