// The CloudWatch Embedded Metric Format lines (SPEC §7.3, issue item 4): built from a
// real TaskMetrics registry, one per channel and interval, checked against the EMF
// specification; counters as the interval's increase, gauges as they are, timings as
// the interval's average; QUEUES_EMF_NAMESPACE / QUEUES_EMF_INTERVAL_MS.
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { SettingsError, settingsFromEnv } from "../../service/src/config/settings.js";
import { channelTotals, EmfPublisher, emfDocument } from "../../service/src/metrics/emf-publisher.js";
import { EMF_METRICS, metricsNamespaceProblem } from "../../service/src/metrics/emf-names.js";
import { TaskMetrics, type GaugeSources } from "../../service/src/metrics/task-metrics.js";
import type { TaskRecord } from "../../service/src/tasks/task.js";
import { emfValues, expectValidEmf } from "../support/emf.js";

const CHANNELS = ["default", "emails"];
/** The publisher's clock, fixed. */
const NOW = Date.now();

function metricsWith(sources: Partial<GaugeSources> = {}): TaskMetrics {
  return new TaskMetrics({
    channels: () => CHANNELS,
    queueCounts: async (channel) => (channel === "emails" ? { waiting: 12, inFlight: 3 } : { waiting: 0, inFlight: 0 }),
    openWorkerStreams: () => 2,
    creditsWaiting: (channel) => (channel === "emails" ? 4 : 0),
    ...sources,
  });
}

const task = (channel: string, state = "QUEUED") => ({ channel, state }) as unknown as TaskRecord;

/** A publisher writing into an array, at a fixed clock. */
function publisherOf(metrics: TaskMetrics, lines: string[], intervalMs = 60_000): EmfPublisher {
  return new EmfPublisher(metrics.registry, {
    namespace: "Queues",
    intervalMs,
    channels: () => CHANNELS,
    log: pino({ level: "silent" }),
    write: (line) => lines.push(line),
    now: () => NOW,
  });
}

describe("emfDocument (a registry snapshot → one EMF document per channel)", () => {
  it("holds the channel dimension and every metric as a root member, in the namespace, at the timestamp", async () => {
    const metrics = metricsWith();
    for (let i = 0; i < 3; i++) metrics.created(task("emails"));
    metrics.delivered(task("emails"), 200);
    metrics.delivered(task("emails"), 400);
    metrics.finished(task("emails", "SUCCESS"), 1_000);
    metrics.finished(task("emails", "FAILURE"), 3_000);
    metrics.retried(task("emails"));
    metrics.leaseExpired(task("emails"));
    metrics.created(task("default"));
    const totals = channelTotals(await metrics.registry.getMetricsAsJSON(), CHANNELS);
    const emails = emfDocument({ namespace: "Queues", channel: "emails", timestamp: Date.now(), current: totals.get("emails")!, previous: undefined });
    const line = expectValidEmf(JSON.stringify(emails));
    expect(line._aws.CloudWatchMetrics).toEqual([
      {
        Namespace: "Queues",
        Dimensions: [["Channel"]],
        Metrics: [
          ...["Created", "Delivered", "Succeeded", "Failed", "Cancelled", "Retried", "LeasesExpired", "Backlog", "InFlight", "CreditsWaiting"].map((Name) => ({ Name, Unit: "Count" })),
          { Name: "QueueWait", Unit: "Milliseconds" },
          { Name: "RunTime", Unit: "Milliseconds" },
        ],
      },
    ]);
    expect(line.Channel).toBe("emails");
    expect(emfValues(line)).toEqual({
      Created: 3,
      Delivered: 2,
      Succeeded: 1,
      Failed: 1,
      Cancelled: 0,
      Retried: 1,
      LeasesExpired: 1,
      Backlog: 12,
      InFlight: 3,
      CreditsWaiting: 4,
      QueueWait: 300,
      // Over both final states.
      RunTime: 2_000,
    });
    // The other channel: its own numbers; no timing metric without an observation (an average of nothing is not 0).
    const other = expectValidEmf(
      JSON.stringify(emfDocument({ namespace: "Queues", channel: "default", timestamp: Date.now(), current: totals.get("default")!, previous: undefined })),
    );
    expect(emfValues(other)).toEqual({ Created: 1, Delivered: 0, Succeeded: 0, Failed: 0, Cancelled: 0, Retried: 0, LeasesExpired: 0, Backlog: 0, InFlight: 0, CreditsWaiting: 0 });
  });

  it("names its metrics from EMF_METRICS (what the CDK dashboard reads)", () => {
    const document = emfDocument({
      namespace: "N",
      channel: "c",
      timestamp: 0,
      current: {
        counters: { created: 0, delivered: 0, succeeded: 0, failed: 0, cancelled: 0, retried: 0, leasesExpired: 0 },
        histograms: { queueWait: { sum: 1, count: 1 }, runTime: { sum: 1, count: 1 } },
        gauges: { backlog: 0, inFlight: 0, creditsWaiting: 0 },
      },
      previous: undefined,
    });
    expect(document._aws.CloudWatchMetrics[0]?.Metrics.map((metric) => metric.Name).sort()).toEqual(Object.values(EMF_METRICS).sort());
  });
});

describe("EmfPublisher", () => {
  it("writes one line per channel per interval: counts are the interval's increase, gauges the current value", async () => {
    const metrics = metricsWith();
    const lines: string[] = [];
    const publisher = publisherOf(metrics, lines);
    metrics.created(task("emails"));
    metrics.created(task("emails"));
    metrics.delivered(task("emails"), 1_000);
    expect(await publisher.publishOnce()).toBe(2);
    expect(lines).toHaveLength(2);
    const first = lines.map(expectValidEmf);
    expect(first.map((line) => line.Channel)).toEqual(CHANNELS);
    expect(first[0]!._aws.Timestamp).toBe(NOW);
    expect(emfValues(first[1]!)).toMatchObject({ Created: 2, Delivered: 1, QueueWait: 1_000, Backlog: 12 });

    metrics.created(task("emails"));
    metrics.delivered(task("emails"), 3_000);
    metrics.delivered(task("emails"), 5_000);
    await publisher.publishOnce();
    const second = emfValues(expectValidEmf(lines[3]!));
    expect(second).toMatchObject({ Created: 1, Delivered: 2, QueueWait: 4_000, Backlog: 12, InFlight: 3, CreditsWaiting: 4 });

    // Nothing happened: zeros (data, not a gap), and no timing.
    await publisher.publishOnce();
    const third = emfValues(expectValidEmf(lines[5]!));
    expect(third).toMatchObject({ Created: 0, Delivered: 0 });
    expect(third).not.toHaveProperty("QueueWait");
  });

  it("leaves out the backlog and in-flight gauges when SQS cannot be read, and keeps the rest", async () => {
    const metrics = metricsWith({ queueCounts: () => Promise.reject(new Error("SQS is down")) });
    const lines: string[] = [];
    const warnings: unknown[] = [];
    const publisher = new EmfPublisher(metrics.registry, {
      namespace: "Queues",
      intervalMs: 60_000,
      channels: () => CHANNELS,
      log: pino({ level: "warn" }, { write: (line: string) => void warnings.push(JSON.parse(line)) }),
      write: (line) => lines.push(line),
    });
    metrics.created(task("emails"));
    await publisher.publishOnce();
    const values = emfValues(expectValidEmf(lines[1]!));
    expect(values).toMatchObject({ Created: 1, CreditsWaiting: 4 });
    expect(values).not.toHaveProperty("Backlog");
    expect(values).not.toHaveProperty("InFlight");
    expect(JSON.stringify(warnings)).toContain("queues_backlog");
  });

  it("runs on its timer, and stop() ends it after writing the last interval's counts (without an SQS call)", async () => {
    let sqsCalls = 0;
    const metrics = metricsWith({
      queueCounts: async () => {
        sqsCalls++;
        return { waiting: 7, inFlight: 1 };
      },
    });
    const lines: string[] = [];
    const publisher = publisherOf(metrics, lines, 50);
    publisher.start();
    await new Promise((resolve) => setTimeout(resolve, 180));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    metrics.created(task("default"));
    const callsBefore = sqsCalls;
    await publisher.stop();
    const last = emfValues(expectValidEmf(lines.at(-2)!));
    expect(expectValidEmf(lines.at(-2)!).Channel).toBe("default");
    expect(last.Created).toBe(1);
    expect(last).not.toHaveProperty("Backlog");
    expect(sqsCalls).toBe(callsBefore);
    const written = lines.length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(lines).toHaveLength(written);
    // stop() is idempotent (drain may be asked twice).
    await publisher.stop();
    expect(lines).toHaveLength(written);
  });
});

describe("QUEUES_EMF_NAMESPACE and QUEUES_EMF_INTERVAL_MS", () => {
  const base = { QUEUES_CHANNELS: '["default"]' };

  it("are off by default, every minute when on", () => {
    expect(settingsFromEnv(base)).toMatchObject({ emfNamespace: undefined, emfIntervalMs: 60_000 });
    expect(settingsFromEnv({ ...base, QUEUES_EMF_NAMESPACE: "" }).emfNamespace).toBeUndefined();
    expect(settingsFromEnv({ ...base, QUEUES_EMF_NAMESPACE: "Queues/prod", QUEUES_EMF_INTERVAL_MS: "30000" })).toMatchObject({
      emfNamespace: "Queues/prod",
      emfIntervalMs: 30_000,
    });
  });

  it("refuse a namespace CloudWatch would not take, and an interval outside 10 s to 5 min", () => {
    for (const namespace of ["AWS/SQS", "bad|name", ":x", " Queues", "x".repeat(256)]) {
      expect(() => settingsFromEnv({ ...base, QUEUES_EMF_NAMESPACE: namespace }), namespace).toThrow(SettingsError);
      expect(metricsNamespaceProblem(namespace), namespace).toBeDefined();
    }
    for (const namespace of ["Queues", "My App/queues", "a.b-c_d#e:f"]) expect(metricsNamespaceProblem(namespace), namespace).toBeUndefined();
    for (const interval of ["9999", "300001", "abc"]) {
      expect(() => settingsFromEnv({ ...base, QUEUES_EMF_INTERVAL_MS: interval }), interval).toThrow(/QUEUES_EMF_INTERVAL_MS/);
    }
  });
});
