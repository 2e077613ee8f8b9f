/**
 * The outbound side of one peer of a `TcpTransport`: a bounded
 * queue, one connection (dialled and authenticated on demand) and a writer
 * loop that drains the whole queue into one frame per write, reconnecting
 * with jittered exponential back-off.
 *
 * @module
 */

import type { MessageCodec } from "../raft_transport.ts";
import {
  ConnectionError,
  FrameTooLargeError,
  HandshakeTimeoutError,
  MalformedFrameError,
  TransportError,
} from "../transport_errors.ts";
import { ByteWriter } from "../../codec/binary.ts";
import { FRAME_HEADER_BYTES, FRAME_KIND } from "./frame.ts";
import {
  type FrameProtection,
  SEALED_BODY_OFFSET,
  tagBytes,
} from "./frame_auth.ts";
import {
  dialerHandshake,
  FramedConn,
  HANDSHAKE_MAX_PAYLOAD,
  type HandshakeConfig,
} from "./handshake.ts";
import {
  formatAddress,
  type SocketAddress,
  type SocketBackend,
  type SocketConn,
} from "./socket.ts";

/** The counters a transport keeps (see `TcpTransportStats`). */
export interface TransportCounters {
  messagesSent: number;
  messagesReceived: number;
  messagesDropped: number;
  writes: number;
  bytesSent: number;
  bytesReceived: number;
  framesReceived: number;
  connectionsAccepted: number;
  connectionsRefused: number;
  handshakesCompleted: number;
  dialFailures: number;
  handlerErrors: number;
}

/** The text of any thrown value. */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** What an {@linkcode OutboundPeer} needs from its transport. */
export interface PeerHost<M> {
  codec: MessageCodec<M>;
  handshake: HandshakeConfig;
  backend: SocketBackend;
  maxFrameBytes: number;
  maxQueueMessages: number;
  maxBatchMessages: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  handshakeTimeoutMs: number;
  random: () => number;
  spawn(task: Promise<void>): void;
  record(error: TransportError, peerId: number, log?: boolean): void;
  count(name: keyof TransportCounters, n?: number): void;
  warn(message: string): void;
  unreachable(peerId: number): void;
}

/** A frame buffer grown past this (a rare huge batch) is not kept. */
const RETAINED_FRAME_BUFFER_BYTES = 1024 * 1024;

export function asTransportError(
  e: unknown,
  peerId: number,
  address: string,
): TransportError {
  if (e instanceof TransportError) return e;
  return new ConnectionError(peerId, address, errorText(e));
}

/** The outbound side of one peer: its queue, its connection and its writer loop. */
export class OutboundPeer<M> {
  readonly id: number;
  readonly address: SocketAddress;
  sent = 0;
  dropped = 0;
  connected = false;

  private readonly host: PeerHost<M>;
  private queue: M[] = [];
  private fc: FramedConn | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private sleepTimer: ReturnType<typeof setTimeout> | undefined;
  private sleepResolve: (() => void) | undefined;
  private connectAbort: AbortController | undefined;
  private backoffMs: number;
  private needsBackoff = false;
  private failing = false;
  /** Frame buffer for codecs with `encodeBatchInto` (reused: one write at a time). */
  private writer: ByteWriter | undefined;

  constructor(host: PeerHost<M>, id: number, address: SocketAddress) {
    this.host = host;
    this.id = id;
    this.address = address;
    this.backoffMs = host.backoffInitialMs;
  }

  get queueLength(): number {
    return this.queue.length;
  }

  enqueue(message: M): void {
    if (
      this.stopped ||
      this.queue.length >= this.host.maxQueueMessages
    ) {
      this.drop(1);
      return;
    }
    this.queue.push(message);
    const w = this.wake;
    if (w !== undefined) {
      this.wake = undefined;
      w();
    }
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.drop(this.queue.length);
    this.queue = [];
    this.connectAbort?.abort();
    if (this.sleepTimer !== undefined) clearTimeout(this.sleepTimer);
    this.sleepTimer = undefined;
    this.sleepResolve?.();
    this.wake?.();
    this.wake = undefined;
    this.disconnect();
  }

  async run(): Promise<void> {
    while (!this.stopped) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      if (this.fc === undefined) {
        if (this.needsBackoff) {
          await this.sleep(this.nextBackoff());
          this.needsBackoff = false;
          if (this.stopped) break;
        }
        if (!await this.connect()) {
          this.drop(this.queue.length);
          this.queue = [];
          this.needsBackoff = true;
          this.host.unreachable(this.id);
          continue;
        }
      }
      const batch = this.queue.length <= this.host.maxBatchMessages
        ? this.queue
        : this.queue.splice(0, this.host.maxBatchMessages);
      if (batch === this.queue) this.queue = [];
      await this.writeBatch(batch);
    }
  }

  private drop(n: number): void {
    if (n === 0) return;
    this.dropped += n;
    this.host.count("messagesDropped", n);
  }

  private nextBackoff(): number {
    const base = this.backoffMs;
    this.backoffMs = Math.min(
      this.backoffMs * 2,
      this.host.backoffMaxMs,
    );
    // Jitter in [base/2, base): peers that lost each other at once do not retry in lockstep.
    return base / 2 + (base / 2) * this.host.random();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.sleepResolve = resolve;
      this.sleepTimer = setTimeout(() => {
        this.sleepTimer = undefined;
        this.sleepResolve = undefined;
        resolve();
      }, ms);
    });
  }

  private async connect(): Promise<boolean> {
    const cfg = this.host;
    const abort = new AbortController();
    this.connectAbort = abort;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, cfg.handshakeTimeoutMs);
    let conn: SocketConn | undefined;
    const remote = formatAddress(this.address);
    try {
      conn = await cfg.backend.connect(this.address, abort.signal);
      if (this.stopped) {
        await conn.close();
        return false;
      }
      const opened = conn;
      abort.signal.addEventListener("abort", () => void opened.close(), {
        once: true,
      });
      const fc = new FramedConn(conn, HANDSHAKE_MAX_PAYLOAD);
      await dialerHandshake(fc, cfg.handshake, this.id);
      if (this.stopped) {
        await conn.close();
        return false;
      }
      fc.reader.maxPayloadBytes = cfg.maxFrameBytes;
      this.host.count("bytesSent", fc.bytesWritten);
      fc.bytesWritten = 0;
      this.fc = fc;
      this.connected = true;
      this.failing = false;
      this.backoffMs = cfg.backoffInitialMs;
      this.host.count("handshakesCompleted");
      this.host.spawn(this.watch(fc));
      return true;
    } catch (e) {
      if (conn !== undefined) await conn.close();
      if (this.stopped) return false;
      this.host.count("dialFailures");
      const err = timedOut
        ? new HandshakeTimeoutError(cfg.handshakeTimeoutMs, this.id)
        : asTransportError(e, this.id, remote);
      // A peer that is down fails every back-off period: log the first failure of a streak only.
      const log = !(err instanceof ConnectionError) || !this.failing;
      this.failing = true;
      this.host.record(err, this.id, log);
      return false;
    } finally {
      clearTimeout(timer);
      this.connectAbort = undefined;
    }
  }

  /** Reads the outbound connection only to notice when it ends (or the peer rejects us late). */
  private async watch(fc: FramedConn): Promise<void> {
    try {
      while (true) {
        const frame = await fc.readSealedFrame(this.id);
        if (frame === null) break;
        if (frame.kind === FRAME_KIND.reject) {
          const text = new TextDecoder().decode(frame.body.subarray(1));
          this.host.record(
            new MalformedFrameError(
              `peer ${this.id} dropped us: ${text}`,
              this.id,
            ),
            this.id,
          );
          break;
        }
      }
    } catch (e) {
      // reset or garbage: the connection is over either way
      if (e instanceof TransportError && !this.stopped) {
        this.host.record(e, this.id);
      }
    }
    if (this.fc === fc) this.disconnect();
    else await fc.conn.close();
  }

  private disconnect(): void {
    const fc = this.fc;
    this.fc = undefined;
    this.connected = false;
    if (fc !== undefined) {
      this.needsBackoff = true;
      void fc.conn.close();
    }
  }

  /**
   * The unsealed frame of `batch`, laid out for `FrameAuth.seal`: room for
   * the header, kind and sequence number, the codec's bytes, room for the
   * tag. Encoded straight into the reused frame buffer when the codec can
   * (valid until the next call), else copied around `encodeBatch`'s bytes.
   */
  private encodeBatchFrame(
    batch: M[],
    protection: FrameProtection,
  ): Uint8Array<ArrayBuffer> {
    const codec = this.host.codec;
    const tag = tagBytes(protection);
    if (codec.encodeBatchInto === undefined) {
      const body = codec.encodeBatch(batch);
      const frame = new Uint8Array(SEALED_BODY_OFFSET + body.byteLength + tag);
      frame.set(body, SEALED_BODY_OFFSET);
      return frame;
    }
    let w = this.writer;
    if (w === undefined || w.capacity > RETAINED_FRAME_BUFFER_BYTES) {
      w = this.writer = new ByteWriter(64 * 1024);
    }
    w.reset();
    w.ensure(SEALED_BODY_OFFSET);
    w.pos = SEALED_BODY_OFFSET;
    try {
      codec.encodeBatchInto(w, batch);
    } catch (e) {
      w.reset();
      throw e;
    }
    w.ensure(tag);
    w.pos += tag;
    // ByteWriter's buffer is a plain ArrayBuffer (never shared).
    return w.written() as Uint8Array<ArrayBuffer>;
  }

  private async writeBatch(batch: M[]): Promise<void> {
    const cfg = this.host;
    const session = this.fc?.session;
    if (session === undefined || this.stopped) {
      this.drop(batch.length);
      return;
    }
    let frame: Uint8Array<ArrayBuffer>;
    try {
      frame = this.encodeBatchFrame(batch, session.protection);
    } catch (e) {
      if (batch.length > 1) {
        // Find the bad message(s): encode the halves separately.
        const mid = batch.length >> 1;
        await this.writeBatch(batch.slice(0, mid));
        await this.writeBatch(batch.slice(mid));
      } else {
        this.drop(1);
        this.host.warn(
          `cannot encode a message for peer ${this.id}: ${errorText(e)}`,
        );
      }
      return;
    }
    const payloadBytes = frame.byteLength - FRAME_HEADER_BYTES;
    if (payloadBytes > cfg.maxFrameBytes) {
      if (batch.length > 1) {
        const mid = batch.length >> 1;
        await this.writeBatch(batch.slice(0, mid));
        await this.writeBatch(batch.slice(mid));
      } else {
        this.drop(1);
        this.host.record(
          new FrameTooLargeError(
            payloadBytes,
            cfg.maxFrameBytes,
            this.id,
          ),
          this.id,
        );
      }
      return;
    }
    const fc = this.fc;
    if (fc === undefined || fc.session !== session || this.stopped) {
      this.drop(batch.length);
      return;
    }
    try {
      // Sealed right before its write: sequence numbers follow the write order.
      await session.send.seal(frame, FRAME_KIND.batch);
      await fc.writeRaw(frame);
      this.sent += batch.length;
      this.host.count("messagesSent", batch.length);
      this.host.count("writes");
      this.host.count("bytesSent", frame.byteLength);
    } catch (e) {
      this.drop(batch.length);
      if (!this.stopped) {
        this.host.unreachable(this.id);
        this.host.record(
          new ConnectionError(
            this.id,
            formatAddress(this.address),
            errorText(e),
          ),
          this.id,
        );
      }
      if (this.fc === fc) this.disconnect();
    }
  }
}
