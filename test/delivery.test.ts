// SPEC §3 ReceiveQueueByChannel: credits, the shared long poll, leasing (duplicates,
// junk, races), release of undelivered messages, lease expiry and heartbeats, and a
// message moved back from the dead-letter queue.
// Every test uses its own channel, so one test's messages never reach another's workers.
import * as grpc from "@grpc/grpc-js";
import { DeleteMessageCommand, GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ReportState, type WireTask } from "./support/client.js";
import { OpenStreams } from "./support/open-streams.js";
import { expectLeaseToken } from "./support/lease-tokens.js";
import { eventually, queueCounts, queueDrained, sendRawMessage, sleep, startTestServer, type TestServer } from "./support/harness.js";
import { queueNames } from "../service/src/queue/queue-definition.js";
import { isTaskWrite, taskWrites } from "./support/aws-calls.js";

const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Channels with a 30 s lease (the default), one per test. */
const LONG_LEASE = ["credits", "fields", "multiA", "multiB", "push", "idle", "race", "dup", "junk", "release", "handback", "keep", "halfClose"];
/** Channels with a 2 s lease, for expiry and heartbeat tests. */
const SHORT_LEASE = ["expiry", "expiry2", "beat"];

let server: TestServer;

const streams = new OpenStreams(() => server);
const worker = (channel: string) => streams.worker(channel);
const reporter = () => streams.reporter();

async function createOn(channel: string, Input = "", extra: { RetryMaxLimit?: string; Owner?: string; HashCode?: string } = {}): Promise<WireTask> {
  return server.api.create({ Channel: channel, Input, ...extra });
}

const emptyQueue = (channel: string) => queueDrained(server, channel);

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** No stream of a test is still open on the server. */
async function noOpenStreams(): Promise<void> {
  await eventually(() => server.app.streams.size === 0);
}

beforeAll(async () => {
  server = await startTestServer({
    channels: [
      { name: "default" },
      "other",
      ...LONG_LEASE,
      ...SHORT_LEASE.map((name) => ({ name, visibilityTimeoutSeconds: 2 })),
    ],
  });
});

afterEach(async () => {
  server.faults.clear();
  await streams.closeAll(server);
});

afterAll(async () => {
  await server?.stop();
});

describe("ReceiveQueueByChannel credits", () => {
  it("answers each credit with exactly one task", async () => {
    const w = worker("credits").credit(3);
    const created: WireTask[] = [];
    for (let i = 0; i < 5; i++) created.push(await createOn("credits", `job ${i}`));
    const first = [await w.next(), await w.next(), await w.next()];
    expect(await w.nothingWithin(1_500)).toBe(true);
    w.credit(2);
    const rest = [await w.next(), await w.next()];
    expect(await w.nothingWithin(500)).toBe(true);
    const ids = [...first, ...rest].map((task) => task.ID);
    expect(new Set(ids).size).toBe(5);
    expect(new Set(ids)).toEqual(new Set(created.map((task) => task.ID)));
    const reports = reporter();
    for (const id of ids) expect((await reports.report(id, ReportState.SUCCESS, "ok")).State).toBe("200");
    await emptyQueue("credits");
  });

  it("delivers a PROCEEDING task with RetryCount 0 and all its fields", async () => {
    const created = await createOn("fields", "payload ✓ \u{1F600}", {
      Owner: "18446744073709551615",
      RetryMaxLimit: "5",
      HashCode: `fields-${Date.now()}`,
    });
    const w = worker("fields").credit();
    const task = await w.next();
    expect(task).toEqual({
      ID: created.ID,
      Next: "0",
      Prior: "0",
      Owner: "18446744073709551615",
      State: "PROCEEDING",
      Input: "payload ✓ \u{1F600}",
      Output: "",
      Channel: "fields",
      HashCode: created.HashCode,
      RetryCount: "0",
      CreateTime: created.CreateTime,
      UpdateTime: task.UpdateTime,
      RetryMaxLimit: "5",
      // Additions: the delivery's lease (token for fencing, end of the 30 s lease).
      LeaseToken: task.LeaseToken,
      LeaseExpireTime: task.LeaseExpireTime,
      RunAt: "", // not scheduled (SPEC §7.1)
      ConcurrencyKey: "", // SPEC §7.2: none
      Priority: "1", // the only level of a channel without priorities
      TraceParent: "", // SPEC §7.3: created without a traceparent
    });
    expectLeaseToken(task.LeaseToken);
    expect(task.UpdateTime).toMatch(RFC3339_MS);
    expect(task.LeaseExpireTime).toMatch(RFC3339_MS);
    expect(Date.parse(task.LeaseExpireTime) - Date.parse(task.UpdateTime)).toBeGreaterThanOrEqual(29_000);
    expect(Date.parse(task.LeaseExpireTime) - Date.parse(task.UpdateTime)).toBeLessThanOrEqual(31_000);
    expect(Date.parse(task.UpdateTime)).toBeGreaterThanOrEqual(Date.parse(created.CreateTime));
    const stored = await server.api.get(created.ID);
    expect(stored).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("ends the stream with INVALID_ARGUMENT for a credit on an unknown channel", async () => {
    const unknown = worker("default").credit(1, "no-such-channel");
    const status = await unknown.status;
    expect(status.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(status.details).toContain("no-such-channel");

    const empty = worker("default").credit(1, "");
    expect((await empty.status).code).toBe(grpc.status.INVALID_ARGUMENT);

    // A good credit first does not save the stream from a bad one later.
    const mixed = worker("default").credit(1, "default").credit(1, "nope");
    expect((await mixed.status).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("serves credits on several channels on one stream", async () => {
    const w = worker("multiA").credit(1, "multiA").credit(1, "multiB");
    const a = await createOn("multiA", "for A");
    const b = await createOn("multiB", "for B");
    const got = [await w.next(), await w.next()];
    expect(got.map((task) => `${task.Channel}:${task.ID}`).sort()).toEqual([`multiA:${a.ID}`, `multiB:${b.ID}`].sort());
    expect(await w.nothingWithin(500)).toBe(true);
    const reports = reporter();
    for (const task of got) expect((await reports.report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });
});

describe("shared long poll", () => {
  it("hands a new task to a worker that is already waiting, without waiting out the long poll", async () => {
    const w = worker("push").credit();
    // The worker's credit has been waiting in a long poll for a while before the task exists.
    await sleep(1_200);
    const created = await server.api.createTask({ Channel: "push", Input: "fast" });
    expect(created.State).toBe("200");
    const started = Date.now();
    const task = await w.next(10_000);
    // A 20 s long poll is in flight; the task must arrive as soon as its message does.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(task).toMatchObject({ Input: "fast", HashCode: created.Data, State: "PROCEEDING" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });

  it("serves many idle workers of a channel with one long poll", async () => {
    const before = server.faults.count("ReceiveMessageCommand");
    const workers = Array.from({ length: 20 }, () => worker("idle").credit());
    await sleep(3_000);
    const calls = server.faults.count("ReceiveMessageCommand") - before;
    expect(calls).toBeGreaterThanOrEqual(1);
    expect(calls).toBeLessThanOrEqual(2);

    // The shared poll still feeds every one of them: 20 tasks, one per worker.
    const created = await Promise.all(Array.from({ length: 20 }, (_, i) => createOn("idle", `idle ${i}`)));
    const got = await Promise.all(workers.map((w) => w.next(10_000)));
    expect(new Set(got.map((task) => task.ID))).toEqual(new Set(created.map((task) => task.ID)));
    const reports = reporter();
    const answers = await Promise.all(got.map((task) => reports.report(task.ID, ReportState.SUCCESS)));
    expect(answers.every((answer) => answer.State === "200")).toBe(true);
    await emptyQueue("idle");
  });
});

describe("leasing", () => {
  it("gives a task to exactly one of two racing workers, and accepts exactly one of two racing SUCCESS reports", async () => {
    const a = worker("race").credit();
    const b = worker("race").credit();
    const created = await createOn("race", "contested");
    await eventually(() => a.buffered + b.buffered >= 1);
    await sleep(1_500);
    expect(a.buffered + b.buffered).toBe(1);
    const winner = a.buffered === 1 ? a : b;
    const task = await winner.next();
    expect(task).toMatchObject({ ID: created.ID, State: "PROCEEDING", RetryCount: "0" });

    const one = reporter();
    const two = reporter();
    const answers = await Promise.all([
      one.report(task.ID, ReportState.SUCCESS, "from one"),
      two.report(task.ID, ReportState.SUCCESS, "from two"),
    ]);
    expect(answers.map((answer) => answer.State).sort()).toEqual(["200", "409"]);
    expect(answers.map((answer) => answer.Data)).toEqual([task.ID, task.ID]);
    const final = await server.api.get(task.ID);
    const won = answers[0]?.State === "200" ? "from one" : "from two";
    expect(final).toMatchObject({ State: "SUCCESS", Output: won, RetryCount: "0" });
    await emptyQueue("race");
  });

  it("drops a duplicate SQS message of a leased task", async () => {
    const a = worker("dup").credit();
    const created = await createOn("dup", "once");
    const task = await a.next();
    expect(task.ID).toBe(created.ID);

    const b = worker("dup").credit();
    await sendRawMessage(server, task.ID, "dup");
    expect(await b.nothingWithin(2_000)).toBe(true);
    // The duplicate was deleted; only the leased original is in flight.
    await eventually(async () => {
      const counts = await queueCounts(server, "dup");
      return counts.visible === 0 && counts.inFlight === 1 && counts.delayed === 0;
    });
    expect((await server.api.get(task.ID)).State).toBe("PROCEEDING");

    expect((await reporter().report(task.ID, ReportState.SUCCESS, "done")).State).toBe("200");
    await emptyQueue("dup");
    expect(await b.nothingWithin(500)).toBe(true);
  });

  it("drops messages of missing tasks and garbage bodies without spending the worker's credit", async () => {
    const w = worker("junk").credit();
    for (const body of ["987654321987654321", "0", "not a task", "-5", "12abc", '{"ID":"1"}', "123456789012345678901234567890"]) {
      await sendRawMessage(server, body, "junk");
    }
    expect(await w.nothingWithin(1_500)).toBe(true);
    await emptyQueue("junk");
    // The credit is still there: the next real task goes to this worker.
    const created = await createOn("junk", "real");
    const task = await w.next(10_000);
    expect(task).toMatchObject({ ID: created.ID, Input: "real", RetryCount: "0" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
  });
});

describe("stream close", () => {
  it("releases messages received for a closed stream's credits at once", async () => {
    const polls = server.faults.count("ReceiveMessageCommand");
    const gone = worker("release").credit(3);
    await eventually(() => server.faults.count("ReceiveMessageCommand") > polls);
    gone.cancel();
    await noOpenStreams();

    const released = server.faults.count("ChangeMessageVisibilityCommand");
    const created: WireTask[] = [];
    for (let i = 0; i < 3; i++) created.push(await createOn("release", `r${i}`));
    // The long poll started for the closed stream got a message and nobody wants it: released.
    await eventually(() => server.faults.count("ChangeMessageVisibilityCommand") > released);
    await eventually(async () => {
      const counts = await queueCounts(server, "release");
      return counts.visible === 3 && counts.inFlight === 0;
    });

    const next = worker("release").credit(3);
    const got = [await next.next(10_000), await next.next(10_000), await next.next(10_000)]; // the lease is 30 s
    expect(new Set(got.map((task) => task.ID))).toEqual(new Set(created.map((task) => task.ID)));
    expect(got.every((task) => task.RetryCount === "0")).toBe(true);
    const reports = reporter();
    for (const task of got) expect((await reports.report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("release");
  });

  it("hands back a task leased for a worker that left before it was delivered", async () => {
    let armed = true;
    let entered!: () => void;
    const leaseStarted = new Promise<void>((resolve) => (entered = resolve));
    let letGo!: () => void;
    const gate = new Promise<void>((resolve) => (letGo = resolve));
    let hashCode = "";
    // Hold the lease write until the worker is gone.
    server.faults.hook = async (command, input) => {
      if (armed && taskWrites({ command, input }).some((write) => write.kind === "lease")) {
        armed = false;
        entered();
        await gate;
      }
    };
    try {
      const gone = worker("handback").credit();
      await eventually(() => server.app.streams.size === 1);
      const created = await server.api.createTask({ Channel: "handback", Input: "orphan" });
      expect(created.State).toBe("200");
      hashCode = created.Data;
      await within(leaseStarted, 10_000, "the lease write did not start");
      gone.cancel();
      await noOpenStreams();
    } finally {
      letGo();
    }

    // Released at once, not after the 30 s lease.
    await eventually(async () => {
      const counts = await queueCounts(server, "handback");
      return counts.visible === 1 && counts.inFlight === 0;
    });
    const waiting = await eventually(async () => {
      const task = await server.api.queryByHashCode(hashCode);
      return task.Data?.State === "WAITING" ? task.Data : undefined;
    });
    expect(waiting.RetryCount).toBe("0");
    // The hold was on this task's lease, and the recovery was the hand-back (no attempt counted).
    expect(server.faults.log.some((call) => !call.error && isTaskWrite(call, waiting.ID, "lease"))).toBe(true);
    expect(server.faults.log.some((call) => !call.error && isTaskWrite(call, waiting.ID, "handBack"))).toBe(true);

    const next = worker("handback").credit();
    const task = await next.next(10_000); // far below the 30 s lease it would otherwise wait out
    expect(task).toMatchObject({ HashCode: hashCode, Input: "orphan", State: "PROCEEDING", RetryCount: "0" });
    expect((await reporter().report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("handback");
  });

  it("keeps the lease of a task already delivered when its stream closes", async () => {
    const first = worker("keep").credit();
    const created = await createOn("keep", "mine");
    const task = await first.next();
    first.end();
    await first.status;

    const second = worker("keep").credit();
    expect(await second.nothingWithin(2_000)).toBe(true);
    expect(await server.api.get(created.ID)).toMatchObject({ State: "PROCEEDING", RetryCount: "0" });
    const counts = await queueCounts(server, "keep");
    expect(counts).toMatchObject({ visible: 0, inFlight: 1 });

    // The worker reports on its other stream although the receive stream is gone.
    expect((await reporter().report(task.ID, ReportState.SUCCESS, "late but fine")).State).toBe("200");
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", Output: "late but fine" });
    await emptyQueue("keep");
    expect(await second.nothingWithin(300)).toBe(true);
  });
});

describe("half-close", () => {
  it("answers the credits sent before the client half-closed, then ends the stream with OK", async () => {
    const w = worker("halfClose").credit(2);
    w.end();
    await sleep(300);
    expect(w.ended).toBe(false);
    const a = await createOn("halfClose", "a");
    const b = await createOn("halfClose", "b");
    const got = [await w.next(10_000), await w.next(10_000)];
    expect(new Set(got.map((task) => task.ID))).toEqual(new Set([a.ID, b.ID]));
    const status = await within(w.status, 10_000, "the stream did not end after its last credit");
    expect(status.code).toBe(grpc.status.OK);
    const reports = reporter();
    for (const task of got) expect((await reports.report(task.ID, ReportState.SUCCESS)).State).toBe("200");
    await emptyQueue("halfClose");
  });

  it("ends at once with OK when the client half-closes with no credit outstanding", async () => {
    const w = worker("halfClose");
    w.end();
    expect((await within(w.status, 5_000, "the stream did not end")).code).toBe(grpc.status.OK);
  });
});

describe("lease expiry and heartbeats (2 s lease)", () => {
  it("redelivers a task whose lease expired, counting a failed attempt", async () => {
    const dead = worker("expiry").credit();
    const created = await createOn("expiry", "slow");
    const first = await dead.next();
    expect(first.RetryCount).toBe("0");

    const alive = worker("expiry").credit();
    const again = await alive.next(10_000);
    expect(again).toMatchObject({ ID: created.ID, State: "PROCEEDING", RetryCount: "1", Input: "slow" });
    expect(await dead.nothingWithin(200)).toBe(true);
    expect((await reporter().report(again.ID, ReportState.SUCCESS, "second time")).State).toBe("200");
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "1", Output: "second time" });
    await emptyQueue("expiry");
  });

  it("ends in FAILURE when expired leases use up every attempt", async () => {
    const created = await createOn("expiry2", "never reported", { RetryMaxLimit: "1" });
    const w = worker("expiry2").credit();
    const first = await w.next();
    expect(first).toMatchObject({ ID: created.ID, RetryCount: "0" });
    w.credit();
    const second = await w.next(10_000);
    expect(second).toMatchObject({ ID: created.ID, RetryCount: "1" });
    w.credit();
    const failed = await eventually(async () => {
      const task = await server.api.get(created.ID);
      return task.State === "FAILURE" ? task : undefined;
    }, 15_000);
    expect(failed.RetryCount).toBe("2");
    await emptyQueue("expiry2");
    expect(await w.nothingWithin(1_000)).toBe(true);
    const late = await reporter().report(created.ID, ReportState.SUCCESS);
    expect(late.State).toBe("409");
    expect((await server.api.get(created.ID)).State).toBe("FAILURE");
  });

  it("keeps a heartbeating worker's lease beyond the visibility timeout", async () => {
    const holder = worker("beat").credit();
    const created = await createOn("beat", "long job");
    const task = await holder.next();
    const rival = worker("beat").credit();
    const reports = reporter();

    const until = Date.now() + 5_000;
    let beats = 0;
    while (Date.now() < until) {
      beats += 1;
      const answer = await reports.report(task.ID, ReportState.PROCEEDING, `progress ${beats}`);
      expect(answer).toMatchObject({ State: "200", Data: task.ID });
      if (beats === 1) {
        expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: "progress 1", RetryCount: "0" });
      }
      await sleep(700);
    }
    expect(beats).toBeGreaterThanOrEqual(6);
    expect(rival.buffered).toBe(0);
    expect(await server.api.get(task.ID)).toMatchObject({ State: "PROCEEDING", Output: `progress ${beats}`, RetryCount: "0" });

    expect((await reports.report(task.ID, ReportState.SUCCESS, "finished")).State).toBe("200");
    expect(await server.api.get(created.ID)).toMatchObject({ State: "SUCCESS", Output: "finished", RetryCount: "0" });
    await emptyQueue("beat");
    expect(await rival.nothingWithin(500)).toBe(true);
  });
});

describe("dead-letter queue (a backstop)", () => {
  /** Messages taken off a queue directly, as a replica that cannot handle them would. */
  async function receiveFrom(on: TestServer, QueueUrl: string, VisibilityTimeout: number) {
    const { Messages } = await on.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout }));
    return Messages ?? [];
  }

  async function countsOf(on: TestServer, QueueUrl: string): Promise<{ visible: number; inFlight: number; delayed: number }> {
    const { Attributes } = await on.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"],
      }),
    );
    return {
      visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
      inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
      delayed: Number(Attributes?.ApproximateNumberOfMessagesDelayed ?? 0),
    };
  }

  const EMPTY = { visible: 0, inFlight: 0, delayed: 0 };

  it("resumes a task whose message is moved back from the dead-letter queue", async () => {
    // Its own server: a channel whose message goes to the DLQ after 2 receives, and a sweeper
    // that sends no copy of an overdue message during the test (so the task can only go on
    // through the message moved back).
    const own = await startTestServer({ channels: [{ name: "dlq", maxReceiveCount: 2 }], settings: { sweepAfterMs: 600_000 } });
    try {
      const queueUrl = own.queueUrls.dlq as string;
      // The DLQ is found the way provision makes it, and is the target of the queue's redrive policy.
      const { QueueUrl: deadLetterUrl } = await own.sqs.send(new GetQueueUrlCommand({ QueueName: queueNames(own.settings.queuePrefix, "dlq").deadLetter }));
      if (!deadLetterUrl) throw new Error("no dead-letter queue");
      const dlqArn = (await own.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterUrl, AttributeNames: ["QueueArn"] }))).Attributes?.QueueArn;
      const redrive = (await own.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ["RedrivePolicy"] }))).Attributes?.RedrivePolicy;
      expect(JSON.parse(redrive ?? "{}")).toEqual({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 });

      const created = await own.api.create({ Channel: "dlq", Input: "poison for a while" });
      expect(own.faults.count("SendMessageBatchCommand") + own.faults.count("SendMessageCommand")).toBe(1);

      // Received twice (maxReceiveCount) and never leased: each time the receiver lets go (1 s).
      for (let receive = 1; receive <= 2; receive++) {
        const [message, ...more] = await eventually(async () => {
          const got = await receiveFrom(own, queueUrl, 1);
          return got.length > 0 ? got : undefined;
        }, 20_000);
        expect(more).toEqual([]);
        expect(message?.Body).toBe(created.ID);
      }
      // The next receive finds it over the limit: SQS moves it to the DLQ instead of handing it out.
      const taken: unknown[] = [];
      await eventually(async () => {
        taken.push(...(await receiveFrom(own, queueUrl, 1)));
        return (await countsOf(own, deadLetterUrl)).visible === 1;
      }, 20_000);
      expect(taken).toEqual([]);
      expect(await countsOf(own, queueUrl)).toEqual(EMPTY);
      expect(await countsOf(own, deadLetterUrl)).toEqual({ visible: 1, inFlight: 0, delayed: 0 });
      // The server never saw the message (no worker, so the channel was never polled): the task is as it was.
      expect(own.faults.count("ReceiveMessageCommand")).toBe(0);
      expect(await own.api.get(created.ID)).toMatchObject({ State: "WAITING", RetryCount: "0", Output: "" });
      expect((await own.api.length("dlq")).Data).toBe("0");

      // Moved back: the emulator has no StartMessageMoveTask, so its documented equivalent:
      // receive from the DLQ, send the same body to the source queue, delete from the DLQ.
      const [dead, ...others] = await receiveFrom(own, deadLetterUrl, 30);
      expect(others).toEqual([]);
      expect(dead?.Body).toBe(created.ID);
      await own.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: dead?.Body }));
      await own.sqs.send(new DeleteMessageCommand({ QueueUrl: deadLetterUrl, ReceiptHandle: dead?.ReceiptHandle }));
      expect(await countsOf(own, deadLetterUrl)).toEqual(EMPTY);

      const w = streams.worker("dlq", own).credit();
      const task = await w.next(20_000);
      expect(task).toMatchObject({ ID: created.ID, State: "PROCEEDING", RetryCount: "0", Input: "poison for a while" });
      expectLeaseToken(task.LeaseToken);
      const answer = await streams.reporter(own).report(task.ID, ReportState.SUCCESS, "handled at last", task.LeaseToken);
      expect(answer).toMatchObject({ State: "200", Data: task.ID, Message: "Task succeeded" });
      expect(await own.api.get(created.ID)).toMatchObject({ State: "SUCCESS", RetryCount: "0", Output: "handled at last" });
      await queueDrained(own, "dlq");
      expect(await countsOf(own, deadLetterUrl)).toEqual(EMPTY);
      // The server sent no copy of its own: the task went on through the message moved back.
      expect(own.faults.count("SendMessageBatchCommand") + own.faults.count("SendMessageCommand")).toBe(1);
      expect(await w.nothingWithin(500)).toBe(true);
    } finally {
      await streams.closeAll(own);
      await own.stop();
    }
  }, 120_000);
});
