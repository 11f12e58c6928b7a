// The server's task role (infra/constructs/grpc-service.ts) against what the server
// really calls. A real server runs every kind of work it does: creates (with a generated
// and a caller's HashCode, a payload item), deliveries, every report, cancels, chains,
// queries, the sweeper, health probes, retention. Every AWS SDK call it makes is
// recorded and turned into the IAM request AWS would authorize (action + ARN), and each
// one must be allowed by the policies the synthesized template attaches to the task
// role, with the template's resources mapped onto this test's table and queues. A call
// the role does not allow would fail with AccessDenied on AWS only, never against the
// emulators, which check no permissions at all.
import { randomBytes } from "node:crypto";
import type { CfnResource } from "aws-cdk-lib";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { GetQueueUrlCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelEntry } from "../../service/src/config/channels.js";
import { channelLevels, levelQueueKey, queueNames } from "../../service/src/queue/queue-definition.js";
import { createDocumentClient } from "../../service/src/store/dynamo-client.js";
import { A } from "../../service/src/store/item-codec.js";
import { INDEXES, TTL_ATTRIBUTE } from "../../service/src/store/table-definition.js";
import { TASK_ROLE_ACTIONS } from "../../infra/src/constructs/grpc-service.js";
import { ReportState, type ReceiveStream, type WireTask } from "../support/client.js";
import { connectionRefused, eventually, startTestServer, type TestServer } from "../support/harness.js";
import {
  arnMapper,
  AwsCallRecorder,
  FAKE_ENV,
  iamRequestsOf,
  IntrinsicResolver,
  PolicyEvaluator,
  queueArn,
  queueUrl,
  roleStatements,
  statementsOf,
  tableArn,
  UnresolvableIntrinsic,
  wildcardMatch,
  type IamRequest,
  type ResolvedResource,
} from "../support/iam-policy.js";
import { OpenStreams } from "../support/open-streams.js";
import { CDK_JSON_CONTEXT, removeSynthOutputs, synth } from "./support.js";

const RETENTION_DAYS = 7;
/** cdk.json's channels, and one with two priority levels (a queue each, one dead-letter queue). */
const CHANNELS: ChannelEntry[] = [...(CDK_JSON_CONTEXT.channels as ChannelEntry[]), { name: "ranked", priorities: 2 }];
const env = FAKE_ENV;
const arns = arnMapper(env);

describe("the IAM evaluator", () => {
  const resolver = new IntrinsicResolver(env, {
    Table: { ref: "tasks", attributes: { Arn: tableArn(env, "tasks") } },
    Queue: { ref: queueUrl(env, "q"), attributes: { Arn: queueArn(env, "q") } },
  });
  const evaluator = (statement: Record<string, unknown>) => new PolicyEvaluator(statementsOf({ Version: "2012-10-17", Statement: [statement] }, resolver, "test"));

  it("resolves Ref, Fn::GetAtt, Fn::Join and Fn::Sub, and throws on anything it does not know", () => {
    expect(resolver.string({ "Fn::Join": ["", [{ "Fn::GetAtt": ["Table", "Arn"] }, "/index/x"]] })).toBe(`${tableArn(env, "tasks")}/index/x`);
    expect(resolver.string({ "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:${Queue.Arn}" })).toBe(
      `arn:aws:sqs:${env.region}:${env.account}:${queueArn(env, "q")}`,
    );
    expect(resolver.string({ Ref: "Queue" })).toBe(queueUrl(env, "q"));
    expect(() => resolver.string({ "Fn::GetAtt": ["Table", "StreamArn"] })).toThrow(UnresolvableIntrinsic);
    expect(() => resolver.string({ "Fn::GetAtt": ["SomethingElse", "Arn"] })).toThrow(UnresolvableIntrinsic);
    expect(() => resolver.string({ Ref: "AWS::StackName" })).toThrow(UnresolvableIntrinsic);
    expect(() => resolver.string({ "Fn::ImportValue": "x" })).toThrow(UnresolvableIntrinsic);
    expect(() => evaluator({ Effect: "Allow", Action: "s3:GetObject", Resource: "*", Condition: { Bool: { "aws:SecureTransport": "true" } } })).toThrow(
      /cannot evaluate Condition/,
    );
    expect(() => evaluator({ Effect: "Allow", NotAction: "s3:*", Resource: "*" })).toThrow(/cannot evaluate NotAction/);
  });

  it("matches IAM wildcards: actions case-insensitively, resources exactly, an index only by its own ARN", () => {
    expect(wildcardMatch("dynamodb:Get*", "dynamodb:GetItem", true)).toBe(true);
    expect(wildcardMatch("DynamoDB:getitem", "dynamodb:GetItem", true)).toBe(true);
    expect(wildcardMatch("sqs:?eceiveMessage", "sqs:ReceiveMessage", true)).toBe(true);
    expect(wildcardMatch("sqs:?eceiveMessage", "sqs:ReceiveMessages", true)).toBe(false);
    expect(wildcardMatch("arn:aws:sqs:*:*:q*", queueArn(env, "q-dlq"), false)).toBe(true);
    expect(wildcardMatch("arn:aws:sqs:*:*:Q", queueArn(env, "q"), false)).toBe(false);
    const table = evaluator({ Effect: "Allow", Action: ["dynamodb:GetItem", "dynamodb:Query"], Resource: { "Fn::GetAtt": ["Table", "Arn"] } });
    expect(table.allows("dynamodb:GetItem", tableArn(env, "tasks"))).toBe(true);
    expect(table.allows("dynamodb:Query", `${tableArn(env, "tasks")}/index/byOwner`)).toBe(false);
    expect(table.allows("dynamodb:PutItem", tableArn(env, "tasks"))).toBe(false);
    expect(table.allows("dynamodb:GetItem", tableArn(env, "tasks2"))).toBe(false);
  });

  it("lets an explicit Deny win over any Allow", () => {
    const statements = statementsOf(
      {
        Statement: [
          { Effect: "Allow", Action: "sqs:*", Resource: "*" },
          { Effect: "Deny", Action: "sqs:Delete*", Resource: { "Fn::GetAtt": ["Queue", "Arn"] } },
        ],
      },
      resolver,
      "test",
    );
    const evaluator = new PolicyEvaluator(statements);
    expect(evaluator.decide("sqs:SendMessage", queueArn(env, "q"))).toBe("allow");
    expect(evaluator.decide("sqs:DeleteMessage", queueArn(env, "q"))).toBe("explicitDeny");
    expect(evaluator.decide("sqs:DeleteMessage", queueArn(env, "other"))).toBe("allow");
    expect(evaluator.decide("dynamodb:GetItem", tableArn(env, "tasks"))).toBe("implicitDeny");
  });

  it("maps SDK calls to the IAM requests AWS authorizes, and refuses a call it has no mapping for", () => {
    const table = tableArn(env, "tasks");
    const requests = (service: "dynamodb" | "sqs", command: string, input: Record<string, unknown>) =>
      iamRequestsOf({ service, command, input }, arns).map((r) => `${r.action} ${r.resource}`);
    expect(
      requests("dynamodb", "TransactWriteItems", {
        TransactItems: [{ Put: { TableName: "tasks" } }, { Update: { TableName: "tasks" } }, { ConditionCheck: { TableName: "other" } }, { Delete: { TableName: "tasks" } }],
      }),
    ).toEqual([`dynamodb:PutItem ${table}`, `dynamodb:UpdateItem ${table}`, `dynamodb:ConditionCheckItem ${tableArn(env, "other")}`, `dynamodb:DeleteItem ${table}`]);
    expect(requests("dynamodb", "Query", { TableName: "tasks", IndexName: "byOwner" })).toEqual([`dynamodb:Query ${table}/index/byOwner`]);
    expect(requests("dynamodb", "BatchGetItem", { RequestItems: { tasks: {}, other: {} } })).toEqual([
      `dynamodb:BatchGetItem ${table}`,
      `dynamodb:BatchGetItem ${tableArn(env, "other")}`,
    ]);
    expect(requests("sqs", "SendMessageBatch", { QueueUrl: "http://localhost:1234/000000000000/t1-default" })).toEqual([
      `sqs:SendMessage ${queueArn(env, "t1-default")}`,
    ]);
    expect(requests("sqs", "ChangeMessageVisibilityBatch", { QueueUrl: queueUrl(env, "q") })).toEqual([`sqs:ChangeMessageVisibility ${queueArn(env, "q")}`]);
    expect(() => requests("dynamodb", "DeleteTable", { TableName: "tasks" })).toThrow(/no IAM mapping/);
    expect(() => requests("sqs", "ListQueues", {})).toThrow(/no IAM mapping/);
  });
});

describe("every AWS call the server makes is allowed by the synthesized task role", () => {
  let server: TestServer;
  let evaluator: PolicyEvaluator;
  let channelQueueArns: Record<string, string>;
  let deadLetterQueueArns: Record<string, string>;
  let table: string;
  const recorder = new AwsCallRecorder();
  const streams = new OpenStreams(() => server);
  /** The test's own reads: never through the server's (recorded) clients. */
  const reader = createDocumentClient();

  beforeAll(async () => {
    // The stack as deployed (cdk.json's channels, and one with priorities) with a retention. Synthesized
    // first: it blocks the event loop for seconds, which would stall a running server's calls.
    const { stack, template } = synth({ taskRetentionDays: RETENTION_DAYS, channels: CHANNELS });
    removeSynthOutputs();
    server = await startTestServer({
      channels: CHANNELS,
      // A fast sweeper; a short drain (shutdown abandons the idle long polls after 1 s).
      settings: { taskRetentionDays: RETENTION_DAYS, sweepAfterMs: 300, sweepIntervalMs: 200, drainTimeoutMs: 1_000 },
    });
    // A fresh DynamoDB Local's first transactions can take seconds on a busy machine (cold JVM):
    // warm it up before the scenario, whose calls all have 10 s deadlines.
    await eventually(async () => {
      const warmUp = await server.api.createTask({ Channel: "reports", Input: "warm-up" }, 30_000);
      return warmUp.State === "200" && (await server.api.cancel((await server.api.queryByHashCode(warmUp.Data)).Data?.ID ?? "0", 30_000)).State === "200";
    }, 90_000);
    recorder.attach(server.dynamo, "dynamodb");
    recorder.attach(server.sqsClients.sqs, "sqs");
    recorder.attach(server.sqsClients.poll, "sqs");

    // The template's table and queues, mapped onto this server's.
    const logicalIdOf = (construct: { node: { defaultChild?: unknown } }) => stack.resolve((construct.node.defaultChild as CfnResource).logicalId) as string;
    expect(stack.queues.channels.map((c) => c.channel)).toEqual(server.settings.channels);
    table = tableArn(env, server.settings.tableName);
    const resources: Record<string, ResolvedResource> = {
      [logicalIdOf(stack.tasks.table)]: { ref: server.settings.tableName, attributes: { Arn: table } },
    };
    channelQueueArns = {};
    deadLetterQueueArns = {};
    const mapOnto = (construct: { node: { defaultChild?: unknown } }, name: string) => {
      resources[logicalIdOf(construct)] = { ref: queueUrl(env, name), attributes: { Arn: queueArn(env, name), QueueName: name, QueueUrl: queueUrl(env, name) } };
    };
    for (const { channel, levelQueues, deadLetterQueue } of stack.queues.channels) {
      // One queue per priority level (keyed like QUEUES_QUEUE_URLS), one dead-letter queue.
      expect(levelQueues).toHaveLength(channel.priorities);
      for (const level of channelLevels(channel)) {
        const key = levelQueueKey(channel.name, level);
        const name = queueNames(server.settings.queuePrefix, channel.name, level).queue;
        // The server's queue URL names the queue its ARN is made from.
        expect(arns.queueOfUrl(server.queueUrls[key] as string)).toBe(queueArn(env, name));
        mapOnto(levelQueues[level - 1] as { node: { defaultChild?: unknown } }, name);
        channelQueueArns[key] = queueArn(env, name);
      }
      const deadLetter = queueNames(server.settings.queuePrefix, channel.name).deadLetter;
      mapOnto(deadLetterQueue, deadLetter);
      deadLetterQueueArns[channel.name] = queueArn(env, deadLetter);
    }
    expect(Object.keys(channelQueueArns)).toContain("ranked-p2");
    const statements = roleStatements(template.toJSON(), logicalIdOf(stack.server.taskRole), new IntrinsicResolver(env, resources));
    evaluator = new PolicyEvaluator(statements);
  });

  afterAll(async () => {
    await streams.closeAll(server);
    await server?.stop();
    reader.destroy();
  });

  async function item(pk: string): Promise<Record<string, unknown> | undefined> {
    const { Item } = await reader.send(new GetCommand({ TableName: server.settings.tableName, Key: { pk }, ConsistentRead: true }));
    return Item;
  }

  /** Gives one credit and expects exactly this task. */
  async function deliver(worker: ReceiveStream, task: WireTask, what: string): Promise<WireTask> {
    const got = await worker
      .credit()
      .next(15_000)
      .catch((error: Error) => {
        throw new Error(`${what} (task ${task.ID}): ${error.message}`);
      });
    expect(got.ID, what).toBe(task.ID);
    return got;
  }

  /** How many messages the server deleted from a channel's queue (a batch may carry several). */
  function deletedFrom(channel: string): number {
    const url = server.queueUrls[channel];
    return recorder
      .of("DeleteMessageBatch")
      .filter((call) => call.input.QueueUrl === url)
      .reduce((count, call) => count + (call.input.Entries as unknown[]).length, 0);
  }

  /** Bodies (task IDs) of the messages the server sent to a channel's queue. */
  function sentTo(channel: string): string[] {
    const url = server.queueUrls[channel];
    return recorder
      .of("SendMessageBatch")
      .filter((call) => call.input.QueueUrl === url)
      .flatMap((call) => (call.input.Entries as { MessageBody: string }[]).map((entry) => entry.MessageBody));
  }

  it("the task role's evaluator is real: it allows the table, its indexes and the channel queues (every level's), and nothing else", () => {
    expect(evaluator.allows("dynamodb:GetItem", table)).toBe(true);
    for (const index of Object.values(INDEXES)) expect(evaluator.allows("dynamodb:Query", `${table}/index/${index.name}`)).toBe(true);
    for (const arn of Object.values(channelQueueArns)) expect(evaluator.allows("sqs:SendMessage", arn)).toBe(true);
    // Not the server's actions, not its resources.
    expect(evaluator.decide("dynamodb:DeleteTable", table)).toBe("implicitDeny");
    expect(evaluator.allows("dynamodb:BatchWriteItem", table)).toBe(false);
    expect(evaluator.allows("dynamodb:Scan", table)).toBe(false);
    expect(evaluator.allows("dynamodb:GetItem", tableArn(env, `${server.settings.tableName}-other`))).toBe(false);
    expect(evaluator.allows("dynamodb:Query", `${table}/index/unknown`)).toBe(false);
    expect(evaluator.allows("dynamodb:GetItem", tableArn({ ...env, account: "999999999999" }, server.settings.tableName))).toBe(false);
    for (const arn of Object.values(deadLetterQueueArns)) expect(evaluator.allows("sqs:SendMessage", arn)).toBe(false);
    expect(evaluator.allows("sqs:SendMessage", queueArn(env, "someone-elses-queue"))).toBe(false);
    expect(evaluator.allows("sqs:DeleteQueue", channelQueueArns.default as string)).toBe(false);
    expect(evaluator.allows("sqs:PurgeQueue", channelQueueArns.default as string)).toBe(false);
  });

  it("runs every kind of work the server does", async () => {
    const owner = (2n ** 60n + BigInt(`0x${randomBytes(4).toString("hex")}`)).toString();
    const big = "i".repeat(2_000);
    const worker = streams.worker("default");
    const reporter = streams.reporter();

    // Creates: a generated HashCode with an Input in its own item; a caller's HashCode (guard item), then its duplicate.
    const generated = await server.api.create({ Channel: "default", Input: big, Owner: owner });
    const keyed = await server.api.create({ Channel: "default", Input: "keyed", Owner: owner, HashCode: `iam-${randomBytes(6).toString("hex")}`, RetryMaxLimit: "1" });
    expect(await item(`I#${generated.ID}`)).toBeDefined();
    expect((await server.api.createTask({ Channel: "default", HashCode: keyed.HashCode })).State).toBe("409");
    // keyed's successor: cancelled when keyed fails for good.
    const afterKeyed = await server.api.create({ Channel: "default", Prior: keyed.ID, Owner: owner });

    // Queries.
    expect((await server.api.queryById(generated.ID)).Data?.Input).toBe(big);
    expect((await server.api.queryByHashCode(keyed.HashCode)).Data?.ID).toBe(keyed.ID);
    // Total is counted from the table's stream: it may lag the creates by a moment.
    const page = await eventually(async () => {
      const answer = await server.api.queryByOwner(owner);
      return answer.Total === "3" && answer.Data.length === 3 ? answer : undefined;
    }, 10_000);
    expect(page.Data.map((task) => task.ID)).toEqual([afterKeyed.ID, keyed.ID, generated.ID]);
    expect(page.Data[2]?.Input).toBe(big);
    expect(Number((await server.api.length("default")).Data)).toBeGreaterThanOrEqual(0);

    // Delivery of both; a heartbeat and a SUCCESS with a large Output (its own item) on one...
    const first = await worker.credit(2).next(15_000);
    const second = await worker.next(15_000);
    expect([first.ID, second.ID].sort()).toEqual([generated.ID, keyed.ID].sort());
    expect((await reporter.report(generated.ID, ReportState.PROCEEDING, "halfway")).State).toBe("200");
    expect((await reporter.report(generated.ID, ReportState.SUCCESS, "o".repeat(3_000))).State).toBe("200");
    expect(await item(`O#${generated.ID}`)).toBeDefined();
    // ...a FAILURE with an attempt left (retry), then a final FAILURE that cancels the successor.
    expect((await reporter.report(keyed.ID, ReportState.FAILURE, "first try failed")).State).toBe("200");
    expect((await deliver(worker, keyed, "the retry")).RetryCount).toBe("1");
    expect((await reporter.report(keyed.ID, ReportState.FAILURE, "failed again")).State).toBe("200");
    expect((await server.api.get(keyed.ID)).State).toBe("FAILURE");
    expect((await server.api.get(afterKeyed.ID)).State).toBe("CANCEL");

    // A chain whose follow-up fails right after the Prior's SUCCESS: the sweeper queues the successor.
    const prior = await server.api.create({ Channel: "default", Input: "prior" });
    const next = await server.api.create({ Channel: "default", Prior: prior.ID });
    let injected = 0;
    server.faults.hook = (command, input) => {
      const update = input as { Key?: { pk?: unknown }; ExpressionAttributeNames?: Record<string, string> };
      const queuesSuccessor =
        command === "UpdateItemCommand" && update.Key?.pk === `T#${next.ID}` && Object.values(update.ExpressionAttributeNames ?? {}).includes(A.awaitsPrior);
      if (queuesSuccessor && injected === 0) {
        injected += 1;
        throw connectionRefused();
      }
    };
    await deliver(worker, prior, "a chain's Prior");
    expect((await reporter.report(prior.ID, ReportState.SUCCESS, "piped")).State).toBe("200");
    expect(injected).toBe(1);
    // Nothing but the sweeper's run of the follow-up can queue it now.
    const piped = await deliver(worker, next, "the successor queued by the sweeper");
    server.faults.hook = undefined;
    expect(piped.Input).toBe("piped");
    expect((await reporter.report(next.ID, ReportState.SUCCESS, "done")).State).toBe("200");

    // A successor of a task that already succeeded (queued at once, with its Output), given up by its worker (CANCEL):
    // the rest of its chain is cancelled.
    const late = await server.api.create({ Channel: "default", Prior: next.ID });
    const afterLate = await server.api.create({ Channel: "default", Prior: late.ID });
    expect((await deliver(worker, late, "a successor queued at once")).Input).toBe("done");
    expect((await reporter.report(late.ID, ReportState.CANCEL, "giving up")).State).toBe("200");
    expect((await server.api.get(afterLate.ID)).State).toBe("CANCEL");

    // CancelTaskByID: a waiting chain head cascades; a leased task is cancelled at once (its message deleted).
    const head = await server.api.create({ Channel: "reports", Input: "head" });
    const middle = await server.api.create({ Channel: "reports", Prior: head.ID });
    const tail = await server.api.create({ Channel: "reports", Prior: middle.ID });
    const cancelled = await server.api.cancel(head.ID);
    expect(cancelled.State).toBe("200");
    expect(cancelled.Data.map((task) => task.ID)).toEqual([head.ID, middle.ID, tail.ID]);
    const leased = await server.api.create({ Channel: "default", Input: "leased" });
    await deliver(worker, leased, "a task to cancel while leased");
    expect((await server.api.cancel(leased.ID)).State).toBe("200");
    expect((await reporter.report(leased.ID, ReportState.SUCCESS, "too late")).State).toBe("409");

    // A task nobody receives for a while: the sweeper claims it and sends a copy of its message.
    const waiting = await server.api.create({ Channel: "emails", Input: "waits" });
    await eventually(() => sentTo("emails").filter((body) => body === waiting.ID).length >= 2, 15_000);
    const mailer = streams.worker("emails");
    await deliver(mailer, waiting, "a task the sweeper sent again");
    expect((await reporter.report(waiting.ID, ReportState.SUCCESS, "sent")).State).toBe("200");
    // The other copy reaches the server too, and is dropped (deleted), never delivered.
    mailer.credit();
    await eventually(() => deletedFrom("emails") >= 2, 15_000);

    // Priorities: a task of ranked's lowest level goes to that level's own queue, and is received and deleted from it.
    const low = await server.api.create({ Channel: "ranked", Input: "low", Priority: "2" });
    await eventually(() => sentTo("ranked-p2").includes(low.ID), 15_000);
    await deliver(streams.worker("ranked"), low, "a task of priority level 2");
    expect((await reporter.report(low.ID, ReportState.SUCCESS, "ranked")).State).toBe("200");
    await eventually(() => deletedFrom("ranked-p2") >= 1, 15_000);

    // Scheduling: a batch with a task parked beyond SQS's 15-minute delay; a schedule put, listed and deleted.
    const batch = await server.api.createTasks([
      { Channel: "reports", Input: "b1" },
      { Channel: "reports", Input: "b2", RunAt: new Date(Date.now() + 3_600_000).toISOString() },
    ]);
    expect(batch.Results.map((result) => result.State)).toEqual(["200", "200"]);
    expect((await server.api.putSchedule({ Name: "iam-yearly", Cron: "0 0 1 1 *", Template: { Channel: "reports" } })).State).toBe("200");
    expect((await server.api.querySchedules("")).Data.map((found) => found.Name)).toContain("iam-yearly");
    expect((await server.api.deleteSchedule("iam-yearly")).State).toBe("200");

    // The console's dead letters: a peek, a redrive (the emulator has no move task: the server moves them
    // itself), and a channel's recent failures. The dead letter is put there by the test's own client.
    const poisoned = await server.api.create({ Channel: "reports", Input: "dead letter" });
    const { QueueUrl: deadLetterUrl } = await server.sqs.send(new GetQueueUrlCommand({ QueueName: queueNames(server.settings.queuePrefix, "reports").deadLetter }));
    await server.sqs.send(new SendMessageCommand({ QueueUrl: deadLetterUrl, MessageBody: poisoned.ID }));
    await eventually(async () => (await server.app.deadLetters.summary("reports")).sample.some((letter) => String(letter.taskId) === poisoned.ID), 15_000);
    expect((await server.app.deadLetters.redrive("reports")).moved).toBeGreaterThanOrEqual(1);
    expect(recorder.of("StartMessageMoveTask")).toHaveLength(1);
    expect((await server.app.tasks.recentFailures("reports", 20)).every((task) => task.state === "FAILURE")).toBe(true);

    // Health probes (the server probes on its own, every healthIntervalMs).
    await eventually(() => recorder.of("DescribeTable").length > 0 && recorder.of("GetQueueAttributes").some((call) => String(call.input.AttributeNames) === "QueueArn"));

    // Retention: every kind of final write set the TTL attribute.
    const inAWeek = Math.floor(Date.now() / 1000) + RETENTION_DAYS * 86_400;
    for (const task of [generated, keyed, afterKeyed, next, late, afterLate, head, tail, leased, waiting, low]) {
      const expiresAt = Number((await item(`T#${task.ID}`))?.[TTL_ATTRIBUTE]);
      expect(Math.abs(expiresAt - inAWeek), `expiresAt of ${task.ID}`).toBeLessThan(120);
    }

    // Shutdown's calls count too (released messages, the last reports).
    await streams.closeAll(server);
    await server.stop();
    // Usually well under 20 s; the bound is for a machine busy with other test files.
  }, 120_000);

  it("made every kind of call, and the task role allows every one of them", () => {
    const unmapped: string[] = [];
    const requests = new Map<string, IamRequest>();
    for (const call of recorder.calls) {
      try {
        for (const request of iamRequestsOf(call, arns)) requests.set(`${request.action} ${request.resource}`, request);
      } catch (error) {
        unmapped.push((error as Error).message);
      }
    }
    expect([...new Set(unmapped)], "calls with no IAM mapping: map them in test/support/iam-policy.ts").toEqual([]);

    // (a) The scenario exercised every command the server has.
    const commands = new Set(recorder.calls.map((call) => call.command));
    for (const command of [
      "PutItem",
      "TransactWriteItems",
      "UpdateItem",
      "GetItem",
      "BatchGetItem",
      "Query",
      "DescribeTable",
      "SendMessageBatch",
      "ReceiveMessage",
      "DeleteMessageBatch",
      "ChangeMessageVisibility",
      "GetQueueAttributes",
    ]) {
      expect(commands, `the scenario never called ${command}`).toContain(command);
    }
    const seen = [...requests.keys()];
    for (const expected of [
      `dynamodb:PutItem ${table}`,
      `dynamodb:UpdateItem ${table}`,
      `dynamodb:DeleteItem ${table}`,
      `dynamodb:GetItem ${table}`,
      `dynamodb:BatchGetItem ${table}`,
      `dynamodb:DescribeTable ${table}`,
      ...Object.values(INDEXES).map((index) => `dynamodb:Query ${table}/index/${index.name}`),
      ...["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "GetQueueAttributes"].map(
        (action) => `sqs:${action} ${channelQueueArns.default}`,
      ),
      `sqs:SendMessage ${channelQueueArns.emails}`,
      `sqs:ReceiveMessage ${channelQueueArns.emails}`,
      // A lower priority level's own queue.
      ...["SendMessage", "ReceiveMessage", "DeleteMessage"].map((action) => `sqs:${action} ${channelQueueArns["ranked-p2"]}`),
    ]) {
      expect(seen, `the scenario never made the request ${expected}`).toContain(expected);
    }

    // (b) Each one is allowed by the synthesized task role.
    const denied = [...requests.values()]
      .map((request) => ({ ...request, decision: evaluator.decide(request.action, request.resource) }))
      .filter((request) => request.decision !== "allow")
      .map((request) => `${request.action} on ${request.resource} (from ${request.call}): ${request.decision}`);
    expect(denied, `the task role denies calls the server makes:\n${denied.join("\n")}`).toEqual([]);

    // Least privilege the other way round: the role grants nothing the server was not seen to use.
    const used = new Set([...requests.values()].map((request) => request.action));
    const unused = [...TASK_ROLE_ACTIONS.dynamodb, ...TASK_ROLE_ACTIONS.sqs, ...TASK_ROLE_ACTIONS.deadLetters].filter((action) => !used.has(action));
    expect(unused, "granted to the task role but never called").toEqual([]);
  });
});
