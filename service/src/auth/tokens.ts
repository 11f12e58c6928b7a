// Bearer tokens and their roles, from configuration: QUEUES_AUTH_TOKENS (JSON) or
// QUEUES_AUTH_TOKENS_FILE (a file with that JSON; the CDK stack injects the JSON from
// a Secrets Manager secret). The JSON maps a role to a token or a list of tokens; a
// token is a string (unscoped: everything its role allows) or, for a producer or a
// worker, an object that scopes it:
//
//   {"admin": "…", "producer": ["…", {"token": "…", "owners": ["42", "43"]}],
//    "worker": {"token": "…", "channels": ["emails"]}}
//
// A producer token scoped to owners creates tasks for those owners only and sees and
// cancels only their tasks; a worker token scoped to channels receives on those
// channels only, sees and reports only their tasks, and must send the delivery's
// LeaseToken with every report (README "Authentication" has the table per RPC). An
// admin token is never scoped.
//
// Only SHA-256 digests are kept in memory; a token is never logged, and no error
// message quotes configuration text that could be a token: a mistake is named by
// its position (`QUEUES_AUTH_TOKENS: worker[1].channels[0]`).
import { createHash, timingSafeEqual } from "node:crypto";
import { parseUint64 } from "@queues/protocol";
import { CHANNEL_NAME_PATTERN } from "../config/channels.js";
import type { TaskScope } from "../tasks/scope.js";

export const ROLES = ["producer", "worker", "admin"] as const;
export type Role = (typeof ROLES)[number];

/** The scope each role's tokens may have: owners for a producer, channels for a worker, none for an admin. */
export const SCOPE_OF_ROLE = { producer: "owners", worker: "channels", admin: undefined } as const satisfies Record<Role, keyof TaskScope | undefined>;

export interface TokenEntry {
  role: Role;
  /** SHA-256 of the token: fixed length, so comparisons take the same time whatever the token. */
  digest: Buffer;
  /** The tasks the token may see and act on; undefined: every task its role allows (an unscoped token). */
  scope: TaskScope | undefined;
  /** Where the token is in the configuration (`QUEUES_AUTH_TOKENS: worker[1]`), for messages; never the token. */
  where: string;
}

/** Long enough that guessing is hopeless; the CDK stack generates 48 characters. */
export const MIN_TOKEN_LENGTH = 16;

export class AuthConfigError extends Error {}

export function digestOf(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

export function parseTokens(json: string, source: string): TokenEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    // JSON.parse's message quotes a piece of the text, which is token material: say where only.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new AuthConfigError(`${source} is not valid JSON${position ? ` (at character ${position})` : ""}; its text is not shown, it holds tokens`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new AuthConfigError(`${source} must be a JSON object {"<role>": "<token>" or ["<token>", ...]} with roles ${ROLES.join(", ")}`);
  }
  const entries: TokenEntry[] = [];
  const seen = new Set<string>();
  for (const [role, value] of Object.entries(raw)) {
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new AuthConfigError(`${source}: unknown role ${shownKey(role)}; roles are ${ROLES.join(", ")}`);
    }
    const tokens = Array.isArray(value) ? value : [value];
    for (const [index, item] of tokens.entries()) {
      // Say where the bad token is, never what it is.
      const where = `${source}: ${role}${Array.isArray(value) ? `[${index}]` : ""}`;
      const { token, tokenWhere, scope } = parseEntry(item, role as Role, where);
      if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH) throw new AuthConfigError(`${tokenWhere} must be a string of at least ${MIN_TOKEN_LENGTH} characters`);
      if (/\s/.test(token)) throw new AuthConfigError(`${tokenWhere} must not contain white space`);
      const digest = digestOf(token);
      if (seen.has(digest.toString("hex"))) throw new AuthConfigError(`${tokenWhere} is listed twice; a token has one role`);
      seen.add(digest.toString("hex"));
      entries.push({ role: role as Role, digest, scope, where });
    }
  }
  if (entries.length === 0) throw new AuthConfigError(`${source} lists no token; leave it unset to run without authentication`);
  return entries;
}

/**
 * Every channel a worker token is scoped to must be a configured channel (checked when
 * the server starts: the channel list is configuration too). The unknown channel is
 * named, unless the name is one of the configured tokens (a token pasted in the wrong
 * place is never echoed).
 */
export function checkScopedChannels(entries: readonly TokenEntry[], configured: Iterable<string>): void {
  const known = new Set(configured);
  for (const entry of entries) {
    for (const [index, channel] of [...(entry.scope?.channels ?? [])].entries()) {
      if (known.has(channel)) continue;
      const digest = digestOf(channel);
      const isToken = entries.some((other) => timingSafeEqual(other.digest, digest));
      const shown = isToken ? "a name that is not shown (it is one of the tokens)" : `"${channel}"`;
      throw new AuthConfigError(`${entry.where}.channels[${index}] names ${shown}, which is not a configured channel; configured: ${[...known].join(", ")}`);
    }
  }
}

/** A key as long as a token may be one (a token where its role or a field belongs): never echo it. */
function shownKey(key: string): string {
  return key.length < MIN_TOKEN_LENGTH && /^[\w-]*$/.test(key) ? `"${key}"` : `a key of ${key.length} characters (not shown)`;
}

/** One token of a role's list: a string (unscoped), or {"token": ..., "owners" | "channels": [...]} (scoped). */
function parseEntry(item: unknown, role: Role, where: string): { token: unknown; tokenWhere: string; scope: TaskScope | undefined } {
  if (typeof item === "string") return { token: item, tokenWhere: where, scope: undefined };
  const allowed = SCOPE_OF_ROLE[role];
  const form = allowed ? `a token string or {"token": "<token>", "${allowed}": [...]}` : "a token string";
  if (typeof item !== "object" || item === null || Array.isArray(item)) throw new AuthConfigError(`${where} must be ${form}`);
  if (!allowed) throw new AuthConfigError(`${where}: an ${role} token cannot be scoped (it may call everything); write it as a plain string`);
  const { token, owners, channels, ...rest } = item as Record<string, unknown>;
  const unknownKeys = Object.keys(rest);
  if (unknownKeys.length > 0) {
    throw new AuthConfigError(`${where}: unknown key(s) ${unknownKeys.map(shownKey).join(", ")}; a scoped ${role} token has "token" and "${allowed}"`);
  }
  const other = allowed === "owners" ? "channels" : "owners";
  if ((allowed === "owners" ? channels : owners) !== undefined) {
    throw new AuthConfigError(`${where}: a ${role} token may be scoped to ${allowed}, not to ${other}`);
  }
  const tokenWhere = `${where}.token`;
  if (token === undefined) throw new AuthConfigError(`${where} has no "token"`);
  const list = allowed === "owners" ? owners : channels;
  if (list === undefined) {
    throw new AuthConfigError(`${where}: an object entry is a scoped token and needs "${allowed}" (a list); write an unscoped token as a plain string`);
  }
  if (!Array.isArray(list) || list.length === 0) throw new AuthConfigError(`${where}.${allowed} must be a non-empty list`);
  const scope = allowed === "owners" ? { owners: parseOwners(list, `${where}.owners`) } : { channels: parseChannels(list, `${where}.channels`) };
  return { token, tokenWhere, scope };
}

function parseOwners(list: unknown[], where: string): ReadonlySet<bigint> {
  const owners = new Set<bigint>();
  for (const [index, value] of list.entries()) {
    // A JSON number above 2^53 comes out of JSON.parse rounded, silently: only strings are taken.
    const owner = typeof value === "string" ? parseUint64(value) : undefined;
    if (owner === undefined) {
      throw new AuthConfigError(`${where}[${index}] must be an Owner as a decimal string, e.g. "42" (0 to 2^64-1; a JSON number is not taken, it loses digits above 2^53)`);
    }
    if (owners.has(owner)) throw new AuthConfigError(`${where}[${index}] repeats Owner ${owner}`);
    owners.add(owner);
  }
  return owners;
}

function parseChannels(list: unknown[], where: string): ReadonlySet<string> {
  const channels = new Set<string>();
  for (const [index, value] of list.entries()) {
    if (typeof value !== "string" || !CHANNEL_NAME_PATTERN.test(value)) {
      throw new AuthConfigError(`${where}[${index}] must be a channel name ([A-Za-z0-9_-]{1,64})`);
    }
    if (channels.has(value)) throw new AuthConfigError(`${where}[${index}] repeats an earlier channel of the list`);
    channels.add(value);
  }
  return channels;
}
