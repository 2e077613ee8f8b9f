/**
 * Client authentication of the key-value HTTP API: bearer tokens, each
 * with a role. Roles are ordered `read` < `write` < `admin`; a route needs
 * one of them ({@linkcode requiredRole}) and a token of that role or
 * higher. Tokens are compared in constant time: every request hashes the
 * presented token (SHA-256) and compares it with every known token's hash
 * with `timingSafeEqual`, without stopping at the first match.
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import type { Buffer } from "node:buffer";

/** A client role; each includes the ones before it: `read` < `write` < `admin`. */
export type ClientRole = "read" | "write" | "admin";

/** The roles, lowest first. */
export const CLIENT_ROLES: readonly ClientRole[] = Object.freeze([
  "read",
  "write",
  "admin",
]);

/** Shortest token accepted, characters. */
export const MIN_TOKEN_LENGTH = 16;

/** One entry of a tokens file. */
export interface ClientToken {
  /** What the holder may do. */
  role: ClientRole;
  /** The bearer token (at least 16 characters, no whitespace). */
  token: string;
}

/** Why a request was not authenticated or not authorized (the `reason` label of `raft_http_auth_failures_total`). */
export type AuthFailureReason =
  | "missing"
  | "malformed"
  | "unknown_token"
  | "forbidden";

/**
 * Parses a tokens file: one `ROLE TOKEN` per line, `#` comments and blank
 * lines ignored. Throws an `Error` naming the line for anything else (an
 * unknown role, a token shorter than 16 characters, a token given twice,
 * no token at all).
 *
 * @param text the file's content
 * @returns the tokens
 *
 * @example
 * ```ts
 * import { parseAuthTokens } from "@raft-io/raft/kv";
 * parseAuthTokens("# ops\nadmin 0123456789abcdef0123\nread fedcba9876543210fedc\n").length; // 2
 * ```
 */
export function parseAuthTokens(text: string): ClientToken[] {
  const out: ClientToken[] = [];
  const seen = new Set<string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "" || line.startsWith("#")) continue;
    const parts = line.split(/\s+/);
    const where = `line ${i + 1}`;
    if (parts.length !== 2) {
      throw new Error(
        `${where}: expected "ROLE TOKEN" (role read, write or admin), got ${parts.length} field${
          parts.length === 1 ? "" : "s"
        }`,
      );
    }
    const [role, token] = parts;
    if (!(CLIENT_ROLES as readonly string[]).includes(role)) {
      throw new Error(
        `${where}: unknown role ${
          JSON.stringify(role)
        } (use read, write or admin)`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new Error(
        `${where}: the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32)`,
      );
    }
    if (seen.has(token)) throw new Error(`${where}: this token is given twice`);
    seen.add(token);
    out.push({ role: role as ClientRole, token });
  }
  if (out.length === 0) {
    throw new Error(
      'no tokens: add lines "ROLE TOKEN" (role read, write or admin)',
    );
  }
  return out;
}

/**
 * The role a request needs: reads and status need `read`; `PUT`, `DELETE`
 * and compare-and-set on `/kv/` need `write`; membership (`/members`) and
 * leadership transfer need `admin` (they change who is in the cluster and
 * where it forwards writes). Anything else needs `read` (and then answers
 * 404 or 405).
 *
 * @param method the HTTP method
 * @param path the URL path
 * @returns the lowest role allowed
 *
 * @example
 * ```ts
 * import { requiredRole } from "@raft-io/raft/kv";
 * requiredRole("POST", "/members"); // "admin"
 * ```
 */
export function requiredRole(method: string, path: string): ClientRole {
  if (path === "/members" || path.startsWith("/members/")) {
    return method === "GET" || method === "HEAD" ? "read" : "admin";
  }
  if (path.startsWith("/leader/")) return "admin";
  if (path.startsWith("/kv/")) {
    return method === "GET" || method === "HEAD" ? "read" : "write";
  }
  return "read";
}

function digest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/** The outcome of {@linkcode ClientAuth.check}. */
export type AuthResult =
  | { ok: true; role: ClientRole }
  | { ok: false; reason: AuthFailureReason; status: 401 | 403 };

/**
 * A table of bearer tokens and the check of one request's `Authorization`
 * header against it.
 *
 * @example
 * ```ts
 * import { ClientAuth } from "@raft-io/raft/kv";
 * const auth = new ClientAuth([{ role: "read", token: "0123456789abcdef" }]);
 * auth.check("Bearer 0123456789abcdef", "read").ok; // true
 * auth.check("Bearer 0123456789abcdef", "write").ok; // false (403)
 * ```
 */
export class ClientAuth {
  readonly #hashes: { role: ClientRole; hash: Buffer }[];

  /**
   * Creates the table.
   *
   * @param tokens the tokens and their roles
   */
  constructor(tokens: readonly ClientToken[]) {
    this.#hashes = tokens.map((t) => ({ role: t.role, hash: digest(t.token) }));
  }

  /**
   * Checks an `Authorization` header value (or null) for a route that
   * needs `needed`.
   *
   * @param header the request's `Authorization` header
   * @param needed the role the route needs
   * @returns the caller's role, or why it is refused (401 or 403)
   */
  check(header: string | null, needed: ClientRole): AuthResult {
    if (header === null) return { ok: false, reason: "missing", status: 401 };
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (m === null) return { ok: false, reason: "malformed", status: 401 };
    const presented = digest(m[1]);
    let role: ClientRole | undefined;
    for (const h of this.#hashes) {
      // Every entry is compared: the time does not depend on which matched.
      if (timingSafeEqual(presented, h.hash)) role = h.role;
    }
    if (role === undefined) {
      return { ok: false, reason: "unknown_token", status: 401 };
    }
    if (CLIENT_ROLES.indexOf(role) < CLIENT_ROLES.indexOf(needed)) {
      return { ok: false, reason: "forbidden", status: 403 };
    }
    return { ok: true, role };
  }
}
