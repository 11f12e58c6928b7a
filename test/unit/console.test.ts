// The console's pure pieces: escaping, the CSRF check, what the stream counts in a channel's activity.
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { html } from "../../service/src/console/html.js";
import { sameOrigin, cookiesOf } from "../../service/src/console/session.js";
import { marshall } from "@aws-sdk/util-dynamodb";
import { totalsOf } from "../../service/src/store/activity-store.js";
import { streamEventOf } from "../../service/src/stream/stream-records.js";

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

describe("a channel's activity", () => {
  it("counts created, succeeded and failed from the stream: a create, a change into SUCCESS or FAILURE, never a later write of a final task", () => {
    const image = (state: string, extra: Record<string, unknown> = {}) =>
      marshall({ pk: "T#7", id: 7n, owner: 42n, ownerKey: "42#3", channel: "emails", state, createTime: "2026-11-30T12:00:30.000Z", updateTime: "2026-11-30T12:04:10.000Z", ...extra });
    const minute = (iso: string) => Math.floor(Date.parse(iso) / 60_000);
    expect(streamEventOf({ eventName: "INSERT", dynamodb: { NewImage: image("WAITING") } })).toEqual({
      kind: "created",
      owner: 42n,
      activity: { channel: "emails", minute: minute("2026-11-30T12:00:30.000Z"), kind: "created" },
    });
    expect(streamEventOf({ eventName: "MODIFY", dynamodb: { OldImage: image("PROCEEDING"), NewImage: image("FAILURE") } })).toEqual({
      kind: "finished",
      activity: { channel: "emails", minute: minute("2026-11-30T12:04:10.000Z"), kind: "failed" },
    });
    expect(streamEventOf({ eventName: "MODIFY", dynamodb: { OldImage: image("PROCEEDING"), NewImage: image("SUCCESS") } })).toMatchObject({ activity: { kind: "succeeded" } });
    // A final task's Next link written later; a lease; a cancel.
    expect(streamEventOf({ eventName: "MODIFY", dynamodb: { OldImage: image("SUCCESS"), NewImage: image("SUCCESS", { next: 9n }) } })).toBeUndefined();
    expect(streamEventOf({ eventName: "MODIFY", dynamodb: { OldImage: image("WAITING"), NewImage: image("PROCEEDING") } })).toBeUndefined();
    expect(streamEventOf({ eventName: "MODIFY", dynamodb: { OldImage: image("WAITING"), NewImage: image("CANCEL") } })).toBeUndefined();
  });

  it("sums the last minutes of a series", () => {
    const series = { created: [5, 0, 1, 2, 3, 4, 5], succeeded: [0, 0, 0, 0, 0, 0, 1], failed: [9, 0, 0, 0, 0, 0, 0] };
    expect(totalsOf(series, 5)).toEqual({ created: 15, succeeded: 1, failed: 0 });
    expect(totalsOf(series, 60)).toEqual({ created: 20, succeeded: 1, failed: 9 });
  });
});
