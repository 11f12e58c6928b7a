// The packages as a worker's repository gets them: `npm pack` of the protocol, client
// and CLI packages, installed from the tarballs alone into an empty directory outside
// the repository; a script there creates a task with QueuesClient and processes it
// with Worker against a real server, `npx queues` works, and the installed tree holds
// none of the server's dependencies, nor the client's optional peer @opentelemetry/api
// (so that script also shows the SDK working without it). And the built import graph:
// nothing in the client or the CLI reaches into the server's code, and the client
// loads @opentelemetry/api only with a dynamic import.
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild } from "./harness/build.js";
import { startTestServer, type TestServer } from "./support/harness.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PACKED = ["@queues/protocol", "@queues/client", "@queues/cli"];
/** What must never be installed with the client: the server's and the infrastructure's dependencies. */
const SERVER_ONLY = [/^@aws-sdk\//, /^aws-cdk-lib$/, /^pino$/, /^commander$/, /^@queues\/server$/];

let work: string;
let server: TestServer;

/** Runs a command in the install directory; resolves with its output (rejects with it on a non-zero exit). */
async function inWork(command: string, args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run(command, args, { cwd: work, timeout, env: { ...process.env, NODE_OPTIONS: "" }, maxBuffer: 32 * 1024 * 1024 });
}

beforeAll(async () => {
  requireBuild("the package test");
  work = mkdtempSync(join(tmpdir(), "queues-install-"));
  const tarballs = join(work, "tarballs");
  mkdirSync(tarballs);
  // npm pack runs each package's prepack (its build) and writes its tarball.
  const pack = await run("npm", ["pack", "--json", "--pack-destination", tarballs, ...PACKED.flatMap((name) => ["--workspace", name])], {
    cwd: ROOT,
    timeout: 240_000,
    maxBuffer: 32 * 1024 * 1024,
  });
  const packed = JSON.parse(pack.stdout) as { name: string; filename: string; files: { path: string }[] }[];
  expect(packed.map((entry) => entry.name).sort()).toEqual([...PACKED].sort());
  for (const entry of packed) {
    const paths = entry.files.map((file) => file.path);
    // Compiled code and declarations are in the tarball; sources and tests are not.
    expect(paths, entry.name).toContain("LICENSE");
    expect(paths.some((path) => path.startsWith("dist/") && path.endsWith(".d.ts")), entry.name).toBe(true);
    expect(paths.filter((path) => path.startsWith("src/") || path.includes("test")), entry.name).toEqual([]);
  }
  // An empty directory outside the repository, and the tarballs: nothing else.
  writeFileSync(join(work, "package.json"), JSON.stringify({ name: "a-worker", version: "1.0.0", private: true, type: "module" }));
  await inWork("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", ...packed.map((entry) => join(tarballs, entry.filename))], 240_000);
  server = await startTestServer({ channels: ["default", "emails"] });
}, 600_000);

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the packed client and CLI, installed from their tarballs alone", () => {
  it("a script creates a task with QueuesClient and processes it with Worker", async () => {
    writeFileSync(
      join(work, "use.mjs"),
      `
      import { QueuesClient, Worker } from "@queues/client";
      const address = process.argv[2];
      // The client's optional peer dependency is not installed here: the SDK must work without it.
      const otel = await import("@opentelemetry/api").then(() => "installed", () => "absent");
      const queues = new QueuesClient({ address });
      const hashCode = await queues.createTask({ channel: "emails", input: "hello" });
      const done = new Promise((resolve) => {
        const worker = new Worker({ address, channel: "emails", concurrency: 2, handler: async (task) => task.Input.toUpperCase() });
        worker.on("taskSucceeded", () => worker.close().then(resolve));
        void worker.run();
      });
      await done;
      const task = await queues.getTaskByHashCode(hashCode);
      console.log(JSON.stringify({ state: task.State, output: task.Output, otel }));
      queues.close();
      `,
    );
    const { stdout } = await inWork(process.execPath, ["use.mjs", server.address], 60_000);
    expect(JSON.parse(stdout.trim().split("\n").at(-1) ?? "")).toEqual({ state: "SUCCESS", output: "HELLO", otel: "absent" });
  });

  it("npx queues --help and npx queues create work", async () => {
    const help = await inWork("npx", ["--no-install", "queues", "--help"]);
    expect(help.stdout).toMatch(/Usage: queues/);
    expect(help.stdout).toMatch(/create/);
    const created = await inWork("npx", ["--no-install", "queues", "--address", server.address, "create", "--channel", "default", "--input", "from the cli", "--json"]);
    const hashCode = (JSON.parse(created.stdout) as { hashCode: string }).hashCode;
    const found = await server.api.queryByHashCode(hashCode);
    expect(found.Data).toMatchObject({ Channel: "default", Input: "from the cli", State: "WAITING" });
  });

  it("installs none of the server's dependencies under the client", async () => {
    const { stdout } = await inWork("npm", ["ls", "--all", "--json"]);
    interface Node {
      version?: string;
      dependencies?: Record<string, Node>;
    }
    const tree = JSON.parse(stdout) as Node;
    // Installed packages only: npm lists an optional peer dependency that is not installed as {} (no version).
    const installed = (node: Node | undefined) => Object.entries(node?.dependencies ?? {}).filter(([, child]) => child.version !== undefined);
    const namesUnder = (node: Node | undefined): string[] => installed(node).flatMap(([name, child]) => [name, ...namesUnder(child)]);
    const client = tree.dependencies?.["@queues/client"];
    expect(client, "the client is installed").toBeDefined();
    const underClient = namesUnder(client);
    expect(underClient.filter((name) => SERVER_ONLY.some((pattern) => pattern.test(name)))).toEqual([]);
    // Its direct dependencies are gRPC and the protocol, nothing else.
    expect(installed(client).map(([name]) => name).sort()).toEqual(["@grpc/grpc-js", "@queues/protocol"]);
    // @opentelemetry/api is an optional peer dependency: declared, and not installed.
    const manifest = JSON.parse(readFileSync(join(work, "node_modules/@queues/client/package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
      peerDependenciesMeta?: Record<string, { optional?: boolean }>;
    };
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(["@grpc/grpc-js", "@queues/protocol"]);
    expect(manifest.peerDependencies?.["@opentelemetry/api"]).toBeDefined();
    expect(manifest.peerDependenciesMeta?.["@opentelemetry/api"]?.optional).toBe(true);
    expect(namesUnder(tree)).not.toContain("@opentelemetry/api");
    expect(readdirSync(join(work, "node_modules"))).not.toContain("@opentelemetry");
    // Nothing of the server's anywhere in the directory, either (the CLI brings commander, its own).
    const everything = namesUnder(tree);
    expect(everything.filter((name) => SERVER_ONLY.some((pattern) => pattern.test(name)) && name !== "commander")).toEqual([]);
  });
});

/** Every module specifier a compiled file imports: static imports and re-exports, and dynamic imports apart. */
function specifiersOf(file: string): { static: string[]; dynamic: string[] } {
  const text = readFileSync(file, "utf8");
  const found = new Set<string>();
  const dynamic = new Set<string>();
  for (const match of text.matchAll(/(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']/gm)) found.add(match[1] as string);
  for (const match of text.matchAll(/(?:^|[\s;])import\s*["']([^"']+)["']/gm)) found.add(match[1] as string);
  for (const match of text.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) dynamic.add(match[1] as string);
  return { static: [...found], dynamic: [...dynamic] };
}

function jsFilesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(m?js)$/.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name));
}

describe("the built import graph", () => {
  const packages: Record<string, { dirs: string[]; allowed: RegExp[]; dynamicOnly?: RegExp[] }> = {
    // @opentelemetry/api: the client's optional peer dependency, loaded lazily (a dynamic import in a try), never statically.
    client: { dirs: ["client/dist"], allowed: [/^node:/, /^@grpc\/grpc-js$/, /^@queues\/protocol$/], dynamicOnly: [/^@opentelemetry\/api$/] },
    cli: { dirs: ["cli/dist", "cli/bin"], allowed: [/^node:/, /^@queues\/client$/, /^commander$/, /^tsx\/esm\/api$/] },
  };

  for (const [name, { dirs, allowed, dynamicOnly = [] }] of Object.entries(packages)) {
    it(`${name}: imports only its own files, ${allowed.map(String).join(", ")}`, () => {
      requireBuild("the import graph test");
      const root = resolve(ROOT, name);
      const wrong: string[] = [];
      let files = 0;
      for (const dir of dirs) {
        for (const file of jsFilesUnder(resolve(ROOT, dir))) {
          files += 1;
          const specifiers = specifiersOf(file);
          for (const specifier of [...specifiers.static, ...specifiers.dynamic]) {
            const where = `${relative(ROOT, file)} imports ${specifier}`;
            if (specifier.startsWith(".")) {
              // A relative import stays inside the package (never into service/, proto/ or another package).
              if (relative(root, resolve(dirname(file), specifier)).startsWith("..")) wrong.push(where);
            } else if (allowed.some((pattern) => pattern.test(specifier))) continue;
            else if (!dynamicOnly.some((pattern) => pattern.test(specifier)) || specifiers.static.includes(specifier)) wrong.push(where);
          }
        }
      }
      expect(files).toBeGreaterThan(3);
      expect(wrong).toEqual([]);
    });
  }
});
