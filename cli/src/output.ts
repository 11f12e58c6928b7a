// What the CLI prints: JSON (--json) for scripts, or tables for people.
import type { Task } from "@queues/client";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One task, field by field. */
export function printTask(task: Task): void {
  const rows: [string, string][] = [
    ["ID", task.ID],
    ["HashCode", task.HashCode],
    ["State", task.State],
    ["Channel", task.Channel],
    ["Owner", task.Owner],
    ["RetryCount", `${task.RetryCount} (of at most ${task.RetryMaxLimit} retries)`],
    ["Prior", task.Prior],
    ["Next", task.Next],
    ...(task.RunAt ? ([["RunAt", task.RunAt]] as [string, string][]) : []),
    // "0": a server that predates Task.Priority (it answers with the level, 1 and up).
    ...(task.Priority && task.Priority !== "0" ? ([["Priority", task.Priority]] as [string, string][]) : []),
    ...(task.ConcurrencyKey ? ([["ConcurrencyKey", task.ConcurrencyKey]] as [string, string][]) : []),
    ["CreateTime", task.CreateTime],
    ["UpdateTime", task.UpdateTime],
    ["Input", preview(task.Input, 200)],
    ["Output", preview(task.Output, 200)],
  ];
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
}

/** Several tasks, one line each. */
export function printTaskTable(tasks: Task[]): void {
  const header = ["ID", "STATE", "CHANNEL", "RETRIES", "HASHCODE", "UPDATED", "INPUT"];
  const rows = tasks.map((task) => [
    task.ID,
    task.State,
    task.Channel,
    task.RetryCount,
    task.HashCode,
    task.UpdateTime,
    preview(task.Input, 40),
  ]);
  printTable(header, rows);
}

export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join("\n")}\n`);
}

/** A payload on one line, shortened. */
function preview(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ");
  if (flat.length <= max) return flat === "" ? "-" : flat;
  return `${flat.slice(0, max)}… (${Buffer.byteLength(text)} bytes)`;
}
