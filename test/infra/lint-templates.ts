// Synthesizes the stack's templates and runs cfn-lint on them (README "Deploy"):
//
//   npx tsx --conditions=queues-source test/infra/lint-templates.ts [directory]
//
// - default: cdk.json's context, as `npx cdk synth` gives it;
// - all-options: every option at once (ALL_OPTIONS: TLS through domainName, the
//   PrivateLink endpoint service, an adopted table and adopted queues, ...);
// - all-options-imported-vpc: the same in an existing VPC (vpcId, as a lookup finds it);
// - priorities: channels with priority levels (PRIORITIES: one queue per level, created
//   for one channel and adopted for another, one dead-letter queue per channel).
//
// The templates stay in the directory (default: a new temporary one). Exit status 1
// when cfn-lint reports an error (its warnings are printed, and do not fail).
// Needs cfn-lint on the PATH (pip install cfn-lint).
import { spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { App } from "aws-cdk-lib";
import { buildApp } from "../../infra/src/app.js";
import { cdkJsonPath } from "../../service/src/local/cdk-channels.js";
import { ALL_OPTIONS, lookedUpVpc, PRIORITIES, TEST_ENV } from "./contexts.js";

const CDK_JSON_CONTEXT = (JSON.parse(readFileSync(cdkJsonPath(), "utf8")) as { context: Record<string, unknown> }).context;
const VPC_ID = "vpc-0123456789abcdef0";

const VARIANTS: { name: string; context: Record<string, unknown>; env: { account?: string; region?: string } }[] = [
  { name: "default", context: {}, env: {} },
  { name: "all-options", context: ALL_OPTIONS, env: {} },
  {
    name: "all-options-imported-vpc",
    context: { ...ALL_OPTIONS, vpcId: VPC_ID, subnetGroupName: "Private", ...lookedUpVpc(VPC_ID, TEST_ENV) },
    env: TEST_ENV,
  },
  { name: "priorities", context: PRIORITIES, env: {} },
];

/** cfn-lint's exit status is a bit field: 2 errors, 4 warnings, 8 informational; 1 is a crash. */
const CFN_LINT_ERROR = 2;

function main(): number {
  const directory = resolve(process.argv[2] ?? mkdtempSync(join(tmpdir(), "queues-templates-")));
  mkdirSync(directory, { recursive: true });
  const version = spawnSync("cfn-lint", ["--version"], { encoding: "utf8" });
  if (version.status !== 0) {
    console.error("cfn-lint is not installed (pip install cfn-lint)");
    return 1;
  }
  console.log(`${version.stdout.trim()}; templates in ${directory}`);
  let failed = false;
  for (const variant of VARIANTS) {
    const outdir = mkdtempSync(join(tmpdir(), `queues-cdk-${variant.name}-`));
    const { app, stack } = buildApp(new App({ outdir, context: { ...CDK_JSON_CONTEXT, ...variant.context } }), variant.env);
    const template = app.synth().getStackByName(stack.stackName).template as unknown;
    // The cloud assembly (a copy of the repository for the image asset) is not needed any more.
    rmSync(outdir, { recursive: true, force: true });
    const file = join(directory, `${variant.name}.template.json`);
    writeFileSync(file, `${JSON.stringify(template, null, 1)}\n`);
    const lint = spawnSync("cfn-lint", ["--format", "parseable", file], { encoding: "utf8" });
    const findings = `${lint.stdout}${lint.stderr}`.trim();
    const errors = lint.status === null || lint.status === 1 || (lint.status & CFN_LINT_ERROR) !== 0;
    const resources = Object.keys((template as { Resources: object }).Resources).length;
    console.log(`\n${variant.name} (${resources} resources): ${errors ? "ERRORS" : "no errors"}${findings ? "" : ", nothing reported"}`);
    if (findings) console.log(findings);
    failed ||= errors;
  }
  return failed ? 1 : 0;
}

process.exitCode = main();
