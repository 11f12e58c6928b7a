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
import { expectDistinctLeaseTokens, expectLeaseToken } from "./support/lease-tokens.js";
import {
  deletedHandles,
  indexOfCall,
  isTaskWrite,
  itemKeyOf,
  receivedMessages,
  sentMessageIds,
  sentTaskIds,
  storedLeaseToken,
  storedReceiptHandle,
  visibilityChanges,
  type CallLike,
} from "./support/aws-calls.js";
import { taskIdOfGeneratedHashCode } from "../service/src/tasks/ids.js";
import { connectionRefused, eventually, queueCounts, queueDrained, receiveRawMessages, startTestServer, type AwsCall, type TestServer } from "./support/harness.js";

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

/** The server's AWS calls so far (since the last faults.clear()). */
const calls = (): readonly AwsCall[] => server.faults.log;
/** An attribute of the item a PutItem wrote, plain (the log holds it marshalled or not). */
function attributeOf(call: AwsCall, name: string): unknown {
  const value = (call.input as { Item?: Record<string, unknown> }).Item?.[name];
  if (value && typeof value === "object" && "S" in value) return (value as { S: unknown }).S;
  return value;
}

/** The calls a fault failed. */
const injected = (): AwsCall[] => server.faults.log.filter((call) => call.injected);

/** Fails (as a crash would) the first call that `pick` chooses, once. */
function crashOnce(pick: (call: CallLike) => boolean): void {
  let crashed = false;
  server.faults.hook = (command, input) => {
    if (!crashed && pick({ command, input })) {
      crashed = true;
      throw connectionRefused();
    }
  };
}

/** A send to the channel's queue that carries this task. */
const sendOf = (channel: string, taskId: string) => (call: CallLike) => sentTaskIds(call, server.queueUrls[channel] ?? "").includes(taskId);

/** The one call a fault failed: it must be the call the test means. */
function theInjectedCall(): { call: AwsCall; at: number } {
  const failed = injected();
  expect(failed, "the fault fired exactly once").toHaveLength(1);
  const call = failed[0] as AwsCall;
  return { call, at: calls().indexOf(call) };
}

/**
 * The sweeper's recovery: after call `from`, it claimed the task's outbox marker, then
 * sent a copy of its message, and that copy is the message the task was leased with.
 */
async function expectDeliveredBySweeperCopy(taskId: string, channel: string, from: number): Promise<void> {
  const url = server.queueUrls[channel] ?? "";
  const claim = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, taskId, "claimOutbox"), from);
  expect(claim, "the sweeper claimed the task's outbox marker").toBeGreaterThan(from);
  const copy = indexOfCall(calls(), (call) => sentMessageIds(call, url, taskId).length > 0, claim);
  expect(copy, "the sweeper sent a copy of the task's message").toBeGreaterThan(claim);
  expect((await taskItem(taskId)).messageId, "the task was leased with the sweeper's copy").toBe(sentMessageIds(calls()[copy] as AwsCall, url, taskId)[0]);
}

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
    crashOnce((call) => call.command === "SendMessageBatchCommand" && sentTaskIds(call, server.queueUrls.lostSend ?? "").length > 0);
    const created = await server.api.createTask({ Channel: "lostSend", Input: "sent late" });
    expect(created.State).toBe("200");

    const task = await w.next(10_000);
    expect(task).toMatchObject({ HashCode: created.Data, Input: "sent late", State: "PROCEEDING", RetryCount: "0" });
    // The fault hit CreateTask's own send of this task: its first send, before the sweeper ever claimed it.
    const crash = theInjectedCall();
    expect(sendOf("lostSend", task.ID)(crash.call)).toBe(true);
    expect(indexOfCall(calls(), sendOf("lostSend", task.ID))).toBe(crash.at);
    expect(indexOfCall(calls(), (call) => isTaskWrite(call, task.ID, "claimOutbox"))).toBeGreaterThan(crash.at);
    await expectDeliveredBySweeperCopy(task.ID, "lostSend", crash.at);
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

    server.faults.clear();
    crashOnce(sendOf("lostNextSend", b.ID));
    const answer = await reporter().report(a.ID, ReportState.SUCCESS, "piped through the sweeper");
    expect(answer.State).toBe("200");

    const task = await w.next(10_000);
    expect(task).toMatchObject({ ID: b.ID, Prior: a.ID, Input: "piped through the sweeper", RetryCount: "0" });
    // The fault hit the chain follow-up's send of B, right after it queued B.
    const crash = theInjectedCall();
    const queued = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, b.ID, "queue"));
    expect(queued).toBeGreaterThanOrEqual(0);
    expect(indexOfCall(calls(), sendOf("lostNextSend", b.ID), queued)).toBe(crash.at);
    await expectDeliveredBySweeperCopy(b.ID, "lostNextSend", crash.at);
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

    server.faults.clear();
    crashOnce((call) => call.command === "SendMessageBatchCommand" && sentTaskIds(call, server.queueUrls.priorDoneSend ?? "").length > 0);
    const created = await server.api.createTask({ Channel: "priorDoneSend", Prior: a.ID });
    expect(created.State).toBe("200");
    w.credit(2);
    const task = await w.next(10_000);
    expect(task).toMatchObject({ HashCode: created.Data, Input: "ready", Prior: a.ID });
    // The fault hit CreateTask's send of the new task (queued at once: its Prior had succeeded).
    const crash = theInjectedCall();
    expect(indexOfCall(calls(), sendOf("priorDoneSend", task.ID))).toBe(crash.at);
    await expectDeliveredBySweeperCopy(task.ID, "priorDoneSend", crash.at);
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
    server.faults.clear();
    crashOnce((call) => isTaskWrite(call, b.ID, "queue"));
    const answer = await reporter().report(a.ID, ReportState.SUCCESS, "a is done");
    const crash = theInjectedCall();
    // It was the follow-up of A's SUCCESS, written just before.
    expect(indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, a.ID, "succeed"))).toBeLessThan(crash.at);
    expect(await server.api.get(a.ID)).toMatchObject({ State: "SUCCESS", Output: "a is done", Next: b.ID });
    // The SUCCESS was written: the worker must not be told to retry (503) a report that took
    // effect (its retry would only get 409).
    expect(answer).toMatchObject({ State: "200", Data: a.ID });

    const task = await w.next(10_000);
    expect(task).toMatchObject({ ID: b.ID, Input: "a is done", State: "PROCEEDING", RetryCount: "0" });
    // The sweeper claimed A's marker and ran the follow-up again: B queued, then sent.
    const claim = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, a.ID, "claimOutbox"), crash.at);
    expect(claim).toBeGreaterThan(crash.at);
    const queued = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, b.ID, "queue"), claim);
    expect(queued).toBeGreaterThan(claim);
    expect(indexOfCall(calls(), (call) => sentMessageIds(call, server.queueUrls.lostFollowUp ?? "", b.ID).length > 0, queued)).toBeGreaterThan(queued);
    expect(await w.nothingWithin(1_500)).toBe(true);
    await eventually(() => outboxCleared(a.ID), 5_000);
    expect((await reporter().report(b.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await outboxCleared(b.ID)).toBe(true);
    await emptyQueue("lostFollowUp");
  });

  it("answers a cancel 200 once the task's CANCEL is written, and the sweeper finishes the cascade; a retried cancel answers 409", async () => {
    const a = await createOn("cascade", "a");
    const b = await createOn("cascade", "", { Prior: a.ID });
    const c = await createOn("cascade", "", { Prior: b.ID });

    server.faults.clear();
    crashOnce((call) => isTaskWrite(call, b.ID, "cancel"));
    const answer = await server.api.cancel(a.ID);
    // The fault hit the cascade's write of B's CANCEL, after A's CANCEL was committed.
    const crash = theInjectedCall();
    expect(indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, a.ID, "cancel"))).toBeLessThan(crash.at);
    // A's CANCEL is committed: the answer is 200 with what this call cancelled, and says the rest follows.
    expect(answer.State).toBe("200");
    expect(answer.Message).toMatch(/rest of its chain is being cancelled in the background/);
    expect(answer.Data.map((task) => [task.ID, task.State])).toEqual([[a.ID, "CANCEL"]]);
    // A retry answers 409 with A (final), whether the cascade is still pending or done.
    const retried = await server.api.cancel(a.ID);
    expect(retried.State).toBe("409");
    expect(retried.Data.map((task) => [task.ID, task.State])).toEqual([[a.ID, "CANCEL"]]);

    await eventually(async () => (await server.api.get(b.ID)).State === "CANCEL" && (await server.api.get(c.ID)).State === "CANCEL", 10_000);
    // The sweeper finished it: it claimed A's marker, then cancelled B and C.
    const claim = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, a.ID, "claimOutbox"), crash.at);
    expect(claim).toBeGreaterThan(crash.at);
    const cancelB = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, b.ID, "cancel"), claim);
    expect(cancelB).toBeGreaterThan(claim);
    expect(indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, c.ID, "cancel"), cancelB)).toBeGreaterThan(cancelB);
    await eventually(() => outboxCleared(a.ID), 5_000);
    const again = await server.api.cancel(a.ID);
    expect(again.State).toBe("409");
    expect(again.Data.map((task) => [task.ID, task.State])).toEqual([[a.ID, "CANCEL"]]);
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
    server.faults.clear();
    const task = await createOn("dupSend", "twice sent");
    // Nobody takes it for a while: the sweeper re-sends it.
    const sends = () => calls().filter((call) => sentMessageIds(call, server.queueUrls.dupSend ?? "", task.ID).length > 0).length;
    await eventually(() => sends() >= 2, 10_000);
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
    const leased = await taskItem(task.ID);
    const handle = leased.receiptHandle as string;
    server.faults.clear();
    crashOnce((call) => deletedHandles(call).includes(handle));
    const answer = await reporter().report(task.ID, ReportState.SUCCESS, "done");
    expect(answer.State).toBe("200");
    // The fault hit the delete of the leased message that follows the SUCCESS write.
    const crash = theInjectedCall();
    expect(crash.call.command).toBe("DeleteMessageBatchCommand");
    expect(indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, task.ID, "succeed"))).toBeLessThan(crash.at);
    // The message comes back after its 2 s visibility and is dropped, not delivered.
    w.credit();
    await eventually(async () => {
      const counts = await queueCounts(server, "lostAck");
      return counts.visible === 0 && counts.inFlight === 0 && counts.delayed === 0;
    }, 15_000);
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "done", RetryCount: "0" });
    // The recovery: the same message was received again and the server deleted that copy.
    const back = calls()
      .slice(crash.at)
      .flatMap(receivedMessages)
      .filter((message) => message.messageId === leased.messageId);
    expect(back.length, "the message came back").toBeGreaterThan(0);
    const deletedAgain = calls()
      .slice(crash.at + 1)
      .some((call) => !call.error && back.some((message) => deletedHandles(call).includes(message.receiptHandle)));
    expect(deletedAgain, "the returned message was deleted").toBe(true);
  });
});

/** Deletes a task's SQS message behind the server's back, as the redrive to the dead-letter queue (or retention) would. */
async function loseMessageOf(id: string, channel: string): Promise<string> {
  const item = await taskItem(id);
  await server.sqs.send(new DeleteMessageCommand({ QueueUrl: server.queueUrls[channel], ReceiptHandle: item.receiptHandle as string }));
  return item.messageId as string;
}

/** No receive after call `from` brought this message back. */
function neverReceivedAgain(messageId: string, from: number): boolean {
  return !calls()
    .slice(from)
    .flatMap(receivedMessages)
    .some((message) => message.messageId === messageId);
}

describe("a message lost after its task was leased (dead-letter queue, retention)", () => {
  it("a leased task whose worker died and whose message is gone: the sweeper's copy counts the failed attempt and the task runs again", async () => {
    const task = await createOn("lostLeased", "lease lost");
    const dying = worker("lostLeased").credit();
    expect(await dying.next()).toMatchObject({ ID: task.ID, RetryCount: "0" });
    dying.cancel();
    const from = calls().length;
    const lost = await loseMessageOf(task.ID, "lostLeased");

    // Lease 2 s + grace 0.3 s: a copy is sent; finding the lease run out, it counts a failed attempt.
    const next = worker("lostLeased").credit(2);
    const again = await next.next(15_000);
    expect(again).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "1", Input: "lease lost" });
    // It came from the sweeper's copy: the lost message never came back.
    expect(neverReceivedAgain(lost, from)).toBe(true);
    await expectDeliveredBySweeperCopy(task.ID, "lostLeased", from);
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
    const from = calls().length;
    const lost = await loseMessageOf(task.ID, "lostBackoff");

    w.credit();
    const again = await w.next(15_000);
    expect(again).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "1" });
    expect(neverReceivedAgain(lost, from)).toBe(true);
    await expectDeliveredBySweeperCopy(task.ID, "lostBackoff", from);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("lostBackoff");
  });
});

describe("lost answers: a write takes effect but its answer is lost, and the SDK retries it", () => {
  const writeOf = (taskId: string, kind: string) => (input: unknown) => isTaskWrite({ command: "UpdateItemCommand", input }, taskId, kind);
  /** The call whose answer was lost: sent twice (the SDK's retry). */
  function theLostCall(): AwsCall {
    expect(server.faults.answersLost).toBe(1);
    const retried = calls().filter((call) => call.attempts > 1);
    expect(retried, "exactly one call was retried by the SDK").toHaveLength(1);
    expect((retried[0] as AwsCall).attempts).toBe(2);
    return retried[0] as AwsCall;
  }

  it("CreateTask answers 200 and creates exactly one task", async () => {
    const owner = String(2n ** 62n + BigInt(Date.now()));
    server.faults.clear();
    server.faults.loseAnswer("PutItemCommand", 1, (input) => itemKeyOf({ command: "PutItemCommand", input })?.startsWith("T#") === true);
    const created = await server.api.createTask({ Channel: "lostAnswer", Input: "once", Owner: owner });
    expect(created.State).toBe("200");
    const id = String(taskIdOfGeneratedHashCode(created.Data));
    // The lost answer was the create's PutItem of the task item: its retry failed its own
    // condition (the key is new) and found the item carrying this create's write id.
    const lost = theLostCall();
    expect(lost.command).toBe("PutItemCommand");
    expect(itemKeyOf(lost)).toBe(`T#${id}`);
    expect(lost.error?.name).toBe("ConditionalCheckFailedException");
    const writeId = attributeOf(lost, "lastWrite");
    expect(writeId).toMatch(/^create\./);
    expect((await taskItem(id)).lastWrite).toBe(writeId);
    // It was the only create write: no second task item, no transaction.
    expect(calls().filter((call) => call.command === "PutItemCommand" || call.command === "TransactWriteItemsCommand")).toEqual([lost]);
    // The owner's Total counts it a moment later (from the table's stream); the page lists it alone.
    const page = await eventually(async () => {
      const answer = await server.api.queryByOwner(owner);
      return answer.Total === "1" && answer.Data.length === 1 ? answer : undefined;
    }, 10_000);
    expect(page.Data.map((task) => [task.ID, task.HashCode])).toEqual([[id, created.Data]]);
    // Two credits: a copy the fast sweeper may have sent meanwhile is taken and dropped.
    const w = worker("lostAnswer").credit(2);
    const task = await w.next();
    expect(task.HashCode).toBe(created.Data);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("lostAnswer");
  });

  it("a lease whose answer is lost still delivers the task, with RetryCount 0", async () => {
    const task = await createOn("lostAnswer", "leased once");
    server.faults.clear();
    server.faults.loseAnswer("UpdateItemCommand", 1, writeOf(task.ID, "lease"));
    const w = worker("lostAnswer").credit(2);
    const delivered = await w.next();
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0" });
    // The lost answer was the lease write's; its retry failed its condition on our own write and was recognised.
    const lost = theLostCall();
    expect(isTaskWrite(lost, task.ID, "lease")).toBe(true);
    expect(lost.error?.name).toBe("ConditionalCheckFailedException");
    expect(calls().filter((call) => isTaskWrite(call, task.ID, "lease"))).toEqual([lost]);
    // The worker got the token that one write stored (its retry sent the same one), and reports with it.
    expectLeaseToken(delivered.LeaseToken);
    expect(delivered.LeaseToken).toBe(storedLeaseToken(lost));
    expect(await w.nothingWithin(1_000)).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "", delivered.LeaseToken)).State).toBe("200");
    await emptyQueue("lostAnswer");
  });

  it("a SUCCESS report whose answer is lost answers 200, not 409", async () => {
    // Two credits: a copy the fast sweeper may send before the lease is taken and dropped.
    const w = worker("lostAnswer").credit(2);
    const task = await createOn("lostAnswer", "report once");
    expect((await w.next()).ID).toBe(task.ID);
    server.faults.clear();
    server.faults.loseAnswer("UpdateItemCommand", 1, writeOf(task.ID, "succeed"));
    expect(await reporter().report(task.ID, ReportState.SUCCESS, "done")).toMatchObject({ State: "200", Data: task.ID });
    const lost = theLostCall();
    expect(isTaskWrite(lost, task.ID, "succeed")).toBe(true);
    expect(lost.error?.name).toBe("ConditionalCheckFailedException");
    expect(calls().filter((call) => isTaskWrite(call, task.ID, "succeed"))).toEqual([lost]);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "SUCCESS", Output: "done" });
    await emptyQueue("lostAnswer");
  });

  it("a cancel whose answer is lost answers 200 with the task", async () => {
    const task = await createOn("other", "cancel once");
    server.faults.clear();
    server.faults.loseAnswer("UpdateItemCommand", 1, writeOf(task.ID, "cancel"));
    const answer = await server.api.cancel(task.ID);
    expect(answer.State).toBe("200");
    const lost = theLostCall();
    expect(isTaskWrite(lost, task.ID, "cancel")).toBe(true);
    expect(lost.error?.name).toBe("ConditionalCheckFailedException");
    expect(calls().filter((call) => isTaskWrite(call, task.ID, "cancel"))).toEqual([lost]);
    expect(answer.Data.map((t) => [t.ID, t.State])).toEqual([[task.ID, "CANCEL"]]);
  });
});

describe("a lease that cannot be handed over", () => {
  it("is handed back when the task's large Input cannot be read, and is delivered later with RetryCount 0", async () => {
    const input = "i".repeat(3_000);
    const task = await createOn("payloadRead", input);
    server.faults.clear();
    crashOnce((call) => call.command === "GetItemCommand" && itemKeyOf(call) === `I#${task.ID}`);
    // Two credits: a copy the fast sweeper may send meanwhile is taken and dropped, never delivered.
    const w = worker("payloadRead").credit(2);
    const delivered = await w.next(10_000);
    expect(delivered).toMatchObject({ ID: task.ID, State: "PROCEEDING", RetryCount: "0" });
    expect(delivered.Input).toBe(input);
    // The fault hit the read of the Input right after the first lease; the lease was handed back
    // (no attempt counted) and its message made visible at once, then leased again.
    const crash = theInjectedCall();
    const firstLease = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, task.ID, "lease"));
    expect(firstLease).toBeLessThan(crash.at);
    const handBack = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, task.ID, "handBack"), crash.at);
    expect(handBack).toBeGreaterThan(crash.at);
    // Leased again after the hand-back: a new token, the one the second lease write stored.
    const secondLease = indexOfCall(calls(), (call) => !call.error && isTaskWrite(call, task.ID, "lease"), handBack);
    expect(secondLease).toBeGreaterThan(handBack);
    expectDistinctLeaseTokens(storedLeaseToken(calls()[firstLease] as AwsCall), delivered.LeaseToken);
    expect(delivered.LeaseToken).toBe(storedLeaseToken(calls()[secondLease] as AwsCall));
    const firstHandle = storedReceiptHandle(calls()[firstLease] as AwsCall);
    expect(firstHandle).toBeDefined();
    expect(
      calls()
        .slice(handBack)
        .flatMap(visibilityChanges)
        .some((change) => change.receiptHandle === firstHandle && change.seconds === 0),
      "the handed-back message was released at once",
    ).toBe(true);
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("payloadRead");
  });
});
