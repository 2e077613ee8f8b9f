/**
 * Wire frames of the TCP transport.
 *
 * ```
 * [u32 length LE][u8 version][u32 crc32c LE][payload: u8 kind, body…]
 * ```
 *
 * `length` counts the payload bytes. The CRC32C covers the length bytes, the
 * version byte and the payload, so a flipped length bit is caught too. The
 * payload's first byte says what the frame is: handshake steps
 * ({@linkcode FRAME_KIND}) or a batch of messages encoded by the injected
 * codec. Frames larger than the receiver's maximum are refused from the
 * header alone, before anything is buffered.
 *
 * The CRC catches corruption, not an attacker (who recomputes it). Every
 * frame after the handshake is therefore sealed as well (`frame_auth.ts`):
 * its payload is `[u8 kind][u64 seq][body][16-byte tag]`, the tag a MAC or
 * AES-GCM tag under a per-connection key. See docs/wire_format.md.
 *
 * @module
 */

import { crc32c } from "../../codec/crc32c.ts";
import {
  FrameChecksumError,
  FrameTooLargeError,
  FrameVersionError,
  MalformedFrameError,
} from "../transport_errors.ts";

/** The frame format version this code writes and reads. */
export const FRAME_VERSION = 2;
/** Bytes before the payload: length (4), version (1), crc32c (4). */
export const FRAME_HEADER_BYTES = 9;

/** The first payload byte of each frame kind. Stable; never renumbered. */
export const FRAME_KIND = {
  /** Dialer → listener: `[u64 dialer id][u64 expected listener id][32-byte nonce][u8 flags][u8 n][n bytes cluster id]`. */
  hello: 1,
  /** Listener → dialer: `[u64 listener id][32-byte nonce][u8 flags][u8 n][n bytes cluster id]`. */
  challenge: 2,
  /** Either way: `[HMAC-SHA-256 proof]` (empty in insecure mode). */
  proof: 3,
  /** Either way, then close: `[u8 reason][UTF-8 text]`. */
  reject: 4,
  /** Dialer → listener after the handshake, sealed: a codec-encoded batch of messages. */
  batch: 16,
} as const;

/** A decoded frame: its kind and body (a copy, safe to keep). */
export interface Frame {
  /** One of {@linkcode FRAME_KIND}'s values. */
  kind: number;
  /** The payload after the kind byte (a view into `payload`). */
  body: Uint8Array<ArrayBuffer>;
  /** The whole payload, kind byte first (what a frame's MAC covers). */
  payload: Uint8Array<ArrayBuffer>;
}

/**
 * Builds one frame around `body`.
 *
 * @example
 * ```ts
 * import { encodeFrame, FRAME_KIND, FrameReader } from "./frame.ts";
 * const r = new FrameReader(1024);
 * r.push(encodeFrame(FRAME_KIND.batch, new Uint8Array([7])));
 * r.next()?.body; // Uint8Array [7]
 * ```
 */
export function encodeFrame(kind: number, body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + 1 + body.byteLength);
  frame.set(body, FRAME_HEADER_BYTES + 1);
  sealFrame(frame, kind);
  return frame;
}

/**
 * Turns `frame` into a frame of `kind` in place: `frame` holds
 * {@linkcode FRAME_HEADER_BYTES} + 1 bytes of room for the header and the
 * kind byte, then the body. Fills in the length, version, kind and
 * checksum (what {@linkcode encodeFrame} produces, without a copy).
 */
export function sealFrame(frame: Uint8Array, kind: number): void {
  const payloadLength = frame.byteLength - FRAME_HEADER_BYTES;
  frame[0] = payloadLength & 0xff;
  frame[1] = (payloadLength >>> 8) & 0xff;
  frame[2] = (payloadLength >>> 16) & 0xff;
  frame[3] = payloadLength >>> 24;
  frame[4] = FRAME_VERSION;
  frame[FRAME_HEADER_BYTES] = kind;
  const crc = frameChecksum(frame);
  frame[5] = crc & 0xff;
  frame[6] = (crc >>> 8) & 0xff;
  frame[7] = (crc >>> 16) & 0xff;
  frame[8] = crc >>> 24;
}

/** The CRC32C of a frame laid out in `frame` (header's crc field excluded). */
function frameChecksum(frame: Uint8Array): number {
  return crc32c(
    frame.subarray(FRAME_HEADER_BYTES),
    crc32c(frame.subarray(0, 5)),
  );
}

/**
 * Reassembles frames from a byte stream: push chunks as they arrive, take
 * frames with {@linkcode FrameReader.next} until it returns `null`. Throws a
 * typed transport error for a bad frame; the connection must then be closed
 * (the stream is no longer in sync).
 */
export class FrameReader {
  /** Largest payload accepted, in bytes. May be changed between frames (small during the handshake). */
  maxPayloadBytes: number;
  private buf: Uint8Array;
  private start = 0;
  private end = 0;
  private readonly lengthView = new Uint8Array(FRAME_HEADER_BYTES);

  /** @param maxPayloadBytes largest payload accepted */
  constructor(maxPayloadBytes: number) {
    this.maxPayloadBytes = maxPayloadBytes;
    this.buf = new Uint8Array(4096);
  }

  /** Bytes received and not yet taken as frames. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Appends received bytes (copied; the chunk may be reused by the caller). */
  push(chunk: Uint8Array): void {
    const need = this.end - this.start + chunk.byteLength;
    if (this.end + chunk.byteLength > this.buf.byteLength) {
      if (need <= this.buf.byteLength) {
        this.buf.copyWithin(0, this.start, this.end);
      } else {
        const grown = new Uint8Array(Math.max(need, this.buf.byteLength * 2));
        grown.set(this.buf.subarray(this.start, this.end));
        this.buf = grown;
      }
      this.end -= this.start;
      this.start = 0;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.byteLength;
  }

  /** The next complete frame, or `null` when more bytes are needed. */
  next(): Frame | null {
    const available = this.end - this.start;
    if (available < FRAME_HEADER_BYTES) return null;
    const b = this.buf;
    const s = this.start;
    const length =
      (b[s] | (b[s + 1] << 8) | (b[s + 2] << 16) | (b[s + 3] << 24)) >>> 0;
    const version = b[s + 4];
    if (version !== FRAME_VERSION) throw new FrameVersionError(version);
    if (length > this.maxPayloadBytes) {
      throw new FrameTooLargeError(length, this.maxPayloadBytes);
    }
    if (length === 0) throw new MalformedFrameError("empty payload");
    if (available < FRAME_HEADER_BYTES + length) return null;
    const expected =
      (b[s + 5] | (b[s + 6] << 8) | (b[s + 7] << 16) | (b[s + 8] << 24)) >>> 0;
    this.lengthView.set(b.subarray(s, s + 5));
    const payload = b.subarray(
      s + FRAME_HEADER_BYTES,
      s + FRAME_HEADER_BYTES + length,
    );
    const actual = crc32c(payload, crc32c(this.lengthView.subarray(0, 5)));
    if (actual !== expected) throw new FrameChecksumError(expected, actual);
    this.start += FRAME_HEADER_BYTES + length;
    if (this.start === this.end) this.start = this.end = 0;
    const copy = payload.slice();
    return { kind: copy[0], body: copy.subarray(1), payload: copy };
  }
}
