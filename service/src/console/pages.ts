// The console's pages, rendered on the server from what the use cases answer. Every
// value goes through html`` (escaped); large Inputs and Outputs are cut for display
// with a download of the whole.
import type { ChannelConfig } from "../config/channels.js";
import type { DeadLetterSummary } from "../core/dead-letters.js";
import type { ActivityKind } from "../store/activity-store.js";
import type { ScheduleRecord } from "../tasks/schedule-rules.js";
import { encode, html, type Html } from "./html.js";
import { actionButton, activityChart, ageOf, legend, stateBadge } from "./layout.js";

/** A task as the console shows it: the wire Task's fields, each a string. */
export type Task = Record<
  "ID" | "Next" | "Prior" | "Owner" | "State" | "Input" | "Output" | "Channel" | "HashCode" | "RetryCount" | "CreateTime" | "UpdateTime" | "RetryMaxLimit" | "RunAt" | "ConcurrencyKey" | "Priority" | "TraceParent",
  string
>;

/** How much of an Input or Output a task page shows before "download the whole". */
export const PAYLOAD_PREVIEW_CHARS = 4096;

export interface ChannelRow {
  config: ChannelConfig;
  /** undefined: the queue did not answer. */
  backlog: bigint | undefined;
  inFlight: number | undefined;
  deadLetters: number | undefined;
  /** undefined: the activity could not be read. */
  last5: Record<ActivityKind, number> | undefined;
  lastHour: Record<ActivityKind, number> | undefined;
  series: Record<ActivityKind, number[]> | undefined;
}

const unknown = (value: bigint | number | undefined): Html | string => (value === undefined ? html`<span class="muted" title="the backend did not answer">?</span>` : String(value));

/** "5 min / 1 h" counts of one kind. */
function pair(row: ChannelRow, kind: ActivityKind): Html | string {
  return row.last5 && row.lastHour ? `${row.last5[kind]} / ${row.lastHour[kind]}` : unknown(undefined);
}

export function optionsOf(config: ChannelConfig): string {
  const options: string[] = [`lease ${config.visibilityTimeoutSeconds} s`, `maxReceiveCount ${config.maxReceiveCount}`];
  if (config.rateLimitPerSecond !== undefined) options.push(`rate ${config.rateLimitPerSecond}/s`);
  if (config.maxInFlight !== undefined) options.push(`maxInFlight ${config.maxInFlight}`);
  if (config.concurrencyPerKey !== undefined) options.push(`concurrencyPerKey ${config.concurrencyPerKey}`);
  if (config.priorities > 1) options.push(`priorities ${config.priorities}`);
  if (config.fairness) options.push(`fairness ${config.fairness}`);
  return options.join(", ");
}

export function channelsPage(rows: ChannelRow[]): Html {
  return html`<h1>Channels</h1>
<table id="channels">
<thead><tr><th>Channel</th><th class="num">Backlog</th><th class="num">In flight</th><th class="num">Dead letters</th><th class="num">Created 5 min / 1 h</th><th class="num">Succeeded 5 min / 1 h</th><th class="num">Failed 5 min / 1 h</th><th>Last hour</th><th>Options</th></tr></thead>
<tbody>
${rows.map(
  (row) => html`<tr data-channel="${row.config.name}">
<td><a href="/channels/${encode(row.config.name)}">${row.config.name}</a></td>
<td class="num" data-field="backlog">${unknown(row.backlog)}</td>
<td class="num" data-field="inFlight">${unknown(row.inFlight)}</td>
<td class="num" data-field="deadLetters">${row.deadLetters ? html`<a href="/channels/${encode(row.config.name)}#dead-letters">${row.deadLetters}</a>` : unknown(row.deadLetters)}</td>
<td class="num" data-field="created">${pair(row, "created")}</td>
<td class="num" data-field="succeeded">${pair(row, "succeeded")}</td>
<td class="num" data-field="failed">${pair(row, "failed")}</td>
<td>${row.series ? activityChart(row.series, `${row.config.name}: tasks per minute over the last hour`) : ""}</td>
<td class="muted">${optionsOf(row.config)}</td>
</tr>`,
)}
</tbody>
</table>
${legend()}
<p class="muted">Backlog and in flight are SQS's approximate counts over the channel's priority levels (QueryLengthByChannel answers the backlog). Created, succeeded and failed are counted from the table's stream (every replica's tasks, a second or so behind).</p>`;
}

export function channelPage(row: ChannelRow, failures: Task[] | string, deadLetters: DeadLetterSummary | undefined, schedules: ScheduleRecord[], csrf: string, now: number): Html {
  const name = row.config.name;
  return html`<h1>Channel ${name}</h1>
<dl class="fields">
<dt>Backlog</dt><dd data-field="backlog">${unknown(row.backlog)}</dd>
<dt>In flight</dt><dd data-field="inFlight">${unknown(row.inFlight)}</dd>
<dt>Options</dt><dd>${optionsOf(row.config)}</dd>
<dt>Last 5 min</dt><dd>${row.last5 ? `${row.last5.created} created, ${row.last5.succeeded} succeeded, ${row.last5.failed} failed` : unknown(undefined)}</dd>
<dt>Last hour</dt><dd>${row.lastHour ? `${row.lastHour.created} created, ${row.lastHour.succeeded} succeeded, ${row.lastHour.failed} failed` : unknown(undefined)} ${row.series ? activityChart(row.series, `${name}: tasks per minute over the last hour`) : ""}</dd>
</dl>
<h2 id="failures">Recent failures</h2>
${typeof failures === "string" ? html`<p class="error">${failures}</p>` : taskTable(failures, "failures")}
<h2 id="dead-letters">Dead letters</h2>
${
  deadLetters === undefined
    ? html`<p class="error">The dead-letter queue did not answer.</p>`
    : html`<p data-field="deadLetters">${deadLetters.count} message(s) in the dead-letter queue.</p>
${
  deadLetters.sample.length > 0
    ? html`<table><thead><tr><th>Task</th><th>First sent</th><th>Age</th></tr></thead><tbody>
${deadLetters.sample.map(
  (letter) => html`<tr><td>${letter.taskId === undefined ? html`<span class="muted">not a task ID</span>` : html`<a href="/tasks/${letter.taskId}">${letter.taskId}</a>`}</td><td>${letter.sentAtMs ? new Date(letter.sentAtMs).toISOString() : ""}</td><td>${ageOf(letter.sentAtMs, now)}</td></tr>`,
)}
</tbody></table>`
    : ""
}
${deadLetters.count > 0 ? html`<div class="actions">${actionButton(`/channels/${encode(name)}/redrive`, "Redrive: move them back to the channel", csrf)}</div>` : ""}`
}
<h2>Schedules</h2>
${schedulesTable(schedules, csrf)}`;
}

export function schedulesTable(schedules: ScheduleRecord[], csrf: string): Html {
  if (schedules.length === 0) return html`<p class="muted">No schedules.</p>`;
  return html`<table id="schedules"><thead><tr><th>Name</th><th>Cron</th><th>Time zone</th><th>Channel</th><th>Owner</th><th>Next run</th><th>Last run</th><th>State</th><th></th></tr></thead><tbody>
${schedules.map(
  (schedule) => html`<tr data-schedule="${schedule.name}">
<td>${schedule.name}</td><td><code>${schedule.cron}</code></td><td>${schedule.timeZone || "UTC"}</td>
<td><a href="/channels/${encode(schedule.template.channel)}">${schedule.template.channel}</a></td><td>${String(schedule.template.owner)}</td>
<td>${schedule.nextRunAtMs ? new Date(schedule.nextRunAtMs).toISOString() : ""}</td><td>${schedule.lastRunAtMs ? new Date(schedule.lastRunAtMs).toISOString() : ""}</td>
<td>${schedule.paused ? "paused" : "active"}</td>
<td>${actionButton(`/schedules/${encode(schedule.name)}/${schedule.paused ? "resume" : "pause"}`, schedule.paused ? "Resume" : "Pause", csrf)} ${actionButton(`/schedules/${encode(schedule.name)}/delete`, "Delete", csrf, true)}</td>
</tr>`,
)}
</tbody></table>`;
}

export function schedulesPage(schedules: ScheduleRecord[], csrf: string): Html {
  return html`<h1>Schedules</h1>${schedulesTable(schedules, csrf)}`;
}

export function searchForm(values: { find?: string; owner?: string }): Html {
  return html`<form class="search" method="get" action="/tasks">
<input type="text" name="find" placeholder="Task ID or HashCode" value="${values.find ?? ""}" aria-label="Task ID or HashCode">
<button type="submit">Find</button>
</form>
<form class="search" method="get" action="/tasks">
<input type="text" name="owner" placeholder="Owner" value="${values.owner ?? ""}" aria-label="Owner">
<button type="submit">List the owner's tasks</button>
</form>`;
}

export function tasksPage(values: { find?: string; owner?: string }, list: { owner: string; total: bigint; offset: bigint; limit: bigint; tasks: Task[] } | undefined): Html {
  return html`<h1>Tasks</h1>
${searchForm(values)}
${
  list
    ? html`<p>Owner ${list.owner}: ${String(list.total)} task(s), newest first.</p>
${taskTable(list.tasks)}
<p>
${list.offset > 0n ? html`<a href="/tasks?owner=${encode(list.owner)}&offset=${String(list.offset > list.limit ? list.offset - list.limit : 0n)}">Newer</a>` : ""}
${list.offset + BigInt(list.tasks.length) < list.total ? html`<a href="/tasks?owner=${encode(list.owner)}&offset=${String(list.offset + BigInt(list.tasks.length))}">Older</a>` : ""}
</p>`
    : html`<p class="muted">Find a task by its ID or HashCode, or list an owner's tasks.</p>`
}`;
}

export function taskTable(tasks: Task[], id = "tasks"): Html {
  if (tasks.length === 0) return html`<p class="muted">None.</p>`;
  return html`<table id="${id}"><thead><tr><th>ID</th><th>State</th><th>Channel</th><th>HashCode</th><th class="num">Retries</th><th>Created</th><th>Updated</th></tr></thead><tbody>
${tasks.map(
  (task) => html`<tr><td><a href="/tasks/${task.ID}">${task.ID}</a></td><td>${stateBadge(task.State)}</td><td>${task.Channel}</td><td>${task.HashCode}</td><td class="num">${task.RetryCount}</td><td>${task.CreateTime}</td><td>${task.UpdateTime}</td></tr>`,
)}
</tbody></table>`;
}

function payload(task: Task, which: "Input" | "Output"): Html {
  const text = task[which];
  if (text === "") return html`<p class="muted">(empty)</p>`;
  const cut = text.length > PAYLOAD_PREVIEW_CHARS;
  return html`<pre data-field="${which}">${cut ? text.slice(0, PAYLOAD_PREVIEW_CHARS) : text}</pre>
${cut ? html`<p class="muted">Showing the first ${PAYLOAD_PREVIEW_CHARS} of ${text.length} characters. <a href="/tasks/${task.ID}/${which.toLowerCase()}" download>Download the whole ${which}</a></p>` : ""}`;
}

const FINAL = new Set(["SUCCESS", "FAILURE", "CANCEL"]);

export function taskPage(task: Task, csrf: string): Html {
  const link = (id: string) => (id === "0" || id === "" ? html`<span class="muted">none</span>` : html`<a href="/tasks/${id}">${id}</a>`);
  const fields: [string, Html | string][] = [
    ["ID", task.ID],
    ["State", stateBadge(task.State)],
    ["Channel", html`<a href="/channels/${encode(task.Channel)}">${task.Channel}</a>`],
    ["Owner", html`<a href="/tasks?owner=${encode(task.Owner)}">${task.Owner}</a>`],
    ["HashCode", task.HashCode],
    ["Prior", link(task.Prior)],
    ["Next", link(task.Next)],
    ["RetryCount", task.RetryCount],
    ["RetryMaxLimit", task.RetryMaxLimit],
    ["Priority", task.Priority],
    ["ConcurrencyKey", task.ConcurrencyKey],
    ["RunAt", task.RunAt],
    ["CreateTime", task.CreateTime],
    ["UpdateTime", task.UpdateTime],
    ["TraceParent", task.TraceParent],
  ];
  return html`<h1>Task ${task.ID}</h1>
<dl class="fields" id="task">
${fields.map(([name, value]) => html`<dt>${name}</dt><dd data-field="${name}">${value}</dd>`)}
</dl>
<div class="actions">
${FINAL.has(task.State) ? actionButton(`/tasks/${task.ID}/rerun`, "Rerun as a new task", csrf) : actionButton(`/tasks/${task.ID}/cancel`, "Cancel (and the rest of its chain)", csrf, true)}
</div>
<h2>Input</h2>
${payload(task, "Input")}
<h2>Output</h2>
${payload(task, "Output")}`;
}

export function loginPage(csrf: string, failed: boolean): Html {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Log in · Queues</title><link rel="stylesheet" href="/console.css"><link rel="icon" href="data:,"></head>
<body><form class="login" method="post" action="/login">
<h1>Queues console</h1>
${failed ? html`<p class="error" role="alert">That is not an admin token.</p>` : ""}
<label for="token">Admin token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required>
<input type="hidden" name="csrf" value="${csrf}">
<button type="submit">Log in</button>
<p class="muted">The token stays in an HttpOnly cookie of this browser for 8 hours.</p>
</form></body></html>
`;
}
