// CreateTask (SPEC §3): every answer it gives and every rule it enforces, through a
// real gRPC client against real servers (two replicas on one table for the races).
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream, type WireTask } from "./support/client.js";
import { eventually, sleep, startTestServer, type AwsCall, type TestServer } from "./support/harness.js";
import { sentTaskIds } from "./support/aws-calls.js";

const RFC3339_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const LIMIT = 256 * 1024;
const TWO_POW_53 = 2n ** 53n;

let server: TestServer;
let replica: TestServer;

beforeAll(async () => {
  // "prior" has its own queue so the worker in the FAILURE test only ever sees its own task.
  server = await startTestServer({ channels: ["default", "other", "prior"] });
  replica = await startTestServer({ replicaOf: server });
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

/** A fresh owner per test, above 2^53 so it never fits a JS number. */
function freshOwner(): string {
  return (BigInt(`0x${randomBytes(7).toString("hex")}`) + TWO_POW_53 * 4n).toString();
}

/**
 * The owner has exactly `expected` tasks: Total (counted from the table's stream, so
 * it may lag a create by up to ~2 s) reaches it, and the first page lists that many.
 */
async function expectOwnerTotal(owner: string, expected: number): Promise<void> {
  let page = await server.api.queryByOwner(owner, "100", "0");
  await eventually(async () => {
    page = await server.api.queryByOwner(owner, "100", "0");
    return page.State === "200" && page.Total === String(expected) && page.Data.length === expected;
  }, 10_000).catch(() => undefined); // the assertion below says what it was
  expect({ State: page.State, Total: page.Total, listed: page.Data.length }).toEqual({ State: "200", Total: String(expected), listed: expected });
}

/**
 * Nothing was created for the owner: no task in the first page, which is read from
 * the index whatever Total says (an index the emulator updates with the write), and
 * Total 0.
 */
async function expectNoTasks(owner: string): Promise<void> {
  const page = await server.api.queryByOwner(owner, "100", "0");
  expect({ State: page.State, Total: page.Total, listed: page.Data.length }).toEqual({ State: "200", Total: "0", listed: 0 });
}

/** A UTF-8 string of exactly `bytes` bytes that mixes 1-, 2-, 3- and 4-byte characters. */
function utf8OfBytes(bytes: number): string {
  const unit = "a\u00e9\u20ac\u{1F600}"; // 1 + 2 + 3 + 4 = 10 bytes
  const text = unit.repeat(Math.floor(bytes / 10)) + "b".repeat(bytes % 10);
  expect(Buffer.byteLength(text, "utf8")).toBe(bytes);
  return text;
}

describe("CreateTask: the answer", () => {
  it("answers 200 with Data = the HashCode, and the task is stored WAITING with server-filled fields", async () => {
    const owner = freshOwner();
    const before = Date.now();
    const created = await server.api.createTask({ Channel: "default", Input: "payload", Owner: owner });
    const after = Date.now();
    expect(created.State).toBe("200");
    expect(created.Message).not.toBe("");
    const found = await server.api.queryByHashCode(created.Data);
    expect(found.State).toBe("200");
    const task = found.Data as WireTask;
    expect(task).toMatchObject({
      Next: "0",
      Prior: "0",
      Owner: owner,
      State: "WAITING",
      Input: "payload",
      Output: "",
      Channel: "default",
      HashCode: created.Data,
      RetryCount: "0",
      RetryMaxLimit: "3",
    });
    expect(BigInt(task.ID)).toBeGreaterThan(0n);
    for (const time of [task.CreateTime, task.UpdateTime]) {
      expect(time).toMatch(RFC3339_UTC_MS);
      expect(new Date(time).toISOString()).toBe(time);
      // Functional window (the server's clock is this process's clock), not a timing assertion.
      expect(Date.parse(time)).toBeGreaterThanOrEqual(before - 1_000);
      expect(Date.parse(time)).toBeLessThanOrEqual(after + 1_000);
    }
    expect(Date.parse(task.UpdateTime)).toBeGreaterThanOrEqual(Date.parse(task.CreateTime));
  });

  it("assigns IDs that are > 0, above 2^53, exact on the wire and increasing with creation time across replicas", async () => {
    const ids: bigint[] = [];
    for (let i = 0; i < 10; i++) {
      // Sequential creates, alternating replicas: each one is answered before the next starts.
      const api = i % 2 === 0 ? server.api : replica.api;
      const task = await api.create({ Channel: "default", Input: `n${i}` });
      expect(task.ID).toMatch(/^[1-9]\d*$/);
      const id = BigInt(task.ID);
      expect(id).toBeGreaterThan(TWO_POW_53);
      // Exact: querying by the decimal string finds the very same task.
      const byId = await (i % 2 === 0 ? replica : server).api.queryById(task.ID);
      expect(byId.State).toBe("200");
      expect(byId.Data).toMatchObject({ ID: task.ID, Input: `n${i}` });
      ids.push(id);
    }
    for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("ignores server-managed fields in the request (ID, State, Output, RetryCount, CreateTime, UpdateTime)", async () => {
    const before = Date.now();
    const created = await server.api.createTask({
      Channel: "default",
      Input: "mine",
      ID: "12345",
      State: "SUCCESS",
      Output: "forged output",
      RetryCount: "7",
      CreateTime: "2001-02-03T04:05:06.789Z",
      UpdateTime: "2001-02-03T04:05:06.789Z",
    });
    expect(created.State).toBe("200");
    const task = (await server.api.queryByHashCode(created.Data)).Data as WireTask;
    expect(task.ID).not.toBe("12345");
    expect(BigInt(task.ID)).toBeGreaterThan(TWO_POW_53);
    expect(task).toMatchObject({ State: "WAITING", Output: "", RetryCount: "0", Input: "mine" });
    expect(Date.parse(task.CreateTime)).toBeGreaterThanOrEqual(before - 1_000);
    expect(Date.parse(task.UpdateTime)).toBeGreaterThanOrEqual(before - 1_000);
    // Nothing was stored under the ID the request claimed.
    expect((await server.api.queryById("12345")).State).toBe("404");
  });

  it("stores Owner 2^64-1 and other values above 2^53 exactly, and each is queryable as its own owner", async () => {
    const owners = ["18446744073709551615", "18446744073709551614", "9007199254740993", "9007199254740992"];
    for (const owner of owners) {
      const task = await server.api.create({ Channel: "default", Owner: owner, Input: `owner ${owner}` });
      expect(task.Owner).toBe(owner);
      expect((await server.api.get(task.ID)).Owner).toBe(owner);
    }
    for (const owner of owners) {
      await expectOwnerTotal(owner, 1);
      const page = await server.api.queryByOwner(owner, "0", "0");
      expect(page.Data[0]).toMatchObject({ Owner: owner, Input: `owner ${owner}` });
    }
  });
});

describe("CreateTask: HashCode", () => {
  it("generates a unique 20-character URL-safe HashCode when none is given", async () => {
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => server.api.createTask({ Channel: "default", Input: `g${i}` })));
    const codes = answers.map((answer) => {
      expect(answer.State).toBe("200");
      expect(answer.Data).toMatch(/^[A-Za-z0-9_~-]{20}$/);
      return answer.Data;
    });
    expect(new Set(codes).size).toBe(codes.length);
    const task = (await server.api.queryByHashCode(codes[0]!)).Data as WireTask;
    expect(task.HashCode).toBe(codes[0]);
  });

  it("accepts a caller's HashCode of 1 to 128 characters of [A-Za-z0-9._:-] and keeps it", async () => {
    const suffix = randomBytes(4).toString("hex");
    const codes = [
      "x", // one character is enough (unique per server: each test server has its own table)
      `Az09._:-${suffix}`,
      `order:2026-11-23.${suffix}`,
      `${suffix}${"A1.-:_".repeat(30)}`.slice(0, 128),
    ];
    expect(codes[3]).toHaveLength(128);
    for (const code of codes) {
      const created = await server.api.createTask({ Channel: "default", HashCode: code, Input: code });
      expect(created, code).toMatchObject({ State: "200", Data: code });
      const found = await server.api.queryByHashCode(code);
      expect(found.State).toBe("200");
      expect(found.Data).toMatchObject({ HashCode: code, Input: code });
    }
  });

  it("answers 400 for a HashCode that breaks the rule, and creates nothing", async () => {
    const owner = freshOwner();
    const bad = ["a".repeat(129), "has space", "slash/y", "hash#1", "caf\u00e9", "new\nline", "plus+1", "comma,1", "\u{1F600}", " "];
    for (const code of bad) {
      const answer = await server.api.createTask({ Channel: "default", HashCode: code, Owner: owner });
      expect(answer.State, JSON.stringify(code)).toBe("400");
      expect(answer.Message).toMatch(/HashCode/);
      expect(answer.Data).toBe("");
    }
    await expectNoTasks(owner);
  });

  it("answers 409 with Data = the HashCode on a duplicate and creates nothing", async () => {
    const owner = freshOwner();
    const code = `dup-${randomBytes(6).toString("hex")}`;
    const first = await server.api.createTask({ Channel: "default", HashCode: code, Owner: owner, Input: "first" });
    expect(first).toMatchObject({ State: "200", Data: code });
    const original = (await server.api.queryByHashCode(code)).Data as WireTask;

    // Same request again, and a different one with the same key, on both replicas.
    for (const api of [server.api, replica.api]) {
      for (const input of ["first", "second"]) {
        const again = await api.createTask({ Channel: "other", HashCode: code, Owner: owner, Input: input });
        expect(again.State).toBe("409");
        expect(again.Data).toBe(code);
        expect(again.Message).toMatch(new RegExp(code));
      }
    }
    await expectOwnerTotal(owner, 1);
    const after = (await server.api.queryByHashCode(code)).Data as WireTask;
    expect(after).toEqual(original);
  });

  it("creates exactly one task when 20 creates with one HashCode race over two replicas", async () => {
    const owner = freshOwner();
    const code = `race-${randomBytes(6).toString("hex")}`;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? server : replica).api.createTask({ Channel: "default", HashCode: code, Owner: owner, Input: `r${i}` })),
    );
    const states = answers.map((answer) => answer.State).sort();
    expect(states.filter((state) => state === "200")).toHaveLength(1);
    expect(states.filter((state) => state === "409")).toHaveLength(19);
    for (const answer of answers) expect(answer.Data).toBe(code);
    await expectOwnerTotal(owner, 1);
    const page = await server.api.queryByOwner(owner, "100", "0");
    const winner = answers.findIndex((answer) => answer.State === "200");
    expect(page.Data[0]).toMatchObject({ HashCode: code, Input: `r${winner}` });
    expect((await replica.api.queryByHashCode(code)).Data?.ID).toBe(page.Data[0]?.ID);
  });
});

describe("CreateTask: validation", () => {
  it("answers 400 when Task is missing", async () => {
    const answer = await server.api.createTask(null);
    expect(answer.State).toBe("400");
    expect(answer.Message).toMatch(/Task/);
    expect(answer.Data).toBe("");
  });

  it("answers 400 for an unknown or empty Channel, and creates nothing", async () => {
    const owner = freshOwner();
    for (const channel of ["nope", "", "Default", "default "]) {
      const answer = await server.api.createTask({ Channel: channel, Owner: owner, Input: "x" });
      expect(answer.State, JSON.stringify(channel)).toBe("400");
      expect(answer.Message).toMatch(/Channel/);
    }
    const missing = await server.api.createTask({ Owner: owner, Input: "x" });
    expect(missing.State).toBe("400");
    await expectNoTasks(owner);
  });

  it("answers 400 for a non-zero Next, and creates nothing", async () => {
    const owner = freshOwner();
    const target = await server.api.create({ Channel: "default", Input: "target" });
    for (const next of ["1", target.ID, "18446744073709551615"]) {
      const answer = await server.api.createTask({ Channel: "default", Owner: owner, Next: next });
      expect(answer.State).toBe("400");
      expect(answer.Message).toMatch(/Next/);
    }
    await expectNoTasks(owner);
    expect((await server.api.get(target.ID)).Next).toBe("0");
  });

  it("accepts an Input of exactly 256 KiB of UTF-8 (multi-byte characters) and returns it exactly", async () => {
    const input = utf8OfBytes(LIMIT);
    const created = await server.api.createTask({ Channel: "default", Input: input });
    expect(created.State).toBe("200");
    const task = (await server.api.queryByHashCode(created.Data)).Data as WireTask;
    expect(Buffer.byteLength(task.Input, "utf8")).toBe(LIMIT);
    expect(task.Input === input).toBe(true);
    expect((await server.api.get(task.ID)).Input === input).toBe(true);
  });

  it("answers 400 for an Input one byte over 256 KiB, naming Input and the limit", async () => {
    const owner = freshOwner();
    const over = [
      utf8OfBytes(LIMIT + 1),
      "x".repeat(LIMIT + 1),
      // Fewer characters than the limit, but more bytes: the limit is in bytes of UTF-8.
      "\u20ac".repeat(100_000),
    ];
    for (const input of over) {
      const answer = await server.api.createTask({ Channel: "default", Owner: owner, Input: input });
      expect(answer.State).toBe("400");
      expect(answer.Message).toMatch(/Input/);
      expect(answer.Message).toMatch(/262144|256 ?KiB/);
    }
    await expectNoTasks(owner);
  });

  it("round-trips Inputs around and above 1 KiB exactly (stored outside the task item)", async () => {
    const owner = freshOwner();
    const inputs = [utf8OfBytes(1023), utf8OfBytes(1024), utf8OfBytes(1025), "\u{1F600}".repeat(300), `{"k":"${"v\\n\u00e9".repeat(2000)}"}`, utf8OfBytes(200_000)];
    const ids: string[] = [];
    for (const input of inputs) {
      const task = await server.api.create({ Channel: "other", Owner: owner, Input: input });
      expect(task.Input === input).toBe(true);
      expect((await replica.api.get(task.ID)).Input === input).toBe(true);
      ids.push(task.ID);
    }
    // The owner listing reads many tasks at once: payloads must come back there too.
    await expectOwnerTotal(owner, inputs.length);
    const page = await server.api.queryByOwner(owner, "100", "0");
    for (const listed of page.Data) {
      const index = ids.indexOf(listed.ID);
      expect(index).toBeGreaterThanOrEqual(0);
      expect(listed.Input === inputs[index]).toBe(true);
    }
  });

  it("stores RetryMaxLimit 0 as 3, accepts 100 and answers 400 above 100", async () => {
    expect((await server.api.create({ Channel: "default", RetryMaxLimit: "0" })).RetryMaxLimit).toBe("3");
    expect((await server.api.create({ Channel: "default" })).RetryMaxLimit).toBe("3");
    expect((await server.api.create({ Channel: "default", RetryMaxLimit: "1" })).RetryMaxLimit).toBe("1");
    expect((await server.api.create({ Channel: "default", RetryMaxLimit: "100" })).RetryMaxLimit).toBe("100");
    const owner = freshOwner();
    for (const limit of ["101", "1000", "18446744073709551615"]) {
      const answer = await server.api.createTask({ Channel: "default", Owner: owner, RetryMaxLimit: limit });
      expect(answer.State).toBe("400");
      expect(answer.Message).toMatch(/RetryMaxLimit/);
    }
    await expectNoTasks(owner);
  });
});

describe("CreateTask: Prior", () => {
  it("answers 404 when the Prior does not exist", async () => {
    const owner = freshOwner();
    const answer = await server.api.createTask({ Channel: "default", Owner: owner, Prior: "9007199254740993" });
    expect(answer.State).toBe("404");
    expect(answer.Message).toMatch(/Prior/);
    await expectNoTasks(owner);
  });

  it("answers 409 when the Prior already has a Next", async () => {
    const owner = freshOwner();
    const prior = await server.api.create({ Channel: "default", Owner: owner, Input: "p" });
    const next = await server.api.create({ Channel: "default", Owner: owner, Prior: prior.ID });
    expect((await server.api.get(prior.ID)).Next).toBe(next.ID);
    const answer = await replica.api.createTask({ Channel: "default", Owner: owner, Prior: prior.ID });
    expect(answer.State).toBe("409");
    expect(answer.Message).toMatch(/Next|chain/i);
    await expectOwnerTotal(owner, 2);
    expect((await server.api.get(prior.ID)).Next).toBe(next.ID);
  });

  it("answers 409 with Data = the HashCode when a chained create is retried with the same HashCode", async () => {
    const owner = freshOwner();
    const code = `chained-${randomBytes(6).toString("hex")}`;
    const prior = await server.api.create({ Channel: "default", Owner: owner });
    const first = await server.api.createTask({ Channel: "default", Owner: owner, Prior: prior.ID, HashCode: code });
    expect(first).toMatchObject({ State: "200", Data: code });
    // The retry finds the Prior already linked (to the first attempt's task): still a duplicate.
    const retry = await replica.api.createTask({ Channel: "default", Owner: owner, Prior: prior.ID, HashCode: code });
    expect(retry).toMatchObject({ State: "409", Data: code });
    await expectOwnerTotal(owner, 2);
    const linked = (await server.api.queryByHashCode(code)).Data as WireTask;
    expect((await server.api.get(prior.ID)).Next).toBe(linked.ID);
  });

  it("answers 409 when the Prior is CANCEL", async () => {
    const owner = freshOwner();
    const prior = await server.api.create({ Channel: "default", Owner: owner });
    expect((await server.api.cancel(prior.ID)).State).toBe("200");
    const answer = await server.api.createTask({ Channel: "default", Owner: owner, Prior: prior.ID });
    expect(answer.State).toBe("409");
    expect(answer.Message).toMatch(/CANCEL/);
    await expectOwnerTotal(owner, 1);
    expect((await server.api.get(prior.ID))).toMatchObject({ State: "CANCEL", Next: "0" });
  });

  it("answers 409 when the Prior is FAILURE", async () => {
    const owner = freshOwner();
    // RetryMaxLimit 1: two attempts, both reported FAILURE.
    const prior = await server.api.create({ Channel: "prior", Owner: owner, RetryMaxLimit: "1" });
    const worker = new ReceiveStream(server.api, "prior");
    const reports = new ReportStream(server.api);
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        worker.credit();
        const task = await worker.next(15_000);
        expect(task).toMatchObject({ ID: prior.ID, RetryCount: String(attempt) });
        expect((await reports.report(task.ID, ReportState.FAILURE, `failed ${attempt}`)).State).toBe("200");
      }
      expect((await server.api.get(prior.ID)).State).toBe("FAILURE");
      const answer = await server.api.createTask({ Channel: "default", Owner: owner, Prior: prior.ID });
      expect(answer.State).toBe("409");
      expect(answer.Message).toMatch(/FAILURE/);
      await expectOwnerTotal(owner, 1);
      expect((await server.api.get(prior.ID)).Next).toBe("0");
    } finally {
      worker.end();
      reports.end();
    }
  });
});

describe("CreateTask: backend failures", () => {
  it("answers 503 naming DynamoDB when the write fails, and the same call succeeds once it is back", async () => {
    const owner = freshOwner();
    const code = `retry-${randomBytes(6).toString("hex")}`;
    server.faults.failAlways("TransactWriteItemsCommand");
    try {
      const answer = await server.api.createTask({ Channel: "default", HashCode: code, Owner: owner, Input: "later" });
      expect(answer.State).toBe("503");
      expect(answer.Message).toMatch(/DynamoDB/);
      expect(answer.Message).toMatch(/retry/i);
      expect(server.faults.count("TransactWriteItemsCommand")).toBeGreaterThan(0);
    } finally {
      server.faults.clear();
    }
    const again = await server.api.createTask({ Channel: "default", HashCode: code, Owner: owner, Input: "later" });
    expect(again).toMatchObject({ State: "200", Data: code });
    await expectOwnerTotal(owner, 1);
  });

  it("answers 503 with Data = the HashCode when the write outlives the call's deadline, and the task can be looked up", async () => {
    const owner = freshOwner();
    // The create's write: one PutItem of the task item (a generated HashCode, no Prior, a small Input).
    server.faults.hook = async (command) => {
      if (command === "PutItemCommand") await sleep(4_000);
    };
    let answer;
    try {
      // A 2 s deadline: the server answers 200 ms before it, a margin a loaded machine keeps.
      answer = await server.api.createTask({ Channel: "default", Owner: owner, Input: "slow write" }, 2_000);
    } finally {
      server.faults.clear();
    }
    expect(answer.State).toBe("503");
    // The outcome is unknown: the answer says so and names the generated HashCode to look it up by.
    expect(answer.Message).toMatch(/may or may not/);
    expect(answer.Message).not.toMatch(/safe to retry/);
    expect(answer.Data).toMatch(/^[A-Za-z0-9_~-]{20}$/);
    const found = await eventually(async () => {
      const byHash = await server.api.queryByHashCode(answer.Data);
      return byHash.State === "200" ? byHash.Data : undefined;
    }, 20_000);
    expect(found).toMatchObject({ Owner: owner, Input: "slow write", HashCode: answer.Data });
    await expectOwnerTotal(owner, 1);
  });

  it("answers 200 and keeps the task WAITING when the SQS send fails (the sweeper sends it later)", async () => {
    const owner = freshOwner();
    const sendsBefore = server.faults.count("SendMessageBatchCommand");
    server.faults.failAlways("SendMessageBatchCommand");
    let created;
    let calls: AwsCall[] = [];
    try {
      created = await server.api.createTask({ Channel: "default", Owner: owner, Input: "unsent" });
    } finally {
      calls = [...server.faults.log];
      server.faults.clear();
    }
    expect(created.State).toBe("200");
    expect(server.faults.count("SendMessageBatchCommand")).toBeGreaterThan(sendsBefore);
    const task = (await server.api.queryByHashCode(created.Data)).Data;
    expect(task).toMatchObject({ State: "WAITING", Owner: owner, Input: "unsent" });
    // The failed send was this task's.
    const url = server.queueUrls.default ?? "";
    expect(calls.some((call) => call.injected && sentTaskIds(call, url).includes(task?.ID ?? ""))).toBe(true);
    await expectOwnerTotal(owner, 1);
  });
});
