// maxInFlight and concurrencyPerKey (SPEC §7.2) through real gRPC clients against
// two server replicas on the emulators: the replicas share the slots through the
// table, so every check samples the tasks' states from the table.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream } from "./support/client.js";
import { sleep, startTestServer, type TestServer } from "./support/harness.js";
import { RecordingWorker as Worker } from "./support/recording-worker.js";

let server: TestServer;
let replica: TestServer;

beforeAll(async () => {
  // A held-back task is tried again after at most 2 s (10 s by default), so the keys' queues move in test time.
  const settings = { holdBackMaxSeconds: 2 };
  server = await startTestServer({
    channels: [
      { name: "capped", maxInFlight: 3, visibilityTimeoutSeconds: 3 },
      { name: "keyed", concurrencyPerKey: 1 },
    ],
    settings,
  });
  replica = await startTestServer({ replicaOf: server, settings });
});
afterAll(async () => {
  await replica?.stop();
  await server?.stop();
});

const freshOwner = () => BigInt(`0x${randomBytes(6).toString("hex")}`).toString();

/** The states of an owner's tasks, read from the table (QueryTaskByOwner). */
async function statesOf(owner: string): Promise<Map<string, string>> {
  const page = await server.api.queryByOwner(owner, "100", "0");
  return new Map(page.Data.map((task) => [task.ID, task.State]));
}

describe("maxInFlight", () => {
  it("3 across 2 replicas with 10 workers waiting: never more than 3 PROCEEDING; a killed worker's slot comes back when its lease (3 s) runs out", async () => {
    const owner = freshOwner();
    for (let i = 0; i < 12; i++) expect((await server.api.createTask({ Channel: "capped", Owner: owner, Input: `c${i}` })).State).toBe("200");
    // A worker takes one task and dies without a word.
    const doomed = new ReceiveStream(replica.api, "capped").credit(1);
    const lost = await doomed.next(10_000);
    doomed.cancel();
    const killedAt = Date.now();
    const workers = Array.from({ length: 10 }, (_, i) => new Worker(i % 2 === 0 ? server : replica, "capped", 2, 400));
    let most = 0;
    let atMost = 0;
    let freedAt: number | undefined;
    for (const deadline = Date.now() + 40_000; Date.now() < deadline; ) {
      const byId = await statesOf(owner);
      if (freedAt === undefined && byId.get(lost.ID) !== "PROCEEDING") freedAt = Date.now();
      const states = [...byId.values()];
      const proceeding = states.filter((state) => state === "PROCEEDING").length;
      most = Math.max(most, proceeding);
      if (proceeding === 3) atMost += 1;
      if (states.length === 12 && states.every((state) => state === "SUCCESS")) break;
      await sleep(100);
    }
    for (const worker of workers) worker.stop();
    expect(most).toBeLessThanOrEqual(3);
    expect(atMost).toBeGreaterThan(0);
    const states = await statesOf(owner);
    expect([...states.values()].every((state) => state === "SUCCESS"), JSON.stringify([...states])).toBe(true);
    // The killed worker's slot came back when its lease (3 s) ran out and its message was received again
    // (a failed attempt: the task left PROCEEDING); then another worker ran it to the end.
    expect((freedAt ?? Infinity) - killedAt).toBeLessThanOrEqual(3_000 + 4_000);
    const again = workers.flatMap((worker) => worker.deliveries).find((delivery) => delivery.task.ID === lost.ID);
    expect(again?.task.RetryCount).toBe("1");
  }, 90_000);
});

describe("concurrencyPerKey", () => {
  it("1: 10 tasks of key A and 10 of key B, 10 workers on 2 replicas: never two of A at once, and B's are not held up behind A's", async () => {
    const owner = freshOwner();
    const tasks = [...Array.from({ length: 10 }, (_, i) => ({ key: "A", i })), ...Array.from({ length: 10 }, (_, i) => ({ key: "B", i }))];
    const answer = await server.api.createTasks(tasks.map(({ key, i }) => ({ Channel: "keyed", Owner: owner, Input: `${key}${i}`, ConcurrencyKey: key })));
    expect(answer.Results.every((result) => result.State === "200")).toBe(true);
    const byKey = new Map((await server.api.queryByOwner(owner, "100", "0")).Data.map((task) => [task.ID, task.ConcurrencyKey]));
    expect(byKey.size).toBe(20);
    const started = Date.now();
    const workers = Array.from({ length: 10 }, (_, i) => new Worker(i % 2 === 0 ? server : replica, "keyed", 1, 300));
    let mostA = 0;
    let mostB = 0;
    for (const deadline = Date.now() + 100_000; Date.now() < deadline; ) {
      const states = await statesOf(owner);
      const running = (key: string) => [...states].filter(([id, state]) => state === "PROCEEDING" && byKey.get(id) === key).length;
      mostA = Math.max(mostA, running("A"));
      mostB = Math.max(mostB, running("B"));
      if ([...states.values()].every((state) => state === "SUCCESS")) break;
      await sleep(50);
    }
    for (const worker of workers) worker.stop();
    expect(mostA).toBeLessThanOrEqual(1);
    expect(mostB).toBeLessThanOrEqual(1);
    const deliveries = workers.flatMap((worker) => worker.deliveries);
    const finishedAt = (key: string) => Math.max(...deliveries.filter((d) => d.task.ConcurrencyKey === key).map((d) => d.at - started));
    // A and B run side by side: B's ten take about as long as A's ten, not A's time plus theirs.
    expect(finishedAt("B")).toBeLessThan(finishedAt("A") * 1.6);
    for (const delivery of deliveries) expect(delivery.task.RetryCount).toBe("0");
  }, 120_000);
});
