/**
 * One key-value node, wired together: a {@linkcode WalLog} in a data
 * folder, an authenticated {@linkcode TcpTransport}, the
 * {@linkcode KvStateMachine}, a {@linkcode RaftServer} and the HTTP API.
 * This is what `scripts/serve.ts` runs; the flag parser lives here too so it
 * can be tested.
 *
 * Addresses live in the replicated configuration (`Membership.nodes`): a
 * member's `address` is its Raft address and its `metadata` is its client
 * HTTP address as plain `host:port` (no scheme), the convention
 * {@linkcode KvHttpApi} reads. Founding members record them at bootstrap
 * (`--peer`, and `--http` / `--peer-http`); members added later get them from
 * `POST /members`. A node restarted without flags for the others still
 * reaches them: the configuration comes back from its log or snapshot.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";
import type { MemberInfo, Membership } from "../core/membership.ts";
import type { Message } from "../core/messages.ts";
import { WalLog } from "../log/wal/wal_log.ts";
import { consoleLogger, type Logger } from "../logger.ts";
import { StoppedError } from "../runtime/errors.ts";
import { RaftServer } from "../runtime/raft_server.ts";
import {
  type ClockSkew,
  realScheduler,
  skewedScheduler,
} from "../runtime/scheduler.ts";
import { raftMessageCodec } from "../transport/raft_codec.ts";
import { TcpTransport } from "../transport/tcp/tcp_transport.ts";
import { parseAddress } from "../transport/tcp/socket.ts";
import {
  isLoopbackHost,
  KvHttpApi,
  type KvHttpServer,
  type KvHttpTls,
  MAX_MEMBER_ID,
  serveKvHttp,
} from "./http_api.ts";
import { ClientAuth, type ClientToken, parseAuthTokens } from "./auth.ts";
import { createHash } from "node:crypto";
import { serveKvHttpNode } from "./node_http.ts";
import { readFile } from "node:fs/promises";
import { type KvResult, KvStateMachine } from "./kv_state_machine.ts";

/** Everything needed to start a node. */
export interface KvNodeOptions {
  /** This node's id. */
  id: number;
  /** Folder of the write-ahead log (created if missing). */
  dataDir: string;
  /**
   * Raft addresses by id. For a founding node: every founding member,
   * itself included, recorded in the bootstrap configuration. With `join`:
   * seeds (the founders) to dial until the replicated configuration
   * arrives.
   */
  peers: Map<number, string>;
  /**
   * Client HTTP addresses (`host:port`) of founding members, by id: recorded
   * as their metadata in the bootstrap configuration, and a fallback for
   * forwarding while the configuration has none. Give every founder the
   * same list so their bootstrap configurations agree.
   */
  peerHttp: Map<number, string>;
  /** Where this node's Raft transport listens (default: its own `peers` entry). */
  listen: string;
  /** Where the HTTP API listens, `host:port` (default 127.0.0.1:8000+id). */
  http: string;
  /** The cluster secret (bytes of the secret file, trimmed); undefined with `insecure`. */
  clusterSecret: Uint8Array | undefined;
  /** Run without peer authentication. */
  insecure: boolean;
  /** Start as a new node to be added with `POST /members`: not a founding voter. */
  join: boolean;
  /** Milliseconds per Raft tick. */
  tickMs: number;
  /** Election timeout in ticks. */
  electionTicks: number;
  /** Snapshot after this many applied entries (the core's `snapshotThreshold`; 0: never by count). */
  snapshotEntries: number;
  /** Snapshot after this many applied bytes (the core's `snapshotThresholdBytes`; 0: never by size). */
  snapshotBytes: number;
  /** Entries kept below a snapshot for slightly lagging followers. */
  compactionLag: number;
  /** Followers forward writes (`proxy`) or answer 307 (`redirect`). */
  forward: "proxy" | "redirect";
  /** Largest HTTP body, bytes. */
  maxBodyBytes: number;
  /** Log warnings and errors only (default: info and up). */
  quiet: boolean;
  /** HTTP server: `Deno.serve` (default under Deno) or `node:http` (default elsewhere). */
  httpBackend?: "deno" | "node";
  /** Where the node logs (default: the console, prefixed `[node N]`, at `info`, or `warn` with `quiet`); shared by the server and the transport. */
  logger?: Logger;
  /**
   * The cluster's id (`--cluster-id`): recorded in the data folder and
   * named in every transport handshake, so a node never starts on another
   * cluster's folder and peers of another cluster are refused. Default:
   * derived from the sorted `peers` ({@linkcode defaultClusterId}), which
   * every founder given the same `--peer` list agrees on; a joiner without
   * it records that value for its own folder but does not check its peers'
   * cluster (give joiners the cluster's id, shown on `GET /status`).
   */
  clusterId?: string;
  /** Encrypt peer frames (AES-256-GCM) as well as authenticating them (`--encrypt-frames`; needs a secret). @default {false} */
  encryptFrames?: boolean;
  /** Client tokens and roles (`--auth-tokens-file`); without them the API is open. */
  authTokens?: ClientToken[];
  /**
   * Test only (`--test-clock-rate`, `--test-clock-offset-ms`): run this
   * node's clock — ticks, deadlines, lease — at `rate` times real time, to
   * test clock skew between processes.
   */
  testClock?: ClockSkew;
  /** Serve the client API beyond loopback without tokens (`--insecure-client-api`). @default {false} */
  insecureClientApi?: boolean;
  /** HTTPS certificate and key for the client API (`--cert-file`, `--key-file`). */
  tls?: KvHttpTls;
  /** Most request body bytes buffered at once (`--max-inflight-bytes`). @default {67108864} */
  maxInflightBytes?: number;
  /** Deadline for a whole request body, ms (`--body-timeout-ms`). @default {10000} */
  bodyTimeoutMs?: number;
  /** node:http: deadline for the request headers, ms (`--header-timeout-ms`). @default {10000} */
  headerTimeoutMs?: number;
  /** node:http: deadline for a whole request, ms (`--request-timeout-ms`). @default {30000} */
  requestTimeoutMs?: number;
  /** node:http: idle keep-alive connections close after this, ms (`--idle-timeout-ms`). @default {5000} */
  idleTimeoutMs?: number;
}

/** Files named by flags, read by {@linkcode loadServeFiles}. */
export interface ServeFiles {
  /** `--cluster-secret-file`. */
  secretFile: string | undefined;
  /** `--auth-tokens-file`. */
  authTokensFile: string | undefined;
  /** `--cert-file`. */
  certFile: string | undefined;
  /** `--key-file`. */
  keyFile: string | undefined;
}

/** A bad command line; the message says what to fix. */
export class UsageError extends RaftIoError {
  /** Stable code. */
  override readonly code = "USAGE" as const;

  /**
   * Creates the error.
   *
   * @param message what is wrong with the flags
   */
  constructor(message: string) {
    super("USAGE", message);
    this.name = "UsageError";
  }
}

/**
 * The `--help` text of the serve command, for the runtime it runs on: under
 * Deno it speaks of `deno task serve`, under Node of `raft-io-serve` (the
 * npm build's bin).
 *
 * @param runtime which runtime's command line to show (default: the current one)
 * @returns the help text
 *
 * @example
 * ```ts
 * import { serveUsage } from "@raft-io/raft/kv";
 * serveUsage("node").includes("raft-io-serve --id N"); // true
 * ```
 */
export function serveUsage(
  runtime: "deno" | "node" = ("Deno" in globalThis) ? "deno" : "node",
): string {
  const cmd = runtime === "deno" ? "deno task serve" : "raft-io-serve";
  const pad = " ".repeat(cmd.length);
  const alt = runtime === "deno"
    ? "(or: deno run --allow-net --allow-read --allow-write scripts/serve.ts ...)"
    : "(or: node node_modules/@raft-io/raft/bin/serve.mjs ..., npx raft-io-serve ...)";
  return `raft-io key-value node

Usage:
  ${cmd} --id N --data-dir DIR --peer ID=HOST:PORT [--peer ...]
  ${pad} --http HOST:PORT (--cluster-secret-file FILE | --insecure) [options]
  ${alt}

Required:
  --id N                      this node's id (integer 1..${MAX_MEMBER_ID})
  --data-dir DIR              write-ahead log folder (created if missing; one process per folder)
  --peer ID=HOST:PORT         Raft address of a founding member; repeat for every member,
                              this node included (its entry is where it listens). With --join:
                              the founders, dialled only until the configuration arrives
  --cluster-secret-file FILE  shared secret (>= 16 bytes; e.g. openssl rand -hex 32 > FILE)
  --insecure                  run without peer authentication instead (explicit opt-in)
  --encrypt-frames            encrypt peer frames (AES-256-GCM), not only authenticate them (MAC)

Options:
  --http HOST:PORT            client HTTP API address (default 127.0.0.1:(8000+id)). Beyond
                              loopback it needs --auth-tokens-file (or --insecure-client-api)
  --listen HOST:PORT          Raft listen address (default: this node's --peer entry)
  --peer-http ID=HOST:PORT    client address of a founding member (recorded in the bootstrap
                              configuration; give every founder the same ones)
  --join                      start as a new, non-voting node; add it with POST /members
  --cluster-id NAME           the cluster's id, recorded in the data folder and checked in every
                              peer handshake (default: derived from the sorted --peer list, so
                              founders agree; give joiners the id GET /status shows)
  --tick-ms MS                Raft tick (default 100)
  --election-ticks N          election timeout in ticks (default 10)
  --snapshot-entries N        snapshot after N applied entries (default 100000; 0: never)
  --snapshot-bytes N          snapshot after N applied bytes (default 67108864; 0: never)
                              (each node waits a random 0-10 % more, so replicas do not
                              all snapshot at once)
  --compaction-lag N          entries kept below a snapshot (default 1000)
  --redirect                  followers answer writes with 307 instead of forwarding them
  --quiet                     log warnings only
  --test-clock-rate R         test only: this node's clock (ticks, deadlines, lease) runs at
                              R x real time (clock-skew tests; 0.5-2)
  --test-clock-offset-ms MS   test only: a constant offset of this node's clock
  --help                      this text

Client API security:
  --auth-tokens-file FILE     one "ROLE TOKEN" per line (roles read < write < admin; tokens >= 16
                              chars; # comments). Clients send Authorization: Bearer TOKEN; 401
                              without a valid token, 403 for a role too low. read: GET /kv,
                              /status, /leader, /metrics; write: PUT, DELETE, CAS; admin:
                              /members, /leader/transfer. Give every node the same file
  --insecure-client-api       allow --http beyond loopback without tokens (anyone who reaches it
                              can read, write, change membership)
  --cert-file FILE            PEM certificate: serve the client API over HTTPS (with --key-file)
  --key-file FILE             PEM private key of --cert-file

Limits (keep a node serving under abuse):
  --max-body-bytes N          largest request body (default 1048576; 413 beyond)
  --max-inflight-bytes N      request body bytes buffered at once over all requests (default
                              67108864); a body that would pass it is answered 503 at once
  --body-timeout-ms MS        a request body must arrive within MS of the request (default 10000;
                              408 and the connection is closed)
  --header-timeout-ms MS      node:http only: headers must arrive within MS (default 10000)
  --request-timeout-ms MS     node:http only: the whole request within MS (default 30000)
  --idle-timeout-ms MS        node:http only: idle keep-alive connections close after MS
                              (default 5000)
  Deno.serve has no header or idle timeout settings; the body deadline and the in-flight
  bound apply on both. Peer handshakes are bounded by the transport (in total and per source).

Example (three nodes, one per terminal):
  openssl rand -hex 32 > /tmp/raft.secret
  ${cmd} --id 1 --data-dir /tmp/raft-1 --http 127.0.0.1:8001 \\
    --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 \\
    --cluster-secret-file /tmp/raft.secret
  (same for --id 2 / --http 127.0.0.1:8002 and --id 3 / --http 127.0.0.1:8003)
  curl -X PUT --data hello http://127.0.0.1:8001/kv/greeting
  curl http://127.0.0.1:8002/kv/greeting

A node removed from the cluster keeps running and answers clients with
410 REMOVED naming the current members, so an operator sees why; stop it.
`;
}

/** The `--help` text under Deno (see {@linkcode serveUsage} for the runtime's own). */
export const SERVE_USAGE: string = serveUsage("deno");

function positiveInt(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n <= 0) {
    throw new UsageError(
      `${flag} needs a positive integer, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

function nonNegativeInt(flag: string, text: string | undefined): number {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(
      `${flag} needs a non-negative integer, got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

function address(flag: string, text: string | undefined): string {
  if (text === undefined) throw new UsageError(`${flag} needs HOST:PORT`);
  try {
    parseAddress(text);
  } catch {
    throw new UsageError(
      `${flag} needs HOST:PORT (e.g. 127.0.0.1:7001), got ${
        JSON.stringify(text)
      }`,
    );
  }
  return text;
}

function memberId(flag: string, text: string | undefined): number {
  const n = positiveInt(flag, text);
  if (n > MAX_MEMBER_ID) {
    throw new UsageError(
      `${flag}: node ids are at most ${MAX_MEMBER_ID}, got ${n}`,
    );
  }
  return n;
}

function idAddress(flag: string, text: string | undefined): [number, string] {
  const m = text === undefined ? null : /^(\d+)=(.+)$/.exec(text);
  if (m === null) {
    throw new UsageError(
      `${flag} needs ID=HOST:PORT (e.g. 2=127.0.0.1:7002), got ${
        JSON.stringify(text)
      }`,
    );
  }
  return [memberId(flag, m[1]), address(flag, m[2])];
}

/**
 * Parses the flags of `scripts/serve.ts`. Returns `"help"` for `--help`;
 * throws {@linkcode UsageError} with a clear message for bad flags. The
 * secret file is read by {@linkcode loadSecret}, not here.
 */
export function parseServeArgs(
  args: string[],
): (KvNodeOptions & ServeFiles) | "help" {
  let id: number | undefined;
  let dataDir: string | undefined;
  let http: string | undefined;
  let listen: string | undefined;
  let secretFile: string | undefined;
  let authTokensFile: string | undefined;
  let certFile: string | undefined;
  let keyFile: string | undefined;
  let clusterId: string | undefined;
  const peers = new Map<number, string>();
  const peerHttp = new Map<number, string>();
  const o = {
    insecure: false,
    join: false,
    tickMs: 100,
    electionTicks: 10,
    snapshotEntries: 100_000,
    snapshotBytes: 64 * 1024 * 1024,
    compactionLag: 1000,
    forward: "proxy" as "proxy" | "redirect",
    maxBodyBytes: 1024 * 1024,
    quiet: false,
    insecureClientApi: false,
    encryptFrames: false,
    maxInflightBytes: 64 * 1024 * 1024,
    bodyTimeoutMs: 10_000,
    headerTimeoutMs: 10_000,
    requestTimeoutMs: 30_000,
    idleTimeoutMs: 5_000,
    testClock: undefined as ClockSkew | undefined,
  };
  const file = (flag: string, v: string | undefined): string => {
    if (!v) throw new UsageError(`${flag} needs a file`);
    return v;
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 && !arg.startsWith("--peer") ? arg.slice(0, eq) : arg;
    const inline = eq > 0 && !arg.startsWith("--peer")
      ? arg.slice(eq + 1)
      : undefined;
    const value = () => inline ?? args[++i];
    switch (flag) {
      case "--help":
      case "-h":
        return "help";
      case "--id":
        id = memberId("--id", value());
        break;
      case "--data-dir":
        dataDir = value();
        if (!dataDir) throw new UsageError("--data-dir needs a folder");
        break;
      case "--http":
        http = address("--http", value());
        break;
      case "--listen":
        listen = address("--listen", value());
        break;
      case "--peer": {
        const [pid, addr] = idAddress("--peer", args[++i]);
        if (peers.has(pid)) {
          throw new UsageError(`--peer ${pid} is given twice`);
        }
        peers.set(pid, addr);
        break;
      }
      case "--peer-http": {
        const [pid, addr] = idAddress("--peer-http", args[++i]);
        peerHttp.set(pid, addr);
        break;
      }
      case "--cluster-secret-file":
        secretFile = value();
        if (!secretFile) {
          throw new UsageError("--cluster-secret-file needs a file");
        }
        break;
      case "--insecure":
        o.insecure = true;
        break;
      case "--join":
        o.join = true;
        break;
      case "--tick-ms":
        o.tickMs = positiveInt("--tick-ms", value());
        break;
      case "--election-ticks":
        o.electionTicks = positiveInt("--election-ticks", value());
        if (o.electionTicks < 2) {
          throw new UsageError("--election-ticks must be at least 2");
        }
        break;
      case "--snapshot-entries":
        o.snapshotEntries = nonNegativeInt("--snapshot-entries", value());
        break;
      case "--snapshot-bytes":
        o.snapshotBytes = nonNegativeInt("--snapshot-bytes", value());
        break;
      case "--compaction-lag":
        o.compactionLag = nonNegativeInt("--compaction-lag", value());
        break;
      case "--redirect":
        o.forward = "redirect";
        break;
      case "--max-body-bytes":
        o.maxBodyBytes = positiveInt("--max-body-bytes", value());
        break;
      case "--quiet":
        o.quiet = true;
        break;
      case "--test-clock-rate": {
        const rate = Number(value());
        if (!Number.isFinite(rate) || rate < 0.5 || rate > 2) {
          throw new UsageError("--test-clock-rate needs a number in [0.5, 2]");
        }
        o.testClock = { rate, offsetMs: o.testClock?.offsetMs ?? 0 };
        break;
      }
      case "--test-clock-offset-ms": {
        const offsetMs = Number(value());
        if (!Number.isFinite(offsetMs)) {
          throw new UsageError("--test-clock-offset-ms needs a number");
        }
        o.testClock = { rate: o.testClock?.rate ?? 1, offsetMs };
        break;
      }
      case "--cluster-id": {
        clusterId = value();
        const n = clusterId === undefined
          ? 0
          : new TextEncoder().encode(clusterId).byteLength;
        if (n === 0 || n > 255) {
          throw new UsageError("--cluster-id needs a name of 1..255 bytes");
        }
        break;
      }
      case "--auth-tokens-file":
        authTokensFile = file("--auth-tokens-file", value());
        break;
      case "--encrypt-frames":
        o.encryptFrames = true;
        break;
      case "--insecure-client-api":
        o.insecureClientApi = true;
        break;
      case "--cert-file":
        certFile = file("--cert-file", value());
        break;
      case "--key-file":
        keyFile = file("--key-file", value());
        break;
      case "--max-inflight-bytes":
        o.maxInflightBytes = positiveInt("--max-inflight-bytes", value());
        break;
      case "--body-timeout-ms":
        o.bodyTimeoutMs = positiveInt("--body-timeout-ms", value());
        break;
      case "--header-timeout-ms":
        o.headerTimeoutMs = positiveInt("--header-timeout-ms", value());
        break;
      case "--request-timeout-ms":
        o.requestTimeoutMs = positiveInt("--request-timeout-ms", value());
        break;
      case "--idle-timeout-ms":
        o.idleTimeoutMs = positiveInt("--idle-timeout-ms", value());
        break;
      default:
        throw new UsageError(
          `unknown flag ${JSON.stringify(arg)} (see --help)`,
        );
    }
  }
  if (id === undefined) throw new UsageError("--id is required (see --help)");
  if (dataDir === undefined) {
    throw new UsageError("--data-dir is required (see --help)");
  }
  if (peers.size === 0) {
    throw new UsageError(
      "at least one --peer ID=HOST:PORT is required (include this node)",
    );
  }
  if (secretFile === undefined && !o.insecure) {
    throw new UsageError(
      "no cluster secret: give --cluster-secret-file FILE (e.g. `openssl rand -hex 32 > FILE`), " +
        "or --insecure to run without peer authentication",
    );
  }
  if (secretFile !== undefined && o.insecure) {
    throw new UsageError(
      "give either --cluster-secret-file or --insecure, not both",
    );
  }
  if (o.encryptFrames && o.insecure) {
    throw new UsageError(
      "--encrypt-frames needs --cluster-secret-file (frames are keyed by the secret)",
    );
  }
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("give --cert-file and --key-file together");
  }
  const httpAddress = http ?? `127.0.0.1:${8000 + id}`;
  checkClientExposure(
    httpAddress,
    authTokensFile !== undefined,
    o.insecureClientApi,
  );
  const own = peers.get(id);
  if (own === undefined && listen === undefined) {
    throw new UsageError(
      `this node (--id ${id}) needs its own --peer ${id}=HOST:PORT entry or --listen HOST:PORT`,
    );
  }
  if (!o.join && own === undefined) {
    throw new UsageError(
      `a founding node must be in its own --peer list (or use --join)`,
    );
  }
  return {
    id,
    dataDir,
    peers,
    peerHttp,
    listen: listen ?? own!,
    http: httpAddress,
    clusterSecret: undefined,
    secretFile,
    authTokensFile,
    certFile,
    keyFile,
    clusterId,
    ...o,
  };
}

/** Refuses a client API beyond loopback without tokens, unless explicitly allowed. */
function checkClientExposure(
  http: string,
  hasTokens: boolean,
  insecureClientApi: boolean,
): void {
  if (hasTokens || insecureClientApi) return;
  if (isLoopbackHost(parseAddress(http).hostname)) return;
  throw new UsageError(
    `--http ${http} listens beyond loopback with no client authentication: anyone who reaches it could read, write, ` +
      "change membership and transfer leadership. Give --auth-tokens-file FILE, or --insecure-client-api " +
      "to allow it explicitly (only on a network nobody else can reach)",
  );
}

/**
 * The default cluster id: `peers-` and 16 hex digits of a SHA-256 over the
 * sorted `ID=HOST:PORT` entries, so founders given the same `--peer` list
 * agree on it without coordinating.
 *
 * @param peers the founding members' Raft addresses by id
 * @returns the derived id
 *
 * @example
 * ```ts
 * import { defaultClusterId } from "@raft-io/raft/kv";
 * defaultClusterId(new Map([[2, "h:2"], [1, "h:1"]])) ===
 *   defaultClusterId(new Map([[1, "h:1"], [2, "h:2"]])); // true
 * ```
 */
export function defaultClusterId(peers: Map<number, string>): string {
  const text = [...peers].sort((a, b) => a[0] - b[0]).map(([i, a]) =>
    `${i}=${a}`
  ).join(",");
  return "peers-" +
    createHash("sha256").update(text, "utf8").digest("hex").slice(0, 16);
}

async function readText(flag: string, path: string): Promise<string> {
  try {
    return new TextDecoder().decode(await readFile(path));
  } catch (e) {
    throw new UsageError(
      `cannot read ${flag} ${path}: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
}

/**
 * Reads a tokens file (`--auth-tokens-file`): one `ROLE TOKEN` per line.
 * Throws {@linkcode UsageError} naming the file and line when it is bad.
 *
 * @param path the file
 * @returns the tokens
 *
 * @example
 * ```ts ignore
 * const tokens = await loadAuthTokens("tokens.txt");
 * ```
 */
export async function loadAuthTokens(path: string): Promise<ClientToken[]> {
  const text = await readText("--auth-tokens-file", path);
  try {
    return parseAuthTokens(text);
  } catch (e) {
    throw new UsageError(
      `--auth-tokens-file ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
}

/**
 * Reads the files the flags name (secret, tokens, certificate and key)
 * into the options {@linkcode startKvNode} takes.
 *
 * @param files the paths from {@linkcode parseServeArgs}
 * @returns the secret, tokens and TLS material
 *
 * @example
 * ```ts ignore
 * const options = parseServeArgs(Deno.args);
 * if (options !== "help") await startKvNode({ ...options, ...await loadServeFiles(options) });
 * ```
 */
export async function loadServeFiles(files: ServeFiles): Promise<{
  clusterSecret: Uint8Array | undefined;
  authTokens: ClientToken[] | undefined;
  tls: KvHttpTls | undefined;
}> {
  return {
    clusterSecret: files.secretFile === undefined
      ? undefined
      : await loadSecret(files.secretFile),
    authTokens: files.authTokensFile === undefined
      ? undefined
      : await loadAuthTokens(files.authTokensFile),
    tls: files.certFile === undefined || files.keyFile === undefined
      ? undefined
      : {
        cert: await readText("--cert-file", files.certFile),
        key: await readText("--key-file", files.keyFile),
      },
  };
}

/** Reads a secret file: its bytes with surrounding whitespace trimmed. */
export async function loadSecret(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = new TextDecoder().decode(await readFile(path));
  } catch (e) {
    throw new UsageError(
      `cannot read --cluster-secret-file ${path}: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
  }
  const secret = new TextEncoder().encode(text.trim());
  if (secret.byteLength < 16) {
    throw new UsageError(
      `the cluster secret in ${path} is ${secret.byteLength} bytes; use at least 16 (openssl rand -hex 32 > ${path})`,
    );
  }
  return secret;
}

/** A running key-value node. */
export interface KvNode {
  /** The Raft server. */
  readonly server: RaftServer<KvResult>;
  /** The state machine. */
  readonly kv: KvStateMachine;
  /** The transport. */
  readonly transport: TcpTransport<Message>;
  /** The HTTP API handler. */
  readonly api: KvHttpApi;
  /** The HTTP listener (its `address` has the real port). */
  readonly http: KvHttpServer;
  /** The logger shared by the server and the transport. */
  readonly logger: Logger;
  /**
   * Resolves with the error when the Raft server stopped itself (a storage
   * or state machine failure, the `fatal` event); never resolves otherwise.
   * The node no longer serves then: exit.
   */
  readonly failed: Promise<Error>;
  /** Stops HTTP, the server, the transport and the log. Idempotent. */
  stop(): Promise<void>;
}

/** True for `0.0.0.0`, `::` and port 0: an address to bind, not one to dial. */
function isDialable(addr: string): boolean {
  const { hostname, port } = parseAddress(addr);
  return port !== 0 && hostname !== "0.0.0.0" && hostname !== "::" &&
    hostname !== "";
}

function sameIds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether `m` still is the bootstrap configuration (voters, learners and member info). */
function isBootstrap(
  m: Membership,
  voters: number[],
  nodes: Record<number, MemberInfo>,
): boolean {
  if (
    !sameIds(m.voters, voters) || m.outgoing.length > 0 ||
    m.learners.length > 0
  ) return false;
  const keys = Object.keys(m.nodes);
  if (keys.length !== Object.keys(nodes).length) return false;
  return keys.every((k) => {
    const a = m.nodes[Number(k)];
    const b = nodes[Number(k)];
    return b !== undefined && a.address === b.address &&
      a.metadata === b.metadata;
  });
}

/** `RaftServer.start`, naming what failed: restoring or replaying the node's log. */
async function startServer(
  dataDir: string,
  options: Parameters<typeof RaftServer.start<KvResult>>[0],
): Promise<RaftServer<KvResult>> {
  try {
    return await RaftServer.start<KvResult>(options);
  } catch (e) {
    if (e instanceof RaftIoError && e.code === "INVALID_CONFIG") throw e;
    throw new Error(
      `restoring the snapshot or replaying the log in ${dataDir} failed: ${
        e instanceof Error ? e.message : String(e)
      }`,
      { cause: e },
    );
  }
}

/**
 * Opens the log, starts the transport, the Raft server and the HTTP API.
 * Rejects when any of them fails to start — a snapshot that does not
 * restore, a log entry that fails to replay, a busy port — after closing
 * what it opened.
 *
 * @example
 * ```ts ignore
 * const options = parseServeArgs(Deno.args);
 * if (options !== "help") {
 *   const node = await startKvNode({ ...options, clusterSecret: await loadSecret(options.secretFile!) });
 *   console.log(node.http.address);
 * }
 * ```
 */
export async function startKvNode(options: KvNodeOptions): Promise<KvNode> {
  const id = options.id;
  const logger = options.logger ??
    consoleLogger({
      level: options.quiet ? "warn" : "info",
      prefix: `[node ${id}]`,
    });
  checkClientExposure(
    options.http,
    options.authTokens !== undefined,
    options.insecureClientApi === true,
  );
  const clusterId = options.clusterId ?? defaultClusterId(options.peers);
  // A joiner's --peer list is only its seeds: the derived id is its own,
  // not the cluster's, so it checks no peer's cluster without --cluster-id.
  const peerClusterId = options.clusterId ??
    (options.join ? undefined : clusterId);
  if (peerClusterId === undefined) {
    logger.warn(
      "joining without --cluster-id: peers of another cluster sharing the secret are not refused; give --cluster-id (GET /status on a member shows it)",
    );
  }
  const log = await WalLog.open(options.dataDir, {
    identity: { nodeId: id, clusterId },
  });
  let transport: TcpTransport<Message> | undefined;
  let server: RaftServer<KvResult> | undefined;
  let http: KvHttpServer | undefined;
  try {
    const seeds = new Map([...options.peers].filter(([pid]) => pid !== id));
    transport = await TcpTransport.create<Message>({
      id,
      listen: options.listen,
      peers: seeds,
      codec: raftMessageCodec,
      clusterSecret: options.clusterSecret,
      clusterId: peerClusterId,
      encryptFrames: options.encryptFrames === true,
      insecure: options.insecure,
      logger,
    });
    const t = transport;
    const kv = new KvStateMachine();
    const founders = [...options.peers.keys()]
      .filter((f) => !options.join || f !== id)
      .sort((a, b) => a - b);
    // What this node tells others to dial for its client API: the --http
    // address unless it is a bind-all or port-0 address.
    const ownHttp = options.peerHttp.get(id) ??
      (isDialable(options.http) ? options.http : "");
    // The bootstrap configuration (used only while the log holds none):
    // every founder's Raft address and, as metadata, its client address.
    const nodes: Record<number, MemberInfo> = {};
    for (const f of founders) {
      nodes[f] = {
        address: options.peers.get(f)!,
        metadata: f === id ? ownHttp : options.peerHttp.get(f) ?? "",
      };
    }
    server = await startServer(options.dataDir, {
      config: {
        id,
        voters: founders.length > 0 ? founders : [id],
        nodes: founders.length > 0 ? nodes : {},
        electionTick: options.electionTicks,
        heartbeatTick: 1,
        compactionLag: options.compactionLag,
        snapshotThreshold: options.snapshotEntries,
        snapshotThresholdBytes: options.snapshotBytes,
        // Replicas snapshot at different indexes, not all at once (CPU, disk).
        snapshotJitter: 0.1,
      },
      log,
      transport,
      stateMachine: kv,
      tickMs: options.tickMs,
      logger,
      ...(options.testClock === undefined
        ? {}
        : { scheduler: skewedScheduler(realScheduler, options.testClock) }),
    });
    const srv = server;
    let fatal: Error | undefined;
    let onFatal: ((e: Error) => void) | undefined;
    const failed = new Promise<Error>((resolve) => {
      onFatal = resolve;
      if (fatal !== undefined) resolve(fatal);
    });
    srv.on("fatal", ({ error }) => {
      fatal ??= error;
      onFatal?.(error);
    });
    if (srv.isStopped) {
      // It failed between start() resolving and the subscription.
      throw new StoppedError("the raft server failed while starting");
    }
    srv.on("role", ({ role, leaderId, term }) => {
      logger.info(
        `role ${role}, leader ${leaderId || "unknown"}, term ${term}`,
      );
    });
    const api = new KvHttpApi({
      server,
      kv,
      httpAddresses: options.peerHttp,
      forward: options.forward,
      maxBodyBytes: options.maxBodyBytes,
      auth: options.authTokens === undefined
        ? undefined
        : new ClientAuth(options.authTokens),
      logger,
      insecure: options.insecure,
      clusterId,
      scheme: options.tls === undefined ? "http" : "https",
      maxInflightBytes: options.maxInflightBytes,
      bodyTimeoutMs: options.bodyTimeoutMs,
      extraMetrics: () => {
        const s = t.stats();
        const lines = [
          "# HELP raft_transport_errors_total Transport errors (refused peers, bad frames), by code.",
          "# TYPE raft_transport_errors_total counter",
        ];
        for (const [code, n] of Object.entries(s.errorsByCode)) {
          lines.push(`raft_transport_errors_total{code="${code}"} ${n}`);
        }
        lines.push(
          "# HELP raft_transport_writes_total Batched frame writes.",
          "# TYPE raft_transport_writes_total counter",
        );
        lines.push(`raft_transport_writes_total ${s.writes}`);
        return lines.join("\n");
      },
    });
    const h = parseAddress(options.http);
    http = "Deno" in globalThis && options.httpBackend !== "node"
      ? serveKvHttp(api, h, options.tls)
      : await serveKvHttpNode(api, h, {
        tls: options.tls,
        headersTimeoutMs: options.headerTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        keepAliveTimeoutMs: options.idleTimeoutMs,
      });
    const advertised = ownHttp !== ""
      ? ownHttp
      : isDialable(http.address)
      ? http.address
      : "";
    if (advertised === "") {
      logger.warn(
        `the client address ${http.address} is not one others can dial: followers cannot forward to this node (give --peer-http ${id}=HOST:PORT, or the http field of POST /members)`,
      );
    }
    // A ready leader makes sure the configuration records its client
    // address for every node: it fills an empty record, and re-commits the
    // bootstrap configuration (whose metadata may differ between founders
    // given different flags) as a replicated entry. Never overwrites an
    // address an operator gave through POST /members.
    let announced = false;
    const announce = () => {
      if (announced || srv.role !== "leader" || srv.isStopped) return;
      const m = srv.status().membership;
      const record = m.nodes[id]?.metadata ?? "";
      const metadata = record || advertised;
      if (metadata === "") return;
      announced = true;
      if (record !== "" && !isBootstrap(m, founders, nodes)) return;
      srv.changeMembership({ type: "updateNode", id, metadata }).then(
        () =>
          logger.info(
            `recorded client address ${metadata} in the configuration`,
          ),
        (e) => {
          announced = false;
          logger.debug(
            `recording the client address failed (retried when next leader): ${
              e instanceof Error ? e.message : String(e)
            }`,
          );
        },
      );
    };
    srv.on("leaderReady", announce);
    if (srv.status().leaderReady) announce();
    logger.info(
      `raft ${transport.address}, ${
        options.tls === undefined ? "http" : "https"
      }://${http.address}, data ${options.dataDir}, cluster ${clusterId}${
        options.authTokens === undefined ? "" : ", client tokens required"
      }`,
    );
    let stopping: Promise<void> | undefined;
    const hs = http;
    return {
      server: srv,
      kv,
      transport: t,
      api,
      http: hs,
      logger,
      failed,
      stop: () => {
        stopping ??= (async () => {
          // Stopping the server first settles every pending proposal and read
          // (503 STOPPED), so the HTTP shutdown does not wait on them.
          await srv.stop();
          await hs.shutdown();
        })();
        return stopping;
      },
    };
  } catch (e) {
    await http?.shutdown().catch(() => {});
    if (server !== undefined) {
      await server.stop().catch(() => {});
    } else {
      await transport?.close().catch(() => {});
      await log.close().catch(() => {});
    }
    throw e;
  }
}
