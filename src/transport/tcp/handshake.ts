/**
 * The authenticated handshake of the TCP transport: each side announces its
 * node id and a fresh random nonce, then each proves knowledge of the shared
 * cluster secret with an HMAC-SHA-256 (Web Crypto) over both nonces and both
 * ids. The dialer proves first, so a stranger that merely connects to a
 * listener learns nothing computed from the secret.
 *
 * ```
 * dialer D                                   listener L
 *   hello     {id D, expected id L, nonce D}  →   L refuses unknown ids here
 *   ←  challenge {id L, nonce L}                  D refuses an unexpected id L
 *   proof     HMAC(k, "raft-io/1 dialer"   ‖ nD ‖ nL ‖ D ‖ L)  →  L verifies
 *   ←  proof  HMAC(k, "raft-io/1 listener" ‖ nD ‖ nL ‖ L ‖ D)     D verifies
 * ```
 *
 * Distinct labels per direction stop a proof from being reflected back;
 * fresh nonces on both sides stop replay. Either side that refuses sends a
 * `reject` frame with a reason before closing, so both sides can record why.
 *
 * @module
 */

import { encodeFrame, type Frame, FRAME_KIND, FrameReader } from "./frame.ts";
import type { SocketConn } from "./socket.ts";
import {
  AuthenticationError,
  ConnectionError,
  MalformedFrameError,
  UnknownPeerError,
} from "../transport_errors.ts";

/** Length of handshake nonces in bytes. */
export const NONCE_BYTES = 32;
/** Largest handshake frame payload accepted (before authentication). */
export const HANDSHAKE_MAX_PAYLOAD = 1024;

/** Reason codes of a reject frame. */
export const REJECT_REASON = {
  /** The announced id is not a known peer (or not the one dialled). */
  unknownPeer: 1,
  /** A proof did not verify. */
  authenticationFailed: 2,
  /** The handshake was out of order or malformed. */
  protocol: 3,
} as const;

const DIALER_LABEL = new TextEncoder().encode("raft-io/1 dialer");
const LISTENER_LABEL = new TextEncoder().encode("raft-io/1 listener");

/**
 * A connection that speaks frames: the socket plus a frame reader.
 * Counts the bytes it moves.
 */
export class FramedConn {
  /** The socket. */
  readonly conn: SocketConn;
  /** The frame reader (its `maxPayloadBytes` is raised after the handshake). */
  readonly reader: FrameReader;
  /** Bytes read so far. */
  bytesRead = 0;
  /** Bytes written so far. */
  bytesWritten = 0;

  /**
   * @param conn the socket
   * @param maxPayloadBytes initial frame size limit
   */
  constructor(conn: SocketConn, maxPayloadBytes: number) {
    this.conn = conn;
    this.reader = new FrameReader(maxPayloadBytes);
  }

  /** The next frame, or `null` at end of stream. Throws typed errors on bad frames. */
  async readFrame(): Promise<Frame | null> {
    while (true) {
      const frame = this.reader.next();
      if (frame !== null) return frame;
      const chunk = await this.conn.read();
      if (chunk === null) return null;
      this.bytesRead += chunk.byteLength;
      this.reader.push(chunk);
    }
  }

  /** Writes one frame of `kind` around `body`. */
  async writeFrame(kind: number, body: Uint8Array): Promise<void> {
    await this.writeRaw(encodeFrame(kind, body));
  }

  /** Writes already framed bytes. */
  async writeRaw(bytes: Uint8Array): Promise<void> {
    await this.conn.write(bytes);
    this.bytesWritten += bytes.byteLength;
  }

  /** Sends a reject frame (best effort) and closes. */
  async reject(reason: number, text: string): Promise<void> {
    const t = new TextEncoder().encode(text.slice(0, 200));
    const body = new Uint8Array(1 + t.byteLength);
    body[0] = reason;
    body.set(t, 1);
    try {
      await this.writeFrame(FRAME_KIND.reject, body);
    } catch {
      // the peer may already be gone
    }
    await this.conn.close();
  }
}

/** What both sides of a handshake need. */
export interface HandshakeConfig {
  /** This node's id. */
  localId: number;
  /** HMAC key of the cluster secret; `null` in insecure mode (no proofs). */
  key: CryptoKey | null;
  /** Whether `id` may connect (is in the peer list). */
  isKnownPeer(id: number): boolean;
}

/**
 * Imports a cluster secret as an HMAC-SHA-256 key. Secrets shorter than 16
 * bytes are refused (they could be guessed offline from a captured proof).
 *
 * @example
 * ```ts
 * import { importClusterSecret } from "./handshake.ts";
 * const key = await importClusterSecret("0123456789abcdef0123456789abcdef");
 * key.algorithm.name; // "HMAC"
 * ```
 */
export async function importClusterSecret(
  secret: Uint8Array | string,
): Promise<CryptoKey> {
  const bytes = typeof secret === "string"
    ? new TextEncoder().encode(secret)
    : new Uint8Array(secret);
  if (bytes.byteLength < 16) {
    throw new RangeError(
      `cluster secret is ${bytes.byteLength} bytes; use at least 16 random bytes ` +
        "(e.g. `openssl rand -hex 32 > cluster.secret`)",
    );
  }
  return await crypto.subtle.importKey(
    "raw",
    bytes,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

function putId(out: Uint8Array, offset: number, id: number): void {
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  v.setUint32(offset, id % 0x1_0000_0000, true);
  v.setUint32(offset + 4, Math.floor(id / 0x1_0000_0000), true);
}

function getId(bytes: Uint8Array, offset: number): number {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = v.getUint32(offset, true);
  const hi = v.getUint32(offset + 4, true);
  if (hi > 0x1f_ffff) {
    throw new MalformedFrameError("node id is not a safe integer");
  }
  return hi * 0x1_0000_0000 + lo;
}

function transcript(
  label: Uint8Array,
  nonceD: Uint8Array,
  nonceL: Uint8Array,
  self: number,
  other: number,
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(label.byteLength + 2 * NONCE_BYTES + 16);
  out.set(label, 0);
  out.set(nonceD, label.byteLength);
  out.set(nonceL, label.byteLength + NONCE_BYTES);
  putId(out, label.byteLength + 2 * NONCE_BYTES, self);
  putId(out, label.byteLength + 2 * NONCE_BYTES + 8, other);
  return out;
}

async function prove(
  key: CryptoKey | null,
  data: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  if (key === null) return new Uint8Array(0);
  return new Uint8Array(await crypto.subtle.sign("HMAC", key, data));
}

async function verifyProof(
  key: CryptoKey | null,
  proof: Uint8Array<ArrayBuffer>,
  data: Uint8Array<ArrayBuffer>,
): Promise<boolean> {
  if (key === null) return true;
  if (proof.byteLength !== 32) return false;
  return await crypto.subtle.verify("HMAC", key, proof, data);
}

function rejectError(frame: Frame, peerId: number, remote: string): Error {
  const reason = frame.body[0];
  const text = new TextDecoder().decode(frame.body.subarray(1));
  if (reason === REJECT_REASON.unknownPeer) {
    return new UnknownPeerError(peerId, remote, `the peer refused us: ${text}`);
  }
  if (reason === REJECT_REASON.authenticationFailed) {
    return new AuthenticationError(
      peerId,
      `the peer rejected our proof (${text})`,
    );
  }
  return new MalformedFrameError(
    `the peer refused the handshake: ${text}`,
    peerId,
  );
}

async function expectFrame(
  fc: FramedConn,
  kind: number,
  peerId: number,
): Promise<Frame> {
  const frame = await fc.readFrame();
  if (frame === null) {
    throw new ConnectionError(
      peerId,
      fc.conn.remote,
      "closed during the handshake",
    );
  }
  if (frame.kind === FRAME_KIND.reject) {
    throw rejectError(frame, peerId, fc.conn.remote);
  }
  if (frame.kind !== kind) {
    await fc.reject(REJECT_REASON.protocol, `expected frame kind ${kind}`);
    throw new MalformedFrameError(
      `expected handshake frame kind ${kind}, got ${frame.kind}`,
      peerId,
    );
  }
  return frame;
}

/**
 * Runs the dialer's side on a fresh connection to `peerId`. Resolves when
 * both sides are authenticated; throws a typed error (after sending a reject
 * frame where useful) otherwise.
 */
export async function dialerHandshake(
  fc: FramedConn,
  config: HandshakeConfig,
  peerId: number,
): Promise<void> {
  const nonceD = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const hello = new Uint8Array(16 + NONCE_BYTES);
  putId(hello, 0, config.localId);
  putId(hello, 8, peerId);
  hello.set(nonceD, 16);
  await fc.writeFrame(FRAME_KIND.hello, hello);

  const challenge = await expectFrame(fc, FRAME_KIND.challenge, peerId);
  if (challenge.body.byteLength !== 8 + NONCE_BYTES) {
    throw new MalformedFrameError("bad challenge size", peerId);
  }
  const listenerId = getId(challenge.body, 0);
  const nonceL = challenge.body.subarray(8);
  if (listenerId !== peerId) {
    await fc.reject(
      REJECT_REASON.unknownPeer,
      `dialled node ${peerId}, reached node ${listenerId}`,
    );
    throw new UnknownPeerError(
      listenerId,
      fc.conn.remote,
      `expected node ${peerId} at this address`,
    );
  }
  const proof = await prove(
    config.key,
    transcript(DIALER_LABEL, nonceD, nonceL, config.localId, peerId),
  );
  await fc.writeFrame(FRAME_KIND.proof, proof);

  const answer = await expectFrame(fc, FRAME_KIND.proof, peerId);
  const ok = await verifyProof(
    config.key,
    answer.body,
    transcript(LISTENER_LABEL, nonceD, nonceL, peerId, config.localId),
  );
  if (!ok) {
    await fc.reject(REJECT_REASON.authenticationFailed, "bad listener proof");
    throw new AuthenticationError(
      peerId,
      "its proof did not verify against our cluster secret",
    );
  }
}

/**
 * Runs the listener's side on an accepted connection. Resolves with the
 * authenticated peer id; throws a typed error (after sending a reject frame)
 * otherwise.
 */
export async function listenerHandshake(
  fc: FramedConn,
  config: HandshakeConfig,
): Promise<number> {
  const hello = await expectFrame(fc, FRAME_KIND.hello, 0);
  if (hello.body.byteLength !== 16 + NONCE_BYTES) {
    throw new MalformedFrameError("bad hello size");
  }
  const dialerId = getId(hello.body, 0);
  const expected = getId(hello.body, 8);
  const nonceD = hello.body.subarray(16);
  if (expected !== config.localId) {
    await fc.reject(
      REJECT_REASON.unknownPeer,
      `this is node ${config.localId}, not node ${expected}`,
    );
    throw new UnknownPeerError(
      dialerId,
      fc.conn.remote,
      `it dialled node ${expected}, but this is node ${config.localId}`,
    );
  }
  if (dialerId === config.localId || !config.isKnownPeer(dialerId)) {
    await fc.reject(
      REJECT_REASON.unknownPeer,
      `node ${dialerId} is not a peer of node ${config.localId}`,
    );
    throw new UnknownPeerError(dialerId, fc.conn.remote);
  }
  const nonceL = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const challenge = new Uint8Array(8 + NONCE_BYTES);
  putId(challenge, 0, config.localId);
  challenge.set(nonceL, 8);
  await fc.writeFrame(FRAME_KIND.challenge, challenge);

  const proof = await expectFrame(fc, FRAME_KIND.proof, dialerId);
  const ok = await verifyProof(
    config.key,
    proof.body,
    transcript(DIALER_LABEL, nonceD, nonceL, dialerId, config.localId),
  );
  if (!ok) {
    await fc.reject(REJECT_REASON.authenticationFailed, "bad dialer proof");
    throw new AuthenticationError(
      dialerId,
      "its proof did not verify against our cluster secret",
    );
  }
  const answer = await prove(
    config.key,
    transcript(LISTENER_LABEL, nonceD, nonceL, config.localId, dialerId),
  );
  await fc.writeFrame(FRAME_KIND.proof, answer);
  return dialerId;
}
