// RerunTaskByID (SPEC §7.3) through a real gRPC client against a real server: a final
// task is run again as a new task with the same Channel, Input, Owner, RetryMaxLimit,
// Priority and ConcurrencyKey; anything else is 409, 404 or 400.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream } from "./support/client.js";
import { startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ channels: ["default", { name: "ranked", priorities: 3, concurrencyPerKey: 2 }] });
});
afterAll(async () => {
  await server?.stop();
});

describe("RerunTaskByID", () => {
  it("a failed task runs again as a new task with its Channel, Input (a large one too), Owner, RetryMaxLimit, Priority and ConcurrencyKey", async () => {
    const input = "x".repeat(5_000);
    const created = await server.api.create({ Channel: "ranked", Owner: "77", Input: input, RetryMaxLimit: "1", Priority: "1", ConcurrencyKey: "customer-9" });
    const stream = new ReceiveStream(server.api, "ranked").credit(1);
    const reports = new ReportStream(server.api);
    const first = await stream.next(10_000);
    expect((await reports.report(first.ID, ReportState.CANCEL, "give up", first.LeaseToken)).State).toBe("200");
    const answer = await server.api.rerun(created.ID);
    expect(answer).toMatchObject({ State: "200", Message: `Task created from task ${created.ID}` });
    const rerun = (await server.api.queryByHashCode(answer.Data)).Data;
    expect(rerun).toMatchObject({ Channel: "ranked", Owner: "77", Input: input, RetryMaxLimit: "1", Priority: "1", ConcurrencyKey: "customer-9", State: "WAITING", Prior: "0", RetryCount: "0" });
    expect(rerun?.ID).not.toBe(created.ID);
    // The old task stays as it was; the new one is delivered.
    expect((await server.api.get(created.ID)).State).toBe("CANCEL");
    stream.credit(1);
    const second = await stream.next(10_000);
    expect(second.ID).toBe(rerun?.ID);
    expect((await reports.report(second.ID, ReportState.SUCCESS, "done", second.LeaseToken)).State).toBe("200");
    // A task that succeeded may be rerun too, as often as wanted: a new task each time.
    const twice = await Promise.all([server.api.rerun(second.ID), server.api.rerun(second.ID)]);
    expect(twice.map((each) => each.State)).toEqual(["200", "200"]);
    expect(twice[0]?.Data).not.toBe(twice[1]?.Data);
    for (const each of twice) expect((await server.api.cancel((await server.api.queryByHashCode(each.Data)).Data?.ID as string)).State).toBe("200");
    stream.cancel();
    reports.end();
  });

  it("a task not final is 409; an absent one 404; ID 0 is 400", async () => {
    const waiting = await server.api.create({ Channel: "default", Input: "w" });
    const notFinal = await server.api.rerun(waiting.ID);
    expect(notFinal).toEqual({ State: "409", Message: `Task ${waiting.ID} is WAITING; only a final task (SUCCESS, FAILURE or CANCEL) can be rerun`, Data: "" });
    const missing = String(BigInt(waiting.ID) + 1_000_000n);
    expect(await server.api.rerun(missing)).toEqual({ State: "404", Message: `Task ${missing} does not exist`, Data: "" });
    expect((await server.api.rerun("0")).State).toBe("400");
    expect((await server.api.cancel(waiting.ID)).State).toBe("200");
  });
});
