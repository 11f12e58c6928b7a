// The `queues` command (package.json "bin") against a real server: every
// subcommand's output, --json, --help, and the exit codes scripts rely on.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QueuesClient, type Task } from "@queues/client";
import { ExitCode } from "../cli/src/exit-codes.js";
import { freePort } from "../service/src/local/free-port.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";
import { requireBuild } from "./harness/build.js";

// The compiled CLI, as an installed package runs it (cli/bin/queues.mjs in a checkout runs the
// sources through tsx, which costs each of the many runs here about a second more; the
// first test runs that path, with npx, as a user does after a fresh clone).
const BIN = fileURLToPath(new URL("../cli/dist/main.js", import.meta.url));
const ROOT = fileURLToPath(new URL("..", import.meta.url));

let server: TestServer;
let client: QueuesClient;

beforeAll(async () => {
  requireBuild("the compiled queues command");
  server = await startTestServer({
    channels: ["default", "work", "fails", "watched", { name: "slow", visibilityTimeoutSeconds: 2 }, { name: "ranked", priorities: 3, concurrencyPerKey: 1 }],
  });
  client = new QueuesClient({ address: server.address });
});
afterAll(async () => {
  client?.close();
  await server?.stop();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function queues(args: string[], options: { input?: string; address?: string; onStdout?: (stdout: string) => void } = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, "--address", options.address ?? server.address, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
      options.onStdout?.(stdout);
    });
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.input ?? "");
  });
}

async function json<T>(args: string[], input?: string): Promise<T> {
  const run = await queues(["--json", ...args], { input });
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as T;
}

describe("queues --help", () => {
  it("works from the repository with npx, as after a fresh clone and npm install", () => {
    const run = spawnSync("npx", ["--no-install", "queues", "--help"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Usage: queues/);
    for (const command of ["create", "get", "list", "cancel", "rerun", "length", "watch", "work"]) expect(run.stdout).toContain(command);
  });

  it("every subcommand has its --help", async () => {
    const commands = ["create", "get", "list", "cancel", "rerun", "length", "watch", "work", "schedule", "schedule put", "schedule list", "schedule delete"];
    const runs = await Promise.all(commands.map((command) => queues([...command.split(" "), "--help"])));
    runs.forEach((run, index) => {
      expect(run.code, commands[index]).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`Usage: queues ${commands[index]}`));
    });
  });

  it("a usage error exits 2 and says what is wrong", async () => {
    const run = await queues(["create"]);
    expect(run.code).toBe(ExitCode.INVALID);
    expect(run.stderr).toMatch(/--channel/);
    expect((await queues(["get", "not-a-number"])).code).toBe(ExitCode.INVALID);
    expect((await queues(["nope"])).code).toBe(ExitCode.INVALID);
    const header = await queues(["--header", "no-colon", "get", "1"]);
    expect(header.code).toBe(ExitCode.INVALID);
    expect(header.stderr).toMatch(/--header must be name:value/);
  });
});

describe("queues create / get / list / length / cancel", () => {
  it("create prints the new task; --json gives its HashCode and the task", async () => {
    const run = await queues(["create", "--channel", "default", "--input", "hello", "--owner", "18446744073709551615"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Created task \d+ \(HashCode [\w~-]{20}\) on channel default, WAITING\n$/);
    const created = await json<{ hashCode: string; task: Task }>(["create", "-c", "default", "--input-file", "-"], "from stdin");
    expect(created.task).toMatchObject({ HashCode: created.hashCode, Input: "from stdin", State: "WAITING", Channel: "default" });
  });

  it("create exits 4 for a HashCode that exists, 2 for a bad channel or Input", async () => {
    const hashCode = `cli-${Date.now()}`;
    expect((await queues(["create", "-c", "default", "--hash-code", hashCode])).code).toBe(0);
    const again = await queues(["create", "-c", "default", "--hash-code", hashCode]);
    expect(again.code).toBe(ExitCode.CONFLICT);
    expect(again.stderr).toContain(hashCode);
    const duplicate = await queues(["--json", "create", "-c", "default", "--hash-code", hashCode]);
    expect(JSON.parse(duplicate.stdout)).toMatchObject({ state: 409, exitCode: ExitCode.CONFLICT });
    const badChannel = await queues(["create", "-c", "no-such-channel"]);
    expect(badChannel.code).toBe(ExitCode.INVALID);
    expect(badChannel.stderr).toMatch(/not configured/);
  });

  it("get by ID and by HashCode (table and --json); exit 3 for a missing task", async () => {
    const created = await json<{ hashCode: string; task: Task }>(["create", "-c", "default", "-i", "look me up"]);
    const table = await queues(["get", created.task.ID]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^ID\\s+${created.task.ID}$`, "m"));
    expect(table.stdout).toMatch(/^State\s+WAITING$/m);
    expect(table.stdout).toMatch(/^Input\s+look me up$/m);
    expect(await json<Task>(["get", "--hash-code", created.hashCode])).toMatchObject({ ID: created.task.ID });
    const missing = await queues(["get", "1"]);
    expect(missing.code).toBe(ExitCode.NOT_FOUND);
    expect(missing.stderr).toMatch(/does not exist/);
  });

  it("list shows an owner's exact total and its tasks newest first", async () => {
    const owner = String(2n ** 63n + BigInt(Date.now()));
    const ids: string[] = [];
    for (const input of ["one", "two", "three"]) ids.push((await json<{ task: Task }>(["create", "-c", "default", "-i", input, "--owner", owner])).task.ID);
    // The total is counted from the table's stream: it includes a task a moment after its create.
    const page = await eventually(async () => {
      const listed = await json<{ total: string; tasks: Task[] }>(["list", "--owner", owner, "--limit", "2"]);
      return listed.total === "3" ? listed : undefined;
    });
    expect(page.total).toBe("3");
    expect(page.tasks.map((task) => task.ID)).toEqual([ids[2], ids[1]]);
    const table = await queues(["list", "--owner", owner]);
    expect(table.stdout).toMatch(new RegExp(`^Owner ${owner}: 3 task\\(s\\)`));
    expect(table.stdout).toMatch(/^ID\s+STATE\s+CHANNEL/m);
    expect(table.stdout.trim().split("\n")).toHaveLength(5);
  });

  it("length prints the backlog; cancel prints what it cancelled and exits 4 the second time", async () => {
    const before = Number((await queues(["length", "watched"])).stdout);
    const created = await json<{ task: Task }>(["create", "-c", "watched", "-i", "to cancel"]);
    expect(Number((await queues(["length", "watched"])).stdout)).toBe(before + 1);
    expect(await json<{ channel: string; length: string }>(["length", "watched"])).toEqual({ channel: "watched", length: String(before + 1) });
    const cancel = await queues(["cancel", created.task.ID]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toMatch(/^Cancelled 1 task\(s\)/);
    expect(cancel.stdout).toMatch(new RegExp(`${created.task.ID}\\s+CANCEL`));
    const again = await queues(["cancel", created.task.ID]);
    expect(again.code).toBe(ExitCode.CONFLICT);
    expect(again.stderr).toMatch(/already CANCEL/);
    expect((await queues(["length", "no-such-channel"])).code).toBe(ExitCode.INVALID);
  });

  it("rerun prints the new task like create (--json: its HashCode and the task); exit 4 for a task not final, 3 for an absent one, 2 for ID 0", async () => {
    const created = await json<{ task: Task }>(["create", "-c", "default", "-i", "run me twice", "--owner", "42"]);
    // WAITING: not final yet.
    const early = await queues(["rerun", created.task.ID]);
    expect(early.code).toBe(ExitCode.CONFLICT);
    expect(early.stderr).toMatch(/is WAITING; only a final task/);
    const early409 = await queues(["--json", "rerun", created.task.ID]);
    expect(JSON.parse(early409.stdout)).toMatchObject({ state: 409, exitCode: ExitCode.CONFLICT });
    await client.cancelTask(created.task.ID);
    const run = await queues(["rerun", created.task.ID]);
    expect(run.code, run.stderr).toBe(0);
    const line = new RegExp(`^Created task (\\d+) from task ${created.task.ID} \\(HashCode ([\\w~-]{20})\\) on channel default, WAITING\n$`).exec(run.stdout);
    expect(line, run.stdout).not.toBeNull();
    const again = await json<{ hashCode: string; task: Task }>(["rerun", created.task.ID]);
    expect(again.task).toMatchObject({ HashCode: again.hashCode, Input: "run me twice", Owner: "42", Channel: "default", State: "WAITING" });
    expect([again.task.ID, again.hashCode]).not.toEqual([line?.[1], line?.[2]]);
    for (const id of [line?.[1] as string, again.task.ID]) await client.cancelTask(id);
    expect((await queues(["rerun", String(BigInt(again.task.ID) + 1_000_000n)])).code).toBe(ExitCode.NOT_FOUND);
    expect((await queues(["rerun", "0"])).code).toBe(ExitCode.INVALID);
    expect((await queues(["rerun", "x"])).code).toBe(ExitCode.INVALID);
  });

  it("exits 5 when the server cannot be reached", async () => {
    const run = await queues(["--deadline", "1000", "get", "1"], { address: `127.0.0.1:${await freePort()}` });
    expect(run.code).toBe(ExitCode.UNAVAILABLE);
  });
});

describe("queues create --run-at / --delay, queues schedule", () => {
  it("create --delay and --run-at schedule the task (RunAt shown); a bad time exits 2", async () => {
    const before = Date.now();
    const delayed = await json<{ task: Task }>(["create", "-c", "default", "-i", "later", "--delay", "90s"]);
    const runAt = Date.parse(delayed.task.RunAt);
    expect(runAt).toBeGreaterThanOrEqual(before + 90_000);
    expect(runAt).toBeLessThan(Date.now() + 90_000 + 1_000);
    const at = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const dated = await json<{ task: Task }>(["create", "-c", "default", "--run-at", at]);
    expect(dated.task.RunAt).toBe(at);
    const shown = await queues(["get", dated.task.ID]);
    expect(shown.stdout).toContain(`RunAt       ${at}`);
    for (const task of [delayed.task, dated.task]) await client.cancelTask(task.ID);
    const bad = await queues(["create", "-c", "default", "--run-at", "tomorrow"]);
    expect(bad.code).toBe(ExitCode.INVALID);
    expect(bad.stderr).toContain("RunAt");
    expect((await queues(["create", "-c", "default", "--delay", "soon"])).code).toBe(ExitCode.INVALID);
    expect((await queues(["create", "-c", "default", "--delay", "5s", "--run-at", at])).code).toBe(ExitCode.INVALID);
  });

  it("schedule put / list / delete, with their exit codes", async () => {
    const put = await json<{ Name: string; NextRunTime: string; TimeZone: string }>([
      "schedule", "put", "cli-nightly", "--cron", "0 3 * * *", "-c", "work", "--time-zone", "Europe/Paris", "-i", "rebuild",
    ]);
    expect(put).toMatchObject({ Name: "cli-nightly", TimeZone: "Europe/Paris" });
    expect(Date.parse(put.NextRunTime)).toBeGreaterThan(Date.now());
    const table = await queues(["schedule", "list", "-c", "work"]);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/cli-nightly\s+0 3 \* \* \*\s+Europe\/Paris\s+work/);
    const paused = await queues(["schedule", "put", "cli-nightly", "--cron", "0 3 * * *", "-c", "work", "--paused"]);
    expect(paused.stdout).toContain("(paused)");
    expect((await queues(["schedule", "put", "cli-bad", "--cron", "every day", "-c", "work"])).code).toBe(ExitCode.INVALID);
    expect((await queues(["schedule", "delete", "cli-nightly"])).code).toBe(0);
    expect((await queues(["schedule", "delete", "cli-nightly"])).code).toBe(ExitCode.NOT_FOUND);
  });
});

describe("queues create / schedule put --priority / --concurrency-key", () => {
  it("create --priority and --concurrency-key reach the task (get shows them); a level the channel lacks or a bad key exits 2", async () => {
    for (const command of ["create", "schedule put"]) {
      const help = await queues([...command.split(" "), "--help"]);
      expect(help.stdout, command).toMatch(/--priority <n>/);
      expect(help.stdout, command).toMatch(/--concurrency-key <key>/);
    }
    const created = await json<{ task: Task }>(["create", "-c", "ranked", "-i", "urgent", "--priority", "1", "--concurrency-key", "tenant-42"]);
    expect(created.task).toMatchObject({ Channel: "ranked", Priority: "1", ConcurrencyKey: "tenant-42" });
    const shown = await queues(["get", created.task.ID]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^Priority\s+1$/m);
    expect(shown.stdout).toMatch(/^ConcurrencyKey\s+tenant-42$/m);
    // Left out: the middle level of 3; no key, no ConcurrencyKey line.
    const middle = await json<{ task: Task }>(["create", "-c", "ranked"]);
    expect(middle.task).toMatchObject({ Priority: "2", ConcurrencyKey: "" });
    expect((await queues(["get", middle.task.ID])).stdout).not.toMatch(/^ConcurrencyKey/m);
    for (const task of [created.task, middle.task]) await client.cancelTask(task.ID);

    const tooLow = await queues(["create", "-c", "ranked", "--priority", "4"]);
    expect(tooLow.code).toBe(ExitCode.INVALID);
    expect(tooLow.stderr).toMatch(/Priority is 4; this channel has 3 levels/);
    const tooLowJson = await queues(["--json", "create", "-c", "ranked", "--priority", "4"]);
    expect(JSON.parse(tooLowJson.stdout)).toMatchObject({ state: 400, exitCode: ExitCode.INVALID });
    const badKey = await queues(["create", "-c", "ranked", "--concurrency-key", "no spaces"]);
    expect(badKey.code).toBe(ExitCode.INVALID);
    expect(badKey.stderr).toMatch(/ConcurrencyKey must be 1 to 128 characters/);
    expect((await queues(["create", "-c", "ranked", "--concurrency-key", "k".repeat(129)])).code).toBe(ExitCode.INVALID);
    // Not a level at all: a usage error before any call.
    for (const priority of ["high", "1.5", "-1", "18446744073709551616"]) {
      const usage = await queues(["create", "-c", "ranked", "--priority", priority]);
      expect(usage.code, priority).toBe(ExitCode.INVALID);
      expect(usage.stderr, priority).toMatch(/--priority/);
    }
  });

  it("schedule put --priority / --concurrency-key set the template's; a bad one exits 2", async () => {
    const put = await json<{ Name: string; Template: Task }>([
      "schedule", "put", "cli-ranked", "--cron", "0 0 1 1 *", "-c", "ranked", "--priority", "3", "--concurrency-key", "nightly",
    ]);
    expect(put).toMatchObject({ Name: "cli-ranked", Template: { Channel: "ranked", Priority: "3", ConcurrencyKey: "nightly" } });
    const listed = await json<{ Name: string; Template: Task }[]>(["schedule", "list", "-c", "ranked"]);
    expect(listed.find((found) => found.Name === "cli-ranked")).toMatchObject({ Template: { Priority: "3", ConcurrencyKey: "nightly" } });
    const tooLow = await queues(["schedule", "put", "cli-ranked", "--cron", "0 0 1 1 *", "-c", "ranked", "--priority", "9"]);
    expect(tooLow.code).toBe(ExitCode.INVALID);
    expect(tooLow.stderr).toMatch(/Template\.Priority/);
    const badKey = await queues(["schedule", "put", "cli-ranked", "--cron", "0 0 1 1 *", "-c", "ranked", "--concurrency-key", "ü"]);
    expect(badKey.code).toBe(ExitCode.INVALID);
    expect(badKey.stderr).toMatch(/Template\.ConcurrencyKey/);
    expect((await queues(["schedule", "delete", "cli-ranked"])).code).toBe(0);
  });
});

describe("queues watch", () => {
  it("exits 0 when the task succeeds, 8 when it is cancelled, 10 on --timeout", async () => {
    const done = await json<{ task: Task }>(["create", "-c", "watched", "-i", "watch me"]);
    let sawWaiting: () => void = () => {};
    const waitingShown = new Promise<void>((resolve) => (sawWaiting = resolve));
    const watching = queues(["watch", done.task.ID, "--interval", "100"], { onStdout: (stdout) => /WAITING|PROCEEDING/.test(stdout) && sawWaiting() });
    await client.cancelTask((await json<{ task: Task }>(["create", "-c", "watched"])).task.ID);
    // Finish the first task with a one-off worker on the raw API, once the watch has shown it not final yet
    // (a worker started at once could finish it before the watch's process has read it once).
    await Promise.race([waitingShown, watching]);
    const { Worker } = await import("@queues/client");
    const worker = new Worker({ address: server.address, channel: "watched", handler: () => "watched it" });
    void worker.run();
    const run = await watching;
    await worker.close();
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/WAITING|PROCEEDING/);
    expect(run.stdout).toMatch(/SUCCESS/);
    expect(run.stdout).toMatch(/Output: watched it/);

    const cancelled = await json<{ task: Task }>(["create", "-c", "watched", "--hash-code", `w-${Date.now()}`]);
    await client.cancelTask(cancelled.task.ID);
    expect((await queues(["watch", cancelled.task.ID])).code).toBe(ExitCode.TASK_CANCELLED);
    const waiting = await json<{ task: Task }>(["create", "-c", "default"]);
    const timedOut = await queues(["watch", waiting.task.ID, "--interval", "200", "--timeout", "1"]);
    expect(timedOut.code).toBe(ExitCode.TIMEOUT);
    expect(timedOut.stdout).toMatch(/Not final after 1 s/);
  });
});

describe("queues work", () => {
  function startWork(args: string[]) {
    const child = spawn(process.execPath, [BIN, "--address", server.address, "--json", "work", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const events: { event: string; taskId?: string }[] = [];
    let buffer = "";
    child.stdout.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split("\n");
      buffer = lines.pop() ?? "";
      for (const line of lines) if (line.trim()) events.push(JSON.parse(line) as { event: string; taskId?: string });
    });
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    return { child, events, exited };
  }

  it("runs a shell command per task: Input on stdin, stdout as Output, exit 0 SUCCESS; SIGTERM drains and exits 0", async () => {
    const work = startWork(["-c", "work", "--concurrency", "2", "--", "tr a-z A-Z; printf \" by $QUEUES_TASK_ATTEMPT\""]);
    try {
      const tasks = await Promise.all(["abc", "hello world"].map(async (input) => (await json<{ task: Task }>(["create", "-c", "work", "-i", input])).task));
      await eventually(() => work.events.filter((e) => e.event === "succeeded").length === 2, 20_000);
      expect(await client.getTask(tasks[0]?.ID as string)).toMatchObject({ State: "SUCCESS", Output: "ABC by 1" });
      expect(await client.getTask(tasks[1]?.ID as string)).toMatchObject({ State: "SUCCESS", Output: "HELLO WORLD by 1" });
    } finally {
      work.child.kill("SIGTERM");
    }
    expect(await work.exited).toBe(0);
    expect(work.events.map((e) => e.event)).toContain("stopped");
  });

  it("Ctrl-C (SIGINT to the worker's process group) lets the running command finish, then exits 0", async () => {
    const task = (await json<{ task: Task }>(["create", "-c", "slow", "-i", "finish me"])).task;
    // The CLI in a process group of its own, as a terminal runs it; its commands run in theirs.
    const child = spawn(process.execPath, [BIN, "--address", server.address, "--json", "work", "-c", "slow", "--", "sleep 1.5; cat"], {
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
    await eventually(() => out.includes('"event":"started"'), 15_000);
    process.kill(-(child.pid as number), "SIGINT");
    expect(await exited).toBe(0);
    expect(await client.getTask(task.ID)).toMatchObject({ State: "SUCCESS", Output: "finish me", RetryCount: "0" });
  });

  it("a command that exits non-zero fails the attempt (retried by the server); arguments after -- run without a shell", async () => {
    const work = startWork(["-c", "fails", "--", process.execPath, "-e", "process.stdout.write('partial'); process.exit(3)"]);
    try {
      const task = (await json<{ task: Task }>(["create", "-c", "fails", "-i", "x", "--retry-max-limit", "1"])).task;
      await eventually(async () => (await client.getTask(task.ID)).State === "FAILURE", 20_000);
      expect(await client.getTask(task.ID)).toMatchObject({ RetryCount: "2", Output: "the command exited with code 3" });
      expect(work.events.filter((e) => e.event === "failed" && e.taskId === task.ID)).toHaveLength(2);
    } finally {
      work.child.kill("SIGINT");
    }
    expect(await work.exited).toBe(0);
  });
});
