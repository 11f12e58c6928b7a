// `queues work --channel C -- <command>`: a Worker whose handler runs a command per
// task. The task's Input is the command's stdin, its stdout becomes the Output, exit
// code 0 is SUCCESS and any other is FAILURE (retried by the server). One argument is
// run by the shell (`-- 'tr a-z A-Z'`); several are run directly (`-- tr a-z A-Z`).
// SIGINT / SIGTERM drain the worker (running commands finish) and exit 0.
import { spawn } from "node:child_process";
import type { Command } from "commander";
import type { Task } from "@queues/client";
import { MAX_PAYLOAD_BYTES, Worker } from "@queues/client";
import { connectionOf, type GlobalOptions, positiveInteger } from "./program.js";

/** After SIGTERM, a command gets this long before SIGKILL. */
const KILL_GRACE_MS = 5_000;

export function registerWorkCommand(program: Command): void {
  program
    .command("work")
    .description("run a command for every task of a channel: Input on stdin, stdout is the Output, exit 0 is SUCCESS")
    .requiredOption("-c, --channel <name>", "the channel")
    .option("--concurrency <n>", "commands running at once", positiveInteger, 1)
    .option("--drain-timeout <seconds>", "on SIGINT/SIGTERM, how long running commands may take to finish", positiveInteger, 30)
    .argument("<command...>", "the command (after --), with its arguments")
    .usage("--channel <name> [options] -- <command> [args...]")
    .action(async function (this: Command, command: string[], flags: { channel: string; concurrency: number; drainTimeout: number }) {
      const options = this.optsWithGlobals<GlobalOptions>();
      const worker = new Worker({
        ...connectionOf(options),
        channel: flags.channel,
        concurrency: flags.concurrency,
        drainTimeoutMs: flags.drainTimeout * 1000,
        handler: (task, { signal }) => runCommand(command, task, signal),
      });
      const log = (event: string, task: Task | undefined, detail: Record<string, unknown> = {}) => {
        if (options.json) process.stdout.write(`${JSON.stringify({ event, taskId: task?.ID, ...detail })}\n`);
        else process.stderr.write(`${new Date().toISOString()} ${event}${task ? ` ${task.ID}` : ""}${Object.keys(detail).length ? ` ${JSON.stringify(detail)}` : ""}\n`);
      };
      worker.on("taskStarted", (task) => log("started", task, { attempt: Number(task.RetryCount) + 1 }));
      worker.on("taskSucceeded", (task) => log("succeeded", task));
      worker.on("taskFailed", (task, error) => log("failed", task, { error: (error as Error).message }));
      worker.on("taskCancelled", (task, error) => log("cancelled", task, { error: (error as Error).message }));
      worker.on("leaseLost", (task, reason) => log("lease-lost", task, { reason }));
      worker.on("reconnecting", ({ stream, delayMs }) => log("reconnecting", undefined, { stream, delayMs }));
      worker.on("error", (error) => log("error", undefined, { error: error.message }));
      const stop = (signal: string) => {
        log("draining", undefined, { signal });
        void worker.close();
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
      log("working", undefined, { channel: flags.channel, concurrency: flags.concurrency, address: options.address });
      await worker.run();
      log("stopped", undefined);
    });
}

/** What a task's command inherits: the worker's environment without its credentials (a command could print them into an Output). */
export function commandEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { QUEUES_TOKEN: _token, QUEUES_TOKEN_FILE: _tokenFile, ...rest } = env;
  return rest;
}

/** Runs the command for one task; resolves with its stdout, rejects when it exits non-zero. */
export function runCommand(command: string[], task: Task, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = command as [string, ...string[]];
    const child = spawn(file, args, {
      shell: command.length === 1,
      // Its own process group: Ctrl-C on the worker does not kill running commands (the
      // worker drains), and an abort can stop the whole group (a shell and its pipeline).
      detached: true,
      stdio: ["pipe", "pipe", "inherit"],
      env: {
        ...commandEnvironment(),
        QUEUES_TASK_ID: task.ID,
        QUEUES_TASK_HASH_CODE: task.HashCode,
        QUEUES_TASK_CHANNEL: task.Channel,
        QUEUES_TASK_OWNER: task.Owner,
        QUEUES_TASK_ATTEMPT: String(Number(task.RetryCount) + 1),
      },
    });
    const chunks: Buffer[] = [];
    let size = 0;
    child.stdout.on("data", (chunk: Buffer) => {
      size += chunk.length;
      // The Output limit: a command that prints more fails its attempt (what it printed is not kept).
      if (size <= MAX_PAYLOAD_BYTES) chunks.push(chunk);
    });
    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (how: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, how);
      } catch {
        // Already gone.
      }
    };
    const onAbort = () => {
      killGroup("SIGTERM");
      killTimer = setTimeout(() => killGroup("SIGKILL"), KILL_GRACE_MS);
      killTimer.unref();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    child.on("error", (error) => {
      signal.removeEventListener("abort", onAbort);
      reject(error);
    });
    child.on("close", (code, killedBy) => {
      clearTimeout(killTimer);
      signal.removeEventListener("abort", onAbort);
      if (size > MAX_PAYLOAD_BYTES) reject(new Error(`the command printed ${size} bytes; the Output limit is ${MAX_PAYLOAD_BYTES}`));
      else if (code === 0) resolve(Buffer.concat(chunks).toString("utf8"));
      else reject(new Error(killedBy ? `the command was stopped by ${killedBy}` : `the command exited with code ${code}`));
    });
    // A command that does not read its stdin must not fail the task with EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(task.Input);
  });
}
