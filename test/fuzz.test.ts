// A short run of the fuzz harness (test/harness/fuzz.ts; `npm run fuzz` runs long
// ones): the compiled server as a child process on the shared emulators, 3,000
// hostile requests over raw HTTP/2. Bad input must never crash it, every answer must
// be well-formed (SPEC §2, §4), health stays SERVING and memory stays bounded. The
// mix must also have reached what it is meant to reach (the caps, the 400 paths, the
// gRPC errors for undecodable input, the Priority / ConcurrencyKey rules), or a quiet
// run would prove nothing.
//
// The run happens once, in beforeAll; each test judges one side of its result, so
// either test can run alone (-t) and neither depends on the other having run.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatReport, runFuzz, type FuzzResult } from "./harness/fuzz.js";

const REQUESTS = 3_000;
const abort = new AbortController();
let running: Promise<FuzzResult> | undefined;
let result: FuzzResult;
let report: string;

beforeAll(async () => {
  // runFuzz builds dist/ first when it is older than the sources (requireBuild).
  // Memory is compared between the middle and the end: a short run's first 10% is the heap still warming up.
  running = runFuzz({ requests: REQUESTS, callTimeoutMs: 10_000, signal: abort.signal, warmupFraction: 0.5 });
  result = await running;
  report = formatReport(result).join("\n");
}, 240_000);

// runFuzz stops its server in a finally. If the run timed out, stop the loop and wait
// for that cleanup, so no server process outlives the test file.
afterAll(async () => {
  abort.abort();
  await running?.catch(() => undefined);
}, 90_000);

describe("fuzzing the real server (npm run fuzz)", () => {
  it(`survives ${REQUESTS} hostile requests: no crash, no malformed answer, no 5xx, health SERVING, bounded memory`, () => {
    const { summary } = result;
    expect(summary.aborted, report).toBe(false);
    expect(summary.requests, report).toBe(REQUESTS);
    expect(summary.crashes, report).toBe(0);
    expect(summary.malformedAnswers, report).toBe(0);
    expect(summary.status5xx, report).toBe(0);
    expect(summary.healthFailures, report).toBe(0);
    expect(summary.harnessErrors, report).toBe(0);
    expect(summary.rssGrowthMiB, report).not.toBeNull();
    expect(summary.rssGrowthMiB as number, report).toBeLessThan(64);
  });

  it("exercised every category: caps, 400/404 paths, gRPC errors for undecodable input, streams", () => {
    const { summary } = result;
    for (const category of ["unary.extreme", "unary.handcrafted", "unary.garbage", "frame", "abandon", "receive", "report"]) {
      expect(summary.categories[category] ?? 0, category).toBeGreaterThan(0);
    }
    expect(summary.states["200"] ?? 0, report).toBeGreaterThan(0);
    expect(summary.states["400"] ?? 0, report).toBeGreaterThan(100);
    expect(summary.states["404"] ?? 0, report).toBeGreaterThan(0);
    expect(summary.grpcErrors, report).toBeGreaterThan(100);
    expect(summary.grpcErrorCodes.INTERNAL ?? 0, report).toBeGreaterThan(0); // undecodable messages
    expect(summary.creditCapHits, report).toBeGreaterThan(0); // RESOURCE_EXHAUSTED past QUEUES_MAX_CREDITS_PER_STREAM
    expect(summary.invalidChannelEnds, report).toBeGreaterThan(0);
    expect(summary.reportsAnswered, report).toBeGreaterThan(0);
    expect(summary.abandoned, report).toBeGreaterThan(0);
    // Task.Priority and Task.ConcurrencyKey (SPEC §7.2): valid ones created, invalid ones refused with 400.
    expect(summary.flowControl.accepted, report).toBeGreaterThan(0);
    expect(summary.flowControl.refused, report).toBeGreaterThan(0);
  });
});
