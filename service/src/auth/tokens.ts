// Bearer tokens and their roles, from configuration: QUEUES_AUTH_TOKENS (JSON) or
// QUEUES_AUTH_TOKENS_FILE (a file with that JSON; the CDK stack injects the JSON from
// a Secrets Manager secret). The JSON maps a role to a token or a list of tokens:
//
//   {"admin": "…", "producer": ["…", "…"], "worker": "…"}
//
// Only SHA-256 digests are kept in memory; a token is never logged.
import { createHash } from "node:crypto";

export const ROLES = ["producer", "worker", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface TokenEntry {
  role: Role;
  /** SHA-256 of the token: fixed length, so comparisons take the same time whatever the token. */
  digest: Buffer;
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
      // A key as long as a token may be one (a token where its role belongs): never echo it.
      const shown = role.length < MIN_TOKEN_LENGTH && /^[\w-]*$/.test(role) ? `"${role}"` : `a key of ${role.length} characters (not shown)`;
      throw new AuthConfigError(`${source}: unknown role ${shown}; roles are ${ROLES.join(", ")}`);
    }
    const tokens = Array.isArray(value) ? value : [value];
    for (const [index, token] of tokens.entries()) {
      // Say where the bad token is, never what it is.
      const where = `${source}: ${role}${Array.isArray(value) ? `[${index}]` : ""}`;
      if (typeof token !== "string" || token.length < MIN_TOKEN_LENGTH) throw new AuthConfigError(`${where} must be a string of at least ${MIN_TOKEN_LENGTH} characters`);
      if (/\s/.test(token)) throw new AuthConfigError(`${where} must not contain white space`);
      const digest = digestOf(token);
      if (seen.has(digest.toString("hex"))) throw new AuthConfigError(`${where} is listed twice; a token has one role`);
      seen.add(digest.toString("hex"));
      entries.push({ role: role as Role, digest });
    }
  }
  if (entries.length === 0) throw new AuthConfigError(`${source} lists no token; leave it unset to run without authentication`);
  return entries;
}
