#!/usr/bin/env node
// The `queues` command (package.json "bin"). An installed package runs its compiled
// dist/. In a checkout of the repository (src/ present, tsx installed), it runs the
// TypeScript sources through tsx, so `npx queues` works right after `npm install`
// with no build; the "queues-source" condition makes @queues/* imports resolve to
// their sources as well.
import { existsSync } from "node:fs";
import { register } from "node:module";
import { fileURLToPath } from "node:url";

const source = new URL("../src/main.ts", import.meta.url);
const built = new URL("../dist/main.js", import.meta.url);

let tsx;
if (existsSync(fileURLToPath(source))) {
  try {
    tsx = await import("tsx/esm/api");
  } catch {
    tsx = undefined;
  }
}
if (tsx) {
  tsx.register();
  // Registered after tsx, so it runs first and hands tsx the extra condition.
  register("./source-condition.mjs", import.meta.url);
  await import(source.href);
} else if (existsSync(fileURLToPath(built))) {
  await import(built.href);
} else {
  console.error("queues: the CLI is not built; run `npm run build` (or `npm install` with dev dependencies in a checkout)");
  process.exit(1);
}
