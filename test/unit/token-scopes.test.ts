// Scoped tokens in the token configuration (auth/tokens.ts): a producer token may be
// scoped to owners, a worker token to channels, an admin token never; every mistake
// is refused with a message that says where, never quoting token text. And the
// Authorizer's verdict carries the scope (auth/authorizer.ts).
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { Authorizer } from "../../service/src/auth/authorizer.js";
import { AuthConfigError, checkScopedChannels, parseTokens, type TokenEntry } from "../../service/src/auth/tokens.js";
import { SettingsError, settingsFromEnv } from "../../service/src/config/settings.js";
import { inScope, visible } from "../../service/src/tasks/scope.js";

const TOKEN = {
  admin: "admin-token-0123456789abcdef",
  producer: "producer-token-0123456789abcdef",
  owners: "owners-token-0123456789abcdef",
  worker: "worker-token-0123456789abcdef",
  channels: "channels-token-0123456789abcdef",
};

function errorOf(work: () => unknown): Error {
  try {
    work();
  } catch (error) {
    return error as Error;
  }
  throw new Error("no error");
}

const parse = (config: unknown) => parseTokens(JSON.stringify(config), "T");

describe("scoped token configuration", () => {
  it("takes a producer token scoped to owners and a worker token scoped to channels, next to unscoped ones", () => {
    const entries = parse({
      admin: TOKEN.admin,
      producer: [TOKEN.producer, { token: TOKEN.owners, owners: ["42", "18446744073709551615", "0"] }],
      worker: [{ token: TOKEN.channels, channels: ["emails", "default"] }, TOKEN.worker],
    });
    expect(entries.map((entry) => [entry.role, entry.where, entry.scope])).toEqual([
      ["admin", "T: admin", undefined],
      ["producer", "T: producer[0]", undefined],
      ["producer", "T: producer[1]", { owners: new Set([42n, 18446744073709551615n, 0n]) }],
      ["worker", "T: worker[0]", { channels: new Set(["emails", "default"]) }],
      ["worker", "T: worker[1]", undefined],
    ]);
    // A single object, not in a list, is one token too.
    expect(parse({ worker: { token: TOKEN.channels, channels: ["emails"] } })).toMatchObject([{ role: "worker", where: "T: worker", scope: { channels: new Set(["emails"]) } }]);
  });

  it("refuses every malformed scoped entry, saying where and why", () => {
    const cases: [unknown, RegExp][] = [
      [{ admin: { token: TOKEN.admin, owners: ["1"] } }, /^T: admin: an admin token cannot be scoped \(it may call everything\); write it as a plain string$/],
      [{ producer: { token: TOKEN.owners, channels: ["emails"] } }, /^T: producer: a producer token may be scoped to owners, not to channels$/],
      [{ worker: [{ token: TOKEN.channels, owners: ["42"] }] }, /^T: worker\[0\]: a worker token may be scoped to channels, not to owners$/],
      [{ producer: { token: TOKEN.owners } }, /^T: producer: an object entry is a scoped token and needs "owners" \(a list\); write an unscoped token as a plain string$/],
      [{ producer: { owners: ["42"] } }, /^T: producer has no "token"$/],
      [{ producer: { token: TOKEN.owners, owners: [] } }, /^T: producer\.owners must be a non-empty list$/],
      [{ producer: { token: TOKEN.owners, owners: "42" } }, /^T: producer\.owners must be a non-empty list$/],
      [{ worker: { token: TOKEN.channels, channels: [] } }, /^T: worker\.channels must be a non-empty list$/],
      [{ producer: { token: TOKEN.owners, owners: [42] } }, /^T: producer\.owners\[0\] must be an Owner as a decimal string, e.g. "42" .*JSON number is not taken/],
      [{ producer: { token: TOKEN.owners, owners: ["42", "-1"] } }, /^T: producer\.owners\[1\] must be an Owner as a decimal string/],
      [{ producer: { token: TOKEN.owners, owners: ["18446744073709551616"] } }, /^T: producer\.owners\[0\] must be an Owner/],
      [{ producer: { token: TOKEN.owners, owners: ["42", "042"] } }, /^T: producer\.owners\[1\] repeats Owner 42$/],
      [{ worker: { token: TOKEN.channels, channels: ["emails", "no spaces"] } }, /^T: worker\.channels\[1\] must be a channel name \(\[A-Za-z0-9_-\]\{1,64\}\)$/],
      [{ worker: { token: TOKEN.channels, channels: ["emails", "emails"] } }, /^T: worker\.channels\[1\] repeats an earlier channel of the list$/],
      [{ worker: { token: TOKEN.channels, channels: ["emails"], channel: "x" } }, /^T: worker: unknown key\(s\) "channel"; a scoped worker token has "token" and "channels"$/],
      [{ producer: { token: "short", owners: ["1"] } }, /^T: producer\.token must be a string of at least 16 characters$/],
      [{ producer: { token: 1234567890123456789, owners: ["1"] } }, /^T: producer\.token must be a string of at least 16 characters$/],
      [{ producer: [TOKEN.producer, { token: TOKEN.producer, owners: ["1"] }] }, /^T: producer\[1\]\.token is listed twice; a token has one role$/],
      [{ worker: [TOKEN.worker, ["nested"]] }, /^T: worker\[1\] must be a token string or \{"token": "<token>", "channels": \[\.\.\.\]\}$/],
      [{ admin: [null] }, /^T: admin\[0\] must be a token string$/],
    ];
    for (const [config, message] of cases) {
      const error = errorOf(() => parse(config));
      expect(error, JSON.stringify(config)).toBeInstanceOf(AuthConfigError);
      expect(error.message, JSON.stringify(config)).toMatch(message);
    }
  });

  it("never quotes token text: not the token, not a token pasted where a key or a list item belongs", () => {
    const secret = "s3cr3t-token-0123456789abcdef";
    const cases = [
      { admin: { token: secret, owners: ["1"] } },
      { producer: { token: `${secret} x`, owners: ["1"] } },
      { producer: { token: TOKEN.owners, owners: [secret] } },
      { producer: { token: TOKEN.owners, [secret]: ["1"] } },
      { worker: { token: TOKEN.channels, channels: [`${secret}!`] } },
      { worker: [TOKEN.worker, { token: TOKEN.worker, channels: ["emails"] }] },
    ];
    for (const config of cases) {
      const message = errorOf(() => parse(config)).message;
      expect(message).not.toContain(secret);
      expect(message).not.toContain(TOKEN.worker);
      expect(message).not.toContain(TOKEN.owners);
    }
  });

  it("a worker token's channels must be configured: the server refuses to start, naming the channel", () => {
    const env = { QUEUES_CHANNELS: '["default", "emails"]' };
    const ok = settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: JSON.stringify({ worker: { token: TOKEN.channels, channels: ["emails"] } }) });
    expect(ok.authTokens?.[0]?.scope).toEqual({ channels: new Set(["emails"]) });
    const attempt = () => settingsFromEnv({ ...env, QUEUES_AUTH_TOKENS: JSON.stringify({ worker: [TOKEN.worker, { token: TOKEN.channels, channels: ["emails", "sms"] }] }) });
    expect(attempt).toThrow(SettingsError);
    expect(attempt).toThrow('QUEUES_AUTH_TOKENS: worker[1].channels[1] names "sms", which is not a configured channel; configured: default, emails');
    // A token pasted as a channel name (it is a valid name) is not echoed.
    const pasted = errorOf(() => checkScopedChannels(parse({ worker: [TOKEN.worker, { token: TOKEN.channels, channels: [TOKEN.worker.replace(/-/g, "_")] }], producer: TOKEN.worker.replace(/-/g, "_") }), ["default"]));
    expect(pasted).toBeInstanceOf(AuthConfigError);
    expect(pasted.message).toBe("T: worker[1].channels[0] names a name that is not shown (it is one of the tokens), which is not a configured channel; configured: default");
  });
});

describe("scopes", () => {
  const task = (owner: bigint, channel: string) => ({ owner, channel });

  it("owners limit by Owner, channels by Channel, no scope limits nothing", () => {
    const owners = { owners: new Set([42n]) };
    const channels = { channels: new Set(["emails"]) };
    expect([inScope(owners, task(42n, "x")), inScope(owners, task(43n, "x"))]).toEqual([true, false]);
    expect([inScope(channels, task(1n, "emails")), inScope(channels, task(1n, "sms"))]).toEqual([true, false]);
    expect(inScope(undefined, task(7n, "sms"))).toBe(true);
    expect(visible(owners, task(43n, "x"))).toBeUndefined();
    expect(visible(owners, undefined)).toBeUndefined();
    expect(visible(owners, task(42n, "x"))).toEqual(task(42n, "x"));
  });
});

describe("the Authorizer with scoped tokens", () => {
  const entries: TokenEntry[] = parse({
    admin: TOKEN.admin,
    producer: [TOKEN.producer, { token: TOKEN.owners, owners: ["42"] }],
    worker: [TOKEN.worker, { token: TOKEN.channels, channels: ["emails"] }],
  });
  const authorizer = new Authorizer(entries);
  const check = (token: string, method: string) => {
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    return authorizer.check(metadata, method);
  };

  it("hands over the scope with the role; unscoped tokens have none", () => {
    expect(check(TOKEN.owners, "CreateTask")).toEqual({ allowed: true, role: "producer", scope: { owners: new Set([42n]) } });
    expect(check(TOKEN.channels, "ReportTaskResult")).toEqual({ allowed: true, role: "worker", scope: { channels: new Set(["emails"]) } });
    for (const token of [TOKEN.admin, TOKEN.producer, TOKEN.worker]) expect(check(token, "QueryTaskByID")).toMatchObject({ allowed: true, scope: undefined });
  });

  it("a scoped token has its role's RPCs, except QueryTaskByOwner for a token scoped to channels", () => {
    expect(check(TOKEN.owners, "ReceiveQueueByChannel")).toEqual({ allowed: false, code: grpc.status.PERMISSION_DENIED, details: "A producer token may not call ReceiveQueueByChannel" });
    expect(check(TOKEN.owners, "QueryTaskByOwner")).toMatchObject({ allowed: true });
    expect(check(TOKEN.owners, "QueryLengthByChannel")).toMatchObject({ allowed: true });
    expect(check(TOKEN.channels, "QueryTaskByOwner")).toEqual({
      allowed: false,
      code: grpc.status.PERMISSION_DENIED,
      details: "A worker token scoped to channels may not call QueryTaskByOwner: an owner's tasks span channels",
    });
    expect(check(TOKEN.worker, "QueryTaskByOwner")).toMatchObject({ allowed: true });
    expect(check(TOKEN.channels, "CreateTask")).toMatchObject({ allowed: false, code: grpc.status.PERMISSION_DENIED });
  });
});
