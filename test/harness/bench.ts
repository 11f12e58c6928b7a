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
//   idle      100 workers with a credit each on an empty channel: ReceiveMessage calls a minute.
// Capacity units are DynamoDB's own ConsumedCapacity (indexes included), SQS requests
// are counted, both by SDK middleware in the server (GET /usage) and in the baseline.
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
import { Baseline } from "./bench-baseline.js";
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
import { idleWorkers, latencyRun, serviceRun, type ServiceTarget } from "./bench-service.js";
import { requireBuild, serverEnv, sleep, standaloneBackends, startServer, stopServer, useBackends, waitServing } from "./processes.js";

export interface BenchOptions {
  /** Credits in flight per sweep point, and tasks per point. */
  sweep: { credits: number; tasks: number }[];
  /** The sweep point whose numbers are the headline (JSON). */
  headlineCredits: number;
  latencyTasks: number;
  idleWorkers: number;
  idleSeconds: number;
  warmupTasks: number;
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
};

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
  service: PerTask;
  baseline: PerTask;
  /** The server's calls by SQS action and DynamoDB operation. */
  serviceCalls: Pick<UsageDelta, "sqsByAction" | "dynamodbByOperation">;
}

export async function runBench(options: BenchOptions): Promise<Record<string, unknown>> {
  requireBuild("npm run bench");
  const { log } = options;
  const run = randomBytes(3).toString("hex");
  const channels = parseChannels(["bench", "bench-idle"], "bench");
  const backends = await standaloneBackends(`bench-${run}`, `bench${run}`, channels, log);
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
    const usage = async (): Promise<UsageSnapshot> => (await (await fetch(`http://127.0.0.1:${usagePort}/usage`)).json()) as UsageSnapshot;
    const target: ServiceTarget = { address, channel: "bench", owner: 2n };
    log(`server on ${address} (process ${server.pid}); warming up with ${options.warmupTasks} tasks each`);
    await baseline.run(options.warmupTasks, 8);
    await serviceRun(target, options.warmupTasks, 8);

    log(`latency: ${options.latencyTasks} tasks, one at a time, to an idle worker`);
    const latencies = await latencyRun(target, options.latencyTasks);

    const points: PointResult[] = [];
    for (const { credits, tasks } of options.sweep) {
      const baseBefore = baseline.usage.snapshot();
      const base = await baseline.run(tasks, credits);
      const baseDelta = usageDelta(baseBefore, baseline.usage.snapshot());
      const serverBefore = await usage();
      const service = await serviceRun(target, tasks, credits);
      const serverDelta = usageDelta(serverBefore, await usage());
      const point: PointResult = {
        credits,
        tasks,
        baselineCalls: Object.values(baseDelta.dynamodbByOperation).reduce((sum, entry) => sum + entry.calls, 0) + baseDelta.sqsRequests,
        baselineTasksPerSecond: base.tasks / base.seconds,
        serviceTasksPerSecond: service.tasks / service.seconds,
        baseline: perTask(baseDelta, tasks),
        service: perTask(serverDelta, tasks),
        serviceCalls: serverDelta,
      };
      points.push(point);
      log(
        `credits ${credits}: service ${round(point.serviceTasksPerSecond, 1)}/s, baseline ${round(point.baselineTasksPerSecond, 1)}/s ` +
          `(ratio ${round(point.serviceTasksPerSecond / point.baselineTasksPerSecond)}); ${tasks} tasks each`,
      );
    }

    log(`idle: ${options.idleWorkers} workers with a credit each on an empty channel for ${options.idleSeconds} s`);
    const closeIdle = await idleWorkers({ ...target, channel: "bench-idle" }, options.idleWorkers);
    const idleBefore = await usage();
    await sleep(options.idleSeconds * 1000);
    const idleDelta = usageDelta(idleBefore, await usage());
    await closeIdle();
    const idleReceivesPerMinute = ((idleDelta.sqsByAction.ReceiveMessage ?? 0) * 60) / options.idleSeconds;

    const headline = points.find((point) => point.credits === options.headlineCredits) ?? (points.at(-1) as PointResult);
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
      sdkCallCpuMicros: round((headline.baseline.cpuMicros * headline.tasks) / headline.baselineCalls, 0),
      wruPerTask: round(headline.service.wru, 2),
      rruPerTask: round(headline.service.rru, 2),
      sqsRequestsPerTask: round(headline.service.sqsRequests, 2),
      usdPerMillionTasks: round(usdPerMillionTasks(headline.service), 2),
      baselineUsdPerMillionTasks: round(usdPerMillionTasks(headline.baseline), 2),
      idleReceivesPerMinute: round(idleReceivesPerMinute, 1),
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
    writeFileSync(resolve(options.out, "report.json"), `${JSON.stringify({ ...withTargets, headline }, null, 2)}\n`);
    log(`\n${humanReport(points, headline, result, targets)}\nchart: ${chart}`);
    return withTargets;
  } finally {
    baseline.close();
    if (server) await stopServer(server);
    await backends.stop();
  }
}

function humanReport(points: PointResult[], headline: PointResult, result: Record<string, unknown>, targets: Record<string, { value: unknown; met: boolean }>): string {
  const sweep = table(
    ["credits", "service/s", "baseline/s", "ratio", "WRU/task", "RRU/task", "SQS req/task", "CPU µs/task", "$/M tasks", "baseline WRU", "baseline SQS", "baseline $/M", "baseline CPU µs"],
    points.map((point) => [
      String(point.credits),
      point.serviceTasksPerSecond,
      point.baselineTasksPerSecond,
      point.serviceTasksPerSecond / point.baselineTasksPerSecond,
      point.service.wru,
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
  const sqs = Object.entries(headline.serviceCalls.sqsByAction)
    .map(([action, count]) => `${action} ${round(count / headline.tasks, 2)}`)
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
    `Per task at ${headline.credits} credits — SQS: ${sqs}`,
    `Create latency p50 ${String(result.createP50Ms)} ms, p99 ${String(result.createP99Ms)} ms; dispatch to an idle worker p50 ${String(result.dispatchP50Ms)} ms, p99 ${String(result.dispatchP99Ms)} ms`,
    `Idle: ${String(result.idleReceivesPerMinute)} ReceiveMessage calls a minute`,
    `One AWS SDK call costs ${String(result.sdkCallCpuMicros)} µs of CPU here (the baseline's CPU time over its calls); the baseline spends ${String(result.baselineCpuMicrosPerTask)} µs per task`,
    "",
    goals,
  ].join("\n");
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
