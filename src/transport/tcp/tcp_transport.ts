/**
 * {@linkcode TcpTransport}: Raft messages over TCP with authenticated peers
 * and authenticated frames.
 *
 * - Each node dials every peer it sends to and uses that connection for its
 *   outbound traffic only; inbound connections (from peers that dialled it)
 *   are read-only. So a pair of nodes shares two connections, one per
 *   direction, and neither side ever waits for the other to send.
 * - Every connection starts with the challenge–response handshake of
 *   `handshake.ts`: both nodes prove the cluster secret, and a node with a
 *   `clusterId` refuses a node that names another cluster
 *   (`ClusterMismatchError`).
 * - Every frame after the handshake is sealed (`frame_auth.ts`): a sequence
 *   number and an HMAC-SHA-256 tag (or AES-256-GCM with `encryptFrames`)
 *   under a key of that connection and direction, derived from the
 *   handshake's nonces, ids and the cluster secret. A forged, altered,
 *   replayed or reordered frame is dropped, its connection closed and the
 *   error counted (`FRAME_AUTH_FAILED`); the node keeps serving. One tag
 *   per batch frame, not per message.
 * - Frames are `[u32 length][u8 version][u32 crc32c][payload]` (see
 *   `frame.ts` and docs/wire_format.md); a frame over `maxFrameBytes`
 *   closes the connection before it is buffered, as does a bad checksum,
 *   version or payload — counted, logged, and the node keeps serving.
 * - Batched writes: `send` appends to the peer's bounded queue and returns;
 *   the peer's writer drains the whole queue into one frame and one write,
 *   so a burst of sends costs one system call.
 * - Bounded queues: a full queue drops the new message (counted). Raft
 *   re-sends what matters; unbounded buffering behind a dead peer would not.
 * - Reconnect with exponential back-off (bounded, jittered); messages queued
 *   for a peer that cannot be reached are dropped rather than delivered late.
 * - Handshake limits: inbound connections still in their handshake are
 *   bounded in total (`maxPendingHandshakes`) and per source address
 *   (`maxPendingHandshakesPerAddress`), and must finish within
 *   `inboundHandshakeTimeoutMs` (2 s), so idle connections from one
 *   address cannot keep real peers from reconnecting.
 *
 * **Insecure mode.** Without a cluster secret the transport refuses to
 * start unless `insecure: true` is given, and then logs a warning. In
 * insecure mode there is no authentication at all: **any host that can
 * reach the listening port can act as any peer** — send votes,
 * AppendEntries or TimeoutNow under any node id, push terms up, make itself
 * leader and have forged entries applied — and anyone on the path can
 * read and change every frame. Use it only on a network nobody else can
 * reach (tests, a single machine).
 *
 * What a secret protects against, and what not: with a secret, a stranger
 * cannot join or impersonate a node, and a proxy on the path cannot inject,
 * replay, reorder or alter frames; it can still read them unless
 * `encryptFrames` is set, and it can always delay or cut connections
 * (Raft then sees a partition). Every node holding the secret is trusted
 * fully: a node that has it can claim any node id of the cluster.
 *
 * @module
 */

import type {
  MessageCodec,
  MessageHandler,
  PeerStats,
  RaftTransport,
  TransportStats,
} from "../raft_transport.ts";
import {
  HandshakeTimeoutError,
  InsecureTransportError,
  ListenError,
  MalformedFrameError,
  TransportError,
  type TransportErrorCode,
} from "../transport_errors.ts";
import { consoleLogger, type Logger } from "../../logger.ts";
import { FRAME_KIND } from "./frame.ts";
import {
  FramedConn,
  HANDSHAKE_MAX_PAYLOAD,
  type HandshakeConfig,
  importClusterSecret,
  listenerHandshake,
  MAX_CLUSTER_ID_BYTES,
} from "./handshake.ts";
import {
  asTransportError,
  errorText,
  OutboundPeer,
  type PeerHost,
  type TransportCounters,
} from "./outbound_peer.ts";
import {
  formatAddress,
  parseAddress,
  type SocketAddress,
  type SocketBackend,
  type SocketConn,
  type SocketListener,
} from "./socket.ts";

/** Options of {@linkcode TcpTransport.create}. */
export interface TcpTransportOptions<M> {
  /** This node's id (a positive safe integer). */
  id: number;
  /** Address to listen on, `"host:port"` or an object; port 0 picks a free port. */
  listen: string | SocketAddress;
  /** The other nodes: id → `"host:port"`. Only these ids may connect. */
  peers?: Record<number, string> | Map<number, string>;
  /** Encodes message batches (raft-io's `encodeMessages`/`decodeMessages` for Raft). */
  codec: MessageCodec<M>;
  /** Shared cluster secret (≥ 16 bytes). Required unless `insecure` is true. */
  clusterSecret?: Uint8Array | string;
  /**
   * Run without authentication. Must be given explicitly when there is no
   * secret; logs a warning at creation. Then any host that can reach the
   * port can act as any peer, and frames are neither authenticated nor
   * encrypted.
   */
  insecure?: boolean;
  /**
   * This cluster's id (1–255 UTF-8 bytes). When both nodes of a connection
   * have one and they differ, the handshake is refused with a
   * `ClusterMismatchError` naming both. A node without one accepts any.
   */
  clusterId?: string;
  /**
   * Encrypt frames after the handshake (AES-256-GCM) instead of only
   * authenticating them (HMAC-SHA-256). A connection is encrypted when
   * either side asks. Needs a cluster secret.
   * @default {false}
   */
  encryptFrames?: boolean;
  /** Socket backend: `"deno"` (default under Deno), `"node"` (default under Node), or your own. */
  backend?: "deno" | "node" | SocketBackend;
  /** Largest frame payload sent or accepted, bytes (default 16 MiB). */
  maxFrameBytes?: number;
  /** Most messages queued per peer; more are dropped (default 8192). */
  maxQueueMessages?: number;
  /** Most messages per frame (default 4096). */
  maxBatchMessages?: number;
  /** Reconnect back-off: first delay and cap, ms (default 50 and 2000). */
  backoff?: { initialMs?: number; maxMs?: number };
  /**
   * Deadline for an outbound connect + handshake, ms.
   * @default {5000}
   */
  handshakeTimeoutMs?: number;
  /**
   * Deadline for an inbound connection to complete its handshake, ms; an
   * idle or slow client is closed then.
   * @default {2000}
   */
  inboundHandshakeTimeoutMs?: number;
  /**
   * Most inbound connections in their handshake at once; more are closed.
   * @default {64}
   */
  maxPendingHandshakes?: number;
  /**
   * Most inbound connections in their handshake at once from one source
   * address (IP); more from that address are closed, so one host cannot
   * take every handshake slot.
   * @default {8}
   */
  maxPendingHandshakesPerAddress?: number;
  /** Uniform random numbers in `[0, 1)` for back-off jitter (default `Math.random`). */
  random?: () => number;
  /** Where refused peers and broken connections are reported (default: console; give it the server's logger). */
  logger?: Logger;
}

/** One recorded error. */
export interface TransportErrorRecord {
  /** `Date.now()` when it happened. */
  at: number;
  /** The peer involved (0 when unknown). */
  peerId: number;
  /** The typed error. */
  error: TransportError;
}

/** Counters of a {@linkcode TcpTransport}. */
export interface TcpTransportStats extends TransportStats {
  /** Batch frames written (one write each). */
  writes: number;
  /** Bytes written on outbound connections (frames, including handshakes). */
  bytesSent: number;
  /** Bytes read on inbound connections. */
  bytesReceived: number;
  /** Batch frames received. */
  framesReceived: number;
  /** Inbound connections accepted by the listener. */
  connectionsAccepted: number;
  /** Inbound connections refused (failed handshake, too many pending, bad frames before auth). */
  connectionsRefused: number;
  /** Handshakes that completed, both directions. */
  handshakesCompleted: number;
  /** Outbound connect or handshake attempts that failed. */
  dialFailures: number;
  /** Exceptions thrown by the message handler (caught; the message is lost). */
  handlerErrors: number;
  /** Count of recorded errors by code. */
  errorsByCode: Record<TransportErrorCode, number>;
  /** The most recent errors (up to 64), oldest first. */
  recentErrors: TransportErrorRecord[];
}

const MAX_RECENT_ERRORS = 64;

function emptyErrorCounts(): Record<TransportErrorCode, number> {
  return {
    AUTHENTICATION_FAILED: 0,
    UNKNOWN_PEER: 0,
    FRAME_TOO_LARGE: 0,
    FRAME_CHECKSUM_MISMATCH: 0,
    FRAME_VERSION_UNSUPPORTED: 0,
    FRAME_MALFORMED: 0,
    FRAME_AUTH_FAILED: 0,
    CLUSTER_MISMATCH: 0,
    HANDSHAKE_TIMEOUT: 0,
    CONNECTION_FAILED: 0,
    INSECURE_TRANSPORT: 0,
    LISTEN_FAILED: 0,
  };
}

/**
 * The socket backend to use. The built-in ones are imported only here, when
 * a transport is created, so that importing raft-io never loads `node:net`
 * (or touches `Deno`) in a runtime that has neither.
 */
async function pickBackend(
  backend: TcpTransportOptions<unknown>["backend"],
): Promise<SocketBackend> {
  if (typeof backend === "object") return backend;
  const name = backend ?? ("Deno" in globalThis ? "deno" : "node");
  if (name === "deno") {
    return (await import("./deno_socket.ts")).denoSocketBackend;
  }
  return (await import("./node_socket.ts")).nodeSocketBackend;
}

/**
 * The TCP transport. Create it with {@linkcode TcpTransport.create}.
 *
 * @example
 * ```ts
 * import { TcpTransport, type MessageCodec } from "@raft-io/raft";
 * const codec: MessageCodec<string> = {
 *   encodeBatch: (m) => new TextEncoder().encode(JSON.stringify(m)),
 *   decodeBatch: (b) => JSON.parse(new TextDecoder().decode(b)),
 * };
 * const secret = "an example secret of at least 16 bytes";
 * const a = await TcpTransport.create({ id: 1, listen: "127.0.0.1:0", codec, clusterSecret: secret });
 * const b = await TcpTransport.create({ id: 2, listen: "127.0.0.1:0", codec, clusterSecret: secret });
 * a.addPeer(2, b.address);
 * b.addPeer(1, a.address);
 * b.onMessage((msg, from) => console.log(from, msg)); // 1 "hello"
 * a.send(2, "hello");
 * await new Promise((r) => setTimeout(r, 100));
 * await a.close();
 * await b.close();
 * ```
 */
export class TcpTransport<M> implements RaftTransport<M> {
  /** This node's id. */
  readonly id: number;
  /** The listening address (`host:port`), with the real port. */
  readonly address: string;
  /** The socket backend in use. */
  readonly backend: SocketBackend;

  private readonly codec: MessageCodec<M>;
  private readonly listener: SocketListener;
  private readonly handshake: HandshakeConfig;
  private readonly maxFrameBytes: number;
  private readonly maxQueueMessages: number;
  private readonly maxBatchMessages: number;
  private readonly backoffInitialMs: number;
  private readonly backoffMaxMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly inboundHandshakeTimeoutMs: number;
  private readonly maxPendingHandshakes: number;
  private readonly maxPendingHandshakesPerAddress: number;
  private readonly random: () => number;
  private readonly logger: Logger;

  private handler: MessageHandler<M> | undefined;
  private unreachableHandler: ((peerId: number) => void) | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly outbound = new Map<number, OutboundPeer<M>>();
  private readonly received = new Map<number, number>();
  private readonly inbound = new Set<InboundConn>();
  private readonly tasks = new Set<Promise<void>>();
  private pendingHandshakes = 0;
  /** Inbound handshakes in progress by source address (IP). */
  private readonly pendingByAddress = new Map<string, number>();
  private readonly counters: TransportCounters = {
    messagesSent: 0,
    messagesReceived: 0,
    messagesDropped: 0,
    writes: 0,
    bytesSent: 0,
    bytesReceived: 0,
    framesReceived: 0,
    connectionsAccepted: 0,
    connectionsRefused: 0,
    handshakesCompleted: 0,
    dialFailures: 0,
    handlerErrors: 0,
  };
  private readonly errorsByCode = emptyErrorCounts();
  private readonly recentErrors: TransportErrorRecord[] = [];

  private constructor(
    options: TcpTransportOptions<M>,
    listener: SocketListener,
    backend: SocketBackend,
    key: CryptoKey | null,
  ) {
    this.id = options.id;
    this.codec = options.codec;
    this.listener = listener;
    this.backend = backend;
    this.address = formatAddress(listener.addr);
    this.maxFrameBytes = options.maxFrameBytes ?? 16 * 1024 * 1024;
    this.maxQueueMessages = options.maxQueueMessages ?? 8192;
    this.maxBatchMessages = options.maxBatchMessages ?? 4096;
    this.backoffInitialMs = options.backoff?.initialMs ?? 50;
    this.backoffMaxMs = options.backoff?.maxMs ?? 2000;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? 5000;
    this.inboundHandshakeTimeoutMs = options.inboundHandshakeTimeoutMs ?? 2000;
    this.maxPendingHandshakes = options.maxPendingHandshakes ?? 64;
    this.maxPendingHandshakesPerAddress =
      options.maxPendingHandshakesPerAddress ?? 8;
    this.random = options.random ?? Math.random;
    const id = options.id;
    this.logger = options.logger ??
      consoleLogger({ prefix: `[raft-io node ${id} transport]` });
    this.handshake = {
      localId: options.id,
      key,
      isKnownPeer: (peer) => this.outbound.has(peer),
      clusterId: options.clusterId ?? "",
      encryptFrames: options.encryptFrames === true,
    };
    if (key === null) {
      this.logger.warn(
        `node ${id}: running INSECURE (no cluster secret): peers are not ` +
          "authenticated and frames are neither authenticated nor encrypted; " +
          `any host that can reach ${this.address} can act as any peer — ` +
          "use --cluster-secret-file on any network others can reach",
      );
    }
    const peers = options.peers instanceof Map ? options.peers : new Map(
      Object.entries(options.peers ?? {}).map(([k, v]) => [Number(k), v]),
    );
    for (const [peerId, addr] of peers) {
      if (peerId !== this.id) this.addPeer(peerId, addr);
    }
    this.#spawn(this.acceptLoop());
  }

  /**
   * Validates the options, imports the secret and starts listening.
   * Rejects with {@linkcode InsecureTransportError} when there is no secret
   * and `insecure` is not true.
   */
  static async create<M>(
    options: TcpTransportOptions<M>,
  ): Promise<TcpTransport<M>> {
    if (!Number.isSafeInteger(options.id) || options.id <= 0) {
      throw new RangeError(
        `node id must be a positive safe integer, got ${options.id}`,
      );
    }
    if (options.clusterId !== undefined) {
      const n = new TextEncoder().encode(options.clusterId).byteLength;
      if (n === 0 || n > MAX_CLUSTER_ID_BYTES) {
        throw new RangeError(
          `clusterId must be 1-${MAX_CLUSTER_ID_BYTES} UTF-8 bytes, got ${n}`,
        );
      }
    }
    for (
      const name of [
        "handshakeTimeoutMs",
        "inboundHandshakeTimeoutMs",
        "maxPendingHandshakes",
        "maxPendingHandshakesPerAddress",
      ] as const
    ) {
      const v = options[name];
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
        throw new RangeError(`${name} must be a positive number, got ${v}`);
      }
    }
    let key: CryptoKey | null = null;
    if (options.clusterSecret !== undefined) {
      key = await importClusterSecret(options.clusterSecret);
    } else if (options.insecure !== true) {
      throw new InsecureTransportError();
    } else if (options.encryptFrames === true) {
      throw new InsecureTransportError(
        "encryptFrames needs a cluster secret to derive keys from; give clusterSecret",
      );
    }
    const backend = await pickBackend(options.backend);
    const addr = typeof options.listen === "string"
      ? parseAddress(options.listen)
      : options.listen;
    let listener: SocketListener;
    try {
      listener = await backend.listen(addr);
    } catch (e) {
      throw new ListenError(formatAddress(addr), errorText(e), { cause: e });
    }
    return new TcpTransport<M>(options, listener, backend, key);
  }

  /** Adds (or re-addresses) a peer: it may connect to us, and we send to it at `address`. */
  addPeer(peerId: number, address: string | SocketAddress): void {
    if (!Number.isSafeInteger(peerId) || peerId <= 0) {
      throw new RangeError(`bad peer id ${peerId}`);
    }
    if (peerId === this.id) return;
    const addr = typeof address === "string" ? parseAddress(address) : address;
    const existing = this.outbound.get(peerId);
    if (existing !== undefined) {
      if (formatAddress(existing.address) === formatAddress(addr)) return;
      this.removePeer(peerId);
    }
    if (this.closed) return;
    const peer = new OutboundPeer<M>(this.#host(), peerId, addr);
    this.outbound.set(peerId, peer);
    this.#spawn(peer.run());
  }

  /** Forgets a peer: drops its queue, closes its connections, refuses it from now on. */
  removePeer(peerId: number): void {
    const peer = this.outbound.get(peerId);
    if (peer === undefined) return;
    this.outbound.delete(peerId);
    peer.stop();
    for (const c of this.inbound) {
      if (c.peerId === peerId) void c.fc.conn.close();
    }
  }

  /** Ids of the known peers. */
  peerIds(): number[] {
    return [...this.outbound.keys()];
  }

  /** Queues `message` for `to`; drops it (counted) when the queue is full or the peer unknown. */
  send(to: number, message: M): void {
    const peer = this.outbound.get(to);
    if (peer === undefined || this.closed) {
      this.counters.messagesDropped++;
      return;
    }
    peer.enqueue(message);
  }

  /** Sets the inbound message handler. */
  onMessage(handler: MessageHandler<M>): void {
    this.handler = handler;
  }

  /**
   * Sets a callback for peers that could not be reached (a failed connect,
   * or a write that broke the connection): messages to them were lost. A
   * Raft driver passes this on (`RaftNode.reportUnreachable`) so the leader
   * stops streaming appends into the void and probes instead.
   */
  onUnreachable(handler: (peerId: number) => void): void {
    this.unreachableHandler = handler;
  }

  /** A snapshot of the counters. */
  stats(): TcpTransportStats {
    const peers: Record<number, PeerStats> = {};
    for (const [id, p] of this.outbound) {
      peers[id] = {
        sent: p.sent,
        dropped: p.dropped,
        received: this.received.get(id) ?? 0,
        queued: p.queueLength,
        connected: p.connected,
      };
    }
    return {
      ...this.counters,
      peers,
      errorsByCode: { ...this.errorsByCode },
      recentErrors: [...this.recentErrors],
    };
  }

  /** Closes the listener and every connection, stops every timer; resolves when all is released. */
  close(): Promise<void> {
    if (this.closing === undefined) this.closing = this.shutdown();
    return this.closing;
  }

  /** Closes everything once (see `close`). */
  private async shutdown(): Promise<void> {
    this.closed = true;
    // node:net's server.close() settles only once its connections are gone: close them meanwhile.
    const listenerClosed = this.listener.close();
    for (const peer of this.outbound.values()) peer.stop();
    await Promise.all([...this.inbound].map((c) => c.fc.conn.close()));
    await listenerClosed;
    // Tasks may spawn others while they finish (bounded: nothing new starts once closed).
    for (let round = 0; round < 10 && this.tasks.size > 0; round++) {
      await Promise.allSettled([...this.tasks]);
    }
  }

  // ---- internals shared with OutboundPeer ----

  /** Runs `task` in the background; `close()` waits for it. */
  #spawn(task: Promise<void>): void {
    const t = task.catch((e) =>
      this.logger.warn(`internal error: ${errorText(e)}`)
    ).finally(() => this.tasks.delete(t));
    this.tasks.add(t);
  }

  /** Counts and keeps a typed error; logs it unless `log` is false. */
  #record(error: TransportError, peerId: number, log = true): void {
    this.errorsByCode[error.code]++;
    this.recentErrors.push({ at: Date.now(), peerId, error });
    if (this.recentErrors.length > MAX_RECENT_ERRORS) this.recentErrors.shift();
    if (log) this.logger.warn(error.message);
  }

  /** What the outbound peers need from their transport. */
  #host(): PeerHost<M> {
    return {
      codec: this.codec,
      handshake: this.handshake,
      backend: this.backend,
      maxFrameBytes: this.maxFrameBytes,
      maxQueueMessages: this.maxQueueMessages,
      maxBatchMessages: this.maxBatchMessages,
      backoffInitialMs: this.backoffInitialMs,
      backoffMaxMs: this.backoffMaxMs,
      handshakeTimeoutMs: this.handshakeTimeoutMs,
      random: this.random,
      spawn: (task) => this.#spawn(task),
      record: (error, peerId, log) => this.#record(error, peerId, log),
      count: (name, n = 1) => void (this.counters[name] += n),
      warn: (message) => this.logger.warn(message),
      unreachable: (peerId) => {
        try {
          this.unreachableHandler?.(peerId);
        } catch (e) {
          this.logger.warn(`unreachable handler threw: ${errorText(e)}`);
        }
      },
    };
  }

  /** Accepts inbound connections until the listener closes. */
  private async acceptLoop(): Promise<void> {
    while (!this.closed) {
      const conn = await this.listener.accept();
      if (conn === null) break;
      if (this.closed) {
        await conn.close();
        break;
      }
      this.counters.connectionsAccepted++;
      const source = sourceAddress(conn.remote);
      const fromSource = this.pendingByAddress.get(source) ?? 0;
      if (
        this.pendingHandshakes >= this.maxPendingHandshakes ||
        fromSource >= this.maxPendingHandshakesPerAddress
      ) {
        this.counters.connectionsRefused++;
        await conn.close();
        continue;
      }
      // Counted here, before the next accept, so a flood cannot overshoot the limits.
      this.pendingHandshakes++;
      this.pendingByAddress.set(source, fromSource + 1);
      this.#spawn(this.serveInbound(conn, source));
    }
  }

  /** Authenticates one inbound connection (counted as pending by the accept loop), then reads its batches. */
  private async serveInbound(conn: SocketConn, source: string): Promise<void> {
    const fc = new FramedConn(conn, HANDSHAKE_MAX_PAYLOAD);
    const entry: InboundConn = { fc, peerId: 0 };
    this.inbound.add(entry);
    let bytesCounted = 0;
    const countBytes = () => {
      this.counters.bytesReceived += fc.bytesRead - bytesCounted;
      bytesCounted = fc.bytesRead;
    };
    try {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        void conn.close();
      }, this.inboundHandshakeTimeoutMs);
      try {
        entry.peerId = (await listenerHandshake(fc, this.handshake)).peerId;
      } catch (e) {
        this.counters.connectionsRefused++;
        if (!this.closed) {
          if (timedOut) {
            this.#record(
              new HandshakeTimeoutError(this.inboundHandshakeTimeoutMs),
              0,
            );
          } else {
            this.#record(
              asTransportError(e, 0, conn.remote),
              e instanceof TransportError ? e.peerId : 0,
            );
          }
        }
        return;
      } finally {
        clearTimeout(timer);
        this.pendingHandshakes--;
        const left = (this.pendingByAddress.get(source) ?? 1) - 1;
        if (left > 0) this.pendingByAddress.set(source, left);
        else this.pendingByAddress.delete(source);
      }
      if (this.closed) return;
      this.counters.handshakesCompleted++;
      // A reconnecting peer replaces its older inbound connection.
      for (const other of this.inbound) {
        if (other !== entry && other.peerId === entry.peerId) {
          void other.fc.conn.close();
        }
      }
      fc.reader.maxPayloadBytes = this.maxFrameBytes;
      await this.readBatches(fc, entry.peerId, countBytes);
    } finally {
      countBytes();
      this.inbound.delete(entry);
      await conn.close();
    }
  }

  /** Reads batch frames and hands their messages to the handler. */
  private async readBatches(
    fc: FramedConn,
    peerId: number,
    countBytes: () => void,
  ): Promise<void> {
    while (!this.closed) {
      let frame;
      try {
        frame = await fc.readSealedFrame(peerId);
      } catch (e) {
        if (!this.closed && e instanceof TransportError) {
          this.#record(e, peerId);
        }
        return; // a broken socket (reset) ends the connection quietly
      }
      countBytes();
      if (frame === null) return;
      if (frame.kind !== FRAME_KIND.batch) {
        if (frame.kind === FRAME_KIND.reject) {
          const text = new TextDecoder().decode(frame.body.subarray(1));
          this.#record(
            new MalformedFrameError(
              `peer ${peerId} closed the connection: ${text}`,
              peerId,
            ),
            peerId,
          );
        } else {
          this.#record(
            new MalformedFrameError(
              `unexpected frame kind ${frame.kind} after the handshake`,
              peerId,
            ),
            peerId,
          );
        }
        return;
      }
      let messages: M[];
      try {
        messages = this.codec.decodeBatch(frame.body);
      } catch (e) {
        this.#record(
          new MalformedFrameError(
            `undecodable batch from peer ${peerId}: ${errorText(e)}`,
            peerId,
          ),
          peerId,
        );
        return;
      }
      this.counters.framesReceived++;
      this.counters.messagesReceived += messages.length;
      this.received.set(
        peerId,
        (this.received.get(peerId) ?? 0) + messages.length,
      );
      const h = this.handler;
      if (h === undefined) continue;
      for (const m of messages) {
        try {
          h(m, peerId);
        } catch (e) {
          this.counters.handlerErrors++;
          this.logger.warn(
            `message handler threw on a message from ${peerId}: ${
              errorText(e)
            }`,
          );
        }
      }
    }
  }
}

interface InboundConn {
  fc: FramedConn;
  peerId: number;
}

/** The source IP of a `host:port` remote address (the whole text if it does not parse). */
function sourceAddress(remote: string): string {
  try {
    return parseAddress(remote).hostname;
  } catch {
    return remote;
  }
}
