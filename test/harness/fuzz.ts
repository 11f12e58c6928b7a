// Fuzz harness: `npm run fuzz -- --requests N [--seed S] [--concurrency C]`.
//
// Starts the compiled server (node dist/service/main.js) as a child process against
// DynamoDB Local and the SQS emulator (the ones in AWS_ENDPOINT_URL_DYNAMODB /
// AWS_ENDPOINT_URL_SQS, else started here), then sends N requests over raw HTTP/2:
// valid messages with extreme values, hand-encoded protobuf (bad UTF-8, unknown fields,
// wrong wire types, truncations), garbage payloads and broken gRPC framing, calls
// abandoned mid-message, receive streams with thousands of credits, bursts of bad
// reports, too many streams on one connection, non-HTTP/2 bytes. It judges every
// answer (fuzz-judge.ts), watches for crashes (restarting the server to go on), checks
// health every 10% and the server's RSS growth after a warm-up.
//
// Prints a summary, then as the LAST line one JSON object: requests, crashes,
// malformedAnswers, status5xx, rssGrowthMiB, grpcErrors, healthFailures, ... The exit
// code is 0 only if crashes, malformedAnswers, status5xx, healthFailures (and harness
// errors) are all 0.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { checkServing } from "../../service/src/health/check.js";
import { requireBuild } from "./build.js";
import { CATEGORIES, caseMethod, CaseGenerator, type Category, type FuzzCase } from "./fuzz-cases.js";
import { execute, type ExecContext } from "./fuzz-exec.js";
import { SessionPool } from "./fuzz-h2.js";
import { Tally, type Example } from "./fuzz-judge.js";
import { Random } from "./fuzz-random.js";
import { Backends, provisionFuzzResources, serverEnv, ServerProcess, type Crash, type ServerCaps } from "./fuzz-server.js";
import { Known } from "./fuzz-values.js";
import { hexPreview } from "./fuzz-wire.js";

export const DEFAULT_SEED = 20_261_123;

/** Small caps, so the fuzzer reaches them; each is a documented server variable. */
export const DEFAULT_FUZZ_CAPS: ServerCaps = {
  maxCreditsPerStream: 100, // QUEUES_MAX_CREDITS_PER_STREAM
  maxConcurrentStreams: 64, // QUEUES_MAX_CONCURRENT_STREAMS
  maxMessageBytes: 1024 * 1024, // QUEUES_MAX_MESSAGE_BYTES (the default)
};

export interface FuzzOptions {
  requests: number;
  seed?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  caps?: Partial<ServerCaps>;
  /** A call with no status after this long counts as a hang (a malformed answer). */
  callTimeoutMs?: number;
  /** Progress and summary lines (default: none). */
  log?: (line: string) => void;
  /** Stops issuing requests (Ctrl-C); the run still cleans up and reports. */
  signal?: AbortSignal;
  /** Only these categories (default: the whole mix). */
  only?: readonly Category[];
  /**
   * The share of the run after which the RSS baseline is taken (default 0.1). A short run
   * wants a later one: the server's heap is still growing into its working size early on.
   */
  warmupFraction?: number;
}

/** The last line of the CLI's output. */
export interface FuzzSummary {
  requests: number;
  crashes: number;
  malformedAnswers: number;
  status5xx: number;
  rssGrowthMiB: number | null;
  grpcErrors: number;
  grpcErrorCodes: Record<string, number>;
  /** Outcomes decided by grpc-js or Node's HTTP/2 layer, not the service (see fuzz-judge.ts). */
  transportLimits: number;
  transportLimitReasons: Record<string, number>;
  healthFailures: number;
  harnessErrors: number;
  lostToCrash: number;
  states: Record<string, number>;
  categories: Record<string, number>;
  creditCapHits: number;
  invalidChannelEnds: number;
  abandoned: number;
  tasksDelivered: number;
  reportsAnswered: number;
  /** Creates and schedule puts judged against the Priority / ConcurrencyKey rules (SPEC §7.2; fuzz-judge.ts). */
  flowControl: { judged: number; accepted: number; refused: number };
  /** RerunTaskByID answers judged against SPEC §7.3 (fuzz-judge.ts), and of those the 200s. */
  reruns: { judged: number; created: number };
  serverErrorLogs: number;
  rssMiB: { warm: number | null; end: number | null };
  seed: number;
  seconds: number;
  requestsPerSecond: number;
  aborted: boolean;
}

export interface FuzzResult {
  summary: FuzzSummary;
  /** For people: examples of every problem found. */
  details: {
    malformedReasons: Record<string, number>;
    malformedExamples: Example[];
    status5xxExamples: Example[];
    crashes: (Crash & { suspects: string[] })[];
    healthProblems: string[];
    harnessErrors: string[];
    serverErrorLogs: string[];
    statesByMethod: Record<string, number>;
  };
}

export function passed(summary: FuzzSummary): boolean {
  return summary.crashes === 0 && summary.malformedAnswers === 0 && summary.status5xx === 0 && summary.healthFailures === 0 && summary.harnessErrors === 0;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  requireBuild("npm run fuzz");
  const log = options.log ?? (() => {});
  const seed = options.seed ?? DEFAULT_SEED;
  const caps: ServerCaps = { ...DEFAULT_FUZZ_CAPS, ...options.caps };
  const started = performance.now();
  const backends = await Backends.acquire(log);
  let server: ServerProcess | undefined;
  const address = () => server?.address ?? "127.0.0.1:1";
  const clean = new SessionPool(address, 4);
  const rough = new SessionPool(address, 4, 250);
  const oversize = new SessionPool(address, 1);
  try {
    const resources = await provisionFuzzResources();
    server = new ServerProcess(serverEnv(backends, resources, caps), caps);
    await server.start();
    log(`fuzzing ${server.address} (table ${resources.table}): ${options.requests} requests, seed ${seed}, caps ${JSON.stringify(caps)}`);
    const run = new Run(server, { clean, rough, oversize, caps, seed, options, log });
    return await run.go(started);
  } finally {
    for (const pool of [clean, rough, oversize]) pool.closeAll();
    await server?.stop();
    await backends.release();
  }
}

/** One run's loop and bookkeeping. */
class Run {
  private readonly total = new Tally();
  private readonly ctx: ExecContext;
  private readonly generator: CaseGenerator;
  private readonly healthProblems: string[] = [];
  private readonly harnessErrors: string[] = [];
  private readonly lostCases: string[] = [];
  private healthFailures = 0;
  private lostToCrash = 0;
  private issued = 0;
  private rssWarm: { mib: number; generation: number } | undefined;

  constructor(
    private readonly server: ServerProcess,
    private readonly setup: {
      clean: SessionPool;
      rough: SessionPool;
      oversize: SessionPool;
      caps: ServerCaps;
      seed: number;
      options: FuzzOptions;
      log: (line: string) => void;
    },
  ) {
    const known = new Known();
    this.ctx = { server, clean: setup.clean, rough: setup.rough, oversize: setup.oversize, known, caps: setup.caps, callTimeoutMs: setup.options.callTimeoutMs ?? 30_000 };
    this.generator = new CaseGenerator(new Random(setup.seed), known, setup.caps, setup.options.only);
    server.requestsSoFar = () => this.issued;
  }

  async go(started: number): Promise<FuzzResult> {
    const { options } = this.setup;
    const total = options.requests;
    const concurrency = options.concurrency ?? 32;
    const checkpoints = new Set(Array.from({ length: 9 }, (_, k) => Math.floor((total * (k + 1)) / 10)).filter((at) => at > 0));
    const inFlight = new Set<Promise<void>>();
    await this.checkHealth("start");
    const loopStarted = performance.now();
    for (this.issued = 0; this.issued < total && !options.signal?.aborted; this.issued++) {
      if (checkpoints.has(this.issued)) await this.checkpoint(inFlight, loopStarted);
      await this.server.ready();
      const task = this.one(this.generator.next()).finally(() => inFlight.delete(task));
      inFlight.add(task);
      if (inFlight.size >= concurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
    await this.settle();
    await this.checkHealth("end");
    const rssEnd = this.server.rssMiB();
    return this.result(started, rssEnd, Boolean(options.signal?.aborted));
  }

  private async one(fuzzCase: FuzzCase): Promise<void> {
    try {
      // A report stream may answer for longer than one call's timeout (see runReport): a quarter second more per report.
      const reports = fuzzCase.kind === "report" ? fuzzCase.reports.length : 0;
      const tally = await withWatchdog(execute(this.ctx, fuzzCase), this.ctx.callTimeoutMs * 2 + 15_000 + reports * 250);
      if (tally) this.total.merge(tally);
      else {
        this.lostToCrash += 1;
        if (this.lostCases.length < 20) this.lostCases.push(describeCase(fuzzCase));
      }
    } catch (error) {
      // A bug in the harness, not in the server: reported, and it fails the run.
      if (this.harnessErrors.length < 10) this.harnessErrors.push(`${describeCase(fuzzCase)}: ${(error as Error).stack ?? String(error)}`);
      else this.harnessErrors.push("…");
    }
  }

  /** Every 10%: health must be SERVING; the first one after the warm-up samples the RSS baseline. */
  private async checkpoint(inFlight: Set<Promise<void>>, loopStarted: number): Promise<void> {
    await this.checkHealth(`${this.issued} requests`);
    if (!this.rssWarm && this.issued >= this.setup.options.requests * (this.setup.options.warmupFraction ?? 0.1)) {
      // Measured with nothing in flight, like the final sample.
      await Promise.all(inFlight);
      await this.settle();
      const mib = this.server.rssMiB();
      if (mib !== undefined) this.rssWarm = { mib, generation: this.server.generation };
    }
    const seconds = (performance.now() - loopStarted) / 1000;
    const t = this.total;
    this.setup.log(
      `${this.issued}/${this.setup.options.requests} requests, ${(this.issued / seconds).toFixed(0)}/s, ` +
        `malformed ${t.malformedAnswers}, 5xx ${t.status5xx}, gRPC errors ${t.grpcErrors}, crashes ${this.server.crashes.length}, ` +
        `rss ${this.server.rssMiB()?.toFixed(1) ?? "?"} MiB`,
    );
  }

  /** Lets in-flight server work (report writes, released messages) finish before measuring. */
  private settle(): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, 1_000));
  }

  private async checkHealth(when: string): Promise<void> {
    await this.server.ready();
    let status: string;
    try {
      status = await checkServing(this.server.address, "");
    } catch (error) {
      status = (error as Error).message;
    }
    if (status !== "SERVING") {
      this.healthFailures += 1;
      this.healthProblems.push(`${when}: ${status}`);
    }
  }

  private result(started: number, rssEnd: number | undefined, aborted: boolean): FuzzResult {
    const t = this.total;
    const seconds = (performance.now() - started) / 1000;
    const requests = t.requests + this.lostToCrash;
    const warm = this.rssWarm;
    // A baseline from before a crash says nothing about the process running now.
    const growth = warm && rssEnd !== undefined && warm.generation === this.server.generation ? Math.round((rssEnd - warm.mib) * 10) / 10 : null;
    const states: Record<string, number> = {};
    for (const [key, count] of Object.entries(t.states)) {
      const state = key.split(" ")[1] as string;
      states[state] = (states[state] ?? 0) + count;
    }
    const suspects = this.lostCases;
    return {
      summary: {
        requests,
        crashes: this.server.crashes.length,
        malformedAnswers: t.malformedAnswers,
        status5xx: t.status5xx,
        rssGrowthMiB: growth,
        grpcErrors: t.grpcErrors,
        grpcErrorCodes: t.grpcErrorCodes,
        transportLimits: t.transportLimits,
        transportLimitReasons: t.transportLimitReasons,
        healthFailures: this.healthFailures,
        harnessErrors: this.harnessErrors.length,
        lostToCrash: this.lostToCrash,
        states,
        categories: t.categories,
        creditCapHits: t.creditCapHits,
        invalidChannelEnds: t.invalidChannelEnds,
        abandoned: t.abandoned,
        tasksDelivered: t.tasksDelivered,
        reportsAnswered: t.reportsAnswered,
        flowControl: { judged: t.flowControlJudged, accepted: t.flowControlAccepted, refused: t.flowControlRefused },
        reruns: { judged: t.rerunsJudged, created: t.rerunsCreated },
        serverErrorLogs: this.server.errorLogCount,
        rssMiB: { warm: warm ? round1(warm.mib) : null, end: rssEnd === undefined ? null : round1(rssEnd) },
        seed: this.setup.seed,
        seconds: round1(seconds),
        requestsPerSecond: Math.round(requests / Math.max(seconds, 0.001)),
        aborted,
      },
      details: {
        malformedReasons: t.malformedReasons,
        malformedExamples: t.malformedExamples,
        status5xxExamples: t.status5xxExamples,
        crashes: this.server.crashes.map((crash) => ({ ...crash, suspects })),
        healthProblems: this.healthProblems,
        harnessErrors: this.harnessErrors,
        serverErrorLogs: this.server.errorLogs,
        statesByMethod: t.states,
      },
    };
  }
}

const round1 = (value: number) => Math.round(value * 10) / 10;

/** One method's answer States, from the "Method State" counts. */
function statesOf(statesByMethod: Record<string, number>, method: string): Record<string, number> {
  return Object.fromEntries(Object.entries(statesByMethod).filter(([key]) => key.startsWith(`${method} `)).map(([key, count]) => [key.slice(method.length + 1), count]));
}

/** Every call has its own timeout; this catches a harness bug that would otherwise stall the run (and its cleanup). */
async function withWatchdog<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the case did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** One line that is enough to send the same case again. */
export function describeCase(fuzzCase: FuzzCase): string {
  const head = `${fuzzCase.category} ${caseMethod(fuzzCase)} [${fuzzCase.note}]`;
  switch (fuzzCase.kind) {
    case "unary":
      return `${head} payload ${hexPreview(fuzzCase.payload, 96)}`;
    case "frame":
      return `${head} ${fuzzCase.path} bytes ${hexPreview(Buffer.concat(fuzzCase.writes), 96)} headers ${JSON.stringify(fuzzCase.headers)}`;
    case "abandon":
      return `${head} bytes ${hexPreview(fuzzCase.bytes, 96)}`;
    case "tcp":
      return `${head} bytes ${hexPreview(fuzzCase.bytes, 96)}`;
    default:
      return head;
  }
}

/** The human part of the output. */
export function formatReport(result: FuzzResult): string[] {
  const { summary: s, details: d } = result;
  const lines = [
    "",
    `Fuzzed ${s.requests} requests in ${s.seconds} s (${s.requestsPerSecond}/s), seed ${s.seed}${s.aborted ? " (stopped early)" : ""}`,
    `  by category: ${formatCounts(s.categories)}`,
    `  answer States: ${formatCounts(s.states)}`,
    `  gRPC errors (for undecodable input, broken framing, caps): ${s.grpcErrors}: ${formatCounts(s.grpcErrorCodes)}`,
    `  transport limits (grpc-js / Node HTTP/2, not the service): ${s.transportLimits}: ${formatCounts(s.transportLimitReasons)}`,
    `  streams: ${s.creditCapHits} credit-cap ends (RESOURCE_EXHAUSTED), ${s.invalidChannelEnds} unknown-channel ends, ${s.tasksDelivered} tasks delivered, ${s.reportsAnswered} reports answered, ${s.abandoned} calls abandoned`,
    `  flow control (Priority, ConcurrencyKey): ${s.flowControl.judged} answers judged, ${s.flowControl.accepted} valid ones created, ${s.flowControl.refused} invalid ones refused (400)`,
    `  RerunTaskByID: ${s.reruns.judged} answers judged, ${s.reruns.created} new tasks created; States ${formatCounts(statesOf(d.statesByMethod, "RerunTaskByID"))}`,
    `  server RSS: ${s.rssMiB.warm ?? "?"} MiB after warm-up, ${s.rssMiB.end ?? "?"} MiB at the end (growth ${s.rssGrowthMiB ?? "?"} MiB)`,
    `  crashes ${s.crashes}, malformed answers ${s.malformedAnswers}, 5xx ${s.status5xx}, health failures ${s.healthFailures}, harness errors ${s.harnessErrors}, server error logs ${s.serverErrorLogs}`,
  ];
  if (s.malformedAnswers > 0) lines.push(`  malformed answers by reason: ${formatCounts(d.malformedReasons)}`);
  for (const [title, examples] of [["malformed answer", d.malformedExamples], ["5xx answer", d.status5xxExamples]] as const) {
    for (const example of examples) {
      lines.push(`  ${title} (${example.category} ${example.method}): ${example.problem}`, `      request: ${example.request}`);
      if (example.answer) lines.push(`      answer:  ${example.answer}`);
    }
  }
  for (const crash of d.crashes) {
    lines.push(`  CRASH after ~${crash.atRequest} requests: exit code ${crash.exitCode}, signal ${crash.signal}; last output:`, indent(crash.outputTail.slice(-2_000)));
    lines.push("    cases in flight when it died:", ...crash.suspects.map((suspect) => `      ${suspect}`));
  }
  for (const problem of d.healthProblems) lines.push(`  health not SERVING at ${problem}`);
  for (const error of d.harnessErrors) lines.push(`  harness error: ${error}`);
  for (const line of d.serverErrorLogs) lines.push(`  server error log: ${line}`);
  lines.push(passed(s) ? "PASS" : "FAIL");
  return lines;
}

function formatCounts(counts: Record<string, number>): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([key, count]) => `${key} ${count}`).join(", ") : "none";
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    | ${line}`)
    .join("\n");
}

// --- CLI ------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: "string", default: "1000" },
      seed: { type: "string", default: String(DEFAULT_SEED) },
      concurrency: { type: "string", default: "32" },
      "timeout-ms": { type: "string", default: "30000" },
      only: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: npm run fuzz -- [--requests N] [--seed S] [--concurrency C] [--timeout-ms T] [--only ${CATEGORIES.join(",")}]`);
    return;
  }
  const number = (name: string, raw: string, min: number) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer ≥ ${min}, got "${raw}"`);
    return value;
  };
  const abort = new AbortController();
  // Ctrl-C: stop issuing, clean up (server, emulators), still report. A second one exits at once.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.log(`${signal}: finishing the calls in flight, then stopping the server and emulators… (again to quit at once)`);
      abort.abort();
      // The server child is killed by its exit hook (fuzz-server.ts).
      process.once(signal, () => process.exit(130));
    });
  }
  const result = await runFuzz({
    requests: number("requests", values.requests, 1),
    seed: number("seed", values.seed, 0),
    concurrency: number("concurrency", values.concurrency, 1),
    callTimeoutMs: number("timeout-ms", values["timeout-ms"], 100),
    only: categories(values.only),
    log: (line) => console.log(line),
    signal: abort.signal,
  });
  for (const line of formatReport(result)) console.log(line);
  console.log(JSON.stringify(result.summary));
  process.exitCode = abort.signal.aborted ? 130 : passed(result.summary) ? 0 : 1;
}

function categories(raw: string | undefined): Category[] | undefined {
  if (!raw) return undefined;
  const names = raw.split(",").map((name) => name.trim());
  for (const name of names) {
    if (!(CATEGORIES as readonly string[]).includes(name)) throw new Error(`--only: unknown category "${name}"; use ${CATEGORIES.join(", ")}`);
  }
  return names as Category[];
}

function isMainModule(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main().catch((error: unknown) => {
    console.error("fuzz: failed:", error);
    console.log(JSON.stringify({ requests: 0, crashes: 0, malformedAnswers: 0, status5xx: 0, rssGrowthMiB: null, error: String(error) }));
    process.exitCode = 2;
  });
}
