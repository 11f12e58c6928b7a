// The CDK app (cdk.json "app"): `npx cdk synth` / `npx cdk deploy`. Configuration
// comes from CDK context (cdk.json, or -c key=value); see infra/config.ts and the README.
import { pathToFileURL } from "node:url";
import { App, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { ConfigError, readConfig } from "./config.js";
import { QueuesStack } from "./queues-stack.js";
import { ChannelConfigError } from "@queues/server/definitions";

export const STACK_NAME = "Queues";

/** The app with its one stack; `env` is the CLI's account and region (CDK_DEFAULT_*), when known. */
export function buildApp(
  app = new App(),
  env: { account?: string; region?: string } = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
): { app: App; stack: QueuesStack } {
  const config = readConfig((key) => app.node.tryGetContext(key));
  const { account, region } = env;
  const stack = new QueuesStack(app, STACK_NAME, {
    config,
    // Environment-agnostic unless the CLI knows the account (needed to look up an existing VPC).
    env: account && region ? { account, region } : undefined,
    description: "Queues: a task queue on DynamoDB and SQS with gRPC workers (ECS Fargate behind an internal NLB)",
  });
  // AWS Solutions checks at every synth: an unacknowledged finding fails it.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    buildApp().app.synth();
  } catch (error) {
    if (error instanceof ConfigError || error instanceof ChannelConfigError) {
      console.error(`Queues CDK app: configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
}
