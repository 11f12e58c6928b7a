// The web console (SPEC §7.3), served on the server's HTTP port at `/`: pages
// rendered on the server from the same use cases as the gRPC API (TaskService,
// ScheduleService, DeadLetters), plain links and forms, no script. Reads are
// GETs; actions are POSTs with a CSRF token that answer with a redirect (so a
// reload never repeats an action). Nothing here scans the table: a task is read by
// ID or HashCode, an owner's tasks by its index, a channel's numbers from SQS.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { ChannelConfig } from "../config/channels.js";
import type { DeadLetters, DeadLetterSummary } from "../core/dead-letters.js";
import type { ScheduleService } from "../core/schedule-service.js";
import type { TaskService } from "../core/task-service.js";
import { backendFailure } from "../core/backend-errors.js";
import { toWireTask } from "../grpc/wire.js";
import { totalsOf, type ActivitySeries } from "../store/activity-store.js";
import { Rejection, invalid, notFound } from "../tasks/status.js";
import type { StoredTask } from "../core/task-repository.js";
import { encode, html, type Html } from "./html.js";
import { page } from "./layout.js";
import { channelPage, channelsPage, loginPage, schedulesPage, taskPage, tasksPage, type ChannelRow, type Task } from "./pages.js";
import { ConsoleAccess, cookiesOf, csrfCookie, endSessionCookie, newCsrfToken, sameOrigin, sessionCookie, CSRF_COOKIE } from "./session.js";
import { CONSOLE_CSS } from "./styles.js";

/** What the console reads and acts through. */
export interface ConsoleSources {
  channels: readonly ChannelConfig[];
  tasks: TaskService;
  schedules: ScheduleService;
  /** A channel's SQS counts over its levels: waiting (what QueryLengthByChannel answers) and in flight. */
  queueCounts(channel: string): Promise<{ waiting: number; inFlight: number }>;
  deadLetters: DeadLetters;
  /** The channels' tasks created / succeeded / failed per minute over the last hour (counted from the table's stream). */
  activity(channels: readonly string[], nowMs: number): Promise<Map<string, ActivitySeries>>;
  access: ConsoleAccess;
  log: Logger;
  now: () => number;
}

/** A form body larger than this is refused (the console's forms are a few fields). */
const MAX_FORM_BYTES = 8 * 1024;
const PAGE_SIZE = 20n;
/** How many of a channel's newest failures its page lists. */
const RECENT_FAILURES = 20;
const MAX_UINT64 = 2n ** 64n - 1n;

const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the console's own form posts.
  "referrer-policy": "same-origin",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
};

/** What an action did, shown on the page it redirects to (codes, so a link cannot put words in the console's mouth). */
const NOTICES: Record<string, (query: URLSearchParams) => string> = {
  cancelled: () => "Cancelled (with the rest of its chain).",
  rerun: (query) => `Rerun: this is the new task, made from task ${query.get("from") ?? ""}.`,
  redrive: (query) =>
    query.get("how") === "backend" ? "Redrive started: SQS moves the dead letters back to the channel." : `Redrive: ${query.get("moved") ?? "0"} dead letter(s) moved back to the channel.`,
  paused: () => "Schedule paused.",
  resumed: () => "Schedule resumed.",
  deleted: () => "Schedule deleted.",
};

class Redirect {
  constructor(readonly location: string) {}
}

const CONSOLE_PATHS = /^\/(?:$|console\.css$|login$|logout$|tasks(?:\/|$)|channels\/|schedules(?:\/|$))/;

export class WebConsole {
  constructor(private readonly sources: ConsoleSources) {}

  /** The path is the console's. */
  serves(pathname: string): boolean {
    return CONSOLE_PATHS.test(pathname);
  }

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://console");
    const cookies = cookiesOf(request);
    let csrf = cookies.get(CSRF_COOKIE) ?? "";
    const headers: Record<string, string | string[]> = { ...SECURITY_HEADERS };
    if (!/^[A-Za-z0-9_-]{32}$/.test(csrf)) {
      csrf = newCsrfToken();
      headers["set-cookie"] = [csrfCookie(csrf)];
    }
    const send = (status: number, body: string, type = "text/html; charset=utf-8", extra: Record<string, string | string[]> = {}) => {
      response.writeHead(status, { ...headers, "content-type": type, ...extra }).end(body);
    };
    try {
      if (url.pathname === "/console.css") {
        request.resume();
        send(200, CONSOLE_CSS, "text/css; charset=utf-8", { "cache-control": "max-age=3600" });
        return;
      }
      const { access } = this.sources;
      if (request.method === "POST") {
        const form = await readForm(request);
        if (!sameOrigin(request, cookies, form.get("csrf") ?? undefined)) {
          send(403, page({ title: "Refused", csrf }, errorContent("This action did not come from the console's own form (a missing or stale CSRF token, or another site's request). Reload the page and try again.")).text);
          return;
        }
        if (url.pathname === "/login") {
          const token = form.get("token") ?? "";
          if (!access.isAdminToken(token)) {
            this.sources.log.warn("console login refused (not an admin token)");
            send(401, loginPage(csrf, true).text);
            return;
          }
          send(303, "", "text/plain", { location: "/", "set-cookie": [...((headers["set-cookie"] as string[]) ?? []), sessionCookie(token)] });
          return;
        }
        if (url.pathname === "/logout") {
          send(303, "", "text/plain", { location: "/", "set-cookie": [endSessionCookie()] });
          return;
        }
        if (!access.allows(request, cookies)) {
          send(401, loginPage(csrf, false).text);
          return;
        }
        const target = await this.act(url.pathname);
        send(303, "", "text/plain", { location: target.location });
        return;
      }
      request.resume();
      if (request.method !== "GET" && request.method !== "HEAD") {
        send(405, "method not allowed\n", "text/plain", { allow: "GET, POST" });
        return;
      }
      if (url.pathname === "/login") {
        send(200, loginPage(csrf, false).text);
        return;
      }
      if (!access.allows(request, cookies)) {
        // A browser goes to the login page; a script sees the 303 and no data.
        send(303, "", "text/plain", { location: "/login" });
        return;
      }
      const download = /^\/tasks\/(\d{1,20})\/(input|output)$/.exec(url.pathname);
      if (download) {
        const task = await this.sources.tasks.getById(taskId(download[1] as string));
        const text = download[2] === "input" ? task.input : task.output;
        send(200, text, "text/plain; charset=utf-8", { "content-disposition": `attachment; filename="task-${task.id}-${download[2]}.txt"` });
        return;
      }
      const notice = NOTICES[url.searchParams.get("done") ?? ""]?.(url.searchParams);
      const { title, content } = await this.view(url, csrf);
      send(200, page({ title, csrf, notice, loggedIn: access.required && !request.headers.authorization }, content).text);
    } catch (error) {
      if (error instanceof Redirect) {
        send(303, "", "text/plain", { location: error.location });
        return;
      }
      const { status, message } = this.failure(error);
      if (response.headersSent) {
        response.destroy();
        return;
      }
      send(status, page({ title: `${status}`, csrf }, errorContent(message)).text);
    }
  }

  private async view(url: URL, csrf: string): Promise<{ title: string; content: Html }> {
    const path = url.pathname;
    if (path === "/") {
      const activity = await this.activity(this.sources.channels.map((channel) => channel.name));
      return { title: "Channels", content: channelsPage(await Promise.all(this.sources.channels.map((channel) => this.row(channel, activity)))) };
    }
    if (path === "/schedules") return { title: "Schedules", content: schedulesPage(await this.sources.schedules.list(""), csrf) };
    if (path === "/tasks") return { title: "Tasks", content: await this.tasksView(url.searchParams) };
    const task = /^\/tasks\/(\d{1,20})$/.exec(path);
    if (task) {
      const stored = await this.sources.tasks.getById(taskId(task[1] as string));
      return { title: `Task ${stored.id}`, content: taskPage(wire(stored), csrf) };
    }
    const channel = /^\/channels\/([^/]+)$/.exec(path);
    if (channel) {
      const config = this.channel(decodeURIComponent(channel[1] as string));
      const activity = await this.activity([config.name]);
      const [row, failures, deadLetters, schedules] = await Promise.all([
        this.row(config, activity),
        this.sources.tasks.recentFailures(config.name, RECENT_FAILURES).then(
          (tasks) => tasks.map(wire),
          (error: unknown) => {
            // A stack deployed with -c failuresIndex=false (the owner-shard upgrade's middle step) has no such index yet.
            if ((error as { name?: string }).name !== "ValidationException") throw error;
            return "Recent failures need the table's byChannelFailures index: deploy the stack without -c failuresIndex=false.";
          },
        ),
        this.sources.deadLetters.summary(config.name).catch((error: unknown): DeadLetterSummary | undefined => {
          this.sources.log.warn({ err: error, channel: config.name }, "console: the dead-letter queue did not answer");
          return undefined;
        }),
        this.sources.schedules.list(config.name),
      ]);
      return { title: `Channel ${config.name}`, content: channelPage(row, failures, deadLetters, schedules, csrf, this.sources.now()) };
    }
    throw notFound(`The console has no page ${path.slice(0, 200)}`);
  }

  private async tasksView(query: URLSearchParams): Promise<Html> {
    const find = (query.get("find") ?? "").trim();
    const owner = (query.get("owner") ?? "").trim();
    if (find !== "") {
      const task = await this.find(find);
      throw new Redirect(`/tasks/${task.id}`);
    }
    if (owner === "") return tasksPage({}, undefined);
    if (!/^\d{1,20}$/.test(owner) || BigInt(owner) > MAX_UINT64) throw invalid("Owner must be a uint64 (digits)");
    const offsetText = query.get("offset") ?? "0";
    if (!/^\d{1,20}$/.test(offsetText)) throw invalid("Offset must be a number");
    const offset = BigInt(offsetText);
    const { total, tasks } = await this.sources.tasks.listByOwner(BigInt(owner), { offset, limit: PAGE_SIZE });
    return tasksPage({ owner }, { owner, total, offset, limit: PAGE_SIZE, tasks: tasks.map(wire) });
  }

  /** By ID if it is one and such a task exists, else by HashCode. */
  private async find(text: string): Promise<StoredTask> {
    if (/^\d{1,20}$/.test(text) && BigInt(text) <= MAX_UINT64 && BigInt(text) > 0n) {
      try {
        return await this.sources.tasks.getById(BigInt(text));
      } catch (error) {
        if (!(error instanceof Rejection) || error.status !== 404) throw error;
      }
    }
    try {
      return await this.sources.tasks.getByHashCode(text);
    } catch (error) {
      if (error instanceof Rejection && error.status === 404) throw notFound(`No task has the ID or HashCode "${text.slice(0, 128)}"`);
      throw error;
    }
  }

  private async act(path: string): Promise<Redirect> {
    const task = /^\/tasks\/(\d{1,20})\/(cancel|rerun)$/.exec(path);
    if (task) {
      const id = taskId(task[1] as string);
      if (task[2] === "cancel") {
        await this.sources.tasks.cancel(id);
        this.sources.log.info({ taskId: String(id) }, "console: task cancelled");
        return new Redirect(`/tasks/${id}?done=cancelled`);
      }
      const hashCode = await this.sources.tasks.rerun(id);
      const rerun = await this.sources.tasks.getByHashCode(hashCode);
      return new Redirect(`/tasks/${rerun.id}?done=rerun&from=${id}`);
    }
    const redrive = /^\/channels\/([^/]+)\/redrive$/.exec(path);
    if (redrive) {
      const config = this.channel(decodeURIComponent(redrive[1] as string));
      const { how, moved } = await this.sources.deadLetters.redrive(config.name);
      return new Redirect(`/channels/${encode(config.name)}?done=redrive&how=${how}&moved=${moved}`);
    }
    const schedule = /^\/schedules\/([^/]+)\/(pause|resume|delete)$/.exec(path);
    if (schedule) {
      const name = decodeURIComponent(schedule[1] as string);
      if (schedule[2] === "delete") {
        await this.sources.schedules.delete(name);
        return new Redirect("/schedules?done=deleted");
      }
      const existing = (await this.sources.schedules.list("")).find((each) => each.name === name);
      if (!existing) throw notFound(`No schedule is named "${name.slice(0, 128)}"`);
      const paused = schedule[2] === "pause";
      await this.sources.schedules.put({ name: existing.name, cron: existing.cron, timeZone: existing.timeZone, template: existing.template, paused });
      return new Redirect(`/schedules?done=${paused ? "paused" : "resumed"}`);
    }
    throw notFound(`The console has no action ${path.slice(0, 200)}`);
  }

  private channel(name: string): ChannelConfig {
    const config = this.sources.channels.find((channel) => channel.name === name);
    if (!config) throw notFound(`Channel "${name.slice(0, 128)}" is not configured`);
    return config;
  }

  private async activity(channels: string[]): Promise<Map<string, ActivitySeries> | undefined> {
    return this.sources.activity(channels, this.sources.now()).catch((error: unknown) => {
      this.sources.log.warn({ err: error }, "console: the channels' activity could not be read");
      return undefined;
    });
  }

  private async row(config: ChannelConfig, activity: Map<string, ActivitySeries> | undefined): Promise<ChannelRow> {
    const [counts, deadLetters] = await Promise.all([
      this.sources.queueCounts(config.name).catch(() => undefined),
      this.sources.deadLetters
        .summary(config.name, 0)
        .then((summary) => summary.count)
        .catch(() => undefined),
    ]);
    const series = activity?.get(config.name);
    return {
      config,
      backlog: counts === undefined ? undefined : BigInt(counts.waiting),
      inFlight: counts?.inFlight,
      deadLetters,
      last5: series ? totalsOf(series, 5) : undefined,
      lastHour: series ? totalsOf(series, 60) : undefined,
      series,
    };
  }

  private failure(error: unknown): { status: number; message: string } {
    if (error instanceof Rejection) return { status: error.status, message: error.message };
    const backend = backendFailure(error);
    if (backend) {
      this.sources.log.warn({ err: error }, "console: a backend did not answer");
      return { status: 503, message: `${backend.backend} did not answer (${backend.reason}); try again in a moment.` };
    }
    if (error instanceof FormTooLarge) return { status: 413, message: error.message };
    this.sources.log.error({ err: error }, "console: unexpected error");
    return { status: 500, message: "Unexpected error; see the server's log." };
  }
}

class FormTooLarge extends Error {}

function taskId(text: string): bigint {
  const id = BigInt(text);
  if (id === 0n || id > MAX_UINT64) throw invalid("A task ID is a uint64 above 0");
  return id;
}

function wire(task: StoredTask): Task {
  return toWireTask(task) as Task;
}

function errorContent(message: string): Html {
  return html`<p class="error" role="alert">${message}</p><p><a href="/">Channels</a> · <a href="/tasks">Tasks</a></p>`;
}

async function readForm(request: IncomingMessage): Promise<URLSearchParams> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM_BYTES) {
      request.destroy();
      throw new FormTooLarge(`A console form is at most ${MAX_FORM_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
