// SPEC §4 "No task is lost": a replica may die at any instant — between the
// DynamoDB write and the SQS send, between a final write and the chain follow-up,
// between receive and lease, between report and ack. The outbox marker on the task
// item plus the sweeper finish what was left undone; duplicates are harmless
// because only a conditional WAITING → PROCEEDING write makes a delivery.
// A crash is simulated by failing the one AWS call that would have come next.
import { DeleteMessageCommand } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReportState, type WireTask } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { connectionRefused, eventually, queueCounts, queueDrained, receiveRawMessages, startTestServer, type TestServer } from "./support/harness.js";

const FAST_CHANNELS = ["marker", "lostSend", "lostNextSend", "lostFollowUp", "dupSend", "cascade", "lostAck", "priorDoneSend", "lostAnswer", "payloadRead"];
/** Channels with a 2 s lease on the fast-sweeping server. */
const SHORT_LEASE = ["lostAck", "lostLeased", "lostBackoff"];

/** The sweeper acts within a fraction of a second. */
let server: TestServer;
/** The default test sweeper (30 s): nothing is re-sent during a test, so every delivery comes from the message we watch. */
let calm: TestServer;

const streams = new OpenStreams(() => server);
const worker = (channel: string, on?: TestServer) => streams.worker(channel, on);
const reporter = (on?: TestServer) => streams.reporter(on);

async function createOn(channel: string, Input = "", extra: { Prior?: string } = {}, on: TestServer = server): Promise<WireTask> {
  return on.api.create({ Channel: channel, Input, ...extra });
}

const emptyQueue = (channel: string, on: TestServer = server) => queueDrained(on, channel);

/** The task item as stored, read directly (consistent). */
async function taskItem(id: string, on: TestServer = server): Promise<Record<string, unknown>> {
  const { Item } = await on.dynamo.send(new GetCommand({ TableName: on.settings.tableName, Key: { pk: `T#${id}` }, ConsistentRead: true }));
  if (!Item) throw new Error(`no item T#${id}`);
  return Item;
}

async function outboxCleared(id: string, on: TestServer = server): Promise<boolean> {
  const item = await taskItem(id, on);
  return item.outboxDueAt === undefined && item.outboxShard === undefined;
}

/** The `pk` of an UpdateItem's key, whether the input is still native or already marshalled. */
function updateKey(input: unknown): string | undefined {
  const pk = (input as { Key?: { pk?: unknown } } | undefined)?.Key?.pk;
  if (typeof pk === "string") return pk;
  return (pk as { S?: string } | undefined)?.S;
}

function queueUrlOf(input: unknown): string | undefined {
  return (input as { QueueUrl?: string } | undefined)?.QueueUrl;
}

/**
 * Watches the server's AWS calls: counts messages sent per queue (the server sends in batches), and fails
 * (as a crash would) the first call that `crashOn` picks, once.
 */
function watchCalls(crashOn?: (command: string, input: unknown) => boolean) {
  const sends = new Map<string, number>();
  let crashed = 0;
  server.faults.hook = (command, input) => {
    if (command === "SendMessageBatchCommand") {
      const url = queueUrlOf(input) ?? "";
      sends.set(url, (sends.get(url) ?? 0) + ((input as { Entries?: unknown[] }).Entries?.length ?? 0));
    }
    if (crashed === 0 && crashOn?.(command, input)) {
      crashed += 1;
      throw connectionRefused();
    }
  };
  return {
    sendsTo: (channel: string) => sends.get(server.queueUrls[channel] ?? "") ?? 0,
    crashed: () => crashed,
  };
}

const sendTo = (channel: string) => (command: string, input: unknown) =>
  command === "SendMessageBatchCommand" && queueUrlOf(input) === server.queueUrls[channel];

const updateOf = (id: string) => (command: string, input: unknown) => command === "UpdateItemCommand" && updateKey(input) === `T#${id}`;

beforeAll(async () => {
  [server, calm] = await Promise.all([
    startTestServer({
      channels: [
        { name: "default" },
        "other",
        ...FAST_CHANNELS.filter((c) => !SHORT_LEASE.includes(c)),
        ...SHORT_LEASE.map((name) => ({ name, visibilityTimeoutSeconds: 2 })),
      ],
      settings: { sweepAfterMs: 300, sweepIntervalMs: 200 },
    }),
    startTestServer({ channels: [{ name: "default" }, { name: "crashLease" }] }),
  ]);
});

afterEach(async () => {
  server.faults.clear();
  calm.faults.clear();
  await streams.closeAll(server, calm);
});

afterAll(async () => {
  await Promise.all([server?.stop(), calm?.stop()]);
});

describe("the outbox marker", () => {
  it("is set on a queued task, stays while it is leased (its watchdog) and is cleared once it is final", async () => {
    const task = await createOn("marker", "marked");
    // Written with the task, before the SQS send: a crash right after the write still leaves it.
    const before = await taskItem(task.ID);
    expect(before.state).toBe("WAITING");
    expect(before.outboxDueAt).toBeDefined();
    const w = worker("marker").credit();
    expect(await w.next()).toMatchObject({ ID: task.ID, State: "PROCEEDING" });
    expect(await outboxCleared(task.ID)).toBe(false);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await outboxCleared(task.ID)).toBe(true);
  });

  it("is not set on a successor that waits for its Prior, and is cleared on the Prior once its chain follow-up is done", async () => {
    const a = await createOn("marker", "a");
    const b = await createOn("marker", "", { Prior: a.ID });
    // B waits unqueued: nothing for the sweeper to send.
    expect(await outboxCleared(b.ID)).toBe(true);
    const w = worker("marker").credit(2);
    expect((await w.next()).ID).toBe(a.ID);
    expect((await reporter().report(a.ID, ReportState.SUCCESS, "a out")).State).toBe("200");
    expect(await w.next()).toMatchObject({ ID: b.ID, Input: "a out" });
    await eventually(() => outboxCleared(a.ID), 5_000);
    // B is queued now, so it has its own marker until it is final.
    expect(await outboxCleared(b.ID)).toBe(false);
    expect((await reporter().report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    await eventually(() => outboxCleared(b.ID), 5_000);
  });
});

describe("crash between the DynamoDB write and the SQS send", () => {
  it("still answers CreateTask 200, and the sweeper delivers the task exactly once", async () => {
    const w = worker("lostSend").credit(2);
    const calls = watchCalls(sendTo("lostSend"));
    const created = await server.api.createTask({ Channel: "lostSend", Input: "sent late" });
    expect(created.State).toBe("200");
    expect(calls.crashed()).toBe(1);

    const task = await w.next(10_000);
    expect(task).toMatchObject({ HashCode: created.Data, Input: "sent late", State: "PROCEEDING", RetryCount: "0" });
    // The delivery came from the sweeper's send: the server's own send was the one that failed.
    expect(calls.sendsTo("lostSend")).toBeGreaterThanOrEqual(2);
    // Exactly once: the second credit gets nothing.
    expect(await w.nothingWithin(2_000)).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await outboxCleared(task.ID)).toBe(true);
    await emptyQueue("lostSend");
  });

  it("still queues a chain successor whose SQS send failed after its Prior succeeded, with the Prior's Output piped", async () => {
    const a = await createOn("lostNextSend", "a");
    const b = await createOn("lostNextSend", "", { Prior: a.ID });
    const w = worker("lostNextSend").credit(2);
    expect((await w.next()).ID).toBe(a.ID);

    const calls = watchCalls(sendTo("lostNextSend"));
    const answer = await reporter().report(a.ID, ReportState.SUCCESS, "piped through the sweeper");
    expect(answer.State).toBe("200");
    expect(calls.crashed()).toBe(1);

    const task = await w.next(10_000);
    expect(task).toMatchObject({ ID: b.ID, Prior: a.ID, Input: "piped through the sweeper", RetryCount: "0" });
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect(await outboxCleared(a.ID)).toBe(true);
    expect((await reporter().report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await outboxCleared(b.ID)).toBe(true);
    await emptyQueue("lostNextSend");
  });

  it("still queues a task whose Prior had already succeeded when its SQS send failed", async () => {
    const a = await createOn("priorDoneSend", "a");
    const w = worker("priorDoneSend").credit();
    expect((await w.next()).ID).toBe(a.ID);
    expect((await reporter().report(a.ID, ReportState.SUCCESS, "ready")).State).toBe("200");

    const calls = watchCalls(sendTo("priorDoneSend"));
    const created = await server.api.createTask({ Channel: "priorDoneSend", Prior: a.ID });
    expect(created.State).toBe("200");
    expect(calls.crashed()).toBe(1);
    w.credit(2);
    const task = await w.next(10_000);
    expect(task).toMatchObject({ HashCode: created.Data, Input: "ready", Prior: a.ID });
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });
});

describe("crash between a final write and the chain follow-up", () => {
  it("answers the report 200, and the sweeper later queues and delivers the successor", async () => {
    const a = await createOn("lostFollowUp", "a");
    const b = await createOn("lostFollowUp", "", { Prior: a.ID });
    const w = worker("lostFollowUp").credit(2);
    expect((await w.next()).ID).toBe(a.ID);

    // The follow-up's first write (queueing B) never happens.
    const calls = watchCalls(updateOf(b.ID));
    const answer = await reporter().report(a.ID, ReportState.SUCCESS, "a is done");
    expect(calls.crashed()).toBe(1);
    expect(await server.api.get(a.ID)).toMatchObject({ State: "SUCCESS", Output: "a is done", Next: b.ID });
    // The SUCCESS was written: the worker must not be told to retry (503) a report that took
    // effect (its retry would only get 409).
    expect(answer).toMatchObject({ State: "200", Data: a.ID });

    const task = await w.next(10_000);
    expect(task).toMatchObject({ ID: b.ID, Input: "a is done", State: "PROCEEDING", RetryCount: "0" });
    expect(await w.nothingWithin(1_500)).toBe(true);
    await eventually(() => outboxCleared(a.ID), 5_000);
    expect((await reporter().report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await outboxCleared(b.ID)).toBe(true);
    await emptyQueue("lostFollowUp");
  });

  it("finishes an interrupted cancel cascade: the successor becomes CANCEL", async () => {
    const a = await createOn("cascade", "a");
    const b = await createOn("cascade", "", { Prior: a.ID });
    const c = await createOn("cascade", "", { Prior: b.ID });

    const calls = watchCalls(updateOf(b.ID));
    const answer = await server.api.cancel(a.ID);
    expect(calls.crashed()).toBe(1);
    // The cancel of A was written; whether the answer is 200 or 503 depends on where the cascade broke.
    expect(["200", "503"]).toContain(answer.State);
    if (answer.State === "200") expect(answer.Data[0]).toMatchObject({ ID: a.ID, State: "CANCEL" });
    expect((await server.api.get(a.ID)).State).toBe("CANCEL");

    await eventually(async () => (await server.api.get(b.ID)).State === "CANCEL" && (await server.api.get(c.ID)).State === "CANCEL", 10_000);
    await eventually(() => outboxCleared(a.ID), 5_000);
    const w = worker("cascade").credit(3);
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("cascade");
  });
});

describe("crash between receive and lease", () => {
  it("delivers the task after the message's visibility expires, with RetryCount 0 (it was never leased)", async () => {
    const task = await createOn("crashLease", "orphaned", {}, calm);
    // A replica receives the message and dies before leasing it.
    const taken = await eventually(async () => {
      const messages = await receiveRawMessages(calm, "crashLease", 2);
      return messages.length > 0 ? messages : undefined;
    });
    expect(taken).toHaveLength(1);
    expect(taken[0]?.Body).toBe(task.ID);
    expect(await calm.api.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "0" });
    const counts = await queueCounts(calm, "crashLease");
    expect(counts).toMatchObject({ visible: 0, inFlight: 1 });

    const w = worker("crashLease", calm).credit(2);
    const delivered = await w.next(15_000);
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0", Input: "orphaned" });
    // It is the orphaned message that was leased (the calm sweeper sent no other).
    expect((await taskItem(task.ID, calm)).messageId).toBe(taken[0]?.MessageId);
    expect(await w.nothingWithin(1_500)).toBe(true);
    expect((await reporter(calm).report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await calm.api.get(task.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "0" });
    await emptyQueue("crashLease", calm);
  });
});

describe("duplicate messages", () => {
  it("delivers a task the sweeper sent twice exactly once and drops the extra message", async () => {
    const calls = watchCalls();
    const task = await createOn("dupSend", "twice sent");
    // Nobody takes it for a while: the sweeper re-sends it.
    await eventually(() => calls.sendsTo("dupSend") >= 2, 10_000);
    await eventually(async () => (await queueCounts(server, "dupSend")).visible >= 2, 5_000);

    const w = worker("dupSend").credit(3);
    const delivered = await w.next();
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0" });
    expect(await w.nothingWithin(2_000)).toBe(true);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "once")).State).toBe("200");
    await emptyQueue("dupSend");
    expect(await w.nothingWithin(500)).toBe(true);
  });
});

describe("crash between report and ack", () => {
  it("keeps the final state when the DeleteMessage after SUCCESS fails; the message that comes back is dropped", async () => {
    const task = await createOn("lostAck", "ack me");
    const w = worker("lostAck").credit();
    expect((await w.next()).ID).toBe(task.ID);
    const calls = watchCalls(
      (command, input) => command === "DeleteMessageBatchCommand" && queueUrlOf(input) === server.queueUrls.lostAck,
    );
    const answer = await reporter().report(task.ID, ReportState.SUCCESS, "done");
    expect(answer.State).toBe("200");
    expect(calls.crashed()).toBe(1);
    // The message comes back after its 2 s visibility and is dropped, not delivered.
    w.credit();
    await eventually(async () => {
      const counts = await queueCounts(server, "lostAck");
      return counts.visible === 0 && counts.inFlight === 0 && counts.delayed === 0;
    }, 15_000);
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "done", RetryCount: "0" });
  });
});

/** Deletes a task's SQS message behind the server's back, as the redrive to the dead-letter queue (or retention) would. */
async function loseMessageOf(id: string, channel: string): Promise<void> {
  const item = await taskItem(id);
  await server.sqs.send(new DeleteMessageCommand({ QueueUrl: server.queueUrls[channel], ReceiptHandle: item.receiptHandle as string }));
}

describe("a message lost after its task was leased (dead-letter queue, retention)", () => {
  it("a leased task whose worker died and whose message is gone: the sweeper's copy counts the failed attempt and the task runs again", async () => {
    const task = await createOn("lostLeased", "lease lost");
    const dying = worker("lostLeased").credit();
    expect(await dying.next()).toMatchObject({ ID: task.ID, RetryCount: "0" });
    dying.cancel();
    await loseMessageOf(task.ID, "lostLeased");

    // Lease 2 s + grace 0.3 s: a copy is sent; finding the lease run out, it counts a failed attempt.
    const next = worker("lostLeased").credit(2);
    const again = await next.next(15_000);
    expect(again).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "1", Input: "lease lost" });
    expect(await next.nothingWithin(1_000)).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "ran twice")).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "1", Output: "ran twice" });
    expect(await outboxCleared(task.ID)).toBe(true);
    await emptyQueue("lostLeased");
  });

  it("a task in a retry backoff whose message is gone is sent again after the backoff", async () => {
    const task = await createOn("lostBackoff", "backoff lost");
    const w = worker("lostBackoff").credit();
    expect((await w.next()).ID).toBe(task.ID);
    expect((await reporter().report(task.ID, ReportState.FAILURE, "first try failed")).State).toBe("200");
    expect(await server.api.get(task.ID)).toMatchObject({ State: "WAITING", RetryCount: "1" });
    await loseMessageOf(task.ID, "lostBackoff");

    w.credit();
    const again = await w.next(15_000);
    expect(again).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "1" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("lostBackoff");
  });
});

describe("lost answers: a write takes effect but its answer is lost, and the SDK retries it", () => {
  const isTask = (id: string) => (input: unknown) => updateKey(input) === `T#${id}`;

  it("CreateTask answers 200 and creates exactly one task", async () => {
    const owner = String(2n ** 62n + BigInt(Date.now()));
    server.faults.loseAnswer("TransactWriteItemsCommand");
    const created = await server.api.createTask({ Channel: "lostAnswer", Input: "once", Owner: owner });
    expect(created.State).toBe("200");
    expect(server.faults.answersLost).toBe(1);
    const page = await server.api.queryByOwner(owner);
    expect(page.Total).toBe("1");
    expect(page.Data.map((task) => task.HashCode)).toEqual([created.Data]);
    const w = worker("lostAnswer").credit();
    const task = await w.next();
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("a lease whose answer is lost still delivers the task, with RetryCount 0", async () => {
    const task = await createOn("lostAnswer", "leased once");
    server.faults.loseAnswer("UpdateItemCommand", 1, isTask(task.ID));
    const w = worker("lostAnswer").credit(2);
    expect(await w.next()).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0" });
    expect(server.faults.answersLost).toBe(1);
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("lostAnswer");
  });

  it("a SUCCESS report whose answer is lost answers 200, not 409", async () => {
    const task = await createOn("lostAnswer", "report once");
    const w = worker("lostAnswer").credit();
    expect((await w.next()).ID).toBe(task.ID);
    server.faults.loseAnswer("UpdateItemCommand", 1, isTask(task.ID));
    expect(await reporter().report(task.ID, ReportState.SUCCESS, "done")).toMatchObject({ State: "200", Data: task.ID });
    expect(server.faults.answersLost).toBe(1);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "done" });
    await emptyQueue("lostAnswer");
  });

  it("a cancel whose answer is lost answers 200 with the task", async () => {
    const task = await createOn("other", "cancel once");
    server.faults.loseAnswer("UpdateItemCommand", 1, isTask(task.ID));
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("200");
    expect(server.faults.answersLost).toBe(1);
    expect(answer.Data.map((t) => [t.ID, t.State])).toEqual([[task.ID, "CANCEL"]]);
  });
});

describe("a lease that cannot be handed over", () => {
  it("is handed back when the task's large Input cannot be read, and is delivered later with RetryCount 0", async () => {
    const input = "i".repeat(3_000);
    const task = await createOn("payloadRead", input);
    let failures = 0;
    server.faults.hook = (command, input_) => {
      if (command === "GetItemCommand" && updateKey(input_) === `I#${task.ID}` && failures === 0) {
        failures += 1;
        throw connectionRefused();
      }
    };
    // Two credits: a copy the fast sweeper may send meanwhile is taken and dropped, never delivered.
    const w = worker("payloadRead").credit(2);
    const delivered = await w.next(10_000);
    expect(failures).toBe(1);
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0" });
    expect(delivered.Input).toBe(input);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("payloadRead");
  });
});
