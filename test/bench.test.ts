// `npm run bench` is a measurement, not a test: nothing here judges a number. The
// suite only checks that the quick run works end to end and ends with its JSON line.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const FIELDS = [
  "ratio",
  "tasksPerSecond",
  "baselineTasksPerSecond",
  "dispatchP50Ms",
  "dispatchP99Ms",
  "cpuMicrosPerTask",
  "wruPerTask",
  "rruPerTask",
  "sqsRequestsPerTask",
  "usdPerMillionTasks",
  "idleReceivesPerMinute",
];

describe("npm run bench -- --quick", () => {
  it("runs and prints one JSON object with every figure as its last line", { timeout: 300_000 }, async () => {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn("npm", ["run", "--silent", "bench", "--", "--quick", "--out", "bench-results/test"], { cwd: ROOT, env: process.env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
      child.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.code, out.stderr).toBe(0);
    const last = out.stdout.trim().split("\n").at(-1) ?? "";
    const result = JSON.parse(last) as Record<string, unknown>;
    for (const field of FIELDS) {
      expect(typeof result[field], field).toBe("number");
      expect(Number.isFinite(result[field]), field).toBe(true);
    }
    expect(result.sweep).toBeInstanceOf(Array);
    expect(out.stderr).toMatch(/concurrency\.svg/);
  });
});
