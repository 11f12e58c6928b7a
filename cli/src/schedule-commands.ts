// `queues schedule put|delete|list`: recurring schedules, one unary call each.
import type { Command } from "commander";
import type { Schedule } from "@queues/client";
import { printJson, printTable } from "./output.js";
import { priorityArgument, uint64Argument, withClient } from "./program.js";

export function registerScheduleCommands(program: Command): void {
  const schedule = program.command("schedule").description("recurring schedules: each cron tick creates one task");

  schedule
    .command("put")
    .description("create or replace a schedule (pause it with --paused, resume by putting it again without)")
    .argument("<name>", "1-64 characters of [A-Za-z0-9._:-]")
    .requiredOption("--cron <expression>", "5 fields (minute hour day-of-month month day-of-week) or 6 with leading seconds")
    .requiredOption("-c, --channel <name>", "the channel of the tasks it creates")
    .option("--time-zone <iana>", "the zone the cron runs in, e.g. Europe/Berlin (default UTC)", "")
    .option("-i, --input <text>", "the Input of each task", "")
    .option("--owner <uint64>", "the Owner of each task", uint64Argument, "0")
    .option("--retry-max-limit <n>", "retries after the first attempt (0 means 3, at most 100)", uint64Argument)
    .option("--priority <n>", "the Priority of each task, on a channel with priorities: 1 (the highest) to its priorities; 0 or left out: the middle level", priorityArgument)
    .option("--concurrency-key <key>", "the ConcurrencyKey of each task, on a channel with concurrencyPerKey (1-128 of [A-Za-z0-9._:-])")
    .option("--paused", "store it paused: no ticks fire", false)
    .action(async function (this: Command, name: string, flags: PutFlags) {
      await withClient(this, async (client, options) => {
        const stored = await client.putSchedule({
          name,
          cron: flags.cron,
          timeZone: flags.timeZone,
          paused: flags.paused,
          template: {
            channel: flags.channel,
            input: flags.input,
            owner: flags.owner,
            retryMaxLimit: flags.retryMaxLimit,
            priority: flags.priority,
            concurrencyKey: flags.concurrencyKey,
          },
        });
        if (options.json) printJson(stored);
        else process.stdout.write(`Schedule ${stored.Name} saved${stored.Paused ? " (paused)" : `; next tick ${stored.NextRunTime}`}\n`);
      });
    });

  schedule
    .command("delete")
    .description("delete a schedule (exit 3 if there is none of this name)")
    .argument("<name>", "the schedule's name")
    .action(async function (this: Command, name: string) {
      await withClient(this, async (client, options) => {
        await client.deleteSchedule(name);
        if (options.json) printJson({ deleted: name });
        else process.stdout.write(`Schedule ${name} deleted\n`);
      });
    });

  schedule
    .command("list")
    .description("list the schedules, by name")
    .option("-c, --channel <name>", "only this channel's")
    .action(async function (this: Command, flags: { channel?: string }) {
      await withClient(this, async (client, options) => {
        const schedules = await client.listSchedules(flags.channel ?? "");
        if (options.json) printJson(schedules);
        else printSchedules(schedules);
      });
    });
}

interface PutFlags {
  cron: string;
  channel: string;
  timeZone: string;
  input: string;
  owner: string;
  retryMaxLimit?: string;
  priority?: number;
  concurrencyKey?: string;
  paused: boolean;
}

function printSchedules(schedules: Schedule[]): void {
  const rows = schedules.map((found) => [
    found.Name,
    found.Cron,
    found.TimeZone || "UTC",
    found.Template?.Channel ?? "",
    found.Paused ? "paused" : found.NextRunTime,
    found.LastRunTime || "-",
  ]);
  printTable(["NAME", "CRON", "ZONE", "CHANNEL", "NEXT", "LAST"], rows);
}
