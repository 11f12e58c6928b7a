// The web console (SPEC §7.3) in a real headless Chromium against a server with
// authentication on and tasks in every state: log in with the admin token (refused
// without it), the channels' numbers against QueryLengthByChannel, find tasks by ID
// and HashCode, rerun a failed task, cancel a waiting one, redrive a dead letter and
// see it delivered, pause and resume a schedule. No response of the console is a
// 5xx and no page logs a console error; a screenshot is kept in test-results/.
import { mkdirSync } from "node:fs";
import { ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTokens } from "../service/src/auth/tokens.js";
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";
import { launchChromium } from "./support/browser.js";

const ADMIN = "console-admin-token-0001";
const PRODUCER = "console-producer-token-01";
export const SCREENSHOT_DIR = "test-results/console";

let server: TestServer;
let consoleServer: TestServer;
let browser: Browser;
let base: string;
const serverErrors: string[] = [];
const consoleErrors: string[] = [];

const tasks: Record<"waiting" | "proceeding" | "succeeded" | "failed" | "cancelled" | "deadLetter", WireTask> = {} as never;
let holder: ReceiveStream;

beforeAll(async () => {
  // The data goes in through a replica without authentication; the console is the other replica's, with it.
  server = await startTestServer({
    channels: ["default", "work", { name: "poison", maxReceiveCount: 2 }],
    // No sweeper copy during the test: the dead letter's task goes on only through the redrive.
    settings: { sweepAfterMs: 600_000 },
  });
  consoleServer = await startTestServer({
    replicaOf: server,
    settings: { httpPort: 0, authTokens: parseTokens(JSON.stringify({ admin: ADMIN, producer: PRODUCER }), "test"), sweepAfterMs: 600_000 },
  });
  base = `http://127.0.0.1:${consoleServer.app.httpPort}`;

  const { api } = server;
  tasks.waiting = await api.create({ Channel: "default", Input: "waits for a worker", Owner: "42" });
  tasks.cancelled = await api.create({ Channel: "default", Input: "cancelled at once", Owner: "42" });
  expect((await api.cancel(tasks.cancelled.ID)).State).toBe("200");
  for (const [name, input] of [["succeeded", "works"], ["failed", "<script>alert('not markup')</script>"], ["proceeding", "runs for a while"]] as const) {
    tasks[name] = await api.create({ Channel: "work", Input: input, Owner: "42", RetryMaxLimit: "1", HashCode: `console-${name}-${Date.now()}` });
  }
  holder = new ReceiveStream(api, "work").credit(3);
  const reports = new ReportStream(api);
  for (let i = 0; i < 3; i++) {
    const task = await holder.next(10_000);
    if (task.ID === tasks.succeeded.ID) expect((await reports.report(task.ID, ReportState.SUCCESS, "done", task.LeaseToken)).State).toBe("200");
    if (task.ID === tasks.failed.ID) expect((await reports.report(task.ID, ReportState.FAILURE, "x".repeat(10_000), task.LeaseToken)).State).toBe("200");
  }
  // Its second and last attempt fails too: FAILURE for good.
  const again = await holder.credit(1).next(15_000);
  expect(again.ID).toBe(tasks.failed.ID);
  expect((await reports.report(again.ID, ReportState.FAILURE, "x".repeat(10_000), again.LeaseToken)).State).toBe("200");
  reports.end();
  // A message no replica could handle: received twice straight from SQS (maxReceiveCount 2), so SQS moves it to the DLQ.
  tasks.deadLetter = await api.create({ Channel: "poison", Input: "dead letter", Owner: "42" });
  await eventually(async () => {
    const { Messages } = await server.sqs.send(new ReceiveMessageCommand({ QueueUrl: server.queueUrls.poison, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 1 }));
    return (Messages ?? []).length === 0 && (await server.api.length("poison")).Data === "0";
  }, 30_000);
  expect((await api.putSchedule({ Name: "console-nightly", Cron: "0 3 * * *", TimeZone: "Europe/Paris", Template: { Channel: "default", Input: "nightly", Owner: "42", RetryMaxLimit: "0" }, Paused: false })).State).toBe("200");

  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  holder?.cancel();
  await consoleServer?.stop();
  await server?.stop();
});

async function openPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("response", (response) => {
    if (response.status() >= 500) serverErrors.push(`${response.status()} ${response.url()}`);
  });
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => consoleErrors.push(`${page.url()}: ${error.message}`));
  return page;
}

async function fieldOf(page: Page, name: string): Promise<string> {
  return (await page.locator(`#task [data-field="${name}"]`).innerText()).trim();
}

describe("the web console", () => {
  it("refuses every page and action without an admin token", async () => {
    const page = await fetch(`${base}/`, { redirect: "manual" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe("/login");
    expect((await fetch(`${base}/tasks/${tasks.failed.ID}`, { redirect: "manual" })).status).toBe(303);
    expect((await fetch(`${base}/tasks/${tasks.failed.ID}/input`, { redirect: "manual" })).status).toBe(303);
    expect((await fetch(`${base}/`, { redirect: "manual", headers: { authorization: `Bearer ${PRODUCER}` } })).status).toBe(303);
    expect((await fetch(`${base}/`, { redirect: "manual", headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(200);
    // A login with another token, and an action without the CSRF cookie, are refused.
    const csrf = "c".repeat(32);
    const login = await fetch(`${base}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `queues_csrf=${csrf}` },
      body: new URLSearchParams({ token: PRODUCER, csrf }),
    });
    expect(login.status).toBe(401);
    expect(login.headers.get("set-cookie") ?? "").not.toContain("queues_admin=");
    const forged = await fetch(`${base}/tasks/${tasks.waiting.ID}/cancel`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `queues_admin=${ADMIN}`, origin: "https://evil.example" },
      body: new URLSearchParams({ csrf }),
    });
    expect(forged.status).toBe(403);
    expect((await server.api.get(tasks.waiting.ID)).State).toBe("WAITING");
  });

  it("in Chromium: logs in, shows the channels' numbers, finds, reruns, cancels and redrives; no 5xx, no console error", async () => {
    const page = await openPage();
    await page.goto(`${base}/`);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.fill("#token", ADMIN);
    await page.click("button[type=submit]");
    await page.waitForSelector("#channels", { timeout: 5000 }).catch(async (error: unknown) => {
      throw new Error(`${String(error)}\n${page.url()}\n${(await page.content()).slice(0, 3000)}`);
    });
    const cookies = await page.context().cookies();
    const session = cookies.find((cookie) => cookie.name === "queues_admin");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");

    // The channels and their numbers, as QueryLengthByChannel answers them.
    for (const channel of ["default", "work", "poison"]) {
      const row = page.locator(`tr[data-channel="${channel}"]`);
      expect((await row.locator('[data-field="backlog"]').innerText()).trim()).toBe((await server.api.length(channel)).Data);
    }
    expect((await page.locator('tr[data-channel="work"] [data-field="inFlight"]').innerText()).trim()).toBe("1");
    expect((await page.locator('tr[data-channel="poison"] [data-field="deadLetters"]').innerText()).trim()).toBe("1");
    // Created, succeeded and failed in the last 5 minutes / hour, counted from the table's stream: the tasks
    // went in through the other replica, and this one shows them.
    const work = (field: string) => page.locator(`tr[data-channel="work"] [data-field="${field}"]`).innerText();
    await eventually(async () => {
      await page.reload();
      return (await work("failed")).trim() === "1 / 1";
    }, 15_000);
    expect((await work("created")).trim()).toBe("3 / 3");
    expect((await work("succeeded")).trim()).toBe("1 / 1");

    // Find by ID, then by HashCode.
    await page.click("text=Tasks");
    await page.fill('input[name="find"]', tasks.failed.ID);
    await page.click("text=Find");
    await page.waitForSelector("#task");
    expect(await fieldOf(page, "ID")).toBe(tasks.failed.ID);
    expect(await fieldOf(page, "State")).toBe("FAILURE");
    // The Input is text, never markup; the 10,000-character Output is cut, with a download of the whole.
    expect((await page.locator('pre[data-field="Input"]').innerText()).trim()).toBe(tasks.failed.Input);
    expect(await page.locator("text=Showing the first 4096 of 10000 characters").count()).toBe(1);
    const download = await page.request.get(`${base}/tasks/${tasks.failed.ID}/output`);
    expect(await download.text()).toBe("x".repeat(10_000));

    await page.click("text=Tasks");
    await page.fill('input[name="find"]', tasks.succeeded.HashCode);
    await page.click("text=Find");
    await page.waitForSelector("#task");
    expect(await fieldOf(page, "ID")).toBe(tasks.succeeded.ID);
    expect(await fieldOf(page, "State")).toBe("SUCCESS");

    // Rerun the failed task: a new task with its Input.
    await page.goto(`${base}/tasks/${tasks.failed.ID}`);
    await page.click("text=Rerun as a new task");
    await page.waitForSelector("text=this is the new task");
    const rerunId = await fieldOf(page, "ID");
    expect(rerunId).not.toBe(tasks.failed.ID);
    const rerun = await server.api.get(rerunId);
    expect(rerun.Input).toBe(tasks.failed.Input);
    expect(rerun.Channel).toBe("work");
    expect(await fieldOf(page, "State")).toBe(rerun.State);

    // Cancel the waiting task.
    await page.goto(`${base}/tasks/${tasks.waiting.ID}`);
    await page.click("text=Cancel (and the rest of its chain)");
    await page.waitForSelector("text=Cancelled (with the rest of its chain)");
    expect(await fieldOf(page, "State")).toBe("CANCEL");
    expect((await server.api.get(tasks.waiting.ID)).State).toBe("CANCEL");

    // The owner's tasks, newest first, with the Total.
    await page.goto(`${base}/tasks?owner=42`);
    await page.waitForSelector("#tasks");
    expect(await page.locator("#tasks tbody tr").count()).toBeGreaterThanOrEqual(6);

    // The channel's recent failures (the sparse index): the failed task, not the one that succeeded.
    await page.goto(`${base}/channels/work`);
    expect(await page.locator(`#failures a[href="/tasks/${tasks.failed.ID}"]`).count()).toBe(1);
    expect(await page.locator(`#failures a[href="/tasks/${tasks.succeeded.ID}"]`).count()).toBe(0);

    // Redrive the dead letter; a worker then gets its task.
    await page.goto(`${base}/channels/poison`);
    expect((await page.locator('[data-field="deadLetters"]').innerText()).trim()).toContain("1 message(s)");
    expect(await page.locator(`a[href="/tasks/${tasks.deadLetter.ID}"]`).count()).toBe(1);
    await page.click("text=Redrive: move them back to the channel");
    await page.waitForSelector("text=Redrive:");
    const worker = new ReceiveStream(server.api, "poison").credit(1);
    const delivered = await worker.next(15_000);
    expect(delivered.ID).toBe(tasks.deadLetter.ID);
    worker.cancel();

    // Schedules: pause and resume.
    await page.goto(`${base}/schedules`);
    const schedule = page.locator('tr[data-schedule="console-nightly"]');
    await schedule.locator("text=Pause").click();
    await page.waitForSelector("text=Schedule paused.");
    expect((await server.api.querySchedules("default")).Data.find((each) => each.Name === "console-nightly")?.Paused).toBe(true);
    await page.locator('tr[data-schedule="console-nightly"]').locator("text=Resume").click();
    await page.waitForSelector("text=Schedule resumed.");

    await page.goto(`${base}/`);
    await page.waitForSelector("#channels");
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: `${SCREENSHOT_DIR}/channels.png`, fullPage: true });
    await page.goto(`${base}/tasks/${tasks.failed.ID}`);
    await page.screenshot({ path: `${SCREENSHOT_DIR}/task.png`, fullPage: true });

    expect(serverErrors).toEqual([]);
    expect(consoleErrors).toEqual([]);
    // Every page read by key or index: the console's server never scanned the table.
    expect(consoleServer.faults.log.filter((call) => call.command === "ScanCommand")).toEqual([]);
    expect(consoleServer.faults.log.some((call) => call.command === "QueryCommand")).toBe(true);
  }, 120_000);
});
