// Whether dist/ (the compiled server the harnesses and some tests run as child
// processes) is the current code, and a build when it is not.
//
// dist/ (each package's) is stale when a source under <package>/src has no compiled
// file or is newer than it, or when proto/ is newer than the oldest compiled file
// (the generated types come from it). `npm test` builds first, so in CI dist/ is always current; a developer who
// runs `npx vitest run test/chaos.test.ts` after editing service/ would otherwise test
// the old code without noticing. The choice: requireBuild() runs `npm run build` itself,
// once, synchronously, under a lock shared by every process of this checkout (parallel
// test files, and other vitest runs, never build at the same time; whoever waited
// finds dist/ current and builds nothing). It throws, with the build's output, when the
// build fails or dist/ is still stale afterwards (a source edited during the build).
// Building lazily here rather than in vitest's globalSetup means only the test files
// that run dist/ pay for a build; a file that runs dist/ calls requireBuild() before it
// starts anything from there, so no process of its own runs from a dist/ being rebuilt.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** One lock per checkout, outside it (nothing written into the repository). */
const LOCK = join(tmpdir(), `queues-build-${createHash("sha256").update(ROOT).digest("hex").slice(0, 12)}.lock`);
const LOCK_WAIT_MS = 10 * 60_000;
const BUILD_TIMEOUT_MS = 5 * 60_000;

/** The built packages: each compiles <package>/src to <package>/dist. */
const PACKAGES = ["proto", "client", "cli", "service"];

/** Why dist/ is not the current code (e.g. "service/dist/ is older than service/src/app.ts"), or undefined when it is. */
export function staleBuild(root = ROOT): string | undefined {
  const name = (path: string) => relative(root, path);
  let oldestOutput = Number.POSITIVE_INFINITY;
  for (const pkg of PACKAGES) {
    const src = join(root, pkg, "src");
    const sources = filesUnder(src, (file) => file.endsWith(".ts") && !file.endsWith(".d.ts")).filter((file) => !file.includes(`${join(src, "generated")}`));
    for (const source of sources) {
      const output = join(root, pkg, "dist", relative(src, source)).replace(/\.ts$/, ".js");
      if (!existsSync(output)) return `${pkg}/dist/ is missing ${name(output)}`;
      const built = statSync(output).mtimeMs;
      if (statSync(source).mtimeMs > built) return `${pkg}/dist/ is older than ${name(source)}`;
      oldestOutput = Math.min(oldestOutput, built);
    }
  }
  if (oldestOutput === Number.POSITIVE_INFINITY) return "dist/ is missing";
  for (const proto of filesUnder(join(root, "proto"), (file) => file.endsWith(".proto"))) {
    if (statSync(proto).mtimeMs > oldestOutput) return `dist/ is older than ${name(proto)}`;
  }
  return undefined;
}

/**
 * Makes sure dist/ is the current code before `command` runs it: builds it (`npm run
 * build`) when it is stale, throws when that fails. See the header for why it builds.
 */
export function requireBuild(command: string): void {
  if (!staleBuild()) return;
  withBuildLock(() => {
    // Another process may have built while this one waited for the lock.
    const why = staleBuild();
    if (!why) return;
    process.stderr.write(`${why}: running npm run build before ${command}\n`);
    build(why, []);
    // tsc -b skips a package whose sources' contents did not change (a file restored with its
    // old content is newer than its output, yet up to date): force the emit then.
    const after = staleBuild();
    if (after) build(after, ["--force"]);
  });
  const still = staleBuild();
  if (still) throw new Error(`${still} (edited during the build?): run npm run build (${command} does)`);
}

function build(why: string, extra: string[]): void {
  try {
    execFileSync("npm", ["run", "build", "--", ...extra], { cwd: ROOT, stdio: "pipe", encoding: "utf8", timeout: BUILD_TIMEOUT_MS });
  } catch (error) {
    const { stdout = "", stderr = "" } = error as { stdout?: string; stderr?: string };
    throw new Error(`${why}, and npm run build failed (fix it, then run npm run build):\n${`${stdout}${stderr}`.slice(-4_000)}`);
  }
}

/** Runs `work` while holding the checkout's build lock (a directory: mkdir is atomic). */
function withBuildLock(work: () => void): void {
  const giveUpAt = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (lockAbandoned()) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > giveUpAt) throw new Error(`waited ${LOCK_WAIT_MS / 60_000} minutes for another process's build (lock ${LOCK})`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
  }
  try {
    writeFileSync(join(LOCK, "pid"), String(process.pid));
    work();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The lock's holder is gone (killed mid-build), or it is older than any build takes. */
function lockAbandoned(): boolean {
  try {
    if (Date.now() - statSync(LOCK).mtimeMs > BUILD_TIMEOUT_MS + 60_000) return true;
    const pid = Number(readFileSync(join(LOCK, "pid"), "utf8"));
    if (!Number.isInteger(pid) || pid <= 0) return false; // being written: give it a moment
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function filesUnder(dir: string, keep: (file: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && keep(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}
