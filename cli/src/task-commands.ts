// create, get, list, cancel, rerun, length and watch: one unary call each (watch polls).
import { readFileSync } from "node:fs";
import { Option, type Command } from "commander";
import { isFinal, type QueuesClient, type Task } from "@queues/client";
import { ExitCode, exitCodeOf } from "./exit-codes.js";
import { printJson, printTask, printTaskTable } from "./output.js";
import { clientOf, durationArgument, positiveInteger, priorityArgument, uint64Argument, withClient } from "./program.js";

export function registerTaskCommands(program: Command): void {
  program
    .command("create")
    .description("create a task; prints its HashCode and ID (exit 4 if its HashCode exists already)")
    .requiredOption("-c, --channel <name>", "the channel")
    .option("-i, --input <text>", "the Input", "")
    .option("--input-file <path>", "read the Input from a file ('-' for stdin)")
    .option("--owner <uint64>", "the owner", uint64Argument, "0")
    .option("--hash-code <key>", "idempotency key (1-128 of [A-Za-z0-9._:-]); generated when left out")
    .option("--prior <id>", "run only after this task succeeded (its Output becomes an empty Input)", uint64Argument)
    .option("--retry-max-limit <n>", "retries after the first attempt (0 means 3, at most 100)", uint64Argument)
    .addOption(new Option("--run-at <time>", "not delivered before this RFC 3339 time (e.g. 2026-12-01T09:00:00Z), up to 366 days ahead").conflicts("delay"))
    .option("--delay <duration>", "not delivered before this long from now: 90s, 15m, 2h, 7d (or ms)", durationArgument)
    .option("--priority <n>", "on a channel with priorities: 1 (the highest) to its priorities (the lowest); 0 or left out: the middle level", priorityArgument)
    .option("--concurrency-key <key>", "on a channel with concurrencyPerKey: at most that many tasks of this key run at once (1-128 of [A-Za-z0-9._:-])")
    .action(async function (this: Command, flags: CreateFlags) {
      await withClient(this, async (client, options) => {
        const input = flags.inputFile !== undefined ? readFileSync(flags.inputFile === "-" ? 0 : flags.inputFile, "utf8") : flags.input;
        const hashCode = await client.createTask({
          channel: flags.channel,
          input,
          owner: flags.owner,
          hashCode: flags.hashCode,
          prior: flags.prior,
          retryMaxLimit: flags.retryMaxLimit,
          runAt: flags.delay !== undefined ? new Date(Date.now() + flags.delay) : flags.runAt,
          priority: flags.priority,
          concurrencyKey: flags.concurrencyKey,
        });
        await printCreated(client, hashCode, options.json);
      });
    });

  program
    .command("get")
    .description("show a task, by ID or by HashCode")
    .argument("[id]", "the task's ID", uint64Argument)
    .option("--hash-code <key>", "look the task up by its HashCode instead")
    .action(async function (this: Command, id: string | undefined, flags: { hashCode?: string }) {
      if ((id === undefined) === (flags.hashCode === undefined)) this.error("give either an ID or --hash-code", { exitCode: ExitCode.INVALID });
      await withClient(this, async (client, options) => {
        const task = id !== undefined ? await client.getTask(id) : await client.getTaskByHashCode(flags.hashCode as string);
        if (options.json) printJson(task);
        else printTask(task);
      });
    });

  program
    .command("list")
    .description("list an owner's tasks, newest first, with their exact total")
    .requiredOption("--owner <uint64>", "the owner", uint64Argument)
    .option("--limit <n>", "tasks per page (at most 100)", positiveInteger, 20)
    .option("--offset <n>", "skip this many of the newest", uint64Argument, "0")
    .action(async function (this: Command, flags: { owner: string; limit: number; offset: string }) {
      await withClient(this, async (client, options) => {
        const page = await client.listTasksByOwner(flags.owner, { limit: flags.limit, offset: flags.offset });
        if (options.json) printJson(page);
        else {
          process.stdout.write(`Owner ${flags.owner}: ${page.total} task(s); showing ${page.tasks.length} from offset ${flags.offset}\n`);
          if (page.tasks.length > 0) printTaskTable(page.tasks);
        }
      });
    });

  program
    .command("cancel")
    .description("cancel a task and the rest of its chain (exit 4 if it is already final)")
    .argument("<id>", "the task's ID", uint64Argument)
    .action(async function (this: Command, id: string) {
      await withClient(this, async (client, options) => {
        const cancelled = await client.cancelTask(id);
        if (options.json) printJson(cancelled);
        else {
          process.stdout.write(`Cancelled ${cancelled.length} task(s)\n`);
          printTaskTable(cancelled);
        }
      });
    });

  program
    .command("rerun")
    .description("run a final task again as a new task (same Channel, Input, Owner, RetryMaxLimit, Priority, ConcurrencyKey); prints the new task like create (exit 4 if the task is not final, 3 if absent)")
    .argument("<id>", "the final task's ID", uint64Argument)
    .action(async function (this: Command, id: string) {
      await withClient(this, async (client, options) => {
        const hashCode = await client.rerunTask(id);
        await printCreated(client, hashCode, options.json, ` from task ${id}`);
      });
    });

  program
    .command("length")
    .description("tasks of a channel waiting to be delivered (approximate, as SQS counts them)")
    .argument("<channel>", "the channel")
    .action(async function (this: Command, channel: string) {
      await withClient(this, async (client, options) => {
        const length = await client.queueLength(channel);
        if (options.json) printJson({ channel, length });
        else process.stdout.write(`${length}\n`);
      });
    });

  program
    .command("watch")
    .description("follow a task until it is final; exit 0 on SUCCESS, 7 on FAILURE, 8 on CANCEL, 10 on --timeout")
    .argument("<id>", "the task's ID", uint64Argument)
    .option("--interval <ms>", "how often to look", positiveInteger, 1_000)
    .option("--timeout <seconds>", "give up after this long", positiveInteger)
    .action(async function (this: Command, id: string, flags: { interval: number; timeout?: number }) {
      const { client, options } = clientOf(this);
      const deadline = flags.timeout === undefined ? Infinity : Date.now() + flags.timeout * 1000;
      let last = "";
      let task: Task | undefined;
      try {
        for (;;) {
          try {
            task = await client.getTask(id);
          } catch (error) {
            // A server restarting or a backend hiccup is not the task's fate: keep watching until --timeout.
            if (exitCodeOf(error) !== ExitCode.UNAVAILABLE || Date.now() + flags.interval > deadline) throw error;
            await new Promise((resolve) => setTimeout(resolve, flags.interval));
            continue;
          }
          const seen = `${task.State}/${task.RetryCount}`;
          if (seen !== last && !options.json) process.stdout.write(`${new Date().toISOString()}  ${task.State.padEnd(10)}  retries ${task.RetryCount}\n`);
          last = seen;
          if (isFinal(task.State) || Date.now() + flags.interval > deadline) break;
          await new Promise((resolve) => setTimeout(resolve, flags.interval));
        }
      } finally {
        client.close();
      }
      if (options.json) printJson(task);
      else if (isFinal(task.State)) process.stdout.write(`Output: ${task.Output}\n`);
      else process.stdout.write(`Not final after ${flags.timeout} s\n`);
      process.exitCode =
        task.State === "SUCCESS" ? ExitCode.OK : task.State === "FAILURE" ? ExitCode.TASK_FAILED : task.State === "CANCEL" ? ExitCode.TASK_CANCELLED : ExitCode.TIMEOUT;
    });
}

/**
 * What create and rerun print: the new task, read back by its HashCode. The task exists
 * now: whatever happens to the lookup, say its HashCode and succeed, so that a script
 * does not create it a second time.
 */
async function printCreated(client: QueuesClient, hashCode: string, json: boolean, from = ""): Promise<void> {
  const task = await client.getTaskByHashCode(hashCode).catch((error: unknown) => {
    process.stderr.write(`queues: created, but could not read it back: ${(error as Error).message}\n`);
    return undefined;
  });
  if (json) printJson(task ? { hashCode, task } : { hashCode });
  else if (task) process.stdout.write(`Created task ${task.ID}${from} (HashCode ${hashCode}) on channel ${task.Channel}, ${task.State}\n`);
  else process.stdout.write(`Created task${from} with HashCode ${hashCode}\n`);
}

interface CreateFlags {
  channel: string;
  input: string;
  inputFile?: string;
  owner: string;
  hashCode?: string;
  prior?: string;
  retryMaxLimit?: string;
  runAt?: string;
  /** Milliseconds. */
  delay?: number;
  priority?: number;
  concurrencyKey?: string;
}
