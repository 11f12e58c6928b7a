// Who may use the console, and protection of its actions.
//
// With authentication on, every console page needs an admin token: sent as
// `authorization: Bearer <token>`, or entered once on /login and then kept in an
// HttpOnly, SameSite=Strict cookie (never readable by a script, never sent by a
// request another site starts). The server keeps no sessions: the cookie holds the
// token, checked on every request like a gRPC call's, so replicas behind a load
// balancer need nothing shared and an unauthenticated request allocates nothing.
//
// Actions (POST) are CSRF-safe with or without authentication: each form carries a
// token that must equal the `queues_csrf` cookie (double submit; the cookie is
// SameSite=Strict, so another site can neither send nor read it), and a request
// whose Origin is another site's is refused.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Authorizer } from "../auth/authorizer.js";

export const SESSION_COOKIE = "queues_admin";
export const CSRF_COOKIE = "queues_csrf";
/** How long a login lasts in the browser. */
const SESSION_SECONDS = 8 * 60 * 60;

export function cookiesOf(request: IncomingMessage): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (request.headers.cookie ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at <= 0) continue;
    const name = part.slice(0, at).trim();
    try {
      if (cookies.size < 32) cookies.set(name, decodeURIComponent(part.slice(at + 1).trim()));
    } catch {
      // A malformed cookie is no cookie.
    }
  }
  return cookies;
}

function cookie(name: string, value: string, maxAgeSeconds: number): string {
  return `${name}=${encodeURIComponent(value)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}`;
}

export const sessionCookie = (token: string) => cookie(SESSION_COOKIE, token, SESSION_SECONDS);
export const endSessionCookie = () => cookie(SESSION_COOKIE, "", 0);
export const csrfCookie = (value: string) => cookie(CSRF_COOKIE, value, SESSION_SECONDS);
export const newCsrfToken = () => randomBytes(24).toString("base64url");

export class ConsoleAccess {
  constructor(private readonly authorizer: Authorizer | undefined) {}

  get required(): boolean {
    return this.authorizer !== undefined;
  }

  /** The request carries an admin token (header or cookie), or authentication is off. */
  allows(request: IncomingMessage, cookies: Map<string, string>): boolean {
    if (!this.authorizer) return true;
    if (request.headers.authorization && this.authorizer.isAdmin(request.headers.authorization)) return true;
    const token = cookies.get(SESSION_COOKIE);
    return token !== undefined && token !== "" && this.isAdminToken(token);
  }

  isAdminToken(token: string): boolean {
    return this.authorizer !== undefined && /^[\x21-\x7e]{1,4096}$/.test(token) && this.authorizer.isAdmin(`Bearer ${token}`);
  }
}

/** A POST is the console's own: its form's token equals the CSRF cookie, and its Origin, if it names one, is this host. */
export function sameOrigin(request: IncomingMessage, cookies: Map<string, string>, formToken: string | undefined): boolean {
  // "null" (a privacy setting, a referrer policy) says nothing either way: the token decides.
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== "null") {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false;
    }
    if (host !== request.headers.host) return false;
  }
  const expected = cookies.get(CSRF_COOKIE);
  if (!expected || !formToken) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(formToken);
  return a.length === b.length && timingSafeEqual(a, b);
}
