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
 * Keys are the URL path after `/kv/`, percent-decoded, 1..1024 UTF-8 bytes.
 * Bodies are limited to 1 MiB by default (413). Errors are JSON
 * `{"error": {"code", "message", "leaderId"?}}`. Definite failures (nothing
 * was applied): 4xx, `NOT_LEADER`, `OVERLOADED`, `PROPOSAL_DROPPED`. Outcome
 * unknown (the write may still commit; do not retry blindly): `TIMEOUT`,
 * `STOPPED`, `FORWARD_FAILED` (504: the forward to the leader broke) and 500.
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

import {
  ConfigChangeInProgressError,
  InvalidMembershipChangeError,
  InvalidTransferTargetError,
  NotLeaderError,
  OverloadedError,
  ProposalDroppedError,
  TransferInProgressError,
} from "../core/errors.ts";
import type { RaftServer } from "../runtime/raft_server.ts";
import type { ReadConsistency } from "../runtime/server_types.ts";
import { StoppedError, TimeoutError } from "../runtime/errors.ts";
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
  /** Client HTTP addresses (`host:port`) known from configuration, by node id; the replicated address book wins. */
  httpAddresses?: Map<number, string>;
  /** What a follower does with writes: `"proxy"` them to the leader (default) or `"redirect"` (307). */
  forward?: "proxy" | "redirect";
  /** Largest key in UTF-8 bytes (default 1024). */
  maxKeyBytes?: number;
  /** Largest request body in bytes (default 1 MiB). */
  maxBodyBytes?: number;
  /** Extra Prometheus lines appended to `/metrics` (e.g. transport error counts). */
  extraMetrics?: () => string;
}

const FORWARDED_HEADER = "x-raft-forwarded";

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly leaderId?: number,
  ) {
    super(message);
  }
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
  return json(e.status, { error }, headers);
}

/** Maps runtime and core errors to HTTP errors. */
function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof NotLeaderError) {
    return new HttpError(503, "NOT_LEADER", e.message, e.leaderId);
  }
  if (e instanceof OverloadedError) {
    return new HttpError(503, "OVERLOADED", e.message);
  }
  if (e instanceof TimeoutError) {
    return new HttpError(504, "TIMEOUT", e.message);
  }
  if (e instanceof StoppedError) {
    return new HttpError(503, "STOPPED", e.message);
  }
  if (e instanceof TransferInProgressError) {
    return new HttpError(503, "TRANSFER_IN_PROGRESS", e.message);
  }
  if (e instanceof ProposalDroppedError) {
    return new HttpError(503, "PROPOSAL_DROPPED", e.message);
  }
  if (e instanceof ConfigChangeInProgressError) {
    return new HttpError(409, "CONFIG_CHANGE_IN_PROGRESS", e.message);
  }
  if (e instanceof InvalidMembershipChangeError) {
    return new HttpError(400, "INVALID_MEMBERSHIP_CHANGE", e.message);
  }
  if (e instanceof InvalidTransferTargetError) {
    return new HttpError(400, "INVALID_TRANSFER_TARGET", e.message);
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
  }

  /** The client URL of node `id`, when known. */
  httpUrlOf(id: number): string | undefined {
    const addr = this.kv.memberAddress(id)?.http ?? this.httpAddresses.get(id);
    return addr === undefined || addr === "" ? undefined : `http://${addr}`;
  }

  /** Handles one request. Never throws. */
  async handle(req: Request): Promise<Response> {
    this.counters.requests++;
    try {
      return await this.#route(req);
    } catch (e) {
      this.counters.errors++;
      const err = toHttpError(e);
      if (err.code === "NOT_LEADER") return this.#notLeader(req, err);
      return errorResponse(
        err,
        err.status === 503 ? { "retry-after": "1" } : {},
      );
    }
  }

  async #route(req: Request): Promise<Response> {
    const { path, query } = splitUrl(req.url);
    const method = req.method;
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
        renderMetrics(this.server, this.kv, this.counters, this.extraMetrics),
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

  async #body(req: Request): Promise<Uint8Array<ArrayBuffer>> {
    const length = req.headers.get("content-length");
    const declared = length === null ? 0 : Number(length);
    if (declared > this.maxBodyBytes) {
      await req.body?.cancel();
      throw new HttpError(
        413,
        "BODY_TOO_LARGE",
        `the body is ${declared} bytes; the limit is ${this.maxBodyBytes}`,
      );
    }
    if (req.body === null) return new Uint8Array(0);
    if (length !== null) {
      // The runtime enforces the declared length: read it in one piece.
      return new Uint8Array(await req.arrayBuffer());
    }
    const chunks: Uint8Array<ArrayBuffer>[] = [];
    let size = 0;
    const reader = req.body.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > this.maxBodyBytes) {
        await reader.cancel();
        throw new HttpError(
          413,
          "BODY_TOO_LARGE",
          `the body exceeds the limit of ${this.maxBodyBytes} bytes`,
        );
      }
      chunks.push(value);
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
      for (const h of ["content-type", "location", "retry-after"]) {
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

  async #jsonBody(req: Request): Promise<Record<string, unknown>> {
    const body = await this.#body(req);
    if (body.byteLength === 0) return {};
    try {
      const v = JSON.parse(new TextDecoder().decode(body));
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        throw new Error("not an object");
      }
      return v as Record<string, unknown>;
    } catch {
      throw new HttpError(400, "BAD_REQUEST", "expected a JSON object");
    }
  }

  async #addMember(req: Request): Promise<Response> {
    if (this.server.role !== "leader") {
      return await this.#notLeader(
        req,
        toHttpError(new NotLeaderError(this.server.leaderId)),
      );
    }
    const b = await this.#jsonBody(req);
    const id = b.id;
    if (typeof id !== "number" || !Number.isSafeInteger(id) || id <= 0) {
      throw new HttpError(400, "BAD_REQUEST", "id must be a positive integer");
    }
    if (
      typeof b.raft !== "string" ||
      !/^[^\s:]+:\d+$|^\[[^\]]+\]:\d+$/.test(b.raft)
    ) {
      throw new HttpError(400, "BAD_REQUEST", 'raft must be "host:port"');
    }
    const http = typeof b.http === "string" ? b.http : "";
    const role = b.role ?? "learner";
    if (role !== "learner" && role !== "voter") {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        'role must be "learner" or "voter"',
      );
    }
    await this.server.propose(
      encodeKvCommand({ op: "member", id, address: { raft: b.raft, http } }),
    );
    const index = await this.server.changeMembership({
      type: role === "voter" ? "addVoter" : "addLearner",
      id,
    });
    return json(200, { index, membership: this.server.status().membership });
  }

  async #removeMember(req: Request, raw: string): Promise<Response> {
    const id = Number(raw);
    if (!Number.isSafeInteger(id) || id <= 0) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        "member id must be a positive integer",
      );
    }
    if (this.server.role !== "leader") {
      return await this.#notLeader(
        req,
        toHttpError(new NotLeaderError(this.server.leaderId)),
      );
    }
    const index = await this.server.changeMembership({
      type: "removeNode",
      id,
    });
    return json(200, { index, membership: this.server.status().membership });
  }

  async #transfer(req: Request): Promise<Response> {
    if (this.server.role !== "leader") {
      return await this.#notLeader(
        req,
        toHttpError(new NotLeaderError(this.server.leaderId)),
      );
    }
    const b = await this.#jsonBody(req);
    const st = this.server.status();
    let to = b.to;
    if (to === undefined) {
      const candidates = st.progress.filter((p) =>
        p.id !== st.id && !p.isLearner && st.membership.voters.includes(p.id)
      );
      candidates.sort((x, y) => y.match - x.match);
      if (candidates.length === 0) {
        throw new HttpError(
          400,
          "INVALID_TRANSFER_TARGET",
          "no other voter to transfer to",
        );
      }
      to = candidates[0].id;
    }
    if (typeof to !== "number" || !Number.isSafeInteger(to)) {
      throw new HttpError(400, "BAD_REQUEST", "to must be a node id");
    }
    this.server.transferLeadership(to);
    const deadline = performance.now() + st.tickMs * 30;
    while (
      this.server.leaderId !== to && performance.now() < deadline &&
      !this.server.isStopped
    ) {
      await new Promise((r) => setTimeout(r, Math.max(5, st.tickMs / 2)));
    }
    const done = this.server.leaderId === to;
    return json(done ? 200 : 202, {
      leader: this.server.leaderId,
      target: to,
      transferred: done,
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

/**
 * Serves `api` with `Deno.serve` on `hostname:port` (port 0: any free port).
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
): KvHttpServer {
  const server = Deno.serve({
    hostname: addr.hostname,
    port: addr.port,
    onListen: () => {},
  }, (req) => api.handle(req));
  const a = server.addr as Deno.NetAddr;
  const host = a.hostname.includes(":") ? `[${a.hostname}]` : a.hostname;
  return {
    address: `${host}:${a.port}`,
    shutdown: async () => {
      await server.shutdown();
    },
  };
}
