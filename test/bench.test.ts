// `npm run bench` is a measurement, not a test: nothing here judges a number. The
// suite only checks that the quick run works end to end and ends with its JSON line.
//
// It runs the command of package.json's "bench" script without its leading `npm run
// build`: rebuilding dist/ here would rewrite the compiled server under the other test
// files (fuzz, chaos) that run it at the same time. The harness itself builds dist/
// when it is older than the sources (requireBuild, under a lock). Its report goes to
// a temporary folder, never into the repository.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

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
  // Creates by CreateTask against CreateTasks of 100.
  "createTaskPerSecond",
  "createTasksPerSecond",
  "createTaskSqsRequestsPerTask",
  "createTasksSqsRequestsPerTask",
  // The lifecycle on a channel with every flow-control option on, beside the plain one.
  "flowTasksPerSecond",
  "flowWruPerTask",
  "flowRruPerTask",
  "flowSqsRequestsPerTask",
  "flowCpuMicrosPerTask",
  "flowUsdPerMillionTasks",
  // The partition-load model (bench-partitions.ts) and the CPU comparison.
  "ceilingTasksPerSecondOneOwner",
  "ceilingTasksPerSecondManyOwners",
  "cpuRatioToBaseline",
];

const out = mkdtempSync(join(tmpdir(), "queues-bench-"));
let child: ChildProcess | undefined;
afterAll(() => {
  // A run cut short by the timeout must not go on measuring in the background.
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  rmSync(out, { recursive: true, force: true });
});

/** The "bench" script's command after its build step ("tsx test/harness/bench.ts"). */
function benchCommand(): string {
  const scripts = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
  const [build, ...rest] = (scripts.bench ?? "").split("&&").map((part) => part.trim());
  expect(build, `package.json "bench" is ${JSON.stringify(scripts.bench)}`).toBe("npm run build");
  expect(rest, "one command after the build").toHaveLength(1);
  return rest[0] as string;
}

describe("npm run bench -- --quick", () => {
  it("runs and prints one JSON object with every figure as its last line", { timeout: 300_000 }, async () => {
    // As `npm run bench -- --quick --out DIR` runs it: a shell, node_modules/.bin on the PATH
    // (exec: the shell becomes the command, so a kill reaches it).
    const command = `exec ${benchCommand()} --quick --out ${JSON.stringify(out)}`;
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const spawned = spawn(command, {
        cwd: ROOT,
        shell: true,
        env: { ...process.env, PATH: `${join(ROOT, "node_modules", ".bin")}${delimiter}${process.env.PATH ?? ""}` },
      });
      child = spawned;
      let stdout = "";
      let stderr = "";
      spawned.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
      spawned.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
      spawned.once("exit", (code) => resolve({ code, stdout, stderr }));
    });
    expect(result.code, result.stderr).toBe(0);
    const last = result.stdout.trim().split("\n").at(-1) ?? "";
    const figures = JSON.parse(last) as Record<string, unknown>;
    for (const field of FIELDS) {
      expect(typeof figures[field], field).toBe("number");
      expect(Number.isFinite(figures[field]), field).toBe(true);
    }
    expect(figures.sweep).toBeInstanceOf(Array);
    expect(result.stderr).toMatch(/concurrency\.svg/);
    expect(existsSync(join(out, "concurrency.svg"))).toBe(true);
    expect(existsSync(join(out, "report.json"))).toBe(true);
  });
});
