// The console's pure pieces: escaping, the CSRF check, the per-minute activity counts.
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { html } from "../../service/src/console/html.js";
import { sameOrigin, cookiesOf } from "../../service/src/console/session.js";
import { RecentActivity } from "../../service/src/metrics/recent-activity.js";

const request = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

describe("html``", () => {
  it("escapes every interpolated value, but not fragments built by it", () => {
    const input = `<script>alert("x")</script>&'`;
    expect(html`<pre>${input}</pre>`.text).toBe("<pre>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;</pre>");
    expect(html`<p>${html`<b>${"<i>"}</b>`}</p>`.text).toBe("<p><b>&lt;i&gt;</b></p>");
    expect(html`${["<a>", html`<br>`]}${undefined}${false}${0}`.text).toBe("&lt;a&gt;<br>0");
  });
});

describe("the CSRF check", () => {
  const token = "t".repeat(32);
  it("needs the form's token to equal the cookie's, and no other site's Origin", () => {
    const cookies = cookiesOf(request({ cookie: `queues_csrf=${token}; other=1` }));
    expect(sameOrigin(request({ host: "127.0.0.1:8080" }), cookies, token)).toBe(true);
    expect(sameOrigin(request({ host: "127.0.0.1:8080", origin: "http://127.0.0.1:8080" }), cookies, token)).toBe(true);
    expect(sameOrigin(request({ host: "127.0.0.1:8080", origin: "https://evil.example" }), cookies, token)).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:8080", origin: "null" }), cookies, token)).toBe(true);
    expect(sameOrigin(request({ host: "127.0.0.1:8080", origin: "null" }), cookies, "x".repeat(32))).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:8080" }), cookies, "x".repeat(32))).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:8080" }), cookies, undefined)).toBe(false);
    expect(sameOrigin(request({ host: "127.0.0.1:8080" }), new Map(), token)).toBe(false);
  });
});

describe("recent activity", () => {
  it("counts per minute over the last hour, forgetting what is older", () => {
    let now = Date.UTC(2026, 10, 30, 12, 0, 30);
    const activity = new RecentActivity(() => now);
    activity.record("emails", "created");
    activity.record("emails", "created");
    now += 4 * 60_000;
    activity.record("emails", "failed");
    activity.record("emails", "succeeded");
    expect(activity.totals("emails", 5)).toEqual({ created: 2, succeeded: 1, failed: 1 });
    expect(activity.totals("emails", 1)).toEqual({ created: 0, succeeded: 1, failed: 1 });
    expect(activity.series("emails", 5).created).toEqual([2, 0, 0, 0, 0]);
    now += 60 * 60_000;
    activity.record("emails", "created");
    expect(activity.totals("emails", 60)).toEqual({ created: 1, succeeded: 0, failed: 0 });
    expect(activity.totals("other", 60)).toEqual({ created: 0, succeeded: 0, failed: 0 });
  });
});
