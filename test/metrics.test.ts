// GET /metrics (SPEC §7.3): Prometheus text, read with a parser, whose counters match
// what a test did to tasks through a real gRPC client against a real server.
import parsePrometheusTextFormat, { type ParsedFamily } from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReceiveStream, ReportState, ReportStream } from "./support/client.js";
import { startTestServer, type TestServer } from "./support/harness.js";
import { parseTokens } from "../service/src/auth/tokens.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ channels: ["default", "measured"], settings: { httpPort: 0 } });
});
afterAll(async () => {
  await server?.stop();
});

async function scrape(): Promise<Map<string, ParsedFamily>> {
  const response = await fetch(`http://127.0.0.1:${server.app.httpPort}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toContain("text/plain");
  return new Map(parsePrometheusTextFormat(await response.text()).map((family) => [family.name, family]));
}

/** A sample's value for the channel (0 when the family has no sample for it). */
function valueOf(families: Map<string, ParsedFamily>, name: string, labels: Record<string, string>): number {
  const family = families.get(name);
  if (!family) throw new Error(`no metric family ${name}`);
  const sample = family.metrics.find((each) => Object.entries(labels).every(([key, value]) => each.labels?.[key] === value));
  return Number(sample?.value ?? sample?.count ?? 0);
}

describe("GET /metrics", () => {
  it("counts what happened to the channel's tasks: created, delivered, succeeded, failed, retried, cancelled; waits and run times; gauges", async () => {
    const measured = { channel: "measured" };
    for (let i = 0; i < 5; i++) await server.api.create({ Channel: "measured", Input: `m${i}`, RetryMaxLimit: "1" });
    const cancelled = await server.api.create({ Channel: "measured", Input: "never", RunAt: new Date(Date.now() + 20 * 60_000).toISOString() }); // parked: no message
    expect((await server.api.cancel(cancelled.ID)).State).toBe("200");
    const stream = new ReceiveStream(server.api, "measured").credit(5);
    const reports = new ReportStream(server.api);
    const firsts = await Promise.all(Array.from({ length: 5 }, () => stream.next(10_000)));
    // 3 succeed, 1 gives up (CANCEL), 1 fails once (retried) and then for good.
    for (const task of firsts.slice(0, 3)) expect((await reports.report(task.ID, ReportState.SUCCESS, "ok", task.LeaseToken)).State).toBe("200");
    expect((await reports.report(firsts[3]!.ID, ReportState.CANCEL, "no", firsts[3]!.LeaseToken)).State).toBe("200");
    expect((await reports.report(firsts[4]!.ID, ReportState.FAILURE, "once", firsts[4]!.LeaseToken)).State).toBe("200");
    stream.credit(1);
    const again = await stream.next(15_000);
    expect(again.ID).toBe(firsts[4]!.ID);
    expect((await reports.report(again.ID, ReportState.FAILURE, "twice", again.LeaseToken)).State).toBe("200");
    stream.credit(1); // one credit left waiting
    await new Promise((resolve) => setTimeout(resolve, 300));

    const metrics = await scrape();
    expect(metrics.get("queues_tasks_created_total")?.type).toBe("COUNTER");
    expect(valueOf(metrics, "queues_tasks_created_total", measured)).toBe(6);
    expect(valueOf(metrics, "queues_tasks_delivered_total", measured)).toBe(6);
    expect(valueOf(metrics, "queues_tasks_succeeded_total", measured)).toBe(3);
    expect(valueOf(metrics, "queues_tasks_failed_total", measured)).toBe(1);
    expect(valueOf(metrics, "queues_tasks_retried_total", measured)).toBe(1);
    expect(valueOf(metrics, "queues_tasks_cancelled_total", measured)).toBe(2);
    expect(valueOf(metrics, "queues_leases_expired_total", measured)).toBe(0);
    // Histograms: the parser keeps their type and buckets (it folds labelled histograms into one sample).
    for (const name of ["queues_queue_wait_seconds", "queues_run_seconds"]) {
      expect(metrics.get(name)?.type).toBe("HISTOGRAM");
      expect(Object.keys(metrics.get(name)?.metrics[0]?.buckets ?? {})).toContain("+Inf");
    }
    expect(valueOf(metrics, "queues_backlog", measured)).toBe(0);
    expect(valueOf(metrics, "queues_credits_waiting", measured)).toBe(1);
    expect(valueOf(metrics, "queues_worker_streams_open", {})).toBeGreaterThanOrEqual(2);
    // The other channel is there too, at 0; and the process's default metrics.
    expect(valueOf(metrics, "queues_tasks_created_total", { channel: "default" })).toBe(0);
    expect(metrics.has("process_cpu_seconds_total")).toBe(true);
    expect(metrics.has("nodejs_eventloop_lag_seconds")).toBe(true);
    stream.cancel();
    reports.end();
  });

  it("stays open without a token when authentication is on (no task data in it); /usage then needs an admin token", async () => {
    const tokens = parseTokens(JSON.stringify({ admin: "admin-secret-token-0001", producer: "producer-secret-token-01" }), "test");
    const authed = await startTestServer({ replicaOf: server, settings: { httpPort: 0, authTokens: tokens } });
    try {
      const base = `http://127.0.0.1:${authed.app.httpPort}`;
      expect((await fetch(`${base}/metrics`)).status).toBe(200);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      const refused = await fetch(`${base}/usage`);
      expect(refused.status).toBe(401);
      expect(refused.headers.get("www-authenticate")).toContain("Bearer");
      expect((await fetch(`${base}/usage`, { headers: { authorization: "Bearer producer-secret-token-01" } })).status).toBe(401);
      expect((await fetch(`${base}/usage/partitions`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
      const usage = await fetch(`${base}/usage`, { headers: { authorization: "Bearer admin-secret-token-0001" } });
      expect(usage.status).toBe(200);
      expect(await usage.json()).toHaveProperty("dynamodb");
    } finally {
      await authed.stop();
    }
  });
});
