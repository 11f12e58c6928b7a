// The integration suite (npm run test:integration): real servers through real gRPC
// clients, on one DynamoDB Local and one SQS emulator per project; every test file
// makes its own table and queues on them.
//
// Two projects, one after the other:
// - "integration": two test files at a time (vitest's default is one on 2 cores): most
//   of a test's time is waiting (long polls, leases, backoffs), and every timing
//   assertion has a margin for calls 3x slower than on an idle machine;
// - "timing", one file at a time, afterwards: the flow-control tests, which measure
//   rates and orders of delivery over tens of seconds (beside a busy file, emulator
//   calls of 5 s and more starved a 5-a-second rate limit);
// - "harnesses" (fuzz, chaos, bench: each floods its own servers for a minute), one at
//   a time, last, on emulators of their own: run beside each other or beside the suite,
//   they pushed DynamoDB Local past the server's 5 s request timeout, and a 503 from an
//   overloaded emulator is not what the fuzz test looks for.
import { defineConfig, mergeConfig } from "vitest/config";
import { shared } from "./vitest.shared.js";

const TIMING = ["test/flow-control.test.ts", "test/flow-slots.test.ts"];
const HARNESSES = ["test/fuzz.test.ts", "test/chaos.test.ts", "test/bench.test.ts"];

export default mergeConfig(
  shared,
  defineConfig({
    test: {
      globalSetup: ["test/support/global-setup.ts"],
      setupFiles: ["test/support/setup-env.ts"],
      pool: "forks",
      testTimeout: 60_000,
      hookTimeout: 120_000,
      teardownTimeout: 30_000,
      projects: [
        {
          extends: true,
          test: {
            name: "integration",
            include: ["test/**/*.test.ts"],
            exclude: ["test/unit/**", "**/node_modules/**", ...TIMING, ...HARNESSES],
            maxWorkers: 2,
            sequence: { groupOrder: 0 },
          },
        },
        {
          extends: true,
          test: {
            name: "timing",
            include: TIMING,
            maxWorkers: 1,
            sequence: { groupOrder: 1 },
          },
        },
        {
          extends: true,
          test: {
            name: "harnesses",
            include: HARNESSES,
            maxWorkers: 1,
            sequence: { groupOrder: 2 },
          },
        },
      ],
    },
  }),
);
