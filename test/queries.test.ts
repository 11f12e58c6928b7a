// QueryTaskByID, QueryTaskByHashCode, QueryTaskByOwner and QueryLengthByChannel
// (SPEC §3): every answer each gives, plus 503 / 500 under injected faults.
import { randomBytes } from "node:crypto";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { taskIdOfGeneratedHashCode } from "../service/src/tasks/ids.js";
import { answerBytes, PAGE_MAX_BYTES } from "../service/src/tasks/rules.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, type WireTask } from "./support/client.js";
import { eventually, startTestServer, type TestServer } from "./support/harness.js";
import type { QueryTaskByIDResponse__Output } from "@queues/protocol";

const RFC3339_UTC_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

let server: TestServer;
let replica: TestServer;

beforeAll(async () => {
  // "len" is only used by the length tests, so its backlog is exactly what they put there.
  server = await startTestServer({ channels: ["default", "other", "len"] });
  replica = await startTestServer({ replicaOf: server });
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

function freshOwner(): string {
  return (BigInt(`0x${randomBytes(7).toString("hex")}`) + 2n ** 60n).toString();
}

/** Runs `work` for 0..count-1 with at most `limit` calls in flight; results in index order. */
async function boundedAll<T>(count: number, limit: number, work: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let nextIndex = 0;
  const lanes = Array.from({ length: Math.min(limit, count) }, async () => {
    while (nextIndex < count) {
      const index = nextIndex++;
      results[index] = await work(index);
    }
  });
  await Promise.all(lanes);
  return results;
}

const byIdDescending = (a: string, b: string) => (BigInt(b) > BigInt(a) ? 1 : BigInt(b) < BigInt(a) ? -1 : 0);

describe("QueryTaskByID", () => {
  it("answers 400 for ID 0 (given as 0 or left out)", async () => {
    const zero = await server.api.queryById("0");
    // A request without the field: proto3 reads it as 0.
    const absent = await new Promise<QueryTaskByIDResponse__Output>((resolve, reject) =>
      server.api.raw.QueryTaskByID({}, (error, value) => (error ? reject(error) : resolve(value as QueryTaskByIDResponse__Output))),
    );
    for (const answer of [zero, absent]) {
      expect(answer.State).toBe("400");
      expect(answer.Message).toMatch(/ID/);
      expect(answer.Data).toBeNull();
    }
  });

  it("answers 404 for a task that does not exist", async () => {
    for (const id of ["1", "9007199254740993", "18446744073709551615"]) {
      const answer = await server.api.queryById(id);
      expect(answer.State).toBe("404");
      expect(answer.Message).not.toBe("");
      expect(answer.Data).toBeNull();
    }
  });

  it("answers 200 with the whole task, every field, on any replica", async () => {
    const owner = freshOwner();
    const code = `full-${randomBytes(6).toString("hex")}`;
    const created = await server.api.createTask({ Channel: "other", Owner: owner, Input: "first \u00e9\u{1F600}", HashCode: code, RetryMaxLimit: "7" });
    expect(created.State).toBe("200");
    const first = (await server.api.queryByHashCode(code)).Data as WireTask;
    const second = await server.api.create({ Channel: "default", Owner: owner, Prior: first.ID, Input: "second" });

    const head = await replica.api.queryById(first.ID);
    expect(head.State).toBe("200");
    expect(head.Data).toEqual({
      ID: first.ID,
      Next: second.ID,
      Prior: "0",
      Owner: owner,
      State: "WAITING",
      Input: "first \u00e9\u{1F600}",
      Output: "",
      Channel: "other",
      HashCode: code,
      RetryCount: "0",
      CreateTime: first.CreateTime,
      UpdateTime: head.Data?.UpdateTime,
      RetryMaxLimit: "7",
      // The lease fields (additions) are only set on a delivered task.
      LeaseToken: "0",
      LeaseExpireTime: "",
      RunAt: "",
      ConcurrencyKey: "",
      Priority: "1",
      TraceParent: "",
    });
    const tail = await server.api.queryById(second.ID);
    expect(tail.State).toBe("200");
    expect(tail.Data).toEqual({
      ID: second.ID,
      Next: "0",
      Prior: first.ID,
      Owner: owner,
      State: "WAITING",
      Input: "second",
      Output: "",
      Channel: "default",
      HashCode: second.HashCode,
      RetryCount: "0",
      CreateTime: second.CreateTime,
      UpdateTime: second.UpdateTime,
      RetryMaxLimit: "3",
      LeaseToken: "0",
      LeaseExpireTime: "",
      RunAt: "",
      ConcurrencyKey: "",
      Priority: "1",
      TraceParent: "",
    });
    expect(second.HashCode).toMatch(/^[A-Za-z0-9_~-]{20}$/);
    for (const task of [head.Data as WireTask, tail.Data as WireTask]) {
      expect(task.CreateTime).toMatch(RFC3339_UTC_MS);
      expect(task.UpdateTime).toMatch(RFC3339_UTC_MS);
    }
  });
});

describe("QueryTaskByHashCode", () => {
  it("answers 400 for an empty HashCode", async () => {
    const answer = await server.api.queryByHashCode("");
    expect(answer.State).toBe("400");
    expect(answer.Message).toMatch(/HashCode/);
    expect(answer.Data).toBeNull();
  });

  it("answers 400 for a HashCode that breaks the HashCode rule", async () => {
    for (const code of ["a".repeat(129), "has space", "a/b", "caf\u00e9", "x#y"]) {
      const answer = await server.api.queryByHashCode(code);
      expect(answer.State, JSON.stringify(code)).toBe("400");
      expect(answer.Message).toMatch(/HashCode/);
      expect(answer.Data).toBeNull();
    }
  });

  it("answers 404 for a valid HashCode no task has", async () => {
    const answer = await server.api.queryByHashCode(`absent-${randomBytes(6).toString("hex")}`);
    expect(answer.State).toBe("404");
    expect(answer.Message).not.toBe("");
    expect(answer.Data).toBeNull();
  });

  it("finds a task immediately after CreateTask answered 200, also on the other replica", async () => {
    const results = await boundedAll(30, 10, async (i) => {
      const [creator, reader] = i % 2 === 0 ? [server, replica] : [replica, server];
      const created = await creator.api.createTask({ Channel: "default", Input: `now ${i}`, ...(i % 3 === 0 ? { HashCode: `now-${i}-${randomBytes(4).toString("hex")}` } : {}) });
      expect(created.State).toBe("200");
      // No wait between the 200 and the lookup.
      const found = await reader.api.queryByHashCode(created.Data);
      return { code: created.Data, i, found };
    });
    for (const { code, i, found } of results) {
      expect(found.State).toBe("200");
      expect(found.Data).toMatchObject({ HashCode: code, Input: `now ${i}`, State: "WAITING" });
    }
  });

  it("finds a task by its generated HashCode, which names its ID (no guard item), and only by that exact code", async () => {
    const task = await server.api.create({ Channel: "default", Input: "generated" });
    expect(taskIdOfGeneratedHashCode(task.HashCode)).toBe(BigInt(task.ID));
    const { Item } = await server.dynamo.send(new GetCommand({ TableName: server.settings.tableName, Key: { pk: `H#${task.HashCode}` }, ConsistentRead: true }));
    expect(Item).toBeUndefined();
    expect((await server.api.queryByHashCode(task.HashCode)).Data).toMatchObject({ ID: task.ID, HashCode: task.HashCode });
    // The same ID with other random bits is not its HashCode.
    const [idPart, random] = task.HashCode.split("~") as [string, string];
    const other = `${idPart}~${random.startsWith("A") ? "B" : "A"}${random.slice(1)}`;
    expect((await server.api.queryByHashCode(other)).State).toBe("404");
    // A code with a "~" that is not a generated one breaks the HashCode rule.
    expect((await server.api.queryByHashCode("a~b")).State).toBe("400");
  });

  it("CreateTask with a generated HashCode sent back answers 409 (its task exists); a made-up one with ~ answers 400", async () => {
    const task = await server.api.create({ Channel: "default", Input: "generated" });
    const again = await server.api.createTask({ Channel: "default", HashCode: task.HashCode });
    expect(again).toMatchObject({ State: "409", Data: task.HashCode });
    // A caller cannot choose a code of that form, so generated codes and callers' keys never collide.
    const [idPart] = task.HashCode.split("~") as [string];
    const madeUp = await server.api.createTask({ Channel: "default", HashCode: `${idPart}~madeUp00` });
    expect(madeUp.State).toBe("400");
    expect(madeUp.Message).toMatch(/HashCode/);
    expect((await server.api.queryByHashCode(`${idPart}~madeUp00`)).State).toBe("404");
  });
});

describe("QueryTaskByOwner", () => {
  const owner = freshOwner();
  const count = 123;
  let ids: string[] = [];

  beforeAll(async () => {
    // Bounded concurrency: fast, without flooding the emulators.
    const tasks = await boundedAll(count, 12, async (i) => {
      const api = i % 2 === 0 ? server.api : replica.api;
      const created = await api.createTask({ Channel: "other", Owner: owner, Input: `owned ${i}` });
      if (created.State !== "200") throw new Error(`CreateTask ${i} answered ${created.State}: ${created.Message}`);
      return created.Data;
    });
    const found = await boundedAll(tasks.length, 12, async (i) => (await server.api.queryByHashCode(tasks[i]!)).Data as WireTask);
    ids = found.map((task) => task.ID).sort(byIdDescending);
    expect(new Set(ids).size).toBe(count);
    // Total is counted from the table's stream: it includes every task a moment after its create.
    await eventually(async () => (await server.api.queryByOwner(owner, "1", "0")).Total === String(count));
  });

  it("reports the exact Total and lists newest first (ID descending)", async () => {
    const page = await eventually(async () => {
      const answer = await server.api.queryByOwner(owner, "100", "0");
      return answer.Data.length === 100 ? answer : undefined;
    });
    expect(page.State).toBe("200");
    expect(page.Total).toBe(String(count));
    expect(page.Data.map((task) => task.ID)).toEqual(ids.slice(0, 100));
    for (const task of page.Data) expect(task.Owner).toBe(owner);
  });

  it("uses 20 when Limit is 0", async () => {
    const page = await server.api.queryByOwner(owner, "0", "0");
    expect(page.State).toBe("200");
    expect(page.Total).toBe(String(count));
    expect(page.Data.map((task) => task.ID)).toEqual(ids.slice(0, 20));
  });

  it("clamps a Limit over 100 to 100", async () => {
    for (const limit of ["101", "1000", "18446744073709551615"]) {
      const page = await server.api.queryByOwner(owner, limit, "0");
      expect(page.State).toBe("200");
      expect(page.Total).toBe(String(count));
      expect(page.Data.map((task) => task.ID)).toEqual(ids.slice(0, 100));
    }
    const tail = await server.api.queryByOwner(owner, "500", "100");
    expect(tail.Data.map((task) => task.ID)).toEqual(ids.slice(100));
  });

  it("pages with Offset: consecutive pages are disjoint and together cover every task in order", async () => {
    for (const limit of [7, 50]) {
      const seen: string[] = [];
      for (let offset = 0; offset < count; offset += limit) {
        const page = await (offset % 2 === 0 ? server : replica).api.queryByOwner(owner, String(limit), String(offset));
        expect(page.State).toBe("200");
        expect(page.Total).toBe(String(count));
        expect(page.Data.length).toBe(Math.min(limit, count - offset));
        seen.push(...page.Data.map((task) => task.ID));
      }
      expect(new Set(seen).size).toBe(count);
      expect(seen).toEqual(ids);
    }
  });

  it("answers an empty page with the right Total for an Offset at or past the end", async () => {
    for (const offset of [String(count), String(count + 1), "100000", "18446744073709551615"]) {
      const page = await server.api.queryByOwner(owner, "10", offset);
      expect(page.State).toBe("200");
      expect(page.Total).toBe(String(count));
      expect(page.Data).toEqual([]);
    }
    const last = await server.api.queryByOwner(owner, "10", String(count - 1));
    expect(last.Data.map((task) => task.ID)).toEqual([ids[count - 1]]);
  });

  it("answers 200 with Total 0 and no tasks for an owner that has none", async () => {
    for (const unknown of [freshOwner(), "18446744073709551613"]) {
      const page = await server.api.queryByOwner(unknown, "0", "0");
      expect(page).toMatchObject({ State: "200", Total: "0", Data: [] });
    }
  });

  it("counts newly created tasks in Total within moments (from the table's stream) and lists them newest first", async () => {
    const other = freshOwner();
    const first = await server.api.create({ Channel: "other", Owner: other, Input: "a" });
    const second = await replica.api.create({ Channel: "other", Owner: other, Input: "b" });
    const page = await eventually(async () => {
      const answer = await server.api.queryByOwner(other, "0", "0");
      return answer.Data.length === 2 && answer.Total === "2" ? answer : undefined;
    }, 5_000);
    expect(page.Total).toBe("2");
    expect(page.Data.map((task) => task.ID)).toEqual([second.ID, first.ID]);
    expect((await server.api.queryByOwner(other, "0", "0")).Total).toBe("2");
  });
});

describe("QueryTaskByOwner with large tasks", () => {
  it("stops a page before it passes PAGE_MAX_BYTES, says where the next page starts, and keeps Total", async () => {
    const owner = freshOwner();
    const count = 20;
    const input = (i: number) => `${String(i).padStart(4, "0")}${"x".repeat(250_000)}`;
    const created = await boundedAll(count, 4, async (i) => (await server.api.createTask({ Channel: "other", Owner: owner, Input: input(i) })).Data);
    expect(created.every((hashCode) => hashCode !== "")).toBe(true);
    await eventually(async () => (await server.api.queryByOwner(owner, "1", "0")).Total === String(count));
    const first = await server.api.queryByOwner(owner, "100", "0");
    const fits = Math.floor(PAGE_MAX_BYTES / answerBytes({ input: input(0), output: "", hashCode: created[0] ?? "", channel: "other" }));
    expect(fits).toBeLessThan(count);
    expect(first.State).toBe("200");
    expect(first.Total).toBe(String(count));
    expect(first.Data).toHaveLength(fits);
    expect(first.Message).toBe(`OK; the page stops after ${fits} task(s): an answer carries at most ${PAGE_MAX_BYTES} bytes of tasks; the next ones start at Offset ${fits}`);
    // Newest first (ID descending), whole Inputs; the next page (from the Offset the Message names) has the rest.
    const ids = created.map((hashCode) => String(taskIdOfGeneratedHashCode(hashCode))).sort(byIdDescending);
    expect(first.Data.map((task) => task.ID)).toEqual(ids.slice(0, fits));
    const rest = await server.api.queryByOwner(owner, "100", String(fits));
    expect(rest.Message).toBe("OK");
    expect(rest.Data.map((task) => task.ID)).toEqual(ids.slice(fits));
    expect(rest.Data.every((task) => task.Input.length === 250_004)).toBe(true);
  });
});

describe("QueryLengthByChannel", () => {
  it("answers 400 for an unknown or empty channel", async () => {
    for (const channel of ["nope", "", "LEN"]) {
      const answer = await server.api.length(channel);
      expect(answer.State, JSON.stringify(channel)).toBe("400");
      expect(answer.Message).toMatch(/[Cc]hannel/);
    }
  });

  it("reports the backlog: N undelivered tasks give N, and it drops when a worker takes one", async () => {
    expect(await server.api.length("len")).toMatchObject({ State: "200", Data: "0" });
    const n = 6;
    await boundedAll(n, 6, async (i) => {
      const created = await server.api.createTask({ Channel: "len", Input: `len ${i}` });
      expect(created.State).toBe("200");
    });
    await eventually(async () => (await server.api.length("len")).Data === String(n));
    expect((await replica.api.length("len")).Data).toBe(String(n));

    const worker = new ReceiveStream(server.api, "len").credit(1);
    try {
      const task = await worker.next(15_000);
      expect(task.State).toBe("PROCEEDING");
      await eventually(async () => (await server.api.length("len")).Data === String(n - 1));
      // Other channels are counted separately.
      const other = await server.api.length("default");
      expect(other.State).toBe("200");
    } finally {
      worker.end();
    }
  });
});

describe("backend failures", () => {
  it("answers 503 naming DynamoDB on QueryTaskByID, and the same call works once it is back", async () => {
    const task = await server.api.create({ Channel: "default", Input: "q503" });
    server.faults.failAlways("GetItemCommand");
    try {
      const answer = await server.api.queryById(task.ID);
      expect(answer.State).toBe("503");
      expect(answer.Message).toMatch(/DynamoDB/);
      expect(answer.Message).toMatch(/retry/i);
      expect(answer.Data).toBeNull();
    } finally {
      server.faults.clear();
    }
    const again = await server.api.queryById(task.ID);
    expect(again.State).toBe("200");
    expect(again.Data).toMatchObject({ ID: task.ID, Input: "q503" });
  });

  it("answers 503 naming DynamoDB on QueryTaskByHashCode and QueryTaskByOwner", async () => {
    const owner = freshOwner();
    const task = await server.api.create({ Channel: "default", Owner: owner });
    server.faults.failAlways("GetItemCommand").failAlways("BatchGetItemCommand").failAlways("QueryCommand");
    try {
      const byHash = await server.api.queryByHashCode(task.HashCode);
      expect(byHash.State).toBe("503");
      expect(byHash.Message).toMatch(/DynamoDB/);
      expect(byHash.Message).toMatch(/retry/i);
      const byOwner = await server.api.queryByOwner(owner, "0", "0");
      expect(byOwner.State).toBe("503");
      expect(byOwner.Message).toMatch(/DynamoDB/);
      expect(byOwner.Message).toMatch(/retry/i);
    } finally {
      server.faults.clear();
    }
    expect((await server.api.queryByHashCode(task.HashCode)).State).toBe("200");
    // Counted from the table's stream, which the faults did not touch.
    await eventually(async () => (await server.api.queryByOwner(owner, "0", "0")).Total === "1");
    expect(await server.api.queryByOwner(owner, "0", "0")).toMatchObject({ State: "200", Total: "1" });
  });

  it("answers 503 naming SQS on QueryLengthByChannel, and the same call works once it is back", async () => {
    server.faults.failAlways("GetQueueAttributesCommand");
    try {
      const answer = await server.api.length("other");
      expect(answer.State).toBe("503");
      expect(answer.Message).toMatch(/SQS/);
      expect(answer.Message).toMatch(/retry/i);
    } finally {
      server.faults.clear();
    }
    expect((await server.api.length("other")).State).toBe("200");
  });

  it("answers 500 with a request id for an unexpected (non-AWS) error", async () => {
    const task = await server.api.create({ Channel: "default", Input: "boom" });
    server.faults.failAlways("GetItemCommand", () => new TypeError("boom"));
    try {
      const answer = await server.api.queryById(task.ID);
      expect(answer.State).toBe("500");
      expect(answer.Message).toMatch(/request id/i);
    } finally {
      server.faults.clear();
    }
    expect((await server.api.queryById(task.ID)).State).toBe("200");
  });
});
