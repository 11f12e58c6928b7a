// The happy path end to end: create → receive → report SUCCESS → query.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream } from "./support/client.js";
import { startTestServer, type TestServer } from "./support/harness.js";

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("task lifecycle", () => {
  it("creates, delivers, completes and reports a task", async () => {
    const created = await server.api.create({ Channel: "default", Input: "hello", Owner: "7" });
    expect(created.State).toBe("WAITING");
    const worker = new ReceiveStream(server.api).credit();
    const task = await worker.next();
    expect(task).toMatchObject({ ID: created.ID, State: "PROCEEDING", Input: "hello", RetryCount: "0" });
    const reports = new ReportStream(server.api);
    const answer = await reports.report(task.ID, ReportState.SUCCESS, "world");
    expect(answer).toMatchObject({ State: "200", Data: task.ID });
    const done = await server.api.get(task.ID);
    expect(done).toMatchObject({ State: "SUCCESS", Output: "world" });
    worker.end();
    reports.end();
  });
});
