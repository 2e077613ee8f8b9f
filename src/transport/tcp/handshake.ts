/**
 * The authenticated handshake of the TCP transport: each side announces its
 * node id, a fresh random nonce, its flags and its cluster id, then each
 * proves knowledge of the shared cluster secret with an HMAC-SHA-256 (Web
 * Crypto) over everything both sides announced. The dialer proves first, so
 * a stranger that merely connects to a listener learns nothing computed from
 * the secret.
 *
 * ```
 * dialer D                                        listener L
 *   hello     H = {id D, expected id L, nonce D, flags, cluster id}  →
 *                     L refuses unknown ids and another cluster's id here
 *   ←  challenge C = {id L, nonce L, flags, cluster id}
 *                     D refuses an unexpected id L or another cluster's id
 *   proof     HMAC(k, "raft-io/2 dialer proof"   ‖ H ‖ C)  →  L verifies
 *   ←  proof  HMAC(k, "raft-io/2 listener proof" ‖ H ‖ C)     D verifies
 * ```
 *
 * Distinct labels per direction stop a proof from being reflected back;
 * fresh nonces on both sides stop replay; the proofs cover the cluster ids
 * and flags, so a proxy can neither strip a cluster id nor turn encryption
 * off. Both sides then derive one key per direction from `H ‖ C`
 * (`frame_auth.ts`) and seal every later frame with it. Either side that
 * refuses sends a `reject` frame with a reason before closing, so both
 * sides can record why.
 *
 * @module
 */

import { encodeFrame, type Frame, FRAME_KIND, FrameReader } from "./frame.ts";
import { FrameAuth, type FrameProtection } from "./frame_auth.ts";
import type { SocketConn } from "./socket.ts";
import {
  AuthenticationError,
  ClusterMismatchError,
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
  /** The nodes belong to different clusters; the text is the refusing node's cluster id. */
  clusterMismatch: 5,
} as const;

/** Bits of the flags byte of hello and challenge. */
export const HANDSHAKE_FLAGS = {
  /** This side wants frames encrypted (AES-256-GCM); either side asking is enough. */
  encryptFrames: 1,
} as const;

/** Longest cluster id, in UTF-8 bytes. */
export const MAX_CLUSTER_ID_BYTES = 255;

const utf8 = new TextEncoder();
const DIALER_PROOF_LABEL = utf8.encode("raft-io/2 dialer proof");
const LISTENER_PROOF_LABEL = utf8.encode("raft-io/2 listener proof");
const DIALER_KEY_LABEL = utf8.encode("raft-io/2 frame key dialer to listener");
const LISTENER_KEY_LABEL = utf8.encode(
  "raft-io/2 frame key listener to dialer",
);

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
  /** Keys and sequence numbers once the handshake is done. */
  session: Session | undefined;

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

  /**
   * The next frame after the handshake, opened (sequence and tag checked):
   * its kind and body, or `null` at end of stream. Throws a typed error
   * (`FrameAuthError` for a forged, altered or replayed frame).
   */
  async readSealedFrame(peerId: number): Promise<Frame | null> {
    const session = this.session;
    if (session === undefined) throw new Error("handshake not done");
    const frame = await this.readFrame();
    if (frame === null) return null;
    const body = await session.receive.open(frame.payload, peerId);
    return { kind: frame.kind, body, payload: frame.payload };
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
    const t = new TextEncoder().encode(text.slice(0, 255));
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
  /** This node's cluster id (`""`: none; then any cluster id is accepted). */
  clusterId?: string;
  /** Ask for encrypted frames (AES-256-GCM) rather than MAC-only ones. */
  encryptFrames?: boolean;
}

/** The outcome of a handshake: who the peer is and how frames are sealed each way. */
export interface Session {
  /** The authenticated peer id. */
  peerId: number;
  /** How frames are protected on this connection (both directions). */
  protection: FrameProtection;
  /** Seals the frames this side writes. */
  send: FrameAuth;
  /** Opens the frames this side reads. */
  receive: FrameAuth;
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

function concat(...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.byteLength;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.byteLength;
  }
  return out;
}

/** The flags byte and cluster id that end a hello or challenge. */
function announcement(config: HandshakeConfig): Uint8Array {
  const id = utf8.encode(config.clusterId ?? "");
  const out = new Uint8Array(2 + id.byteLength);
  out[0] = config.encryptFrames === true ? HANDSHAKE_FLAGS.encryptFrames : 0;
  out[1] = id.byteLength;
  out.set(id, 2);
  return out;
}

/** Parses the flags and cluster id at `offset`, which must end the body exactly. */
function parseAnnouncement(
  body: Uint8Array,
  offset: number,
  peerId: number,
): { flags: number; clusterId: string } {
  if (body.byteLength < offset + 2) {
    throw new MalformedFrameError("handshake frame too short", peerId);
  }
  const n = body[offset + 1];
  if (body.byteLength !== offset + 2 + n) {
    throw new MalformedFrameError("bad handshake frame size", peerId);
  }
  let clusterId: string;
  try {
    clusterId = new TextDecoder("utf-8", { fatal: true }).decode(
      body.subarray(offset + 2),
    );
  } catch {
    throw new MalformedFrameError("cluster id is not UTF-8", peerId);
  }
  return { flags: body[offset], clusterId };
}

/** Both nodes name a cluster and the names differ. */
function clustersDiffer(local: string | undefined, remote: string): boolean {
  return local !== undefined && local !== "" && remote !== "" &&
    local !== remote;
}

/** Derives both directions' frame keys from the hello and challenge bodies. */
async function deriveSession(
  config: HandshakeConfig,
  peerId: number,
  isDialer: boolean,
  hello: Uint8Array,
  challenge: Uint8Array,
  flags: number,
): Promise<Session> {
  const protection: FrameProtection = config.key === null
    ? "none"
    : (flags & HANDSHAKE_FLAGS.encryptFrames) !== 0
    ? "aead"
    : "mac";
  const t = concat(hello, challenge);
  const [d2l, l2d] = await Promise.all([
    FrameAuth.derive(config.key, protection, DIALER_KEY_LABEL, t),
    FrameAuth.derive(config.key, protection, LISTENER_KEY_LABEL, t),
  ]);
  return isDialer
    ? { peerId, protection, send: d2l, receive: l2d }
    : { peerId, protection, send: l2d, receive: d2l };
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

function rejectError(
  frame: Frame,
  peerId: number,
  remote: string,
  localClusterId: string,
): Error {
  const reason = frame.body[0];
  const text = new TextDecoder().decode(frame.body.subarray(1));
  if (reason === REJECT_REASON.unknownPeer) {
    return new UnknownPeerError(peerId, remote, `the peer refused us: ${text}`);
  }
  if (reason === REJECT_REASON.clusterMismatch) {
    return new ClusterMismatchError(localClusterId, text, peerId);
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
  config: HandshakeConfig,
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
    throw rejectError(frame, peerId, fc.conn.remote, config.clusterId ?? "");
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
 * Runs the dialer's side on a fresh connection to `peerId`. Resolves with
 * the session (stored on `fc` too) when both sides are authenticated;
 * throws a typed error (after sending a reject frame where useful)
 * otherwise.
 */
export async function dialerHandshake(
  fc: FramedConn,
  config: HandshakeConfig,
  peerId: number,
): Promise<Session> {
  const nonceD = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const mine = announcement(config);
  const hello = new Uint8Array(16 + NONCE_BYTES + mine.byteLength);
  putId(hello, 0, config.localId);
  putId(hello, 8, peerId);
  hello.set(nonceD, 16);
  hello.set(mine, 16 + NONCE_BYTES);
  await fc.writeFrame(FRAME_KIND.hello, hello);

  const challenge = await expectFrame(fc, FRAME_KIND.challenge, peerId, config);
  if (challenge.body.byteLength < 8 + NONCE_BYTES) {
    throw new MalformedFrameError("bad challenge size", peerId);
  }
  const listenerId = getId(challenge.body, 0);
  const theirs = parseAnnouncement(challenge.body, 8 + NONCE_BYTES, peerId);
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
  if (clustersDiffer(config.clusterId, theirs.clusterId)) {
    await fc.reject(REJECT_REASON.clusterMismatch, config.clusterId ?? "");
    throw new ClusterMismatchError(
      config.clusterId ?? "",
      theirs.clusterId,
      peerId,
    );
  }
  const proof = await prove(
    config.key,
    concat(DIALER_PROOF_LABEL, hello, challenge.body),
  );
  await fc.writeFrame(FRAME_KIND.proof, proof);

  const answer = await expectFrame(fc, FRAME_KIND.proof, peerId, config);
  const ok = await verifyProof(
    config.key,
    answer.body,
    concat(LISTENER_PROOF_LABEL, hello, challenge.body),
  );
  if (!ok) {
    await fc.reject(REJECT_REASON.authenticationFailed, "bad listener proof");
    throw new AuthenticationError(
      peerId,
      "its proof did not verify against our cluster secret",
    );
  }
  const session = await deriveSession(
    config,
    peerId,
    true,
    hello,
    challenge.body,
    mine[0] | theirs.flags,
  );
  fc.session = session;
  return session;
}

/**
 * Runs the listener's side on an accepted connection. Resolves with the
 * session (stored on `fc` too) of the authenticated peer; throws a typed
 * error (after sending a reject frame) otherwise.
 */
export async function listenerHandshake(
  fc: FramedConn,
  config: HandshakeConfig,
): Promise<Session> {
  const hello = await expectFrame(fc, FRAME_KIND.hello, 0, config);
  if (hello.body.byteLength < 16 + NONCE_BYTES) {
    throw new MalformedFrameError("bad hello size");
  }
  const dialerId = getId(hello.body, 0);
  const expected = getId(hello.body, 8);
  const theirs = parseAnnouncement(hello.body, 16 + NONCE_BYTES, dialerId);
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
  if (clustersDiffer(config.clusterId, theirs.clusterId)) {
    await fc.reject(REJECT_REASON.clusterMismatch, config.clusterId ?? "");
    throw new ClusterMismatchError(
      config.clusterId ?? "",
      theirs.clusterId,
      dialerId,
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
  const mine = announcement(config);
  const challenge = new Uint8Array(8 + NONCE_BYTES + mine.byteLength);
  putId(challenge, 0, config.localId);
  challenge.set(nonceL, 8);
  challenge.set(mine, 8 + NONCE_BYTES);
  await fc.writeFrame(FRAME_KIND.challenge, challenge);

  const proof = await expectFrame(fc, FRAME_KIND.proof, dialerId, config);
  const ok = await verifyProof(
    config.key,
    proof.body,
    concat(DIALER_PROOF_LABEL, hello.body, challenge),
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
    concat(LISTENER_PROOF_LABEL, hello.body, challenge),
  );
  await fc.writeFrame(FRAME_KIND.proof, answer);
  const session = await deriveSession(
    config,
    dialerId,
    false,
    hello.body,
    challenge,
    mine[0] | theirs.flags,
  );
  fc.session = session;
  return session;
}
