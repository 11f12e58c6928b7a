#!/usr/bin/env node
// The `queues` command (package.json "bin"). In a checkout it runs the TypeScript
// source through tsx, so `npx queues` works right after `npm install`, with no build;
// where there is no tsx (an installed package), it runs the compiled dist/.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = new URL("./main.ts", import.meta.url);
const built = new URL("../../dist/service/cli/main.js", import.meta.url);

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
  await import(source.href);
} else if (existsSync(fileURLToPath(built))) {
  await import(built.href);
} else {
  console.error("queues: the CLI is not built; run `npm install` (with dev dependencies) or `npm run build`");
  process.exit(1);
}
