// Checks a line against the CloudWatch Embedded Metric Format specification (the
// rules CloudWatch Logs applies before it extracts anything):
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
import { expect } from "vitest";

const UNITS = new Set([
  "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits",
  "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second",
  "Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
]);

export interface EmfLine {
  _aws: { Timestamp: number; CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit?: string }[] }[] };
  [member: string]: unknown;
}

/** Parses one log line (a JSON object and nothing else) and checks it is a valid EMF document; returns it. */
export function expectValidEmf(line: string): EmfLine {
  expect(line.endsWith("\n") ? line.slice(0, -1) : line).not.toContain("\n");
  const document = JSON.parse(line) as Record<string, unknown>;
  expect(typeof document).toBe("object");
  expect(Array.isArray(document)).toBe(false);
  const aws = document._aws as Record<string, unknown>;
  expect(Object.keys(aws).sort()).toEqual(["CloudWatchMetrics", "Timestamp"]);
  expect(Number.isInteger(aws.Timestamp)).toBe(true);
  // Within CloudWatch's window: up to two weeks old, up to two hours ahead.
  expect(Math.abs(Date.now() - (aws.Timestamp as number))).toBeLessThan(2 * 3_600_000);
  const directives = aws.CloudWatchMetrics as Record<string, unknown>[];
  expect(Array.isArray(directives) && directives.length > 0).toBe(true);
  for (const directive of directives) {
    expect(Object.keys(directive).sort()).toEqual(["Dimensions", "Metrics", "Namespace"]);
    expect(typeof directive.Namespace).toBe("string");
    const dimensionSets = directive.Dimensions as unknown[][];
    for (const set of dimensionSets) {
      expect(set.length).toBeLessThanOrEqual(30);
      // A dimension is a root member holding a string.
      for (const name of set) expect(typeof document[name as string], `dimension ${String(name)}`).toBe("string");
    }
    const metrics = directive.Metrics as Record<string, unknown>[];
    expect(metrics.length).toBeGreaterThan(0);
    expect(metrics.length).toBeLessThanOrEqual(100);
    expect(new Set(metrics.map((metric) => metric.Name)).size).toBe(metrics.length);
    for (const metric of metrics) {
      expect(Object.keys(metric).every((key) => ["Name", "Unit", "StorageResolution"].includes(key))).toBe(true);
      const value = document[metric.Name as string];
      // A target member is a number (or an array of up to 100 numbers).
      expect(typeof value === "number" && Number.isFinite(value), `metric ${String(metric.Name)}`).toBe(true);
      if (metric.Unit !== undefined) expect(UNITS.has(metric.Unit as string), `unit ${String(metric.Unit)}`).toBe(true);
    }
  }
  return document as EmfLine;
}

/** The metric values of an EMF line, by name. */
export function emfValues(line: EmfLine): Record<string, number> {
  return Object.fromEntries(line._aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics.map((metric) => [metric.Name, line[metric.Name] as number])));
}
