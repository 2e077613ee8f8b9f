/**
 * CRC32C (Castagnoli), computed in the embedded WASM module with a plain
 * TypeScript fallback.
 *
 * @module
 */

import { sharedCodecInstance, wasmAvailable } from "../wasm/codec_wasm.ts";
import { crc32cReference } from "./crc32c_reference.ts";

// Input is copied into WASM memory in chunks, so memory stays bounded.
const CHUNK_BYTES = 1 << 20;
// Below this size the copy into WASM memory costs more than it saves.
const WASM_MIN_BYTES = 64;

/**
 * CRC32C of `bytes` computed in WebAssembly (chunked copies into its memory).
 * Throws where WebAssembly is unavailable; prefer {@linkcode crc32c}.
 *
 * @example
 * ```ts
 * import { crc32cWasm } from "@raft-io/raft/codec";
 * crc32cWasm(new TextEncoder().encode("123456789")).toString(16); // "e3069283"
 * ```
 */
export function crc32cWasm(bytes: Uint8Array, seed = 0): number {
  const instance = sharedCodecInstance();
  if (bytes.length <= CHUNK_BYTES) {
    instance.reserve(bytes.length);
    instance.heap().set(bytes, instance.base);
    return instance.exports.crc32c(instance.base, bytes.length, seed) >>> 0;
  }
  instance.reserve(Math.min(bytes.length, CHUNK_BYTES));
  const heap = instance.heap();
  const base = instance.base;
  let crc = seed >>> 0;
  for (let off = 0; off < bytes.length; off += CHUNK_BYTES) {
    const end = Math.min(off + CHUNK_BYTES, bytes.length);
    heap.set(bytes.subarray(off, end), base);
    crc = instance.exports.crc32c(base, end - off, crc) >>> 0;
  }
  return crc;
}

/**
 * CRC32C (Castagnoli, reflected, as in iSCSI / RFC 3720) of `bytes`, as an
 * unsigned 32-bit number. Pass a previous result as `seed` to continue it:
 * `crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`.
 *
 * @example
 * ```ts
 * import { crc32c } from "@raft-io/raft/codec";
 * const all = crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * const chained = crc32c(new TextEncoder().encode("6789"), crc32c(new TextEncoder().encode("12345")));
 * console.log(all === chained); // true
 * ```
 */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  if (bytes.length < WASM_MIN_BYTES || !wasmAvailable()) {
    return crc32cReference(bytes, seed);
  }
  return crc32cWasm(bytes, seed);
}
