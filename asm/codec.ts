// raft-io WAL hot path: CRC32C (Castagnoli, reflected, RFC 3720) and record
// framing `[u32 length][u32 crc32c][u8 type][payload]`, all little-endian.
// The CRC covers the length field, the type byte and the payload.
//
// Memory: the CRC tables live in static data; callers place buffers at or
// above `heapBase()` and grow memory from the host as needed. No allocator,
// no GC: the module is a pure function library over linear memory.

const POLY: u32 = 0x82f63b78;
const HEADER: u32 = 9;
// Sixteen 256-entry tables for slicing-by-16.
const TABLES: usize = memory.data(16 * 256 * 4, 64);

function initTables(): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    store<u32>(TABLES + (<usize> i << 2), c);
  }
  for (let t: u32 = 1; t < 16; t++) {
    for (let i: u32 = 0; i < 256; i++) {
      const prev = load<u32>(TABLES + ((<usize> ((t - 1) << 8) | i) << 2));
      const next = (prev >>> 8) ^
        load<u32>(TABLES + (<usize> (prev & 0xff) << 2));
      store<u32>(TABLES + ((<usize> ((t << 8) | i)) << 2), next);
    }
  }
}
initTables();

// Three lanes of LANE bytes are checksummed at once (independent dependency
// chains keep the CPU's load ports busy), then joined by shifting a lane's
// CRC over LANE zero bytes with the SHIFT tables.
const LANE: usize = 256;
const SHIFT: usize = memory.data(4 * 256 * 4, 64);
const MATRIX_A: usize = memory.data(32 * 4, 16);
const MATRIX_B: usize = memory.data(32 * 4, 16);

function matrixTimes(mat: usize, vec: u32): u32 {
  let sum: u32 = 0;
  let v = vec;
  let i: usize = 0;
  while (v != 0) {
    if (v & 1) sum ^= load<u32>(mat + (i << 2));
    v >>>= 1;
    i++;
  }
  return sum;
}

function matrixSquare(dst: usize, src: usize): void {
  for (let n: usize = 0; n < 32; n++) {
    store<u32>(dst + (n << 2), matrixTimes(src, load<u32>(src + (n << 2))));
  }
}

function initShift(): void {
  // MATRIX_A: the operator for one zero bit; squaring doubles the shift.
  store<u32>(MATRIX_A, POLY);
  for (let n: usize = 1; n < 32; n++) {
    store<u32>(MATRIX_A + (n << 2), 1 << <u32> (n - 1));
  }
  matrixSquare(MATRIX_B, MATRIX_A); // 2 bits
  matrixSquare(MATRIX_A, MATRIX_B); // 4 bits
  matrixSquare(MATRIX_B, MATRIX_A); // 1 byte
  let bytes: usize = 1;
  let cur = MATRIX_B;
  let other = MATRIX_A;
  while (bytes < LANE) {
    matrixSquare(other, cur);
    const t = cur;
    cur = other;
    other = t;
    bytes <<= 1;
  }
  for (let k: u32 = 0; k < 4; k++) {
    for (let b: u32 = 0; b < 256; b++) {
      store<u32>(
        SHIFT + ((<usize> ((k << 8) | b)) << 2),
        matrixTimes(cur, b << (k << 3)),
      );
    }
  }
}
initShift();

// @ts-ignore: decorator
@inline function shiftLane(x: u32): u32 {
  return load<u32>(SHIFT + (<usize> (x & 0xff) << 2)) ^
    load<u32>(SHIFT + (<usize> ((x >>> 8) & 0xff) << 2), 1024) ^
    load<u32>(SHIFT + (<usize> ((x >>> 16) & 0xff) << 2), 2048) ^
    load<u32>(SHIFT + (<usize> (x >>> 24) << 2), 3072);
}

// @ts-ignore: decorator
@inline function tab(t: usize, i: u32): u32 {
  return load<u32>(TABLES + (t << 10) + (<usize> i << 2));
}

// @ts-ignore: decorator
@inline function step8(crc: u32, p: usize): u32 {
  const lo = load<u32>(p) ^ crc;
  const hi = load<u32>(p, 4);
  return tab(7, lo & 0xff) ^ tab(6, (lo >>> 8) & 0xff) ^
    tab(5, (lo >>> 16) & 0xff) ^ tab(4, lo >>> 24) ^
    tab(3, hi & 0xff) ^ tab(2, (hi >>> 8) & 0xff) ^
    tab(1, (hi >>> 16) & 0xff) ^ tab(0, hi >>> 24);
}

/** Advances a raw (pre-inverted) CRC state over `len` bytes at `ptr`. */
function update(state: u32, ptr: usize, len: usize): u32 {
  let crc = state;
  let p = ptr;
  const end = ptr + len;
  while (end - p >= 3 * LANE) {
    let a = crc;
    let b: u32 = 0;
    let c: u32 = 0;
    const laneEnd = p + LANE;
    while (p < laneEnd) {
      a = step8(a, p);
      b = step8(b, p + LANE);
      c = step8(c, p + 2 * LANE);
      p += 8;
    }
    // Linearity: crc(A ++ B ++ C) = shift(shift(crc(A)) ^ crc0(B)) ^ crc0(C).
    crc = shiftLane(shiftLane(a) ^ b) ^ c;
    p += 2 * LANE;
  }
  while (end - p >= 16) {
    const a = load<u32>(p) ^ crc;
    const b = load<u32>(p, 4);
    const c = load<u32>(p, 8);
    const d = load<u32>(p, 12);
    crc = tab(15, a & 0xff) ^ tab(14, (a >>> 8) & 0xff) ^
      tab(13, (a >>> 16) & 0xff) ^ tab(12, a >>> 24) ^
      tab(11, b & 0xff) ^ tab(10, (b >>> 8) & 0xff) ^
      tab(9, (b >>> 16) & 0xff) ^ tab(8, b >>> 24) ^
      tab(7, c & 0xff) ^ tab(6, (c >>> 8) & 0xff) ^
      tab(5, (c >>> 16) & 0xff) ^ tab(4, c >>> 24) ^
      tab(3, d & 0xff) ^ tab(2, (d >>> 8) & 0xff) ^
      tab(1, (d >>> 16) & 0xff) ^ tab(0, d >>> 24);
    p += 16;
  }
  while (p < end) {
    crc = tab(0, (crc ^ <u32> load<u8>(p)) & 0xff) ^ (crc >>> 8);
    p++;
  }
  return crc;
}

/** First byte callers may use for their own buffers. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~63;
}

/** CRC32C of `len` bytes at `ptr`, continuing from the finished CRC `seed` (0 to start). */
export function crc32c(ptr: usize, len: usize, seed: u32): u32 {
  return ~update(~seed, ptr, len);
}

function recordCrc(p: usize, len: u32): u32 {
  const state = update(0xffffffff, p, 4);
  return ~update(state, p + 8, 1 + <usize> len);
}

/**
 * Fills in the CRC of every record laid out back to back in `[start, end)`
 * (length, type and payload already written). Returns the number framed, or
 * -1 when the lengths do not tile the range exactly.
 */
export function frameRecords(start: usize, end: usize): i32 {
  let p = start;
  let n: i32 = 0;
  while (end - p >= HEADER) {
    const len = load<u32>(p);
    if (<u64> len + HEADER > <u64> (end - p)) return -1;
    store<u32>(p, recordCrc(p, len), 4);
    p += HEADER + <usize> len;
    n++;
  }
  return p == end ? n : -1;
}

// Why decoding stopped: 0 = end of buffer or `maxCount` reached.
export const REASON_NONE: u32 = 0;
export const REASON_TRUNCATED_HEADER: u32 = 1;
export const REASON_TRUNCATED_PAYLOAD: u32 = 2;
export const REASON_LENGTH_PAST_END: u32 = 3;
export const REASON_CHECKSUM_MISMATCH: u32 = 4;

let stopReason: u32 = 0;
let stopOffset: u32 = 0;

/** Reason of the last `verifyRecords` stop. */
export function lastStopReason(): u32 {
  return stopReason;
}

/** Offset (from `start`) where the last `verifyRecords` stopped. */
export function lastStopOffset(): u32 {
  return stopOffset;
}

/**
 * Verifies records in `[start, end)` and writes the offset (from `start`) of
 * each valid record's header to `out` as u32, at most `maxCount` of them.
 * Stops at the first bad record; `lastStopReason`/`lastStopOffset` tell why
 * and where. Returns the count of valid records.
 */
export function verifyRecords(
  start: usize,
  end: usize,
  out: usize,
  maxCount: u32,
  maxPayload: u32,
): u32 {
  let p = start;
  let n: u32 = 0;
  stopReason = REASON_NONE;
  while (n < maxCount) {
    const remaining = end - p;
    if (remaining == 0) break;
    if (remaining < HEADER) {
      stopReason = REASON_TRUNCATED_HEADER;
      break;
    }
    const len = load<u32>(p);
    if (len > maxPayload) {
      stopReason = REASON_LENGTH_PAST_END;
      break;
    }
    if (<u64> len + HEADER > <u64> remaining) {
      stopReason = REASON_TRUNCATED_PAYLOAD;
      break;
    }
    if (recordCrc(p, len) != load<u32>(p, 4)) {
      stopReason = REASON_CHECKSUM_MISMATCH;
      break;
    }
    store<u32>(out + (<usize> n << 2), <u32> (p - start));
    n++;
    p += HEADER + <usize> len;
  }
  stopOffset = <u32> (p - start);
  return n;
}
