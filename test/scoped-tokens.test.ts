// Scoped tokens (issue 12, item 5), through real gRPC clients against a real server on
// the emulators, for every RPC of standard.Queues: a producer token scoped to owners
// creates only for them (another Owner: PERMISSION_DENIED) and sees and cancels only
// their tasks (others: exactly the answer of an absent task); a worker token scoped to
// channels receives only on them (another: PERMISSION_DENIED), sees and reports only
// their tasks (others: as absent) and must send the LeaseToken with every report
// (missing: 400). Unscoped tokens behave as before (test/auth.test.ts has the rest).
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Worker } from "@queues/client";
import { parseTokens } from "../service/src/auth/tokens.js";
import { Api, ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";
import { expectDistinctLeaseTokens, expectLeaseToken } from "./support/lease-tokens.js";

const MAX_OWNER = "18446744073709551615";
const TOKENS = {
  admin: "admin-token-0123456789abcdef",
  producer: "producer-token-0123456789abcdef",
  producer42: "producer42-token-0123456789abcdef",
  worker: "worker-token-0123456789abcdef",
  workerEmails: "worker-emails-token-0123456789abcdef",
};
const CONFIG = {
  admin: TOKENS.admin,
  producer: [TOKENS.producer, { token: TOKENS.producer42, owners: ["42", MAX_OWNER] }],
  worker: [TOKENS.worker, { token: TOKENS.workerEmails, channels: ["emails"] }],
};

let server: TestServer;
let logs = "";
const clients: { close(): void }[] = [];
const streams: { cancel(): void }[] = [];

beforeAll(async () => {
  const logger = pino({ level: "info" }, new Writable({ write: (chunk, _encoding, done) => ((logs += chunk.toString()), done()) }));
  server = await startTestServer({
    channels: ["default", "emails", "sms", "fax"],
    settings: { authTokens: parseTokens(JSON.stringify(CONFIG), "QUEUES_AUTH_TOKENS") },
    logger,
  });
});
afterEach(() => {
  for (const stream of streams.splice(0)) stream.cancel();
});
afterAll(async () => {
  for (const client of clients.splice(0)) client.close();
  await server?.stop();
});

/** A client of the server that sends `token` with every call, streams included. */
function as(token: keyof typeof TOKENS): Api {
  const api = new Api(server.address, { authorization: `Bearer ${TOKENS[token]}` });
  clients.push(api);
  return api;
}

function receiver(token: keyof typeof TOKENS, channel: string): ReceiveStream {
  const stream = new ReceiveStream(as(token), channel);
  streams.push(stream);
  return stream;
}

function reporter(token: keyof typeof TOKENS): ReportStream {
  const stream = new ReportStream(as(token));
  streams.push({ cancel: () => stream.call.cancel() });
  return stream;
}

/** The gRPC status a call failed with, or "ok". */
async function statusOf(promise: Promise<unknown>): Promise<{ code: number; details: string } | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    const { code, details } = error as grpc.ServiceError;
    return { code, details };
  }
}

let serial = 0;
/** Creates a task through the unscoped admin token; returns it as stored. */
async function task(owner: string, channel = "default", extra: Partial<WireTask> = {}): Promise<WireTask> {
  return as("admin").create({ Owner: owner, Channel: channel, Input: `input ${++serial}`, ...extra });
}

/** Delivers `created` (the only task waiting on its channel) to `token`'s worker. */
async function deliver(created: WireTask, token: keyof typeof TOKENS = "worker"): Promise<WireTask> {
  const stream = receiver(token, created.Channel).credit();
  const delivered = await stream.next(20_000);
  expect(delivered.ID).toBe(created.ID);
  return delivered;
}

/** What QueryTaskByID answers for an ID no task has (the shape an invisible task must have). */
async function absentById(api: Api, id: string) {
  const answer = await api.queryById(id);
  expect(answer).toEqual({ State: "404", Message: `Task ${id} does not exist`, Data: null });
  return answer;
}

describe("a producer token scoped to owners", () => {
  it("CreateTask: for its owners 200; for another Owner (0 too) PERMISSION_DENIED and nothing is created", async () => {
    const scoped = as("producer42");
    for (const owner of ["42", MAX_OWNER]) {
      const created = await scoped.createTask({ Owner: owner, Channel: "default", Input: "mine" });
      expect(created.State, created.Message).toBe("200");
      expect((await as("admin").queryByHashCode(created.Data)).Data?.Owner).toBe(owner);
    }
    for (const owner of ["7", "0", "4200"]) {
      const hashCode = `refused-${owner}-${Date.now()}`;
      expect(await statusOf(scoped.createTask({ Owner: owner, Channel: "default", Input: "not mine", HashCode: hashCode }))).toEqual({
        code: grpc.status.PERMISSION_DENIED,
        details: `This token is scoped to other owners: it may not create a task for Owner ${owner}`,
      });
      expect((await as("admin").queryByHashCode(hashCode)).State).toBe("404");
    }
    // HashCodes: a generated one sent back that names another owner's task reads as naming no task (400);
    // a caller's key is unique across all owners (409, nothing created), its task still unreadable.
    const theirs = await task("7", "default", { HashCode: `their-key-${Date.now()}` });
    const generated = await task("7");
    const sentBack = await scoped.createTask({ Owner: "42", Channel: "default", HashCode: generated.HashCode });
    expect(sentBack.State).toBe("400");
    expect(sentBack.Message).toMatch(/names no task/);
    expect((await as("producer").createTask({ Owner: "42", Channel: "default", HashCode: generated.HashCode })).State).toBe("409");
    expect(await scoped.createTask({ Owner: "42", Channel: "default", HashCode: theirs.HashCode })).toMatchObject({ State: "409", Data: theirs.HashCode });
    expect((await scoped.queryByHashCode(theirs.HashCode)).State).toBe("404");
    // The request is still checked first: a bad one is 400 as for anyone.
    expect((await scoped.createTask({ Owner: "42", Channel: "nope" })).State).toBe("400");
    // Unscoped producers create for any owner, as before.
    expect((await as("producer").createTask({ Owner: "7", Channel: "default" })).State).toBe("200");
  });

  it("CreateTasks and schedules: only for its owners (another: PERMISSION_DENIED, nothing created); other owners' schedules are absent to it", async () => {
    const p42 = as("producer42");
    const admin = as("admin");
    const batch = await p42.createTasks([{ Channel: "fax", Owner: "42", Input: "a" }, { Channel: "fax", Owner: MAX_OWNER, Input: "b" }]);
    expect(batch.Results.map((result) => result.State)).toEqual(["200", "200"]);
    const key = `scoped-batch-${++serial}`;
    const refused = await statusOf(p42.createTasks([{ Channel: "fax", Owner: "42", HashCode: key }, { Channel: "fax", Owner: "9" }]));
    expect(refused).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((await admin.queryByHashCode(key)).State).toBe("404");
    for (const result of batch.Results) await admin.cancel((await admin.queryByHashCode(result.Data)).Data?.ID as string);

    const theirs = `theirs-${++serial}`;
    const mine = `mine-${serial}`;
    const yearly = (name: string, owner: string) => ({ Name: name, Cron: "0 0 1 1 *", Template: { Channel: "fax", Owner: owner } });
    expect((await admin.putSchedule(yearly(theirs, "9"))).State).toBe("200");
    expect(await statusOf(p42.putSchedule(yearly(mine, "9")))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((await p42.putSchedule(yearly(mine, "42"))).State).toBe("200");
    // Another owner's name cannot be taken over; it is not listed, and deleting it is 404 as absent.
    const takeover = await p42.putSchedule(yearly(theirs, "42"));
    expect(takeover.State).toBe("409");
    const listed = (await p42.querySchedules()).Data.map((found) => found.Name);
    expect(listed).toContain(mine);
    expect(listed).not.toContain(theirs);
    expect(await p42.deleteSchedule(theirs)).toEqual({ State: "404", Message: `No schedule is named "${theirs}"` });
    expect((await admin.querySchedules("fax")).Data.find((found) => found.Name === theirs)?.Template?.Owner).toBe("9");
    expect(await statusOf(as("workerEmails").putSchedule(yearly(`w-${serial}`, "42")))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    for (const name of [mine, theirs]) expect((await admin.deleteSchedule(name)).State).toBe("200");
  });

  it("CreateTask with a Prior of another owner: 404, as a missing Prior; the other task is not linked", async () => {
    const scoped = as("producer42");
    const theirs = await task("7");
    const answer = await scoped.createTask({ Owner: "42", Channel: "default", Prior: theirs.ID });
    expect(answer).toEqual({ State: "404", Message: `Prior task ${theirs.ID} does not exist`, Data: "" });
    const missing = String(BigInt(theirs.ID) + 1_000_000n);
    expect(await scoped.createTask({ Owner: "42", Channel: "default", Prior: missing })).toEqual({ State: "404", Message: `Prior task ${missing} does not exist`, Data: "" });
    expect((await as("admin").get(theirs.ID)).Next).toBe("0");
    const mine = await task("42");
    const chained = await scoped.createTask({ Owner: "42", Channel: "default", Prior: mine.ID });
    expect(chained.State).toBe("200");
    expect((await scoped.queryByHashCode(chained.Data)).Data?.Prior).toBe(mine.ID);
  });

  it("QueryTaskByID / QueryTaskByHashCode: its owners' tasks; another owner's answers exactly as an absent task", async () => {
    const scoped = as("producer42");
    const mine = await task("42");
    const theirs = await task("7", "default", { HashCode: `theirs-${Date.now()}` });
    expect((await scoped.queryById(mine.ID)).Data).toMatchObject({ ID: mine.ID, Owner: "42" });
    expect((await scoped.queryByHashCode(mine.HashCode)).Data).toMatchObject({ ID: mine.ID });
    expect(await scoped.queryById(theirs.ID)).toEqual(await absentById(scoped, theirs.ID));
    expect(await scoped.queryByHashCode(theirs.HashCode)).toEqual({ State: "404", Message: `No task has HashCode "${theirs.HashCode}"`, Data: null });
    expect(await scoped.queryByHashCode("nobody-has-this-one")).toEqual({ State: "404", Message: `No task has HashCode "nobody-has-this-one"`, Data: null });
    // Unscoped tokens see every task.
    for (const token of ["producer", "worker", "admin"] as const) expect((await as(token).queryById(theirs.ID)).State).toBe("200");
  });

  it("QueryTaskByOwner: its owners' pages; another owner's is the page of an owner without tasks", async () => {
    const scoped = as("producer42");
    await task("4242");
    const [a, b] = [await task("42", "sms"), await task("42", "sms")];
    const own = await eventually(async () => {
      const page = await scoped.queryByOwner("42", "100");
      return page.Data.some((t) => t.ID === b.ID) && page.Data.some((t) => t.ID === a.ID) && Number(page.Total) >= 2 ? page : undefined;
    });
    expect(own.Data.every((t) => t.Owner === "42")).toBe(true);
    // The unscoped producer sees owner 4242's task; the scoped one gets what an owner with no tasks gets.
    await eventually(async () => (await as("producer").queryByOwner("4242")).Total === "1");
    const empty = { State: "200", Message: "OK", Total: "0", Data: [] };
    expect(await as("producer").queryByOwner("999999")).toEqual(empty);
    expect(await scoped.queryByOwner("4242")).toEqual(empty);
    expect(await scoped.queryByOwner("4242", "5", "3")).toEqual(await as("producer").queryByOwner("999999", "5", "3"));
  });

  it("CancelTaskByID: its owners' tasks; another owner's is 404 as absent and stays as it was", async () => {
    const scoped = as("producer42");
    const theirs = await task("7");
    expect(await scoped.cancel(theirs.ID)).toEqual({ State: "404", Message: `Task ${theirs.ID} does not exist`, Data: [] });
    const missing = String(BigInt(theirs.ID) + 1_000_000n);
    expect(await scoped.cancel(missing)).toEqual({ State: "404", Message: `Task ${missing} does not exist`, Data: [] });
    expect((await as("admin").get(theirs.ID)).State).toBe("WAITING");
    const mine = await task("42");
    const cancelled = await scoped.cancel(mine.ID);
    expect(cancelled).toMatchObject({ State: "200", Message: "Cancelled 1 task(s)" });
    expect(cancelled.Data.map((t) => [t.ID, t.State])).toEqual([[mine.ID, "CANCEL"]]);
    // Final: 409 with the task, as for anyone.
    expect(await scoped.cancel(mine.ID)).toMatchObject({ State: "409", Data: [{ ID: mine.ID, State: "CANCEL" }] });
    // Unscoped producers cancel any owner's task.
    expect((await as("producer").cancel(theirs.ID)).State).toBe("200");
  });

  it("RerunTaskByID: its owners' final tasks; another owner's is 404 as absent and nothing is created", async () => {
    const scoped = as("producer42");
    const theirs = await task("7");
    expect((await as("admin").cancel(theirs.ID)).State).toBe("200");
    expect(await scoped.rerun(theirs.ID)).toEqual({ State: "404", Message: `Task ${theirs.ID} does not exist`, Data: "" });
    const mine = await task("42");
    expect((await scoped.cancel(mine.ID)).State).toBe("200");
    const again = await scoped.rerun(mine.ID);
    expect(again.State).toBe("200");
    const rerun = (await scoped.queryByHashCode(again.Data)).Data;
    expect(rerun).toMatchObject({ Owner: "42", State: "WAITING", Input: mine.Input });
    expect((await as("admin").cancel(rerun?.ID as string)).State).toBe("200");
    // Workers may not rerun.
    expect(await statusOf(as("worker").rerun(mine.ID))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });

  it("CancelTaskByID of its task cancels the rest of the chain, but shows only its owners' tasks", async () => {
    const head = await task("42");
    const other = await task("7", "default", { Prior: head.ID }); // linked by an unscoped token
    const last = await task("42", "default", { Prior: other.ID });
    const answer = await as("producer42").cancel(head.ID);
    expect(answer).toMatchObject({ State: "200", Message: "Cancelled 2 task(s); 1 more task(s) of its chain, of other owners, were cancelled too (not shown)" });
    expect(answer.Data.map((t) => [t.ID, t.Owner, t.State])).toEqual([
      [head.ID, "42", "CANCEL"],
      [last.ID, "42", "CANCEL"],
    ]);
    expect((await as("admin").get(other.ID)).State).toBe("CANCEL");
  });

  it("QueryLengthByChannel: allowed on every channel (counts only, no task data); receiving and reporting are not", async () => {
    const scoped = as("producer42");
    for (const channel of ["default", "emails", "sms"]) expect((await scoped.length(channel)).State).toBe("200");
    const receive = receiver("producer42", "default").credit();
    expect((await receive.status).code).toBe(grpc.status.PERMISSION_DENIED);
    const report = reporter("producer42");
    await expect(report.report("1", ReportState.SUCCESS, "", "1")).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
  });
});

describe("a worker token scoped to channels", () => {
  it("ReceiveQueueByChannel: tasks of its channels, with a LeaseToken; a credit for another channel ends the stream with PERMISSION_DENIED", async () => {
    const created = await task("1", "emails");
    const delivered = await deliver(created, "workerEmails");
    expect(delivered).toMatchObject({ ID: created.ID, State: "PROCEEDING", Channel: "emails" });
    expectLeaseToken(delivered.LeaseToken);
    expect((await reporter("workerEmails").report(delivered.ID, ReportState.SUCCESS, "done", delivered.LeaseToken)).State).toBe("200");

    const other = receiver("workerEmails", "sms").credit();
    expect(await other.status).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: 'This token is scoped to other channels: it may not receive on channel "sms"' });
    // A credit for a channel that is not configured: the same refusal, no list of the configured channels.
    const unknown = receiver("workerEmails", "nope").credit();
    expect(await unknown.status).toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: "This token is scoped to other channels: it may not receive on a channel that is not configured" });
    // A stream that mixes channels ends at the first credit outside the scope.
    const mixed = receiver("workerEmails", "emails").credit(1).credit(1, "default");
    expect((await mixed.status).code).toBe(grpc.status.PERMISSION_DENIED);
    // Unscoped workers: any channel; an unknown one is INVALID_ARGUMENT, as before.
    expect((await receiver("worker", "nope").credit().status).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("ReportTaskResult: on its channels' tasks with the LeaseToken; each delivery's token differs, a stale one is 409", async () => {
    const created = await task("1", "emails", { RetryMaxLimit: "2" });
    const first = await deliver(created, "workerEmails");
    const reports = reporter("workerEmails");
    const beat = await reports.report(first.ID, ReportState.PROCEEDING, "half", first.LeaseToken);
    expect(beat).toMatchObject({ State: "200", Data: first.ID });
    expect((await reports.report(first.ID, ReportState.FAILURE, "boom", first.LeaseToken)).State).toBe("200");
    const second = await deliver(created, "workerEmails");
    expect(second.RetryCount).toBe("1");
    expectDistinctLeaseTokens(first.LeaseToken, second.LeaseToken);
    const stale = await reports.report(second.ID, ReportState.SUCCESS, "late", first.LeaseToken);
    expect(stale).toMatchObject({ State: "409", Data: second.ID, Message: `Task ${second.ID} was delivered again since lease ${first.LeaseToken}; this report is stale` });
    expect(stale.Message).not.toContain(second.LeaseToken);
    expect((await reports.report(second.ID, ReportState.SUCCESS, "done", second.LeaseToken)).State).toBe("200");
    expect(await reports.report(second.ID, ReportState.SUCCESS, "done", second.LeaseToken)).toMatchObject({ State: "200", Message: `Already recorded: task ${second.ID} succeeded` });
    expect((await as("admin").get(created.ID))).toMatchObject({ State: "SUCCESS", Output: "done" });
  });

  it("ReportTaskResult without a LeaseToken: 400 for every code, and the task is left as it was", async () => {
    const created = await task("1", "emails");
    const delivered = await deliver(created, "workerEmails");
    const reports = reporter("workerEmails");
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      for (const token of [undefined, "0"]) {
        expect(await reports.report(delivered.ID, code, "no token", token), `code ${code} token ${token}`).toEqual({
          State: "400",
          Message: "LeaseToken is required: a worker token scoped to channels must send the delivered task's LeaseToken with every report",
          Data: delivered.ID,
          LeaseExpireTime: "",
        });
      }
    }
    expect(await as("admin").get(created.ID)).toMatchObject({ State: "PROCEEDING", Output: "" });
    // Unscoped workers may still report without it (the seed's behaviour).
    expect((await reporter("worker").report(delivered.ID, ReportState.SUCCESS, "unfenced")).State).toBe("200");
  });

  it("ReportTaskResult on another channel's task: 404 as absent, for every code, even with its right LeaseToken", async () => {
    const created = await task("1", "fax"); // a channel no other test uses: its only task
    const delivered = await deliver(created); // to the unscoped worker
    const reports = reporter("workerEmails");
    const missing = String(BigInt(created.ID) + 1_000_000n);
    for (const code of [ReportState.SUCCESS, ReportState.FAILURE, ReportState.CANCEL, ReportState.PROCEEDING]) {
      const answer = await reports.report(delivered.ID, code, "not mine", delivered.LeaseToken);
      expect(answer, `code ${code}`).toEqual({ State: "404", Message: `Task ${delivered.ID} does not exist`, Data: delivered.ID, LeaseExpireTime: "" });
      expect(await reports.report(missing, code, "", delivered.LeaseToken)).toEqual({ State: "404", Message: `Task ${missing} does not exist`, Data: missing, LeaseExpireTime: "" });
      // A wrong token gets the same 404, not the 409 that would tell the task exists.
      expect((await reports.report(delivered.ID, code, "", "12345")).State).toBe("404");
    }
    expect(await as("admin").get(created.ID)).toMatchObject({ State: "PROCEEDING", Output: "", RetryCount: "0" });
    expect((await reporter("worker").report(delivered.ID, ReportState.SUCCESS, "by its worker", delivered.LeaseToken)).State).toBe("200");
  });

  it("QueryTaskByID / QueryTaskByHashCode: its channels' tasks; another channel's as absent; QueryTaskByOwner is refused", async () => {
    const scoped = as("workerEmails");
    const mine = await task("1", "emails");
    const theirs = await task("1", "sms");
    expect((await scoped.queryById(mine.ID)).Data).toMatchObject({ ID: mine.ID, Channel: "emails", LeaseToken: "0" });
    expect((await scoped.queryByHashCode(mine.HashCode)).State).toBe("200");
    expect(await scoped.queryById(theirs.ID)).toEqual(await absentById(scoped, theirs.ID));
    expect(await scoped.queryByHashCode(theirs.HashCode)).toEqual({ State: "404", Message: `No task has HashCode "${theirs.HashCode}"`, Data: null });
    expect(await statusOf(scoped.queryByOwner("1"))).toEqual({
      code: grpc.status.PERMISSION_DENIED,
      details: "A worker token scoped to channels may not call QueryTaskByOwner: an owner's tasks span channels",
    });
    // Its role's limits stay: no create, cancel or length.
    expect(await statusOf(scoped.createTask({ Channel: "emails" }))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await statusOf(scoped.cancel(mine.ID))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect(await statusOf(scoped.length("emails"))).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // The unscoped worker may list an owner's tasks, as before.
    expect((await as("worker").queryByOwner("1")).State).toBe("200");
    await as("admin").cancel(mine.ID);
    await as("admin").cancel(theirs.ID);
  });

  it("the SDK's Worker runs tasks with a scoped token (it sends every delivery's LeaseToken)", async () => {
    const worker = new Worker({
      address: server.address,
      channel: "emails",
      metadata: { authorization: `Bearer ${TOKENS.workerEmails}` },
      handler: async (t, { heartbeat }) => {
        await heartbeat("working");
        return `done: ${t.Input}`;
      },
    });
    const failures: unknown[] = [];
    worker.on("taskFailed", (_t, error) => failures.push(error));
    worker.on("leaseLost", (t) => failures.push(`lease lost: ${t.ID}`));
    void worker.run();
    try {
      const created = await task("1", "emails", { Input: "sdk" });
      const done = await eventually(async () => {
        const found = await as("admin").get(created.ID);
        return found.State === "SUCCESS" ? found : undefined;
      }, 20_000);
      expect(done.Output).toBe("done: sdk");
      expect(failures).toEqual([]);
    } finally {
      await worker.close();
    }
  });
});

describe("refusals for a scope are logged like any refusal, and no token is", () => {
  it("logs the RPC and the reason of a CreateTask for another Owner and of a credit for another channel; never a token", async () => {
    await statusOf(as("producer42").createTask({ Owner: "9", Channel: "default" }));
    await receiver("workerEmails", "default").credit().status;
    const lines = logs
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    const refusals = lines.filter((line) => line.msg === "call refused");
    expect(refusals).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ rpc: "CreateTask", reason: "PERMISSION_DENIED: This token is scoped to other owners: it may not create a task for Owner 9", requestId: expect.any(String) }),
        expect.objectContaining({ rpc: "ReceiveQueueByChannel", reason: 'PERMISSION_DENIED: This token is scoped to other channels: it may not receive on channel "default"', requestId: expect.any(String) }),
      ]),
    );
    for (const token of Object.values(TOKENS)) expect(logs).not.toContain(token);
  });
});
