// The `queues` command's entry point: parses the command line, runs the subcommand,
// turns a failure into a message on stderr and an exit code (exit-codes.ts).
import { CommanderError } from "commander";
import { ExitCode, exitCodeOf } from "./exit-codes.js";
import { buildProgram } from "./program.js";

// `queues list --json | head`: a reader that stops early is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help ends here with code 0; a usage error was already printed.
    process.exitCode = error.exitCode === 0 ? ExitCode.OK : ExitCode.INVALID;
  } else {
    const json = program.opts<{ json?: boolean }>().json === true;
    const code = exitCodeOf(error);
    const message = error instanceof Error ? error.message : String(error);
    if (json) process.stdout.write(`${JSON.stringify({ error: message, exitCode: code, ...stateOf(error) })}\n`);
    process.stderr.write(`queues: ${message}\n`);
    process.exitCode = code;
  }
}

function stateOf(error: unknown): { state?: number } {
  const state = (error as { state?: unknown } | undefined)?.state;
  return typeof state === "number" ? { state } : {};
}
