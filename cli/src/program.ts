// The `queues` command line: global options and the subcommands. Each subcommand
// prints a table (or --json) and exits with a code scripts can use (exit-codes.ts).
import { readFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import type { ConnectionOptions } from "@queues/client";
import { parseUint64, QueuesClient } from "@queues/client";
import { registerTaskCommands } from "./task-commands.js";
import { registerWorkCommand } from "./work-command.js";
import { registerScheduleCommands } from "./schedule-commands.js";

export const DEFAULT_ADDRESS = "127.0.0.1:50051";

export interface GlobalOptions {
  address: string;
  json: boolean;
  tls: boolean;
  caFile?: string;
  token?: string;
  tokenFile?: string;
  header: string[];
  deadline: number;
}

export function buildProgram(): Command {
  const program = new Command("queues")
    .description("Create, inspect, cancel and rerun Queues tasks, and run a worker from the terminal.")
    .addOption(new Option("--address <host:port>", "the Queues server or its load balancer").env("QUEUES_ADDRESS").default(DEFAULT_ADDRESS))
    .option("--json", "print JSON instead of tables", false)
    .option("--tls", "connect with TLS (system root certificates)", false)
    .option("--ca-file <pem>", "connect with TLS, trusting these root certificates")
    .addOption(new Option("--token <token>", "send 'authorization: Bearer <token>'").env("QUEUES_TOKEN"))
    .addOption(new Option("--token-file <path>", "read the token from this file (keeps it out of the command line and the environment)").env("QUEUES_TOKEN_FILE").conflicts("token"))
    .option("--header <name:value>", "send this metadata with every call (repeatable)", collect, [])
    .option("--deadline <ms>", "deadline of each call", positiveInteger, 10_000)
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    // Errors come back to main.ts (exit codes of its own); set before the subcommands, which inherit it.
    .exitOverride();
  registerTaskCommands(program);
  registerScheduleCommands(program);
  registerWorkCommand(program);
  return program;
}

/** The connection the global options describe. */
export function connectionOf(options: GlobalOptions): ConnectionOptions {
  const metadata: Record<string, string> = {};
  for (const header of options.header) {
    const colon = header.indexOf(":");
    if (colon <= 0) throw new RangeError(`--header must be name:value, got "${header}"`);
    metadata[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
  }
  const token = options.tokenFile ? tokenFromFile(options.tokenFile) : options.token;
  if (token) metadata.authorization = `Bearer ${token}`;
  const tls = options.caFile ? { rootCerts: readFileSync(options.caFile) } : options.tls;
  return { address: options.address, tls, metadata, deadlineMs: options.deadline };
}

/** The token in a file (its first line, trimmed); the error never shows the file's content. */
function tokenFromFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new RangeError(`--token-file: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
  }
  const token = text.split(/\r?\n/)[0]?.trim() ?? "";
  if (token === "") throw new RangeError(`--token-file: ${path} is empty`);
  return token;
}

export function clientOf(command: Command): { client: QueuesClient; options: GlobalOptions } {
  const options = command.optsWithGlobals<GlobalOptions>();
  return { client: new QueuesClient(connectionOf(options)), options };
}

/** Runs `use` with a client for the command's global options, and closes it after. */
export async function withClient<T>(command: Command, use: (client: QueuesClient, options: GlobalOptions) => Promise<T>): Promise<T> {
  const { client, options } = clientOf(command);
  try {
    return await use(client, options);
  } finally {
    client.close();
  }
}

export function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed <= 0) throw new InvalidArgumentError("expected a positive integer");
  return parsed;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as 90s, 15m, 2h, 7d or 500ms (a bare number is seconds), in milliseconds. */
export function durationArgument(value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new InvalidArgumentError("expected a duration such as 90s, 15m, 2h or 7d");
  return Math.round(Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? "s"] as number));
}

/** Task.Priority: a level 1 (the highest) to the channel's `priorities`, or 0 for the middle one; the server checks the range (400, exit 2). */
export function priorityArgument(value: string): number {
  const parsed = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed)) throw new InvalidArgumentError("expected a priority level: 1 (the highest) to the channel's priorities, or 0 for the middle one");
  return parsed;
}

/** A uint64 argument, kept as its decimal string (never a JS number). */
export function uint64Argument(value: string): string {
  if (parseUint64(value) === undefined) throw new InvalidArgumentError("expected an unsigned 64-bit integer");
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
