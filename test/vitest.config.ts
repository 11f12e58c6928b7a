// The integration suite (npm run test:integration): real servers through real gRPC
// clients, on one DynamoDB Local and one SQS emulator for the whole run; every test
// file makes its own table and queues on them.
import { defineConfig, mergeConfig } from "vitest/config";
import { shared } from "./vitest.shared.js";

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      include: ["test/**/*.test.ts"],
      exclude: ["test/unit/**", "**/node_modules/**"],
      globalSetup: ["test/support/global-setup.ts"],
      setupFiles: ["test/support/setup-env.ts"],
      pool: "forks",
      // Two test files at a time (vitest's default is one on 2 cores): most of a test's
      // time is waiting (long polls, leases, backoffs), and every timing assertion has a
      // margin for calls 3x slower than on an idle machine.
      maxWorkers: 2,
      testTimeout: 60_000,
      hookTimeout: 120_000,
      teardownTimeout: 30_000,
    },
  }),
);
