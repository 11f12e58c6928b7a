// Starts the emulators once for the whole test run and always stops them.
import type { TestProject } from "vitest/node";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
import { startLocalBackends } from "../../service/src/local/backends.js";

declare module "vitest" {
  export interface ProvidedContext {
    dynamodbEndpoint: string;
    sqsEndpoint: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const backends = await startLocalBackends();
  project.provide("dynamodbEndpoint", backends.dynamodbEndpoint);
  project.provide("sqsEndpoint", backends.sqsEndpoint);
  return () => backends.stop();
}
