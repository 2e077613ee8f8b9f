/**
 * Plain TypeScript record framing, the reference for the WASM module:
 * `[u32 length][u32 crc32c][u8 type][payload]`, little-endian, the CRC over
 * the length field, the type byte and the payload.
 *
 * @module
 */

import { recordCrcReference } from "./crc32c_reference.ts";

/** Bytes before each payload: length (4), CRC (4), type (1). */
export const RECORD_HEADER_BYTES = 9;

/** Why a decode stopped (same numbering as the WASM module). */
export const StopReason = {
  none: 0,
  truncatedHeader: 1,
  truncatedPayload: 2,
  lengthPastEnd: 3,
  checksumMismatch: 4,
} as const;

/** Little-endian u32 at `p`. */
export function readU32(bytes: Uint8Array, p: number): number {
  return (bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) |
    (bytes[p + 3] << 24)) >>> 0;
}

/** Writes `v` as a little-endian u32 at `p`. */
export function writeU32(bytes: Uint8Array, p: number, v: number): void {
  bytes[p] = v;
  bytes[p + 1] = v >>> 8;
  bytes[p + 2] = v >>> 16;
  bytes[p + 3] = v >>> 24;
}

/**
 * Writes the CRC of every record laid out back to back in `bytes[start, end)`
 * (lengths, types and payloads already in place). Returns the number of
 * records, or -1 when the lengths do not tile the range.
 */
export function frameRecordsReference(
  bytes: Uint8Array,
  start: number,
  end: number,
): number {
  let p = start;
  let n = 0;
  while (end - p >= RECORD_HEADER_BYTES) {
    const len = readU32(bytes, p);
    if (len + RECORD_HEADER_BYTES > end - p) return -1;
    writeU32(bytes, p + 4, recordCrcReference(bytes, p, len));
    p += RECORD_HEADER_BYTES + len;
    n++;
  }
  return p === end ? n : -1;
}

/** Result of a verify pass: valid record offsets and where/why it stopped. */
export interface VerifyResult {
  /** Number of valid records found. */
  count: number;
  /** Offset (from `start`) where verification stopped. */
  stopOffset: number;
  /** A {@linkcode StopReason} value. */
  stopReason: number;
}

/**
 * Verifies records in `bytes[start, end)`, writing the header offset (from
 * `start`) of each valid record into `out`; stops at the first bad record or
 * when `out` is full.
 */
export function verifyRecordsReference(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: Uint32Array,
  maxPayload: number,
): VerifyResult {
  let p = start;
  let n = 0;
  let reason: number = StopReason.none;
  while (n < out.length) {
    const remaining = end - p;
    if (remaining === 0) break;
    if (remaining < RECORD_HEADER_BYTES) {
      reason = StopReason.truncatedHeader;
      break;
    }
    const len = readU32(bytes, p);
    if (len > maxPayload) {
      reason = StopReason.lengthPastEnd;
      break;
    }
    if (len + RECORD_HEADER_BYTES > remaining) {
      reason = StopReason.truncatedPayload;
      break;
    }
    if (recordCrcReference(bytes, p, len) !== readU32(bytes, p + 4)) {
      reason = StopReason.checksumMismatch;
      break;
    }
    out[n++] = p - start;
    p += RECORD_HEADER_BYTES + len;
  }
  return { count: n, stopOffset: p - start, stopReason: reason };
}
