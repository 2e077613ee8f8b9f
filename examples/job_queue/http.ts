/**
 * The job queue's HTTP front end, on `node:http` (the same code runs under
 * Deno and Node).
 *
 * | Route                      | Body (JSON)                        | Answer                        |
 * | -------------------------- | ---------------------------------- | ----------------------------- |
 * | `POST /jobs`               | `{"payload": string}`              | 201 `{"job"}`                 |
 * | `POST /jobs/claim`         | `{"owner": string, "leaseMs"?: n}` | 200 `{"job": job \| null}`    |
 * | `POST /jobs/{id}/complete` | `{"owner": string, "result"?: s}`  | 200 `{"job"}`                 |
 * | `GET /jobs`                | `?state=…&consistency=…`           | 200 `{"jobs", "readIndex"}`   |
 * | `GET /status`              |                                    | 200 role, leader, indexes     |
 *
 * Writes go to the leader: a follower answers 307 with the leader's URL in
 * `Location` (clients that follow redirects just work), or 503 `NOT_LEADER`
 * while it knows no leader's URL. Errors are JSON
 * `{"error": {"code", "message", "definite", ...}}`, mapped from the stable
 * `code` of raft-io's errors by one table.
 *
 * @module
 */
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import {
  type Command,
  CommandRejected,
  encodeCommand,
  type RejectReason,
} from "./commands.ts";
import type { JobQueue, JobResult, JobState } from "./state_machine.ts";
import { RaftIoError, type RaftServer } from "./raft.ts";

/** What the front end needs. */
export interface JobHttpOptions {
  /** The node's Raft server. */
  server: RaftServer<JobResult>;
  /** Its state machine (read after `server.read()`). */
  queue: JobQueue;
  /** Lease of a claim without `leaseMs`, ms. @default {30000} */
  defaultLeaseMs?: number;
  /** Largest request body, bytes. @default {1048576} */
  maxBodyBytes?: number;
}

/** A listening front end. */
export interface JobHttpServer {
  /** `host:port` it listens on (the real port when 0 was asked). */
  readonly address: string;
  /** Stops listening and closes idle connections. */
  close(): Promise<void>;
}

/** An HTTP answer. */
interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * How raft-io's error codes map to HTTP. `definite`: the command certainly
 * did not take effect (safe to retry); otherwise the outcome is unknown.
 */
const ERROR_TABLE: Record<string, { status: number; definite: boolean }> = {
  APPLY_REJECTED: { status: 409, definite: true },
  INVALID_PROPOSAL: { status: 400, definite: true },
  NOT_LEADER: { status: 503, definite: true },
  OVERLOADED: { status: 503, definite: true },
  TRANSFER_IN_PROGRESS: { status: 503, definite: true },
  PROPOSAL_DROPPED: { status: 503, definite: true },
  REMOVED: { status: 503, definite: true },
  TIMEOUT: { status: 504, definite: false },
  STOPPED: { status: 503, definite: false },
};

/** HTTP status of each rejection reason of the state machine. */
const REJECT_STATUS: Record<RejectReason, number> = {
  BAD_COMMAND: 400,
  UNKNOWN_JOB: 404,
  NOT_OWNER: 409,
  ALREADY_DONE: 409,
  LEASE_EXPIRED: 409,
};

const STATES: readonly JobState[] = ["queued", "claimed", "done"];

/** The request handler, without a listener (for tests and other servers). */
export class JobHttpApi {
  readonly #server: RaftServer<JobResult>;
  readonly #queue: JobQueue;
  readonly #defaultLeaseMs: number;
  readonly #maxBodyBytes: number;

  /**
   * Creates the handler.
   *
   * @param options server, state machine and limits
   */
  constructor(options: JobHttpOptions) {
    this.#server = options.server;
    this.#queue = options.queue;
    this.#defaultLeaseMs = options.defaultLeaseMs ?? 30_000;
    this.#maxBodyBytes = options.maxBodyBytes ?? 1024 * 1024;
  }

  /** Largest request body, bytes. */
  get maxBodyBytes(): number {
    return this.#maxBodyBytes;
  }

  /** The URL of the leader's front end, from the member metadata it announced. */
  leaderUrl(): string | undefined {
    const st = this.#server.status();
    const url = st.membership.nodes[st.leader]?.metadata;
    return url ? url : undefined;
  }

  /** Handles one request; never throws. */
  async handle(
    method: string,
    url: URL,
    body: () => Promise<string>,
  ): Promise<Reply> {
    try {
      return await this.#route(method, url, body);
    } catch (e) {
      return this.#error(e, url);
    }
  }

  async #route(
    method: string,
    url: URL,
    body: () => Promise<string>,
  ): Promise<Reply> {
    const path = url.pathname;
    if (path === "/status" && method === "GET") return this.#status();
    if (path === "/jobs" && method === "GET") return await this.#list(url);
    if (path === "/jobs" && method === "POST") {
      const b = await json(body);
      const payload = b.payload;
      if (typeof payload !== "string") {
        throw new HttpError(400, "BAD_REQUEST", 'give {"payload": string}');
      }
      const r = await this.#propose({
        op: "enqueue",
        payload,
        now: Date.now(),
      });
      return { status: 201, body: { job: r.job } };
    }
    if (path === "/jobs/claim" && method === "POST") {
      const b = await json(body);
      const leaseMs = b.leaseMs ?? this.#defaultLeaseMs;
      if (typeof b.owner !== "string" || b.owner === "") {
        throw new HttpError(400, "BAD_REQUEST", 'give {"owner": string}');
      }
      if (
        typeof leaseMs !== "number" || !Number.isSafeInteger(leaseMs) ||
        leaseMs <= 0
      ) {
        throw new HttpError(
          400,
          "BAD_REQUEST",
          "leaseMs must be a positive integer",
        );
      }
      const r = await this.#propose({
        op: "claim",
        owner: b.owner,
        leaseMs,
        now: Date.now(),
      });
      return { status: 200, body: { job: r.job } };
    }
    const m = /^\/jobs\/(\d+)\/complete$/.exec(path);
    if (m !== null && method === "POST") {
      const b = await json(body);
      const result = b.result ?? "";
      if (typeof b.owner !== "string" || typeof result !== "string") {
        throw new HttpError(
          400,
          "BAD_REQUEST",
          'give {"owner": string, "result"?: string}',
        );
      }
      const r = await this.#propose({
        op: "complete",
        id: Number(m[1]),
        owner: b.owner,
        result,
        now: Date.now(),
      });
      return { status: 200, body: { job: r.job } };
    }
    const known = path === "/status" || path === "/jobs" ||
      path === "/jobs/claim" || m !== null;
    throw known
      ? new HttpError(
        405,
        "METHOD_NOT_ALLOWED",
        `${method} is not allowed on ${path}`,
      )
      : new HttpError(404, "NOT_FOUND", `no route ${path}`);
  }

  async #propose(command: Command): Promise<JobResult> {
    // Writes only on the leader: a follower's proposal would fail with NotLeaderError anyway.
    if (this.#server.role !== "leader") {
      throw new NotLeaderHere(this.#server.leaderId);
    }
    return await this.#server.propose(encodeCommand(command));
  }

  async #list(url: URL): Promise<Reply> {
    const state = url.searchParams.get("state") ?? undefined;
    if (state !== undefined && !STATES.includes(state as JobState)) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        `state must be one of ${STATES.join(", ")}`,
      );
    }
    const consistency = url.searchParams.get("consistency") ?? "linearizable";
    if (
      consistency !== "linearizable" && consistency !== "lease" &&
      consistency !== "stale"
    ) {
      throw new HttpError(
        400,
        "BAD_REQUEST",
        "consistency must be linearizable, lease or stale",
      );
    }
    // Wait until this node's state machine has applied everything committed before the request.
    const readIndex = await this.#server.read({ consistency });
    return {
      status: 200,
      body: {
        jobs: this.#queue.list(state as JobState | undefined),
        readIndex,
      },
    };
  }

  #status(): Reply {
    const st = this.#server.status();
    return {
      status: 200,
      body: {
        id: st.id,
        role: st.role,
        term: st.term,
        leader: st.leader,
        leaderUrl: this.leaderUrl() ?? null,
        leaderReady: st.leaderReady,
        commit: st.commit,
        applied: st.applied,
        voters: st.membership.voters,
        learners: st.membership.learners,
        jobs: this.#queue.counts(),
      },
    };
  }

  #error(e: unknown, url: URL): Reply {
    if (e instanceof HttpError) {
      return {
        status: e.status,
        body: { error: { code: e.code, message: e.message, definite: true } },
      };
    }
    const leaderId = e instanceof NotLeaderHere
      ? e.leaderId
      : (e as { leaderId?: number }).leaderId;
    if (e instanceof RaftIoError || e instanceof NotLeaderHere) {
      const code = e instanceof NotLeaderHere ? "NOT_LEADER" : e.code;
      const row = ERROR_TABLE[code] ?? { status: 500, definite: false };
      const error: Record<string, unknown> = {
        code,
        message: e.message,
        definite: row.definite,
      };
      let status = row.status;
      const headers: Record<string, string> = {};
      if (code === "APPLY_REJECTED" && e.cause instanceof CommandRejected) {
        error.reason = e.cause.reason;
        status = REJECT_STATUS[e.cause.reason];
      }
      if (code === "NOT_LEADER") {
        error.leaderId = leaderId ?? 0;
        const leader = this.leaderUrl();
        if (leader !== undefined) {
          error.leaderUrl = leader;
          status = 307;
          headers.location = new URL(url.pathname + url.search, leader).href;
        }
      }
      return { status, body: { error }, headers };
    }
    return {
      status: 500,
      body: {
        error: { code: "INTERNAL", message: String(e), definite: false },
      },
    };
  }
}

/** This node is not the leader (checked before proposing). */
class NotLeaderHere extends Error {
  constructor(readonly leaderId: number) {
    super(
      `this node is not the leader; the leader is ${leaderId || "unknown"}`,
    );
  }
}

async function json(
  body: () => Promise<string>,
): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = JSON.parse(await body());
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw new HttpError(400, "BAD_REQUEST", "the body must be JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new HttpError(400, "BAD_REQUEST", "the body must be a JSON object");
  }
  return v as Record<string, unknown>;
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    req.on("data", (c: Uint8Array) => {
      size += c.byteLength;
      if (size > limit) {
        reject(
          new HttpError(
            413,
            "BODY_TOO_LARGE",
            `the body exceeds ${limit} bytes`,
          ),
        );
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * Serves the API on `host:port` (port 0: one the kernel picks).
 *
 * @param api the handler
 * @param host address to bind, e.g. `"127.0.0.1"`
 * @param port port to bind
 */
export function serveJobHttp(
  api: JobHttpApi,
  host: string,
  port: number,
): Promise<JobHttpServer> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? host}`);
    api.handle(req.method ?? "GET", url, () => readBody(req, api.maxBodyBytes))
      .then((reply) => {
        const text = JSON.stringify(reply.body);
        res.writeHead(reply.status, {
          "content-type": "application/json",
          ...reply.headers,
        });
        res.end(text);
      }, (e) => {
        res.writeHead(500).end(String(e));
      });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: `${host}:${a.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
