// The console's page frame and small shared pieces (state badges, the activity chart).
import { html, type Html } from "./html.js";
import { ACTIVITY_KINDS, type ActivityKind } from "../store/activity-store.js";

export interface PageOptions {
  title: string;
  csrf: string;
  /** A line shown above the content (an action's result). */
  notice?: string | undefined;
  error?: string | undefined;
  /** Show the log-out button (a login is in use). */
  loggedIn?: boolean;
}

export function page(options: PageOptions, content: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · Queues</title>
<link rel="stylesheet" href="/console.css"><link rel="icon" href="data:,">
</head>
<body>
<header>
  <strong>Queues</strong>
  <a href="/">Channels</a>
  <a href="/tasks">Tasks</a>
  <a href="/schedules">Schedules</a>
  ${options.loggedIn ? html`<form method="post" action="/logout"><input type="hidden" name="csrf" value="${options.csrf}"><button type="submit">Log out</button></form>` : ""}
</header>
<main>
${options.notice ? html`<p class="notice" role="status">${options.notice}</p>` : ""}
${options.error ? html`<p class="error" role="alert">${options.error}</p>` : ""}
${content}
</main>
</body>
</html>
`;
}

export function stateBadge(state: string): Html {
  return html`<span class="state state-${state}">${state}</span>`;
}

/** A POST button (with the CSRF token) for one action. */
export function actionButton(action: string, label: string, csrf: string, danger = false): Html {
  return html`<form class="inline" method="post" action="${action}"><input type="hidden" name="csrf" value="${csrf}"><button type="submit"${danger ? html` class="danger"` : ""}>${label}</button></form>`;
}

/** A bar chart of per-minute counts (oldest first), as inline SVG: no script, no asset. */
export function activityChart(series: Record<ActivityKind, number[]>, label: string): Html {
  const minutes = series.created.length;
  const width = 240;
  const height = 40;
  const bar = width / minutes;
  const peak = Math.max(1, ...ACTIVITY_KINDS.flatMap((kind) => series[kind]));
  const bars = ACTIVITY_KINDS.flatMap((kind, k) =>
    series[kind].map((count, minute) => {
      if (count === 0) return "";
      const h = Math.max(1, Math.round((count / peak) * height));
      const x = (minute * bar + (k * bar) / 3).toFixed(1);
      return html`<rect class="${kind}" x="${x}" y="${height - h}" width="${(bar / 3).toFixed(2)}" height="${h}"><title>${kind}: ${count}</title></rect>`;
    }),
  );
  return html`<svg class="chart" role="img" aria-label="${label}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}</svg>`;
}

export function legend(): Html {
  return html`<div class="legend muted">${ACTIVITY_KINDS.map((kind) => html`<span class="${kind}">${kind}</span>`)}</div>`;
}

export function ageOf(ms: number, now: number): string {
  if (!ms) return "";
  const seconds = Math.max(0, Math.round((now - ms) / 1000));
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86_400)} days`;
}
