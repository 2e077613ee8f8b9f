/**
 * The HTTP API of the replicated key-value service.
 *
 * | Route | Meaning |
 * | --- | --- |
 * | `PUT /kv/{key}` | body = raw value; 204 once committed and applied |
 * | `GET /kv/{key}` | 200 raw value, 404 absent; `?consistency=linearizable` (default), `lease`, `stale` |
 * | `DELETE /kv/{key}` | 204 deleted, 404 absent |
 * | `POST /kv/{key}/cas` | JSON `{"expect": string \| null, "value": string, "encoding"?: "utf8" \| "base64"}`; 200 swapped, 409 mismatch (with `current`) |
 * | `GET /status` | JSON: id, role, term, leader, commit, applied, membership, per-peer match and lag |
 * | `GET /leader` | `{"leader": "http://…", "id": n}` (503 while none is known) |
 * | `GET /metrics` | Prometheus text |
 * | `POST /members` | JSON `{"id", "raft": "host:port", "http": "host:port", "role": "learner" \| "voter"}` |
 * | `DELETE /members/{id}` | remove a voter or learner |
 * | `POST /leader/transfer` | JSON `{"to"?: id}` (default: the most caught-up voter) |
 *
 * With `auth` (a {@linkcode ClientAuth}), every request needs
 * `Authorization: Bearer TOKEN` of a role high enough for its route
 * (`read` < `write` < `admin`; see `requiredRole`): 401 with
 * `WWW-Authenticate: Bearer` without a valid token, 403 for a role too low.
 * Failures are logged with the client address and counted
 * (`raft_http_auth_failures_total{reason}`). A follower forwards the
 * client's `Authorization` header and the leader checks it again.
 *
 * Limits: a body over `maxBodyBytes` is 413; one that would take the bytes
 * buffered over all requests past `maxInflightBytes` is 503 `OVERLOADED`
 * at once; one not complete `bodyTimeoutMs` after the request arrived is
 * 408 `BODY_TIMEOUT` (and the connection is closed).
 *
 * Keys are the URL path after `/kv/`, percent-decoded, 1..1024 UTF-8 bytes.
 * Bodies are limited to 1 MiB by default (413). Errors are JSON
 * `{"error": {"code", "message", "leaderId"?, "members"?}}`; the status of a
 * runtime or core error comes from its stable `code` through one table
 * ({@linkcode HTTP_STATUS_BY_CODE}). Definite failures (nothing was
 * applied): 4xx, `NOT_LEADER`, `OVERLOADED`, `PROPOSAL_DROPPED`,
 * `TRANSFER_IN_PROGRESS`, `CONFIG_CHANGE_IN_PROGRESS`. Outcome unknown (the
 * write may still commit; do not retry blindly): `TIMEOUT`, `STOPPED`,
 * `FORWARD_FAILED` (504: the forward to the leader broke) and 500.
 *
 * Client addresses come from the replicated configuration: a member's
 * `metadata` is its client HTTP address as plain `host:port` (no scheme;
 * anything else is ignored), with `httpAddresses` as a fallback.
 *
 * `POST /members` validates the whole request before proposing anything:
 * `id` an integer in 1..2^31, `raft` and `http` `host:port` with a port in
 * 1..65535, `role` `"voter"` (default: added as a learner, promoted once it
 * has caught up) or `"learner"`, optional `timeoutMs`; unknown fields are
 * refused. An id that is already a member is refused with 409
 * `MEMBER_EXISTS` and nothing changes — except `role: "voter"` for a
 * learner recorded with the same addresses, which promotes it. A voter
 * that does not catch up in time (e.g. never started) is answered 409
 * `CATCH_UP_TIMEOUT` and stays a learner.
 *
 * A node removed from the cluster answers every request but `/status`,
 * `/metrics` and `/leader` with 410 `REMOVED`, naming the current members
 * (`members`, and `urls` where known); its `/status` shows `removed: true`.
 * The process keeps running so an operator sees why; stop it.
 *
 * On a follower, writes and membership requests are forwarded to the leader
 * (the response is relayed); with `forward: "redirect"` the follower answers
 * them, and linearizable reads, with 307 and the leader's URL instead. In
 * the default (forwarding) mode a follower serves linearizable reads itself
 * through ReadIndex: it asks the leader for the commit index that makes the
 * read safe, waits until it has applied it, and answers from its own state —
 * the leader confirms, the follower does the work.
 *
 * @module
 */

import { NotLeaderError } from "../core/errors.ts";
import {
  MAX_ADDRESS_BYTES,
  MAX_METADATA_BYTES,
  type Membership,
} from "../core/membership.ts";
import { RaftIoError } from "../errors.ts";
import type { RaftServer } from "../runtime/raft_server.ts";
import { CatchUpTimeoutError } from "../runtime/errors.ts";
import type { ReadConsistency } from "../runtime/server_types.ts";
import { parseAddress } from "../transport/tcp/socket.ts";
import type { Logger } from "../logger.ts";
import {
  type AuthFailureReason,
  type ClientAuth,
  requiredRole,
} from "./auth.ts";
import { renderMetrics } from "./metrics_text.ts";
import {
  encodeKvCommand,
  type KvCommand,
  type KvResult,
  type KvStateMachine,
} from "./kv_state_machine.ts";

/** Options of {@linkcode KvHttpApi}. */
export interface KvHttpApiOptions {
  /** The running Raft server of this node. */
  server: RaftServer<KvResult>;
  /** Its key-value state machine. */
  kv: KvStateMachine;
  /** Client HTTP addresses (`host:port`) known from flags, by node id: a fallback when a member's metadata in the replicated configuration has none. */
  httpAddresses?: Map<number, string>;
  /** What a follower does with writes: `"proxy"` them to the leader (default) or `"redirect"` (307). */
  forward?: "proxy" | "redirect";
  /** Largest key in UTF-8 bytes (default 1024). */
  maxKeyBytes?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Extra Prometheus lines appended to `/metrics` (e.g. transport error counts). */
  extraMetrics?: () => string;
  /**
   * Bearer tokens and their roles: with it every request needs
   * `Authorization: Bearer TOKEN` of a role high enough for the route
   * (401 without a valid token, 403 for a role too low). Without it the
   * API is open (keep it on loopback).
   */
  auth?: ClientAuth;
  /** Where authentication failures and other API events are logged. */
  logger?: Logger;
  /** Shown on `/status` as `insecure`: the peers of this node are not authenticated. @default {false} */
  insecure?: boolean;
  /** Shown on `/status` as `clusterId`. */
  clusterId?: string;
  /** Scheme of the other nodes' client URLs (all nodes of a cluster serve the same). @default {"http"} */
  scheme?: "http" | "https";
  /**
   * Most request body bytes buffered at once over all requests; a body
   * that would go past it is answered 503 `OVERLOADED` at once.
   * @default {67108864}
   */
  maxInflightBytes?: number;
  /**
   * Deadline for reading a whole request body, ms, counted from the
   * request's arrival; a body still incomplete then is answered 408
   * `BODY_TIMEOUT` and its connection dropped.
   * @default {10000}
   */
  bodyTimeoutMs?: number;
}

/** Per-request facts the server knows and the handler does not. */
export interface KvRequestInfo {
  /** The client's address, `host:port`, for logs. */
  remoteAddr?: string;
}

const FORWARDED_HEADER = "x-raft-forwarded";

/** Deadline of a membership change through the API unless the request gives `timeoutMs`, ms. */
const DEFAULT_MEMBER_TIMEOUT_MS = 10_000;

/** Largest member id the API accepts (2^31). */
export const MAX_MEMBER_ID = 2 ** 31;

/**
 * HTTP status of each stable error `code` of the runtime and the core
 * (`retry: true` adds `retry-after: 1`). An unknown code answers 500.
 *
 * @example
 * ```ts
 * import { HTTP_STATUS_BY_CODE } from "@raft-io/raft/kv";
 * HTTP_STATUS_BY_CODE.REMOVED.status; // 410
 * ```
 */
export const HTTP_STATUS_BY_CODE: Readonly<
  Record<string, { status: number; retry?: boolean }>
> = Object.freeze({
  // Definite: nothing was applied.
  NOT_LEADER: { status: 503, retry: true }, // forwarded or redirected when the leader is known
  OVERLOADED: { status: 503, retry: true },
  TRANSFER_IN_PROGRESS: { status: 503, retry: true },
  CONFIG_CHANGE_IN_PROGRESS: { status: 503, retry: true },
  PROPOSAL_DROPPED: { status: 503, retry: true },
  APPLY_REJECTED: { status: 422 },
  // The KV never proposes an empty or non-byte command: only the size limit remains.
  INVALID_PROPOSAL: { status: 413 },
  INVALID_MEMBERSHIP_CHANGE: { status: 409 },
  INVALID_TRANSFER_TARGET: { status: 400 },
  TRANSFER_ABANDONED: { status: 409 },
  CATCH_UP_TIMEOUT: { status: 409 },
  REMOVED: { status: 410 },
  // Outcome unknown: a write may still commit.
  TIMEOUT: { status: 504 },
  STOPPED: { status: 503, retry: true },
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly leaderId?: number,
    readonly extra?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** `host:port` with a port in 1..65535, as the transport parses it; undefined otherwise. */
function checkedAddress(text: unknown, maxBytes: number): string | undefined {
  if (typeof text !== "string" || text.length === 0) return undefined;
  if (new TextEncoder().encode(text).byteLength > maxBytes) return undefined;
  try {
    const { port } = parseAddress(text);
    return port >= 1 && port <= 65535 ? text : undefined;
  } catch {
    return undefined;
  }
}

/** Whether `hostname` (no brackets) is a loopback name: 127.0.0.0/8, `::1`, `localhost`. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** A member id from JSON or a path: an integer in 1..MAX_MEMBER_ID; undefined otherwise. */
function checkedId(v: unknown): number | undefined {
  return typeof v === "number" && Number.isInteger(v) && v >= 1 &&
      v <= MAX_MEMBER_ID
    ? v
    : undefined;
}

/** Every member of `m` (voters of both halves and learners), sorted. */
function membersOf(m: Membership): number[] {
  return [...new Set([...m.voters, ...m.outgoing, ...m.learners])].sort((
    a,
    b,
  ) => a - b);
}

/** Path and query string of an absolute request URL, without a full URL parse. */
function splitUrl(url: string): { path: string; query: string } {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return { path: "/", query: "" };
  const q = url.indexOf("?", start);
  return q < 0
    ? { path: url.slice(start), query: "" }
    : { path: url.slice(start, q), query: url.slice(q + 1) };
}

function json(
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

function errorResponse(
  e: HttpError,
  headers: Record<string, string> = {},
): Response {
  const error: Record<string, unknown> = { code: e.code, message: e.message };
  if (e.leaderId !== undefined) error.leaderId = e.leaderId;
  if (e.extra !== undefined) Object.assign(error, e.extra);
  return json(e.status, { error }, headers);
}

/** Maps runtime and core errors to HTTP errors by their stable `code`. */
function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof RaftIoError) {
    const entry = HTTP_STATUS_BY_CODE[e.code];
    const extra: Record<string, unknown> = {};
    const fields = e as unknown as Record<string, unknown>;
    for (const f of ["members", "nodeId", "target"]) {
      if (fields[f] !== undefined) extra[f] = fields[f];
    }
    const leaderId = typeof fields.leaderId === "number"
      ? fields.leaderId
      : undefined;
    return new HttpError(
      entry?.status ?? 500,
      e.code,
      e.message,
      leaderId,
      Object.keys(extra).length > 0 ? extra : undefined,
    );
  }
  return new HttpError(
    500,
    "INTERNAL",
    e instanceof Error ? e.message : String(e),
  );
}

/**
 * The length of `s` when it is all ASCII other than `%` (so that it is its
 * own percent-decoding and its UTF-8 length is its length), else 0.
 */
function asciiLength(s: string): number {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80 || c === 0x25) return 0;
  }
  return n;
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin);
}

/**
 * The request handler of the key-value service: a plain
 * `(Request) => Promise<Response>`, served by `Deno.serve` (see
 * {@linkcode serveKvHttp}) or any fetch-style server.
 *
 * @example
 * ```ts ignore
 * import { KvHttpApi, serveKvHttp } from "@raft-io/raft/kv";
 * const api = new KvHttpApi({ server, kv });
 * const http = serveKvHttp(api, { hostname: "127.0.0.1", port: 8001 });
 * // curl -X PUT --data hello http://127.0.0.1:8001/kv/greeting
 * await http.shutdown();
 * ```
 */
export class KvHttpApi {
  private readonly server: RaftServer<KvResult>;
  private readonly kv: KvStateMachine;
  private readonly httpAddresses: Map<number, string>;
  private readonly forward: "proxy" | "redirect";
  private readonly maxKeyBytes: number;
  private readonly maxBodyBytes: number;
  private readonly extraMetrics: (() => string) | undefined;
  private readonly counters = { requests: 0, forwarded: 0, errors: 0 };
  readonly #auth: ClientAuth | undefined;
  readonly #logger: Logger | undefined;
  readonly #insecure: boolean;
  readonly #clusterId: string | undefined;
  readonly #scheme: "http" | "https";
  readonly #maxInflightBytes: number;
  readonly #bodyTimeoutMs: number;
  readonly #authFailures: Record<AuthFailureReason, number> = {
    missing: 0,
    malformed: 0,
    unknown_token: 0,
    forbidden: 0,
  };
  #inflightBytes = 0;
  #overloaded = 0;
  #bodyTimeouts = 0;
  /** Body bytes each request holds in `#inflightBytes`, released when it is answered. */
  readonly #reserved = new WeakMap<Request, number>();
  /** When each request arrived (`performance.now()`), for the body deadline. */
  readonly #arrived = new WeakMap<Request, number>();

  /**
   * Creates the handler.
   *
   * @param options the server, its state machine and limits
   */
  constructor(options: KvHttpApiOptions) {
    this.server = options.server;
    this.kv = options.kv;
    this.httpAddresses = options.httpAddresses ?? new Map();
    this.forward = options.forward ?? "proxy";
    this.maxKeyBytes = options.maxKeyBytes ?? 1024;
    this.maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
    this.extraMetrics = options.extraMetrics;
    this.#auth = options.auth;
    this.#logger = options.logger;
    this.#insecure = options.insecure ?? false;
    this.#clusterId = options.clusterId;
    this.#scheme = options.scheme ?? "http";
    this.#maxInflightBytes = options.maxInflightBytes ?? 64 * 1024 * 1024;
    this.#bodyTimeoutMs = options.bodyTimeoutMs ?? 10_000;
  }

  /** Request body bytes buffered right now, over all requests. */
  get inflightBytes(): number {
    return this.#inflightBytes;
  }

  /**
   * The client URL of node `id`, when known: from its metadata in the
   * replicated configuration (`host:port`), else from `httpAddresses`.
   */
  httpUrlOf(id: number): string | undefined {
    const meta = this.server.status().membership.nodes[id]?.metadata;
    const addr = checkedAddress(meta, MAX_METADATA_BYTES) ??
      this.httpAddresses.get(id);
    return addr === undefined || addr === ""
      ? undefined
      : `${this.#scheme}://${addr}`;
  }

  /**
   * Handles one request. Never throws.
   *
   * @param req the request
   * @param info what the server knows about it (the client's address, for logs)
   * @returns the response
   */
  async handle(req: Request, info: KvRequestInfo = {}): Promise<Response> {
    this.counters.requests++;
    this.#arrived.set(req, performance.now());
    try {
      const refused = this.#authenticate(req, info);
      if (refused !== undefined) {
        await req.body?.cancel().catch(() => {});
        return refused;
      }
      return await this.#route(req);
    } catch (e) {
      this.counters.errors++;
      const err = toHttpError(e);
      if (err.code === "NOT_LEADER") return this.#notLeader(req, err);
      return errorResponse(
        err,
        err.status === 408
          ? { connection: "close" }
          : HTTP_STATUS_BY_CODE[err.code]?.retry === true
          ? { "retry-after": "1" }
          : {},
      );
    } finally {
      const held = this.#reserved.get(req);
      if (held !== undefined) {
        this.#inflightBytes -= held;
        this.#reserved.delete(req);
      }
    }
  }

  /** Undefined when the request may go on; else its 401 or 403. */
  #authenticate(req: Request, info: KvRequestInfo): Response | undefined {
    if (this.#auth === undefined) return undefined;
    const { path } = splitUrl(req.url);
    const needed = requiredRole(req.method, path);
    const r = this.#auth.check(req.headers.get("authorization"), needed);
    if (r.ok) return undefined;
    this.#authFailures[r.reason]++;
    this.#logger?.warn(
      `client auth failure (${r.reason}) from ${
        info.remoteAddr ?? "unknown"
      }: ${req.method} ${path}${
        r.reason === "forbidden" ? ` needs role ${needed}` : ""
      }`,
    );
    if (r.status === 403) {
      return errorResponse(
        new HttpError(
          403,
          "FORBIDDEN",
          `${req.method} ${path} needs a token of role ${needed} or higher`,
        ),
      );
    }
    const challenge = r.reason === "missing"
      ? 'Bearer realm="raft-io"'
      : 'Bearer realm="raft-io", error="invalid_token"';
    return errorResponse(
      new HttpError(
        401,
        "UNAUTHORIZED",
        r.reason === "missing"
          ? "this node needs Authorization: Bearer TOKEN"
          : "the bearer token is not valid",
      ),
      { "www-authenticate": challenge },
    );
  }

  /** Prometheus lines of the API's own counters (auth failures, in-flight bytes). */
  #apiMetrics(): string {
    const lines = [
      "# HELP raft_http_auth_failures_total Client requests refused by authentication (401) or authorization (403), by reason.",
      "# TYPE raft_http_auth_failures_total counter",
    ];
    for (const [reason, n] of Object.entries(this.#authFailures)) {
      lines.push(`raft_http_auth_failures_total{reason="${reason}"} ${n}`);
    }
    lines.push(
      "# HELP raft_http_inflight_body_bytes Request body bytes buffered now.",
      "# TYPE raft_http_inflight_body_bytes gauge",
      `raft_http_inflight_body_bytes ${this.#inflightBytes}`,
      "# HELP raft_http_overloaded_total Requests answered 503 because the in-flight body bytes were at their bound.",
      "# TYPE raft_http_overloaded_total counter",
      `raft_http_overloaded_total ${this.#overloaded}`,
      "# HELP raft_http_body_timeouts_total Requests answered 408 because the body did not arrive in time.",
      "# TYPE raft_http_body_timeouts_total counter",
      `raft_http_body_timeouts_total ${this.#bodyTimeouts}`,
    );
    const extra = this.extraMetrics?.();
    if (extra) lines.push(extra);
    return lines.join("\n");
  }

  async #route(req: Request): Promise<Response> {
    const { path, query } = splitUrl(req.url);
    const method = req.method;
    if (
      this.server.isRemoved &&
      !(method === "GET" &&
        (path === "/status" || path === "/metrics" || path === "/leader"))
    ) {
      throw this.#removedError();
    }
    if (path.startsWith("/kv/")) {
      if (method === "POST" && path.endsWith("/cas")) {
        return await this.#cas(req, this.#key(path.slice(4, -4)));
      }
      const key = this.#key(path.slice(4));
      if (method === "GET" || method === "HEAD") {
        return await this.#get(req, key, query);
      }
      if (method === "PUT") return await this.#put(req, key);
      if (method === "DELETE") return await this.#delete(req, key);
      throw new HttpError(
        405,
        "METHOD_NOT_ALLOWED",
        `${method} is not allowed on /kv/{key}`,
      );
    }
    if (path === "/status" && method === "GET") {
      return json(200, this.#status());
    }
    if (path === "/leader" && method === "GET") return this.#leader();
    if (path === "/metrics" && method === "GET") {
      return new Response(
        renderMetrics(
          this.server,
          this.kv,
          this.counters,
          () => this.#apiMetrics(),
        ),
        {
          headers: { "content-type": "text/plain; version=0.0.4" },
        },
      );
    }
    if (path === "/members" && method === "POST") {
      return await this.#addMember(req);
    }
    if (path.startsWith("/members/") && method === "DELETE") {
      return await this.#removeMember(req, path.slice(9));
    }
    if (path === "/leader/transfer" && method === "POST") {
      return await this.#transfer(req);
    }
    throw new HttpError(404, "NOT_FOUND", `no route ${method} ${path}`);
  }

  #key(raw: string): string {
    // Fast path (the common case): plain ASCII without escapes is its own
    // decoding, one byte per character.
    const ascii = asciiLength(raw);
    if (ascii > 0 && ascii <= this.maxKeyBytes) return raw;
    let key: string;
    try {
      key = decodeURIComponent(raw);
    } catch {
      throw new HttpError(
        400,
        "BAD_KEY",
        "the key is not valid percent-encoded UTF-8",
      );
    }
    const bytes = new TextEncoder().encode(key).byteLength;
    if (bytes === 0) throw new HttpError(400, "BAD_KEY", "the key is empty");
    if (bytes > this.maxKeyBytes) {
      throw new HttpError(
        400,
        "BAD_KEY",
        `the key is ${bytes} bytes; the limit is ${this.maxKeyBytes}`,
      );
    }
    return key;
  }

  /**
   * Reads the body within the limits: at most `maxBodyBytes` (413), within
   * the in-flight bound over all requests (503 `OVERLOADED`, at once when
   * the declared length would pass it), before the body deadline (408).
   */
  async #body(req: Request): Promise<Uint8Array<ArrayBuffer>> {
    const length = req.headers.get("content-length");
    const declared = length === null ? 0 : Number(length);
    if (declared > this.maxBodyBytes) {
      await req.body?.cancel().catch(() => {});
      throw new HttpError(
        413,
        "BODY_TOO_LARGE",
        `the body is ${declared} bytes; the limit is ${this.maxBodyBytes}`,
      );
    }
    if (req.body === null) return new Uint8Array(0);
    const reserve = (n: number) => {
      if (this.#inflightBytes + n > this.#maxInflightBytes) {
        this.#overloaded++;
        throw new HttpError(
          503,
          "OVERLOADED",
          `this node is buffering ${this.#inflightBytes} request bytes, its bound (--max-inflight-bytes ${this.#maxInflightBytes}); retry shortly`,
        );
      }
      this.#inflightBytes += n;
      this.#reserved.set(req, (this.#reserved.get(req) ?? 0) + n);
    };
    const reader = req.body.getReader();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const started = this.#arrived.get(req) ?? performance.now();
    const left = this.#bodyTimeoutMs - (performance.now() - started);
    const deadline = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), Math.max(0, left));
    });
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let size = 0;
    try {
      // Reserve the declared length up front so a burst is refused before
      // anything is buffered.
      reserve(declared);
      let reserved = declared;
      while (true) {
        const r = await Promise.race([reader.read(), deadline]);
        if (r === "timeout") {
          this.#bodyTimeouts++;
          throw new HttpError(
            408,
            "BODY_TIMEOUT",
            `the body did not arrive within ${this.#bodyTimeoutMs} ms`,
          );
        }
        if (r.done) break;
        const value = r.value as Uint8Array<ArrayBuffer>;
        size += value.byteLength;
        if (size > this.maxBodyBytes) {
          throw new HttpError(
            413,
            "BODY_TOO_LARGE",
            `the body exceeds the limit of ${this.maxBodyBytes} bytes`,
          );
        }
        if (size > reserved) {
          reserve(size - reserved);
          reserved = size;
        }
        chunks.push(value);
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (chunks.length === 1) return chunks[0];
    const out = new Uint8Array(size);
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }

  /** Proposes on the leader; on a follower forwards (or redirects) the original request. */
  async #write(
    req: Request,
    body: Uint8Array<ArrayBuffer>,
    cmd: () => KvCommand,
  ): Promise<KvResult | Response> {
    if (this.server.role !== "leader") {
      return await this.#notLeader(
        req,
        toHttpError(new NotLeaderError(this.server.leaderId)),
        body,
      );
    }
    try {
      return await this.server.propose(encodeKvCommand(cmd()));
    } catch (e) {
      if (e instanceof NotLeaderError) {
        return await this.#notLeader(req, toHttpError(e), body);
      }
      throw e;
    }
  }

  async #put(req: Request, key: string): Promise<Response> {
    const value = await this.#body(req);
    const r = await this.#write(req, value, () => ({ op: "put", key, value }));
    if (r instanceof Response) return r;
    return new Response(null, { status: 204 });
  }

  async #delete(req: Request, key: string): Promise<Response> {
    await req.body?.cancel();
    const r = await this.#write(
      req,
      new Uint8Array(0),
      () => ({ op: "delete", key }),
    );
    if (r instanceof Response) return r;
    if (!r.ok) {
      throw new HttpError(404, "NOT_FOUND", `no key ${JSON.stringify(key)}`);
    }
    return new Response(null, { status: 204 });
  }

  async #cas(req: Request, key: string): Promise<Response> {
    const body = await this.#body(req);
    let parsed: { expect?: unknown; value?: unknown; encoding?: unknown };
    try {
      parsed = JSON.parse(new TextDecoder().decode(body));
    } catch {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'expected JSON {"expect": string | null, "value": string}',
      );
    }
    const encoding = parsed.encoding ?? "utf8";
    if (encoding !== "utf8" && encoding !== "base64") {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'encoding must be "utf8" or "base64"',
      );
    }
    const decode = (v: unknown, field: string): Uint8Array => {
      if (typeof v !== "string") {
        throw new HttpError(400, "BAD_REQUEST", `${field} must be a string`);
      }
      try {
        return encoding === "base64"
          ? fromBase64(v)
          : new TextEncoder().encode(v);
      } catch {
        throw new HttpError(400, "BAD_REQUEST", `${field} is not valid base64`);
      }
    };
    const expect = parsed.expect === null || parsed.expect === undefined
      ? null
      : decode(parsed.expect, "expect");
    const value = decode(parsed.value, "value");
    const r = await this.#write(
      req,
      body,
      () => ({ op: "cas", key, expect, value }),
    );
    if (r instanceof Response) return r;
    if (r.ok) return json(200, { ok: true });
    const current = r.current === undefined
      ? null
      : encoding === "base64"
      ? toBase64(r.current)
      : new TextDecoder().decode(r.current);
    return json(409, {
      error: {
        code: "CAS_MISMATCH",
        message: `the value of ${JSON.stringify(key)} is not the expected one`,
      },
      current,
    });
  }

  async #get(req: Request, key: string, query: string): Promise<Response> {
    const c = query === ""
      ? "linearizable"
      : new URLSearchParams(query).get("consistency") ?? "linearizable";
    if (c !== "linearizable" && c !== "lease" && c !== "stale") {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        "consistency must be linearizable, lease or stale",
      );
    }
    if (
      c === "linearizable" && this.forward === "redirect" &&
      this.server.role !== "leader"
    ) {
      // Redirect mode sends linearizable reads to the leader like writes.
      return await this.#notLeader(
        req,
        toHttpError(new NotLeaderError(this.server.leaderId)),
      );
    }
    await this.server.read({ consistency: c as ReadConsistency });
    const value = this.kv.get(key);
    if (value === undefined) {
      throw new HttpError(404, "NOT_FOUND", `no key ${JSON.stringify(key)}`);
    }
    return new Response(value, {
      status: 200,
      headers: { "content-type": "application/octet-stream" },
    });
  }

  /** Forwards `req` to the leader, redirects to it, or answers 503 naming it. */
  async #notLeader(
    req: Request,
    err: HttpError,
    body?: Uint8Array<ArrayBuffer>,
  ): Promise<Response> {
    const leaderId = this.server.leaderId;
    const leaderUrl = leaderId === 0 ? undefined : this.httpUrlOf(leaderId);
    const wrapped = new HttpError(503, "NOT_LEADER", err.message, leaderId);
    if (
      leaderUrl === undefined || req.headers.get(FORWARDED_HEADER) !== null ||
      leaderId === this.server.id
    ) {
      await req.body?.cancel().catch(() => {});
      return errorResponse(wrapped, { "retry-after": "1" });
    }
    const url = new URL(req.url);
    const target = `${leaderUrl}${url.pathname}${url.search}`;
    if (this.forward === "redirect") {
      await req.body?.cancel().catch(() => {});
      return new Response(
        JSON.stringify({
          error: { code: "NOT_LEADER", message: err.message, leaderId },
        }),
        {
          status: 307,
          headers: { location: target, "content-type": "application/json" },
        },
      );
    }
    if (
      body === undefined && req.bodyUsed && req.method !== "GET" &&
      req.method !== "HEAD"
    ) {
      return errorResponse(wrapped, { "retry-after": "1" });
    }
    const payload = body ??
      (req.body === null || req.bodyUsed ? undefined : await this.#body(req));
    this.counters.forwarded++;
    try {
      const headers: Record<string, string> = {
        [FORWARDED_HEADER]: String(this.server.id),
      };
      const ct = req.headers.get("content-type");
      if (ct !== null) headers["content-type"] = ct;
      // The leader checks the client's own token again (every node is
      // given the same tokens file), so a forward never widens access.
      const authorization = req.headers.get("authorization");
      if (authorization !== null) headers["authorization"] = authorization;
      const res = await fetch(target, {
        method: req.method,
        headers,
        body:
          payload !== undefined && req.method !== "GET" && req.method !== "HEAD"
            ? payload
            : undefined,
        signal: AbortSignal.timeout(15_000),
      });
      const out = new Headers();
      for (
        const h of [
          "content-type",
          "location",
          "retry-after",
          "www-authenticate",
        ]
      ) {
        const v = res.headers.get(h);
        if (v !== null) out.set(h, v);
      }
      out.set("x-raft-served-by", String(leaderId));
      return new Response(res.status === 204 ? null : await res.arrayBuffer(), {
        status: res.status,
        headers: out,
      });
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      if (req.method === "GET" || req.method === "HEAD") {
        // A read changes nothing: retrying it is always safe.
        return errorResponse(
          new HttpError(
            503,
            "NOT_LEADER",
            `forwarding to the leader (node ${leaderId}) failed: ${reason}`,
            leaderId,
          ),
          { "retry-after": "1" },
        );
      }
      // The leader may have received the write and replicated it before the
      // connection broke, so it may still commit: the outcome is unknown and
      // a blind retry could apply it twice.
      return errorResponse(
        new HttpError(
          504,
          "FORWARD_FAILED",
          `forwarding to the leader (node ${leaderId}) failed, so the outcome is unknown (the write may still commit): ${reason}`,
          leaderId,
        ),
      );
    }
  }

  #status(): Record<string, unknown> {
    const st = this.server.status();
    const role = st.role === "precandidate" ? "candidate" : st.role;
    const peers = st.progress.filter((p) => p.id !== st.id).map((p) => ({
      id: p.id,
      match: p.match,
      lag: Math.max(0, st.lastIndex - p.match),
      state: p.state,
      learner: p.isLearner,
    }));
    return {
      id: st.id,
      role,
      term: st.term,
      leader: st.leader,
      leaderUrl: st.leader === 0 ? null : this.httpUrlOf(st.leader) ?? null,
      commit: st.commit,
      applied: this.server.applied,
      lastIndex: st.lastIndex,
      snapshotIndex: st.snapshotIndex,
      snapshotInProgress: st.snapshotInProgress,
      leaderReady: st.leaderReady,
      removed: st.removed,
      insecure: this.#insecure,
      clusterId: this.#clusterId ?? null,
      clientAuth: this.#auth !== undefined,
      membership: st.membership,
      peers,
      keys: this.kv.size,
    };
  }

  #leader(): Response {
    const id = this.server.leaderId;
    const url = id === 0 ? undefined : this.httpUrlOf(id);
    if (url === undefined) {
      return errorResponse(
        new HttpError(
          503,
          "NO_LEADER",
          id === 0
            ? "no leader is known yet"
            : `node ${id} leads, address unknown`,
          id,
        ),
        { "retry-after": "1" },
      );
    }
    return json(200, { leader: url, id });
  }

  /** 410 REMOVED naming the current members (and their client URLs where known). */
  #removedError(): HttpError {
    const st = this.server.status();
    const members = membersOf(st.membership).filter((m) => m !== st.id);
    const urls: Record<string, string> = {};
    for (const m of members) {
      const url = this.httpUrlOf(m);
      if (url !== undefined) urls[m] = url;
    }
    return new HttpError(
      410,
      "REMOVED",
      `node ${st.id} was removed from the cluster; it no longer serves clients: use a member (${
        members.join(", ") || "none known"
      })`,
      undefined,
      { members, urls },
    );
  }

  /** The leader's answer when this node is not the leader: forward, redirect or 503. */
  async #unlessLeader(
    req: Request,
    body: Uint8Array<ArrayBuffer>,
  ): Promise<Response | undefined> {
    if (this.server.role === "leader") return undefined;
    return await this.#notLeader(
      req,
      toHttpError(new NotLeaderError(this.server.leaderId)),
      body,
    );
  }

  /** `body` as a JSON object with only `allowed` fields (an empty body: `{}`). */
  #jsonObject(body: Uint8Array, allowed: string[]): Record<string, unknown> {
    if (body.byteLength === 0) return {};
    let v: unknown;
    try {
      v = JSON.parse(new TextDecoder().decode(body));
    } catch {
      v = undefined;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      throw new HttpError(400, "BAD_REQUEST", "expected a JSON object");
    }
    const unknown = Object.keys(v).filter((k) => !allowed.includes(k));
    if (unknown.length > 0) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `unknown field${unknown.length > 1 ? "s" : ""} ${
          unknown.map((k) => JSON.stringify(k)).join(", ")
        } (allowed: ${allowed.join(", ")})`,
      );
    }
    return v as Record<string, unknown>;
  }

  /** An optional `timeoutMs` field: an integer in 1..600000. */
  #timeoutField(v: unknown): number | undefined {
    if (v === undefined) return undefined;
    if (
      typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 600_000
    ) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        "timeoutMs must be an integer number of milliseconds in 1..600000",
      );
    }
    return v;
  }

  async #addMember(req: Request): Promise<Response> {
    // Validated in full on whichever node receives it, before anything is
    // forwarded or proposed, so nothing that commits can later fail to parse.
    const body = await this.#body(req);
    const b = this.#jsonObject(body, [
      "id",
      "raft",
      "http",
      "role",
      "timeoutMs",
    ]);
    const id = checkedId(b.id);
    if (id === undefined) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `id must be an integer in 1..${MAX_MEMBER_ID}`,
      );
    }
    const raft = checkedAddress(b.raft, MAX_ADDRESS_BYTES);
    if (raft === undefined) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'raft must be the node\'s Raft address "host:port" (port 1..65535)',
      );
    }
    const http = checkedAddress(b.http, MAX_METADATA_BYTES);
    if (http === undefined) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'http must be the node\'s client address "host:port" (port 1..65535)',
      );
    }
    const role = b.role ?? "voter";
    if (role !== "learner" && role !== "voter") {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'role must be "voter" (the default) or "learner"',
      );
    }
    const timeoutMs = this.#timeoutField(b.timeoutMs);
    const forwarded = await this.#unlessLeader(req, body);
    if (forwarded !== undefined) return forwarded;

    const m = this.server.status().membership;
    const members = membersOf(m);
    const recorded = m.nodes[id];
    if (members.includes(id)) {
      const promotion = role === "voter" && m.learners.includes(id) &&
        !m.outgoing.includes(id) && recorded?.address === raft &&
        recorded?.metadata === http;
      if (!promotion) {
        const what = m.learners.includes(id) ? "a learner" : "a voter";
        throw new HttpError(
          409,
          "MEMBER_EXISTS",
          `node ${id} is already ${what} (raft ${
            recorded?.address || "unknown"
          }, http ${
            recorded?.metadata || "unknown"
          }); nothing changed. Remove it first (DELETE /members/${id}) to re-add it` +
            (m.learners.includes(id)
              ? `, or promote it with role "voter" and its recorded addresses`
              : ""),
        );
      }
    }
    for (const other of members) {
      if (other !== id && m.nodes[other]?.address === raft) {
        throw new HttpError(
          409,
          "MEMBER_EXISTS",
          `node ${other} already has the Raft address ${raft}; nothing changed`,
        );
      }
    }
    let index: number;
    try {
      if (role === "voter") {
        index = await this.#addVoter(
          id,
          members.includes(id) ? undefined : { address: raft, metadata: http },
          timeoutMs ?? DEFAULT_MEMBER_TIMEOUT_MS,
        );
      } else {
        index = await this.server.addLearner(id, {
          address: raft,
          metadata: http,
          timeoutMs,
        });
      }
    } catch (e) {
      if (e instanceof RaftIoError && e.code === "CATCH_UP_TIMEOUT") {
        throw new HttpError(
          409,
          "CATCH_UP_TIMEOUT",
          `${e.message}. Node ${id} stays a learner: start it (or check that ${raft} reaches it), then POST /members again with role "voter", or DELETE /members/${id}`,
          undefined,
          { nodeId: id, role: "learner" },
        );
      }
      throw e;
    }
    return json(200, { index, membership: this.server.status().membership });
  }

  /**
   * Adds `id` as a learner (unless it is one: `info` undefined), waits for
   * its first acknowledgment, then lets `server.addVoter` wait for it to
   * catch up and promote it. The wait for an acknowledgment guards against
   * the runtime counting a learner it has never heard from as caught up
   * (a new member's progress starts active with match 0, which is within
   * `learnerCatchUpEntries` of a young log).
   */
  async #addVoter(
    id: number,
    info: { address: string; metadata: string } | undefined,
    timeoutMs: number,
  ): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    const remaining = () =>
      Math.max(1, Math.ceil(deadline - performance.now()));
    if (info !== undefined) {
      await this.server.addLearner(id, { ...info, timeoutMs });
    }
    while (true) {
      const st = this.server.status();
      if (st.role !== "leader") throw new NotLeaderError(st.leader);
      const match = st.progress.find((p) => p.id === id)?.match ?? 0;
      if (match > 0) break;
      if (performance.now() >= deadline) {
        throw new CatchUpTimeoutError(id, match, st.lastIndex, timeoutMs);
      }
      await new Promise((r) => setTimeout(r, Math.min(st.tickMs, remaining())));
    }
    return await this.server.addVoter(id, { timeoutMs: remaining() });
  }

  async #removeMember(req: Request, raw: string): Promise<Response> {
    const id = /^[1-9][0-9]{0,9}$/.test(raw)
      ? checkedId(Number(raw))
      : undefined;
    if (id === undefined) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `the member id must be an integer in 1..${MAX_MEMBER_ID}`,
      );
    }
    const body = await this.#body(req);
    const b = this.#jsonObject(body, ["timeoutMs"]);
    const timeoutMs = this.#timeoutField(b.timeoutMs);
    const forwarded = await this.#unlessLeader(req, body);
    if (forwarded !== undefined) return forwarded;
    if (!membersOf(this.server.status().membership).includes(id)) {
      throw new HttpError(
        404,
        "NOT_A_MEMBER",
        `node ${id} is not a member; nothing changed`,
      );
    }
    const index = await this.server.removeNode(id, { timeoutMs });
    return json(200, { index, membership: this.server.status().membership });
  }

  async #transfer(req: Request): Promise<Response> {
    const body = await this.#body(req);
    const b = this.#jsonObject(body, ["to", "timeoutMs"]);
    const to = b.to === undefined ? undefined : checkedId(b.to);
    if (b.to !== undefined && to === undefined) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `to must be a node id (an integer in 1..${MAX_MEMBER_ID})`,
      );
    }
    const timeoutMs = this.#timeoutField(b.timeoutMs);
    const forwarded = await this.#unlessLeader(req, body);
    if (forwarded !== undefined) return forwarded;
    const leader = await this.server.transferLeadership(to, { timeoutMs });
    return json(200, {
      leader,
      leaderUrl: this.httpUrlOf(leader) ?? null,
    });
  }
}

/** A running HTTP listener of the key-value service. */
export interface KvHttpServer {
  /** The bound address, `host:port`. */
  readonly address: string;
  /** Stops accepting, finishes in-flight requests, resolves when closed. */
  shutdown(): Promise<void>;
}

/** TLS of the client API: PEM certificate chain and private key. */
export interface KvHttpTls {
  /** PEM certificate (chain). */
  cert: string;
  /** PEM private key. */
  key: string;
}

/**
 * Serves `api` with `Deno.serve` on `hostname:port` (port 0: any free
 * port); with `tls`, over HTTPS (`Deno.serve`'s `cert` and `key`).
 * `Deno.serve` has no header or idle timeout settings: the body deadline
 * and the in-flight bound of {@linkcode KvHttpApi} apply; for header and
 * idle limits run the node on `node:http` or behind a proxy.
 *
 * @example
 * ```ts ignore
 * const http = serveKvHttp(api, { hostname: "127.0.0.1", port: 0 });
 * console.log(http.address);
 * await http.shutdown();
 * ```
 */
export function serveKvHttp(
  api: KvHttpApi,
  addr: { hostname: string; port: number },
  tls?: KvHttpTls,
): KvHttpServer {
  const handler = (req: Request, info: Deno.ServeHandlerInfo) => {
    const r = info.remoteAddr as Deno.NetAddr;
    return api.handle(req, { remoteAddr: `${r.hostname}:${r.port}` });
  };
  const server = tls === undefined
    ? Deno.serve({
      hostname: addr.hostname,
      port: addr.port,
      onListen: () => {},
    }, handler)
    : Deno.serve({
      hostname: addr.hostname,
      port: addr.port,
      cert: tls.cert,
      key: tls.key,
      onListen: () => {},
    }, handler);
  const a = server.addr as Deno.NetAddr;
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return {
    address: `${host}:${a.port}`,
    shutdown: async () => {
      await server.shutdown();
    },
  };
}
