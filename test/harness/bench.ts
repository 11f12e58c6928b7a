// The benchmark (a measurement, never a test):
//
//   npm run bench [-- --quick] [-- --out bench-results] [-- --profile DIR (a CPU profile of the server)]
//
// Starts the emulators (`npm run backends`) and one server process, then measures
// in one run, so that every number is compared with its limit on the same machine:
//   sweep     for each number of credits in flight: tasks/s of the baseline (the same
//             lifecycle with raw AWS SDK calls, bench-baseline.ts) and of the service
//             (create → receive → report SUCCESS through gRPC), with the DynamoDB
//             capacity units, SQS requests and server CPU time each task cost;
//   latency   one task at a time to an idle worker: create p50/p99, dispatch p50/p99;
//   flow      the headline's lifecycle again on a channel with every flow-control option on
//             (SPEC §7.2: rateLimitPerSecond far above the run's rate, maxInFlight and
//             concurrencyPerKey above what the credits can take, 3 priorities, fairness),
//             tasks with Priority 0-3 and ConcurrencyKeys (some none): the same figures
//             per task beside the plain channel's, i.e. what the mechanisms cost;
//   partitions one more service run at the headline's credits with the server's (and the
//             stream reader's) partition-load counting on: the units each partition key
//             of the table and of its indexes took, and the task rate at which the
//             hottest key of each key family reaches DynamoDB's per-key limit
//             (bench-partitions.ts; README "Performance and cost");
//   idle      100 workers with a credit each on an empty channel: ReceiveMessage calls a minute;
//   creates   creates only, by CreateTask calls and by CreateTasks calls of 100: tasks/s,
//             SQS requests, server CPU and write units per task.
// Capacity units are DynamoDB's own ConsumedCapacity (indexes included), SQS requests
// are counted, both by SDK middleware in the server (GET /usage) and in the baseline.
// The owner's Total is counted from the table's stream by the local stream reader in
// the backends process (bench-backends.ts), whose DynamoDB units are counted the same
// way and added to the service's and the baseline's (whichever created the tasks it
// counted: the bench waits for the reader to catch up after each run).
// Prints a table, writes report.json and concurrency.svg to --out, and prints one
// JSON object as its last line.
import { randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import type { ChildProcess } from "node:child_process";
import { parseChannels } from "../../service/src/config/channels.js";
import { freePort } from "../../service/src/local/free-port.js";
import type { UsageSnapshot } from "../../service/src/metrics/backend-usage.js";
import type { PartitionLoadSnapshot } from "../../service/src/metrics/partition-load.js";
import { partitionWindow, startBenchBackends, type BenchBackends, type StreamUsage } from "./bench-backends.js";
import { Baseline } from "./bench-baseline.js";
import { partitionModel, partitionTable, type PartitionModel } from "./bench-partitions.js";
import {
  concurrencyChartSvg,
  percentile,
  perTask,
  PRICES,
  round,
  table,
  usageDelta,
  usdPerMillionTasks,
  type PerTask,
  type SweepPoint,
  type UsageDelta,
} from "./bench-report.js";
import { createRun, idleWorkers, latencyRun, serviceRun, type ServiceTarget } from "./bench-service.js";
import type { LifecycleRun } from "./bench-baseline.js";
import { requireBuild, serverEnv, sleep, startServer, stopServer, useBackends, waitServing } from "./processes.js";

export interface BenchOptions {
  /** Credits in flight per sweep point, and tasks per point. */
  sweep: { credits: number; tasks: number }[];
  /** The sweep point whose numbers are the headline (JSON). */
  headlineCredits: number;
  latencyTasks: number;
  idleWorkers: number;
  idleSeconds: number;
  warmupTasks: number;
  /** Tasks of the partition-load run (at the headline's credits). */
  partitionTasks: number;
  /** Tasks created (no workers) by CreateTask, and again by CreateTasks of 100. */
  batchTasks: number;
  out: string;
  /** Write a V8 CPU profile of the server here (for finding where its CPU time goes). */
  profileDir?: string | undefined;
  log: (line: string) => void;
}

export const FULL: Omit<BenchOptions, "out" | "log"> = {
  sweep: [
    { credits: 1, tasks: 200 },
    { credits: 8, tasks: 1_000 },
    { credits: 32, tasks: 2_000 },
    { credits: 128, tasks: 3_000 },
  ],
  headlineCredits: 32,
  latencyTasks: 200,
  idleWorkers: 100,
  idleSeconds: 60,
  warmupTasks: 300,
  partitionTasks: 3_000,
  batchTasks: 2_000,
};

export const QUICK: Omit<BenchOptions, "out" | "log"> = {
  sweep: [
    { credits: 1, tasks: 30 },
    { credits: 8, tasks: 150 },
    { credits: 32, tasks: 300 },
  ],
  headlineCredits: 32,
  latencyTasks: 30,
  idleWorkers: 100,
  idleSeconds: 15,
  warmupTasks: 60,
  partitionTasks: 300,
  batchTasks: 400,
};

/**
 * The flow-control channel: every option on, none of them the bottleneck. The rate limit
 * is far above what this machine reaches (the bench reports when a run came within 90 %
 * of it); maxInFlight is twice the headline's credits, and concurrencyPerKey is 16 with
 * the tasks spread over 8 keys (and none), so no lease is held back: the figures are the
 * mechanisms' own cost (rate budget writes, the read before a lease, the slot counts in
 * the lease's and the result's transactions, the polls of 3 levels).
 */
export const FLOW_CHANNEL = {
  name: "bench-flow",
  rateLimitPerSecond: 1_000,
  maxInFlight: 64,
  concurrencyPerKey: 16,
  priorities: 3,
  fairness: "owner",
} as const;
const FLOW_KEYS = ["", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"] as const;
/** Task i of the flow run: priority 0 (the middle level) to 3, a concurrencyKey or none. */
export function flowFields(index: number): { priority: number; concurrencyKey: string | undefined } {
  return { priority: index % 4, concurrencyKey: FLOW_KEYS[Math.floor(index / 4) % FLOW_KEYS.length] || undefined };
}

export const TARGETS = {
  ratio: { min: 0.8 },
  usdPerMillionTasks: { max: 4.5 },
  cpuMicrosPerTask: { max: 250 },
  idleReceivesPerMinute: { max: 4 },
  dispatchP50Ms: { max: 50 },
} as const;

interface PointResult extends SweepPoint {
  tasks: number;
  /** The baseline's SDK calls (DynamoDB + SQS) in the run: CPU per call is what one AWS SDK call costs here. */
  baselineCalls: number;
  /** Per task, the stream reader's units included (its CPU is not: see streamService). */
  service: PerTask;
  baseline: PerTask;
  /** The stream reader's share of the above (the owner counts of the run's tasks). */
  streamService: PerTask;
  streamBaseline: PerTask;
  /** The server's calls by SQS action and DynamoDB operation. */
  serviceCalls: Pick<UsageDelta, "sqsByAction" | "dynamodbByOperation">;
  /** The stream reader's calls for the service's tasks, by DynamoDB operation. */
  streamCalls: Pick<UsageDelta, "dynamodbByOperation">;
}

/** One service run's figures: per task (stream units included), the calls behind them, tasks/s. */
interface ServicePoint {
  credits: number;
  tasks: number;
  tasksPerSecond: number;
  service: PerTask;
  streamService: PerTask;
  serviceCalls: Pick<UsageDelta, "sqsByAction" | "dynamodbByOperation">;
  streamCalls: Pick<UsageDelta, "dynamodbByOperation">;
}

/** A task's units with the stream reader's for it added (CPU and SQS: the task's side only). */
function withStream(own: PerTask, stream: PerTask): PerTask {
  return { ...own, wru: own.wru + stream.wru, rru: own.rru + stream.rru };
}

export async function runBench(options: BenchOptions): Promise<Record<string, unknown>> {
  requireBuild("npm run bench");
  const { log } = options;
  const run = randomBytes(3).toString("hex");
  const channels = parseChannels(["bench", "bench-idle", "bench-batch", FLOW_CHANNEL], "bench");
  const backends = await startBenchBackends(`bench-${run}`, `bench${run}`, channels, log);
  let server: ChildProcess | undefined;
  useBackends(backends);
  const baseline = new Baseline(backends.table, backends.queueUrls.bench as string, "bench", 1n);
  try {
    const port = await freePort();
    const usagePort = await freePort();
    // The production defaults (log level info included): the CPU measured is what a deployment spends.
    const nodeArgs = options.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${resolve(options.profileDir)}`] : [];
    server = startServer(port, serverEnv(backends, channels, { QUEUES_HEALTH_HTTP_PORT: String(usagePort) }), nodeArgs);
    const address = `127.0.0.1:${port}`;
    await waitServing(address, "bench");
    const serverUsageUrl = `http://127.0.0.1:${usagePort}/usage`;
    const usage = async (): Promise<UsageSnapshot> => (await (await fetch(serverUsageUrl)).json()) as UsageSnapshot;
    /** Tasks created so far (baseline and service): the stream reader has counted them all once it caught up. */
    let created = 0;
    const streamCaughtUp = (): Promise<StreamUsage> => streamCatchUp(backends, created, log);
    const target: ServiceTarget = { address, channel: "bench", owner: 2n };
    log(`server on ${address} (process ${server.pid}); warming up with ${options.warmupTasks} tasks each`);
    await baseline.run(options.warmupTasks, 8);
    await serviceRun(target, options.warmupTasks, 8);
    created += 2 * options.warmupTasks;

    log(`latency: ${options.latencyTasks} tasks, one at a time, to an idle worker`);
    const latencies = await latencyRun(target, options.latencyTasks);
    created += options.latencyTasks;

    const points: PointResult[] = [];
    let streamBefore = await streamCaughtUp();
    for (const { credits, tasks } of options.sweep) {
      const baseBefore = baseline.usage.snapshot();
      const base = await baseline.run(tasks, credits);
      const baseDelta = usageDelta(baseBefore, baseline.usage.snapshot());
      created += tasks;
      const streamAfterBase = await streamCaughtUp();
      const streamBaseDelta = usageDelta(streamBefore, streamAfterBase);
      const serverBefore = await usage();
      const service = await serviceRun(target, tasks, credits);
      const serverDelta = usageDelta(serverBefore, await usage());
      created += tasks;
      streamBefore = await streamCaughtUp();
      const streamServiceDelta = usageDelta(streamAfterBase, streamBefore);
      const streamService = perTask(streamServiceDelta, tasks);
      const streamBaseline = perTask(streamBaseDelta, tasks);
      const point: PointResult = {
        credits,
        tasks,
        baselineCalls: Object.values(baseDelta.dynamodbByOperation).reduce((sum, entry) => sum + entry.calls, 0) + baseDelta.sqsRequests,
        baselineTasksPerSecond: base.tasks / base.seconds,
        serviceTasksPerSecond: service.tasks / service.seconds,
        baseline: withStream(perTask(baseDelta, tasks), streamBaseline),
        service: withStream(perTask(serverDelta, tasks), streamService),
        streamService,
        streamBaseline,
        serviceCalls: serverDelta,
        streamCalls: streamServiceDelta,
      };
      points.push(point);
      log(
        `credits ${credits}: service ${round(point.serviceTasksPerSecond, 1)}/s, baseline ${round(point.baselineTasksPerSecond, 1)}/s ` +
          `(ratio ${round(point.serviceTasksPerSecond / point.baselineTasksPerSecond)}); ${tasks} tasks each`,
      );
    }

    const headline = points.find((point) => point.credits === options.headlineCredits) ?? (points.at(-1) as PointResult);

    // The headline's lifecycle on the flow-control channel, measured the same way.
    log(`flow: ${headline.tasks} tasks at ${headline.credits} credits on ${FLOW_CHANNEL.name} (${JSON.stringify(FLOW_CHANNEL)})`);
    const flowBefore = await usage();
    const flowRun: LifecycleRun = await serviceRun({ ...target, channel: FLOW_CHANNEL.name, fields: flowFields }, headline.tasks, headline.credits);
    const flowDelta = usageDelta(flowBefore, await usage());
    created += headline.tasks;
    const streamAfterFlow = await streamCaughtUp();
    const flowStreamDelta = usageDelta(streamBefore, streamAfterFlow);
    streamBefore = streamAfterFlow;
    const flowStream = perTask(flowStreamDelta, headline.tasks);
    const flow: ServicePoint = {
      credits: headline.credits,
      tasks: headline.tasks,
      tasksPerSecond: flowRun.tasks / flowRun.seconds,
      service: withStream(perTask(flowDelta, headline.tasks), flowStream),
      streamService: flowStream,
      serviceCalls: flowDelta,
      streamCalls: flowStreamDelta,
    };
    log(`flow: ${round(flow.tasksPerSecond, 1)}/s (plain ${round(headline.serviceTasksPerSecond, 1)}/s)`);

    log(`partitions: ${options.partitionTasks} tasks at ${headline.credits} credits with partition-load counting on`);
    const windows = [serverUsageUrl, backends.usageUrl];
    await Promise.all(windows.map((url) => partitionWindow(url, "POST")));
    const cpuBefore = (await usage()).cpuMicros;
    const partitionRun = await serviceRun(target, options.partitionTasks, headline.credits);
    const countingCpu = ((await usage()).cpuMicros - cpuBefore) / options.partitionTasks;
    created += options.partitionTasks;
    await streamCaughtUp();
    const snapshots: PartitionLoadSnapshot[] = await Promise.all(windows.map((url) => partitionWindow(url, "GET")));
    await Promise.all(windows.map((url) => partitionWindow(url, "DELETE")));
    const partitions = partitionModel(snapshots, options.partitionTasks);
    log(
      `partitions: ${round(partitionRun.tasks / partitionRun.seconds, 1)} tasks/s; server CPU ${Math.round(countingCpu)} µs/task with counting on ` +
        `(${Math.round(headline.service.cpuMicros)} in the sweep)`,
    );

    log(`idle: ${options.idleWorkers} workers with a credit each on an empty channel for ${options.idleSeconds} s`);
    const closeIdle = await idleWorkers({ ...target, channel: "bench-idle" }, options.idleWorkers);
    const idleBefore = await usage();
    await sleep(options.idleSeconds * 1000);
    const idleDelta = usageDelta(idleBefore, await usage());
    await closeIdle();
    const idleReceivesPerMinute = ((idleDelta.sqsByAction.ReceiveMessage ?? 0) * 60) / options.idleSeconds;

    // Creates only: CreateTask calls (32 in flight) against CreateTasks calls of 100 (4 in flight: 400 tasks in flight too).
    log(`creates: ${options.batchTasks} tasks by CreateTask, then by CreateTasks of 100 (no workers)`);
    const createPoint = async (concurrency: number, batch: number) => {
      const before = await usage();
      const run = await createRun({ ...target, channel: "bench-batch" }, options.batchTasks, concurrency, batch);
      const delta = usageDelta(before, await usage());
      return { tasksPerSecond: run.tasks / run.seconds, perTask: perTask(delta, run.tasks), sendCalls: (delta.sqsByAction.SendMessageBatch ?? 0) / run.tasks };
    };
    const singleCreates = await createPoint(headline.credits, 1);
    const batchCreates = await createPoint(4, 100);

    const result = {
      ratio: round(headline.serviceTasksPerSecond / headline.baselineTasksPerSecond, 3),
      tasksPerSecond: round(headline.serviceTasksPerSecond, 1),
      baselineTasksPerSecond: round(headline.baselineTasksPerSecond, 1),
      headlineCredits: headline.credits,
      createP50Ms: round(percentile(latencies.createMs, 50), 1),
      createP99Ms: round(percentile(latencies.createMs, 99), 1),
      dispatchP50Ms: round(percentile(latencies.dispatchMs, 50), 1),
      dispatchP99Ms: round(percentile(latencies.dispatchMs, 99), 1),
      cpuMicrosPerTask: round(headline.service.cpuMicros, 0),
      baselineCpuMicrosPerTask: round(headline.baseline.cpuMicros, 0),
      cpuRatioToBaseline: round(headline.service.cpuMicros / headline.baseline.cpuMicros, 2),
      sdkCallCpuMicros: round((headline.baseline.cpuMicros * headline.tasks) / headline.baselineCalls, 0),
      wruPerTask: round(headline.service.wru, 2),
      rruPerTask: round(headline.service.rru, 2),
      /** Of wruPerTask: the table stream function's (owner counts). */
      streamWruPerTask: round(headline.streamService.wru, 3),
      sqsRequestsPerTask: round(headline.service.sqsRequests, 2),
      usdPerMillionTasks: round(usdPerMillionTasks(headline.service), 2),
      baselineUsdPerMillionTasks: round(usdPerMillionTasks(headline.baseline), 2),
      idleReceivesPerMinute: round(idleReceivesPerMinute, 1),
      createTaskPerSecond: round(singleCreates.tasksPerSecond, 1),
      createTasksPerSecond: round(batchCreates.tasksPerSecond, 1),
      createTaskSqsRequestsPerTask: round(singleCreates.sendCalls, 3),
      createTasksSqsRequestsPerTask: round(batchCreates.sendCalls, 3),
      createTaskCpuMicrosPerTask: round(singleCreates.perTask.cpuMicros, 0),
      createTasksCpuMicrosPerTask: round(batchCreates.perTask.cpuMicros, 0),
      createTaskWruPerTask: round(singleCreates.perTask.wru, 2),
      createTasksWruPerTask: round(batchCreates.perTask.wru, 2),
      flowTasksPerSecond: round(flow.tasksPerSecond, 1),
      flowWruPerTask: round(flow.service.wru, 2),
      flowRruPerTask: round(flow.service.rru, 2),
      flowStreamWruPerTask: round(flow.streamService.wru, 3),
      flowSqsRequestsPerTask: round(flow.service.sqsRequests, 2),
      flowCpuMicrosPerTask: round(flow.service.cpuMicros, 0),
      flowUsdPerMillionTasks: round(usdPerMillionTasks(flow.service), 2),
      /** true when the flow run came within 90 % of its rate limit: the limit, not the service, set its pace. */
      flowRateLimited: flow.tasksPerSecond >= 0.9 * FLOW_CHANNEL.rateLimitPerSecond,
      // JSON has no Infinity: a ceiling no family sets would print as null.
      ceilingTasksPerSecondOneOwner: Math.round(partitions.ceilingTasksPerSecondOneOwner),
      ceilingTasksPerSecondManyOwners: Math.round(partitions.ceilingTasksPerSecondManyOwners),
      prices: PRICES,
      sweep: points.map((point) => ({
        credits: point.credits,
        tasksPerSecond: round(point.serviceTasksPerSecond, 1),
        baselineTasksPerSecond: round(point.baselineTasksPerSecond, 1),
        service: roundAll(point.service),
        baseline: roundAll(point.baseline),
        sqsByAction: roundAll(point.serviceCalls.sqsByAction),
      })),
    };
    const targets = Object.fromEntries(
      Object.entries(TARGETS).map(([name, bound]) => {
        const value = result[name as keyof typeof TARGETS];
        const met = "min" in bound ? value >= bound.min : value <= bound.max;
        return [name, { value, ...bound, met }];
      }),
    );
    const withTargets = { ...result, targets };

    mkdirSync(options.out, { recursive: true });
    const chart = resolve(options.out, "concurrency.svg");
    writeFileSync(chart, concurrencyChartSvg(points, "Queues vs. raw AWS SDK on the emulators"));
    const flowReport = { channel: FLOW_CHANNEL, ...flow };
    writeFileSync(resolve(options.out, "report.json"), `${JSON.stringify({ ...withTargets, headline, flow: flowReport, partitions: roundModel(partitions) }, null, 2)}\n`);
    log(`\n${humanReport(points, headline, flow, result, targets, partitions)}\nchart: ${chart}`);
    return withTargets;
  } finally {
    baseline.close();
    if (server) await stopServer(server);
    await backends.stop();
  }
}

function humanReport(
  points: PointResult[],
  headline: PointResult,
  flow: ServicePoint,
  result: Record<string, unknown>,
  targets: Record<string, { value: unknown; met: boolean }>,
  partitions: PartitionModel,
): string {
  const sweep = table(
    [
      "credits",
      "service/s",
      "baseline/s",
      "ratio",
      "WRU/task",
      "of which stream",
      "RRU/task",
      "SQS req/task",
      "CPU µs/task",
      "$/M tasks",
      "baseline WRU",
      "baseline SQS",
      "baseline $/M",
      "baseline CPU µs",
    ],
    points.map((point) => [
      String(point.credits),
      point.serviceTasksPerSecond,
      point.baselineTasksPerSecond,
      point.serviceTasksPerSecond / point.baselineTasksPerSecond,
      point.service.wru,
      point.streamService.wru,
      point.service.rru,
      point.service.sqsRequests,
      Math.round(point.service.cpuMicros),
      usdPerMillionTasks(point.service),
      point.baseline.wru,
      point.baseline.sqsRequests,
      usdPerMillionTasks(point.baseline),
      Math.round(point.baseline.cpuMicros),
    ]),
  );
  const calls = Object.entries(headline.serviceCalls.dynamodbByOperation)
    .map(([operation, entry]) => `${operation} ${round(entry.calls / headline.tasks, 2)} calls ${round(entry.units / headline.tasks, 2)} units`)
    .join(", ");
  const streamCalls = Object.entries(headline.streamCalls.dynamodbByOperation)
    .map(([operation, entry]) => `${operation} ${round(entry.calls / headline.tasks, 3)} calls ${round(entry.units / headline.tasks, 3)} units`)
    .join(", ");
  const sqs = Object.entries(headline.serviceCalls.sqsByAction)
    .map(([action, count]) => `${action} ${round(count / headline.tasks, 2)}`)
    .join(", ");
  const channels = table(
    ["channel", "tasks/s", "WRU/task", "of which stream", "RRU/task", "SQS req/task", "CPU µs/task", "$/M tasks"],
    [
      ["plain (bench)", headline.serviceTasksPerSecond, headline.service.wru, headline.streamService.wru, headline.service.rru, headline.service.sqsRequests, Math.round(headline.service.cpuMicros), usdPerMillionTasks(headline.service)],
      [`flow (${FLOW_CHANNEL.name})`, flow.tasksPerSecond, flow.service.wru, flow.streamService.wru, flow.service.rru, flow.service.sqsRequests, Math.round(flow.service.cpuMicros), usdPerMillionTasks(flow.service)],
    ],
  );
  const flowCalls = Object.entries(flow.serviceCalls.dynamodbByOperation)
    .map(([operation, entry]) => `${operation} ${round(entry.calls / flow.tasks, 2)} calls ${round(entry.units / flow.tasks, 2)} units`)
    .join(", ");
  const flowSqs = Object.entries(flow.serviceCalls.sqsByAction)
    .map(([action, count]) => `${action} ${round(count / flow.tasks, 2)}`)
    .join(", ");
  const goals = table(
    ["target", "measured", "goal", "met"],
    Object.entries(targets).map(([name, entry]) => {
      const bound = TARGETS[name as keyof typeof TARGETS];
      return [name, String(entry.value), "min" in bound ? `≥ ${bound.min}` : `≤ ${bound.max}`, entry.met ? "yes" : "NO"];
    }),
  );
  return [
    "Throughput by credits in flight (per task: DynamoDB capacity units, SQS requests, server CPU; prices us-east-1 " + PRICES.date + ")",
    sweep,
    "",
    `Per task at ${headline.credits} credits — DynamoDB: ${calls}`,
    `Per task at ${headline.credits} credits — table stream function (owner counts): ${streamCalls || "nothing"}`,
    `Per task at ${headline.credits} credits — SQS: ${sqs}`,
    `Create latency p50 ${String(result.createP50Ms)} ms, p99 ${String(result.createP99Ms)} ms; dispatch to an idle worker p50 ${String(result.dispatchP50Ms)} ms, p99 ${String(result.dispatchP99Ms)} ms`,
    `Idle: ${String(result.idleReceivesPerMinute)} ReceiveMessage calls a minute`,
    `Creates only: CreateTask ${String(result.createTaskPerSecond)} tasks/s, ${String(result.createTaskSqsRequestsPerTask)} SendMessageBatch calls, ${String(result.createTaskCpuMicrosPerTask)} µs server CPU and ${String(result.createTaskWruPerTask)} WRU per task; ` +
      `CreateTasks of 100: ${String(result.createTasksPerSecond)} tasks/s, ${String(result.createTasksSqsRequestsPerTask)} SendMessageBatch calls, ${String(result.createTasksCpuMicrosPerTask)} µs and ${String(result.createTasksWruPerTask)} WRU per task`,
    "",
    `Plain channel against the flow-control channel (${JSON.stringify(FLOW_CHANNEL)}; Priority 0-3, 8 ConcurrencyKeys and none), ${flow.tasks} tasks each at ${flow.credits} credits:`,
    channels,
    `Per task on ${FLOW_CHANNEL.name} — DynamoDB: ${flowCalls}`,
    `Per task on ${FLOW_CHANNEL.name} — SQS: ${flowSqs}` +
      (result.flowRateLimited ? ` (the run came within 90 % of its rate limit, ${FLOW_CHANNEL.rateLimitPerSecond}/s: the limit set its pace)` : ""),
    `One AWS SDK call costs ${String(result.sdkCallCpuMicros)} µs of CPU here (the baseline's CPU time over its calls); the baseline spends ${String(result.baselineCpuMicrosPerTask)} µs per task (service ÷ baseline: ${String(result.cpuRatioToBaseline)})`,
    "",
    `Partition load (${partitions.tasks} tasks of one owner on one channel; per-key limit 1,000 WRU/s, 3,000 RRU/s; shares as measured and, in parentheses, less sampling noise):`,
    partitionTable(partitions),
    `Ceiling: ${Math.round(partitions.ceilingTasksPerSecondOneOwner)} tasks/s for one owner, ${Math.round(partitions.ceilingTasksPerSecondManyOwners)} tasks/s spread over many owners` +
      (partitions.unattributedWruPerTask || partitions.unattributedRruPerTask
        ? ` (not attributed to a key: ${round(partitions.unattributedWruPerTask, 3)} WRU, ${round(partitions.unattributedRruPerTask, 3)} RRU per task)`
        : ""),
    "",
    goals,
  ].join("\n");
}

/** Waits (up to 20 s) until the stream reader has counted `created` tasks; its usage then. */
async function streamCatchUp(backends: BenchBackends, created: number, log: (line: string) => void): Promise<StreamUsage> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const usage = await backends.streamUsage();
    if (usage.stream.counted + usage.stream.alreadyCounted >= created) return usage;
    if (Date.now() > deadline) {
      log(`the table stream reader has counted ${usage.stream.counted} of ${created} tasks after 20 s; going on`);
      return usage;
    }
    await sleep(50);
  }
}

/** The model with its numbers rounded (shares and per-task units of rare keys are small: 4 significant digits). */
function roundModel(model: PartitionModel): PartitionModel {
  return JSON.parse(JSON.stringify(model, (_, value: unknown) => (typeof value === "number" && Number.isFinite(value) ? Number(value.toPrecision(4)) : value))) as PartitionModel;
}

function roundAll<T extends object>(values: T): T {
  return Object.fromEntries(Object.entries(values).map(([key, value]) => [key, typeof value === "number" ? round(value, 2) : value])) as T;
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, out: { type: "string", default: "bench-results" }, profile: { type: "string" } },
  });
  const preset = values.quick ? QUICK : FULL;
  const started = Date.now();
  const result = await runBench({ ...preset, out: values.out, profileDir: values.profile, log: (line) => console.error(line) });
  console.error(`(${Math.round((Date.now() - started) / 1000)} s)`);
  console.log(JSON.stringify(result));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error("bench failed:", error);
      process.exit(1);
    },
  );
}
