/**
 * Sealing of the frames that follow the handshake: each one carries a
 * sequence number and a 16-byte tag under a key of its connection and
 * direction, so a frame cannot be forged, altered, replayed, reordered or
 * dropped without the receiver noticing.
 *
 * ```
 * payload = [u8 kind][u64 seq LE][body][16-byte tag]
 *   "mac":  tag  = HMAC-SHA-256(K_dir, kind ‖ seq ‖ body)[0..16)
 *   "aead": body = AES-256-GCM ciphertext, tag = its GCM tag,
 *           iv = 4 zero bytes ‖ seq, additional data = kind ‖ seq
 *   "none": (insecure mode) no tag; the sequence is still checked
 * K_dir = HMAC-SHA-256(cluster key, label_dir ‖ hello body ‖ challenge body)
 * ```
 *
 * The hello and challenge bodies hold both node ids, both nonces, both
 * cluster ids and both flag bytes, so every connection and direction gets a
 * fresh key. Sequence numbers start at 0 on each connection and direction;
 * they are on the wire (8 bytes) so the tag covers a contiguous byte range
 * of the frame and no copy is needed to compute it.
 *
 * @module
 */

import { FrameAuthError } from "../transport_errors.ts";
import { FRAME_HEADER_BYTES, sealFrame } from "./frame.ts";
import { HmacSha256 } from "./hmac_sha256.ts";

/** How frames after the handshake are protected. */
export type FrameProtection = "none" | "mac" | "aead";

/** Bytes of the sequence number after the kind byte. */
export const FRAME_SEQ_BYTES = 8;
/** Bytes of the tag at the end of a sealed payload ("mac" and "aead"). */
export const FRAME_TAG_BYTES = 16;
/** Bytes of a sealed frame before its body: header, kind, sequence number. */
export const SEALED_BODY_OFFSET = FRAME_HEADER_BYTES + 1 + FRAME_SEQ_BYTES;

/**
 * Frames whose tagged bytes are at most this long get their HMAC from the
 * synchronous {@linkcode HmacSha256} (about a microsecond for a short
 * batch); longer ones from Web Crypto, which costs tens of microseconds a
 * call but hashes faster per byte. The tags are the same either way.
 */
export const SYNC_MAC_MAX_BYTES = 2048;

/** Tag bytes of a protection mode. */
export function tagBytes(protection: FrameProtection): number {
  return protection === "none" ? 0 : FRAME_TAG_BYTES;
}

function putSeq(out: Uint8Array, offset: number, seq: number): void {
  const lo = seq % 0x1_0000_0000;
  const hi = Math.floor(seq / 0x1_0000_0000);
  out[offset] = lo & 0xff;
  out[offset + 1] = (lo >>> 8) & 0xff;
  out[offset + 2] = (lo >>> 16) & 0xff;
  out[offset + 3] = lo >>> 24;
  out[offset + 4] = hi & 0xff;
  out[offset + 5] = (hi >>> 8) & 0xff;
  out[offset + 6] = (hi >>> 16) & 0xff;
  out[offset + 7] = hi >>> 24;
}

function getSeq(b: Uint8Array, o: number): number {
  const lo = (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>>
    0;
  const hi =
    (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
  return hi * 0x1_0000_0000 + lo;
}

/**
 * One direction of one connection: seals outgoing frames or opens incoming
 * ones, keeping the sequence number. Not shared between directions.
 */
export class FrameAuth {
  /** How frames are protected. */
  readonly protection: FrameProtection;
  /** The sequence number of the next frame sealed or opened. */
  nextSeq = 0;
  private readonly key: CryptoKey | null;
  /** The same HMAC key for small frames ("mac" only). */
  private readonly hmac: HmacSha256 | null;
  /** AES-GCM iv, reused (Web Crypto copies its parameters at call time). */
  private readonly iv = new Uint8Array(12);
  /** The tag computed for a received frame, reused. */
  private readonly expected = new Uint8Array(FRAME_TAG_BYTES);

  private constructor(
    protection: FrameProtection,
    key: CryptoKey | null,
    hmac: HmacSha256 | null,
  ) {
    this.protection = protection;
    this.key = key;
    this.hmac = hmac;
  }

  /**
   * Derives the key of one direction: HMAC-SHA-256 of `label ‖ transcript`
   * under the cluster key, imported for HMAC or AES-256-GCM. With no
   * cluster key (insecure mode) frames carry only a sequence number.
   */
  static async derive(
    clusterKey: CryptoKey | null,
    protection: FrameProtection,
    label: Uint8Array,
    transcript: Uint8Array,
  ): Promise<FrameAuth> {
    if (clusterKey === null || protection === "none") {
      return new FrameAuth("none", null, null);
    }
    const input = new Uint8Array(label.byteLength + transcript.byteLength);
    input.set(label, 0);
    input.set(transcript, label.byteLength);
    const raw = await crypto.subtle.sign("HMAC", clusterKey, input);
    const key = protection === "mac"
      ? await crypto.subtle.importKey(
        "raw",
        raw,
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      )
      : await crypto.subtle.importKey(
        "raw",
        raw,
        { name: "AES-GCM" },
        false,
        ["encrypt", "decrypt"],
      );
    const rawBytes = new Uint8Array(raw);
    const hmac = protection === "mac" ? new HmacSha256(rawBytes) : null;
    rawBytes.fill(0);
    return new FrameAuth(protection, key, hmac);
  }

  /**
   * Seals `frame` in place as a frame of `kind`: `frame` is laid out as
   * {@linkcode SEALED_BODY_OFFSET} bytes of room, the body, then
   * {@linkcode tagBytes} bytes of room. Writes the sequence number and the
   * tag (encrypting the body in "aead" mode), then the header and CRC.
   */
  async seal(frame: Uint8Array<ArrayBuffer>, kind: number): Promise<void> {
    const tagLen = tagBytes(this.protection);
    const end = frame.byteLength - tagLen;
    if (end < SEALED_BODY_OFFSET) {
      throw new RangeError("frame too short to seal");
    }
    const seq = this.nextSeq++;
    frame[FRAME_HEADER_BYTES] = kind;
    putSeq(frame, FRAME_HEADER_BYTES + 1, seq);
    const key = this.key;
    if (key !== null && this.protection === "mac") {
      const tagged = frame.subarray(FRAME_HEADER_BYTES, end);
      if (this.hmac !== null && tagged.byteLength <= SYNC_MAC_MAX_BYTES) {
        this.hmac.sign(tagged, frame, end, FRAME_TAG_BYTES);
      } else {
        const mac = await crypto.subtle.sign("HMAC", key, tagged);
        frame.set(new Uint8Array(mac, 0, FRAME_TAG_BYTES), end);
      }
    } else if (key !== null) {
      putSeq(this.iv, 4, seq);
      const sealed = await crypto.subtle.encrypt(
        {
          name: "AES-GCM",
          iv: this.iv,
          additionalData: frame.subarray(
            FRAME_HEADER_BYTES,
            SEALED_BODY_OFFSET,
          ),
          tagLength: 128,
        },
        key,
        frame.subarray(SEALED_BODY_OFFSET, end),
      );
      frame.set(new Uint8Array(sealed), SEALED_BODY_OFFSET);
    }
    sealFrame(frame, kind);
  }

  /**
   * Opens a received payload (`[kind][seq][body][tag]`, owned by the
   * caller): checks the sequence number and the tag and returns the body
   * (decrypted in "aead" mode). Throws {@linkcode FrameAuthError}; the
   * connection must then be closed.
   */
  async open(
    payload: Uint8Array<ArrayBuffer>,
    peerId: number,
  ): Promise<Uint8Array<ArrayBuffer>> {
    const tagLen = tagBytes(this.protection);
    const end = payload.byteLength - tagLen;
    const bodyStart = 1 + FRAME_SEQ_BYTES;
    if (end < bodyStart) {
      throw new FrameAuthError(
        "truncated",
        `a sealed frame needs at least ${
          bodyStart + tagLen
        } payload bytes, got ${payload.byteLength}`,
        peerId,
      );
    }
    const seq = getSeq(payload, 1);
    if (seq !== this.nextSeq) {
      throw new FrameAuthError(
        "bad_sequence",
        `frame number ${seq} where number ${this.nextSeq} was due (replayed, reordered or dropped)`,
        peerId,
      );
    }
    const key = this.key;
    let body: Uint8Array<ArrayBuffer>;
    if (key !== null && this.protection === "mac") {
      const tagged = payload.subarray(0, end);
      let mac = this.expected;
      if (this.hmac !== null && tagged.byteLength <= SYNC_MAC_MAX_BYTES) {
        this.hmac.sign(tagged, mac, 0, FRAME_TAG_BYTES);
      } else {
        mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, tagged));
      }
      // Constant time: every tag byte is compared.
      let diff = 0;
      for (let i = 0; i < FRAME_TAG_BYTES; i++) {
        diff |= mac[i] ^ payload[end + i];
      }
      if (diff !== 0) {
        throw new FrameAuthError(
          "bad_tag",
          `the MAC of frame number ${seq} (kind ${payload[0]}) did not verify`,
          peerId,
        );
      }
      body = payload.subarray(bodyStart, end);
    } else if (key !== null) {
      putSeq(this.iv, 4, seq);
      try {
        body = new Uint8Array(
          await crypto.subtle.decrypt(
            {
              name: "AES-GCM",
              iv: this.iv,
              additionalData: payload.subarray(0, bodyStart),
              tagLength: 128,
            },
            key,
            payload.subarray(bodyStart),
          ),
        );
      } catch {
        throw new FrameAuthError(
          "bad_tag",
          `frame number ${seq} (kind ${payload[0]}) did not decrypt`,
          peerId,
        );
      }
    } else {
      body = payload.subarray(bodyStart, end);
    }
    this.nextSeq++;
    return body;
  }
}
