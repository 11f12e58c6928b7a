// The benchmark's arithmetic and output: AWS prices and the cost per million tasks,
// percentiles, the human-readable table and the concurrency chart (SVG).
import type { UsageSnapshot } from "../../service/src/metrics/backend-usage.js";

/**
 * us-east-1 list prices as published on aws.amazon.com/dynamodb/pricing/on-demand/
 * and aws.amazon.com/sqs/pricing/ (DynamoDB on-demand since its 2024-11-01 price cut;
 * SQS standard queues beyond the free tier), as used on 2026-11-25.
 */
export const PRICES = {
  date: "2026-11-25",
  usdPerMillionWriteUnits: 0.625,
  usdPerMillionReadUnits: 0.125,
  usdPerMillionSqsRequests: 0.4,
} as const;

export interface PerTask {
  wru: number;
  rru: number;
  sqsRequests: number;
  /** Server CPU (the baseline has no server: its own SDK calls' CPU). */
  cpuMicros: number;
}

export interface UsageDelta {
  cpuMicros: number;
  wru: number;
  rru: number;
  sqsRequests: number;
  sqsByAction: Record<string, number>;
  dynamodbByOperation: Record<string, { calls: number; units: number }>;
}

export function usageDelta(before: UsageSnapshot, after: UsageSnapshot): UsageDelta {
  const sqsByAction: Record<string, number> = {};
  for (const [action, count] of Object.entries(after.sqs.byAction)) {
    const delta = count - (before.sqs.byAction[action] ?? 0);
    if (delta) sqsByAction[action] = delta;
  }
  const dynamodbByOperation: Record<string, { calls: number; units: number }> = {};
  for (const [operation, entry] of Object.entries(after.dynamodb.byOperation)) {
    const old = before.dynamodb.byOperation[operation] ?? { calls: 0, units: 0 };
    if (entry.calls - old.calls) dynamodbByOperation[operation] = { calls: entry.calls - old.calls, units: entry.units - old.units };
  }
  return {
    cpuMicros: after.cpuMicros - before.cpuMicros,
    wru: after.dynamodb.writeUnits - before.dynamodb.writeUnits,
    rru: after.dynamodb.readUnits - before.dynamodb.readUnits,
    sqsRequests: after.sqs.requests - before.sqs.requests,
    sqsByAction,
    dynamodbByOperation,
  };
}

export function perTask(delta: UsageDelta, tasks: number): PerTask {
  return { wru: delta.wru / tasks, rru: delta.rru / tasks, sqsRequests: delta.sqsRequests / tasks, cpuMicros: delta.cpuMicros / tasks };
}

/** AWS cost of a million task lifecycles from the per-task request and capacity counts. */
export function usdPerMillionTasks(counts: PerTask): number {
  return (
    counts.wru * PRICES.usdPerMillionWriteUnits + counts.rru * PRICES.usdPerMillionReadUnits + counts.sqsRequests * PRICES.usdPerMillionSqsRequests
  );
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/** A plain-text table with right-aligned numbers. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((row) => row.map((cell) => (typeof cell === "number" ? String(round(cell)) : cell)))];
  const widths = header.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? "").length)));
  const line = (row: string[]) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join("  ");
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export interface SweepPoint {
  credits: number;
  serviceTasksPerSecond: number;
  baselineTasksPerSecond: number;
}

/** Tasks/s of the service and of the baseline over the credits in flight (log-scale x axis). */
export function concurrencyChartSvg(points: SweepPoint[], title: string): string {
  const width = 690;
  const height = 400;
  const margin = { left: 70, right: 200, top: 40, bottom: 50 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const xs = points.map((point) => Math.log2(point.credits));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs, xMin + 1);
  const yMax = niceCeiling(Math.max(1, ...points.flatMap((point) => [point.serviceTasksPerSecond, point.baselineTasksPerSecond])));
  const x = (credits: number) => margin.left + ((Math.log2(credits) - xMin) / (xMax - xMin)) * plotW;
  const y = (value: number) => margin.top + plotH - (value / yMax) * plotH;
  const series = [
    { name: "baseline (raw SDK)", color: "#888888", value: (point: SweepPoint) => point.baselineTasksPerSecond },
    { name: "Queues service", color: "#1f6feb", value: (point: SweepPoint) => point.serviceTasksPerSecond },
  ];
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2 - margin.right / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    `<line x1="${margin.left}" y1="${margin.top + plotH}" x2="${margin.left + plotW}" y2="${margin.top + plotH}" stroke="black"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${margin.top + plotH}" stroke="black"/>`,
    `<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">credits in flight (log scale)</text>`,
    `<text x="18" y="${margin.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 18 ${margin.top + plotH / 2})">tasks per second</text>`,
  ];
  for (let step = 0; step <= 4; step++) {
    const value = (yMax / 4) * step;
    parts.push(
      `<line x1="${margin.left}" y1="${y(value)}" x2="${margin.left + plotW}" y2="${y(value)}" stroke="#eeeeee"/>`,
      `<text x="${margin.left - 8}" y="${y(value) + 4}" text-anchor="end">${round(value, 0)}</text>`,
    );
  }
  for (const point of points) {
    parts.push(`<text x="${x(point.credits)}" y="${margin.top + plotH + 18}" text-anchor="middle">${point.credits}</text>`);
  }
  series.forEach((line, index) => {
    const coordinates = points.map((point) => `${round(x(point.credits), 1)},${round(y(line.value(point)), 1)}`).join(" ");
    parts.push(`<polyline points="${coordinates}" fill="none" stroke="${line.color}" stroke-width="2.5"/>`);
    for (const point of points) parts.push(`<circle cx="${x(point.credits)}" cy="${y(line.value(point))}" r="3.5" fill="${line.color}"/>`);
    const legendY = margin.top + 10 + index * 20;
    parts.push(
      `<line x1="${margin.left + plotW + 15}" y1="${legendY}" x2="${margin.left + plotW + 35}" y2="${legendY}" stroke="${line.color}" stroke-width="2.5"/>`,
      `<text x="${margin.left + plotW + 40}" y="${legendY + 4}">${escapeXml(line.name)}</text>`,
    );
  });
  parts.push("</svg>");
  return `${parts.join("\n")}\n`;
}

function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
