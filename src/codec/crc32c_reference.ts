/**
 * Plain TypeScript CRC32C (Castagnoli, reflected polynomial 0x82F63B78, as in
 * iSCSI, RFC 3720) and record framing. It is the reference the WASM module is
 * tested against, and the fallback where WebAssembly is absent.
 *
 * @module
 */

const POLY = 0x82f63b78;

function makeTables(): Uint32Array {
  // Slicing-by-8: table t maps a byte that is t positions ahead.
  const tables = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    tables[i] = c >>> 0;
  }
  for (let t = 1; t < 8; t++) {
    for (let i = 0; i < 256; i++) {
      const prev = tables[(t - 1) * 256 + i];
      tables[t * 256 + i] = (prev >>> 8) ^ tables[prev & 0xff];
    }
  }
  return tables;
}

const T = makeTables();

/** Advances a raw (inverted) CRC state over `bytes[start, end)`. */
export function crc32cUpdateReference(
  state: number,
  bytes: Uint8Array,
  start: number,
  end: number,
): number {
  let crc = state >>> 0;
  let p = start;
  while (end - p >= 8) {
    const a = (bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) |
      (bytes[p + 3] << 24)) ^ crc;
    crc = T[1792 + (a & 0xff)] ^ T[1536 + ((a >>> 8) & 0xff)] ^
      T[1280 + ((a >>> 16) & 0xff)] ^ T[1024 + (a >>> 24)] ^
      T[768 + bytes[p + 4]] ^ T[512 + bytes[p + 5]] ^
      T[256 + bytes[p + 6]] ^ T[bytes[p + 7]];
    p += 8;
  }
  while (p < end) crc = T[(crc ^ bytes[p++]) & 0xff] ^ (crc >>> 8);
  return crc >>> 0;
}

/**
 * CRC32C of `bytes` in plain TypeScript; `seed` is a previous result to chain from.
 *
 * @example
 * ```ts
 * import { crc32cReference } from "@raft-io/raft/codec";
 * crc32cReference(new TextEncoder().encode("123456789")).toString(16); // "e3069283"
 * ```
 */
export function crc32cReference(bytes: Uint8Array, seed = 0): number {
  return ~crc32cUpdateReference(~seed >>> 0, bytes, 0, bytes.length) >>> 0;
}

/** CRC of the record whose header starts at `p` with payload length `len`. */
export function recordCrcReference(
  bytes: Uint8Array,
  p: number,
  len: number,
): number {
  const state = crc32cUpdateReference(0xffffffff, bytes, p, p + 4);
  return ~crc32cUpdateReference(state, bytes, p + 8, p + 9 + len) >>> 0;
}
