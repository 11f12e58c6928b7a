// The unit suite (npm run test:unit): the rules, the state machine and the use cases
// against in-memory implementations of the store and the queues. No emulator, no
// network: it runs in seconds.
import { defineConfig, mergeConfig } from "vitest/config";
import { shared } from "./vitest.shared.js";

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: ["test/unit/**/*.test.ts"],
      testTimeout: 10_000,
    },
  }),
);
