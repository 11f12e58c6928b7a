// What both test configurations share: the repository root, and the "queues-source"
// export condition, under which @queues/* imports resolve to the packages' sources
// (tests run the code as it is, with no build in between).
import { fileURLToPath } from "node:url";
import type { ViteUserConfig } from "vitest/config";

const SOURCE_CONDITIONS = ["queues-source"];

export const shared: ViteUserConfig = {
  resolve: { conditions: SOURCE_CONDITIONS },
  ssr: { resolve: { conditions: SOURCE_CONDITIONS, externalConditions: SOURCE_CONDITIONS } },
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
  },
};
