// The typed client (QueuesClient) against a real server: results, typed errors for
// every non-200 State, deadlines, and uint64 values that never pass through a number.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConflictError,
  DuplicateTaskError,
  InvalidArgumentError,
  NotFoundError,
  QueuesClient,
  QueuesError,
  UnavailableError,
  uint64,
} from "@queues/client";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { credentialsOf, metadataOf } from "../client/src/connection.js";
import { eventually, sleep, startTestServer, type TestServer } from "./support/harness.js";
import { requireBuild } from "./harness/build.js";

let server: TestServer;
let client: QueuesClient;

beforeAll(async () => {
  server = await startTestServer({ channels: [{ name: "default" }, "other", { name: "ranked", priorities: 3, concurrencyPerKey: 1 }] });
  client = new QueuesClient({ address: server.address, metadata: { "x-request-id": "client-test" } });
});
afterAll(async () => {
  client?.close();
  await server?.stop();
});

describe("QueuesClient", () => {
  it("creates, reads, lists, measures and cancels, with uint64 values as exact strings", async () => {
    const owner = 2n ** 64n - 2n;
    const hashCode = await client.createTask({ channel: "default", input: "typed", owner, retryMaxLimit: 7 });
    expect(hashCode).toMatch(/^[\w~-]{20}$/);
    const task = await client.getTaskByHashCode(hashCode);
    expect(task).toMatchObject({ Input: "typed", Owner: owner.toString(), RetryMaxLimit: "7", State: "WAITING" });
    expect(await client.getTask(BigInt(task.ID))).toMatchObject({ HashCode: hashCode });
    expect(await client.getTask(task.ID)).toMatchObject({ HashCode: hashCode });
    // The total is counted from the table's stream: it includes the task a moment after its create.
    const page = await eventually(async () => {
      const listed = await client.listTasksByOwner(owner.toString(), { limit: 10 });
      return listed.total === "1" ? listed : undefined;
    });
    expect(page).toMatchObject({ total: "1" });
    expect(page.tasks.map((t) => t.ID)).toEqual([task.ID]);
    expect(Number(await client.queueLength("default"))).toBeGreaterThanOrEqual(1);
    expect((await client.cancelTask(task.ID)).map((t) => [t.ID, t.State])).toEqual([[task.ID, "CANCEL"]]);
  });

  it("createTask with runAt (Date or string), createTasks with an outcome per task, and schedules", async () => {
    const runAt = new Date(Date.now() + 3_600_000);
    const scheduled = await client.getTaskByHashCode(await client.createTask({ channel: "default", runAt }));
    expect(scheduled.RunAt).toBe(runAt.toISOString());
    const inAMonth = Math.floor((Date.now() + 30 * 86_400_000) / 1000) * 1000;
    const withOffset = `${new Date(inAMonth + 3_600_000).toISOString().slice(0, 19)}+01:00`;
    const asString = await client.getTaskByHashCode(await client.createTask({ channel: "default", runAt: withOffset }));
    expect(asString.RunAt).toBe(new Date(inAMonth).toISOString());
    await expect(client.createTask({ channel: "default", runAt: new Date(Number.NaN) })).rejects.toThrow(RangeError);
    const key = `sdk-${Date.now()}`;
    const outcomes = await client.createTasks([
      { channel: "default", hashCode: key },
      { channel: "default", hashCode: key },
      { channel: "nope" },
      { channel: "default", runAt },
    ]);
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, false, false, true]);
    expect(outcomes[1]).toMatchObject({ ok: false, error: { name: "DuplicateTaskError", hashCode: key } });
    expect(outcomes[2]).toMatchObject({ ok: false, error: { state: 400 } });
    await expect(client.createTasks([])).rejects.toMatchObject({ state: 400 });
    const put = await client.putSchedule({ name: "sdk-hourly", cron: "0 * * * *", template: { channel: "default", input: "hi", owner: 5n } });
    expect(put).toMatchObject({ Name: "sdk-hourly", Paused: false, Template: { Channel: "default", Input: "hi", Owner: "5" } });
    expect((await client.listSchedules("default")).map((found) => found.Name)).toContain("sdk-hourly");
    await client.deleteSchedule("sdk-hourly");
    await expect(client.deleteSchedule("sdk-hourly")).rejects.toMatchObject({ state: 404 });
    for (const task of [scheduled, asString]) await client.cancelTask(task.ID);
    for (const outcome of outcomes) if (outcome.ok) await client.cancelTask((await client.getTaskByHashCode(outcome.hashCode)).ID);
  });

  it("createTask, createTasks and schedule templates carry priority and concurrencyKey; a level the channel lacks or a bad key is InvalidArgumentError", async () => {
    // "ranked" has 3 levels: 1 the highest, 0 or left out the middle one (2).
    const ranked = await client.getTaskByHashCode(await client.createTask({ channel: "ranked", input: "urgent", priority: 1, concurrencyKey: "tenant-42" }));
    expect(ranked).toMatchObject({ Channel: "ranked", Priority: "1", ConcurrencyKey: "tenant-42", State: "WAITING" });
    expect(await client.getTask(ranked.ID)).toMatchObject({ Priority: "1", ConcurrencyKey: "tenant-42" });
    const middle = await client.getTaskByHashCode(await client.createTask({ channel: "ranked" }));
    expect(middle).toMatchObject({ Priority: "2", ConcurrencyKey: "" });
    const zero = await client.getTaskByHashCode(await client.createTask({ channel: "ranked", priority: 0, concurrencyKey: "a.b:c_d-1" }));
    expect(zero).toMatchObject({ Priority: "2", ConcurrencyKey: "a.b:c_d-1" });
    // A channel without priorities has the one level 1.
    const plain = await client.getTaskByHashCode(await client.createTask({ channel: "default", priority: 1, concurrencyKey: "k".repeat(128) }));
    expect(plain).toMatchObject({ Priority: "1", ConcurrencyKey: "k".repeat(128) });

    const tooLow = await client.createTask({ channel: "ranked", priority: 4 }).catch((error: unknown) => error);
    expect(tooLow).toBeInstanceOf(InvalidArgumentError);
    expect(tooLow).toMatchObject({ state: 400, retryable: false, message: expect.stringMatching(/Priority is 4; this channel has 3 levels/) });
    await expect(client.createTask({ channel: "default", priority: 2 })).rejects.toMatchObject({ state: 400, message: expect.stringMatching(/Priority/) });
    for (const concurrencyKey of ["has space", "k".repeat(129), "ünïcødé", "a/b"]) {
      await expect(client.createTask({ channel: "ranked", concurrencyKey })).rejects.toMatchObject({ state: 400, message: expect.stringMatching(/ConcurrencyKey/) });
    }
    // Not an integer a uint64 can carry: refused before anything is sent.
    for (const priority of [-1, 1.5, Number.NaN, 2 ** 53]) await expect(client.createTask({ channel: "ranked", priority })).rejects.toThrow(RangeError);

    const outcomes = await client.createTasks([
      { channel: "ranked", priority: 3, concurrencyKey: "batch" },
      { channel: "ranked", priority: 5 },
      { channel: "ranked", concurrencyKey: "bad key" },
      { channel: "default" },
    ]);
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, false, false, true]);
    expect(outcomes[1]).toMatchObject({ ok: false, error: { name: "InvalidArgumentError", state: 400, message: expect.stringMatching(/Priority/) } });
    expect(outcomes[2]).toMatchObject({ ok: false, error: { state: 400, message: expect.stringMatching(/ConcurrencyKey/) } });
    const batched = await client.getTaskByHashCode((outcomes[0] as { hashCode: string }).hashCode);
    expect(batched).toMatchObject({ Priority: "3", ConcurrencyKey: "batch" });

    const template = { channel: "ranked", input: "tick", priority: 1, concurrencyKey: "nightly" };
    const put = await client.putSchedule({ name: "sdk-ranked", cron: "0 0 1 1 *", template });
    expect(put).toMatchObject({ Name: "sdk-ranked", Template: { Channel: "ranked", Priority: "1", ConcurrencyKey: "nightly" } });
    expect((await client.listSchedules("ranked")).find((found) => found.Name === "sdk-ranked")).toMatchObject({ Template: { Priority: "1", ConcurrencyKey: "nightly" } });
    await expect(client.putSchedule({ name: "sdk-ranked", cron: "0 0 1 1 *", template: { ...template, priority: 4 } })).rejects.toMatchObject({
      state: 400,
      message: expect.stringMatching(/Template\.Priority/),
    });
    await expect(client.putSchedule({ name: "sdk-ranked", cron: "0 0 1 1 *", template: { ...template, concurrencyKey: "no spaces" } })).rejects.toMatchObject({
      state: 400,
      message: expect.stringMatching(/Template\.ConcurrencyKey/),
    });
    await client.deleteSchedule("sdk-ranked");
    for (const task of [ranked, middle, zero, plain, batched]) await client.cancelTask(task.ID);
    if (outcomes[3]?.ok) await client.cancelTask((await client.getTaskByHashCode(outcomes[3].hashCode)).ID);
  });

  it("turns each non-200 State into its typed error", async () => {
    const hashCode = `typed-${Date.now()}`;
    await client.createTask({ channel: "default", hashCode });
    const duplicate = await client.createTask({ channel: "default", hashCode }).catch((error: unknown) => error);
    expect(duplicate).toBeInstanceOf(DuplicateTaskError);
    expect(duplicate).toBeInstanceOf(ConflictError);
    expect(duplicate).toMatchObject({ state: 409, hashCode, retryable: false });

    await expect(client.getTask("1")).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.getTask(0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.createTask({ channel: "nope" })).rejects.toMatchObject({ state: 400, message: expect.stringMatching(/not configured/) });
    await expect(client.queueLength("nope")).rejects.toBeInstanceOf(InvalidArgumentError);

    const task = await client.getTaskByHashCode(hashCode);
    await client.cancelTask(task.ID);
    const again = await client.cancelTask(task.ID).catch((error: unknown) => error);
    expect(again).toBeInstanceOf(ConflictError);
    expect((again as QueuesError).data).toMatchObject([{ ID: task.ID, State: "CANCEL" }]);
  });

  it("rerunTask runs a final task again as a new task (resolving with its HashCode, like createTask); not final, absent or 0 are typed errors", async () => {
    const owner = 2n ** 64n - 3n;
    const first = await client.getTaskByHashCode(await client.createTask({ channel: "ranked", input: "again", owner, retryMaxLimit: 2, priority: 1, concurrencyKey: "k-1" }));
    // WAITING is not final: 409, nothing created.
    const notFinal = await client.rerunTask(first.ID).catch((error: unknown) => error);
    expect(notFinal).toBeInstanceOf(ConflictError);
    expect(notFinal).not.toBeInstanceOf(DuplicateTaskError);
    expect(notFinal).toMatchObject({ state: 409, message: expect.stringMatching(/is WAITING; only a final task/) });
    await client.cancelTask(first.ID);
    const hashCode = await client.rerunTask(BigInt(first.ID));
    expect(hashCode).toMatch(/^[\w~-]{20}$/);
    expect(hashCode).not.toBe(first.HashCode);
    const rerun = await client.getTaskByHashCode(hashCode);
    expect(rerun).toMatchObject({ Channel: "ranked", Input: "again", Owner: owner.toString(), RetryMaxLimit: "2", Priority: "1", ConcurrencyKey: "k-1", State: "WAITING", RetryCount: "0" });
    expect(rerun.ID).not.toBe(first.ID);
    expect((await client.getTask(first.ID)).State).toBe("CANCEL");
    await client.cancelTask(rerun.ID);
    const missing = String(BigInt(rerun.ID) + 1_000_000n);
    await expect(client.rerunTask(missing)).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.rerunTask(0)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.rerunTask(-1)).rejects.toThrow(RangeError);
  });

  it("answers UnavailableError (retryable) when the backend outlives the call's deadline", async () => {
    const task = await client.getTaskByHashCode(await client.createTask({ channel: "default" }));
    server.faults.hook = async (command) => {
      if (command === "GetItemCommand") await sleep(5_000);
    };
    try {
      // 2 s: the server answers 200 ms before it, a margin a loaded machine keeps.
      const error = await client.getTask(task.ID, { deadlineMs: 2_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnavailableError);
      expect((error as QueuesError).retryable).toBe(true);
    } finally {
      server.faults.clear();
    }
  });

  it("refuses uint64 values that a number cannot carry exactly, before sending anything", () => {
    expect(uint64(2n ** 64n - 1n, "id")).toBe("18446744073709551615");
    expect(uint64("18446744073709551615", "id")).toBe("18446744073709551615");
    expect(uint64(42, "id")).toBe("42");
    expect(uint64(undefined, "id")).toBe("0");
    expect(() => uint64(2 ** 53, "id")).toThrow(RangeError);
    expect(() => uint64(-1, "id")).toThrow(RangeError);
    expect(() => uint64(2n ** 64n, "id")).toThrow(RangeError);
    expect(() => uint64("12a", "id")).toThrow(RangeError);
    expect(() => uint64("18446744073709551616", "id")).toThrow(RangeError);
  });

  it("connects with TLS when asked, and sends its metadata with every call", () => {
    expect(credentialsOf(undefined)._isSecure()).toBe(false);
    expect(credentialsOf(true)._isSecure()).toBe(true);
    expect(metadataOf({ authorization: "Bearer t", "x-request-id": "r" }).getMap()).toEqual({ authorization: "Bearer t", "x-request-id": "r" });
  });
});

describe("the package export", () => {
  it('is importable as "@queues/client" (package.json exports), with type declarations', () => {
    // The export is the compiled client/dist: current code, not an old build.
    requireBuild("this test");
    const root = fileURLToPath(new URL("..", import.meta.url));
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", "const m = await import('@queues/client'); console.log(typeof m.QueuesClient, typeof m.Worker, typeof m.NonRetryableError)"], {
      cwd: root,
      encoding: "utf8",
    });
    expect(run.stderr).toBe("");
    expect(run.stdout.trim()).toBe("function function function");
    expect(existsSync(`${root}/client/dist/index.d.ts`)).toBe(true);
  });
});
