/**
 * Binary primitives of the wire codec: a growable {@linkcode ByteWriter} over a
 * reused buffer and a bounds-checked {@linkcode ByteReader}.
 *
 * All multi-byte numbers are little-endian. A 64-bit number is two `u32`
 * halves (low first) and must be a safe integer (`<= 2^53 - 1`): the high
 * half may not exceed `0x1fffff`. Byte strings are a `u32` length followed by
 * the bytes.
 *
 * The reader throws only {@linkcode MessageDecodeError}, checks every length
 * against the bytes left and a caller-supplied maximum before allocating, and
 * reports the offset of the offending field.
 *
 * @module
 */

import { MessageDecodeError, MessageEncodeError } from "./codec_errors.ts";

const TWO_POW_32 = 0x1_0000_0000;
/** Largest high half of a 64-bit number that still gives a safe integer. */
const MAX_SAFE_HIGH = 0x1f_ffff;
const MAX_U32 = 0xffff_ffff;

/**
 * A growable byte writer. The buffer is reused across messages: call
 * {@linkcode ByteWriter.reset} and write again; the capacity doubles when
 * needed. Every number is checked before it is written.
 *
 * @example
 * ```ts
 * import { ByteWriter } from "./binary.ts";
 * const w = new ByteWriter();
 * w.u8(1);
 * w.u64(2 ** 40, "term");
 * w.bytes(new Uint8Array([1, 2, 3]), "data");
 * w.toBytes().byteLength; // 1 + 8 + 4 + 3 = 16
 * ```
 */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  /** Number of bytes written since the last reset. */
  pos = 0;

  /**
   * Creates a writer with an empty buffer.
   *
   * @param initialCapacity starting buffer size in bytes
   */
  constructor(initialCapacity = 1024) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buf.buffer);
  }

  /** Current buffer size in bytes (grows, never shrinks by itself). */
  get capacity(): number {
    return this.buf.byteLength;
  }

  /** Forgets what was written; the buffer is kept for the next message. */
  reset(): void {
    this.pos = 0;
  }

  /** Replaces the buffer with a fresh one of `capacity` bytes (drops a large buffer after a rare big message). */
  shrink(capacity = 1024): void {
    this.buf = new Uint8Array(Math.max(16, capacity));
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.byteLength) return;
    let size = this.buf.byteLength * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Writes one byte (`0 <= value <= 255`, not checked: callers pass constants and tags). */
  u8(value: number): void {
    if (this.pos + 1 > this.buf.byteLength) this.ensure(1);
    this.buf[this.pos++] = value;
  }

  /** Writes a boolean as one byte, 0 or 1. */
  bool(value: boolean): void {
    this.u8(value ? 1 : 0);
  }

  /** Writes a 32-bit unsigned integer; `field` names it in the error when out of range. */
  u32(value: number, field: string): void {
    if (!(value >= 0 && value <= MAX_U32 && Number.isInteger(value))) {
      throw new MessageEncodeError(
        Number.isSafeInteger(value) && value >= 0
          ? "length_limit"
          : "unsafe_integer",
        field,
        `${value} is not an integer in 0..${MAX_U32}`,
      );
    }
    if (this.pos + 4 > this.buf.byteLength) this.ensure(4);
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  /** Writes a safe non-negative integer as 8 bytes (low u32, high u32). */
  u64(value: number, field: string): void {
    if (!(value >= 0 && Number.isSafeInteger(value))) {
      throw new MessageEncodeError(
        "unsafe_integer",
        field,
        `${value} is not a safe integer >= 0`,
      );
    }
    if (this.pos + 8 > this.buf.byteLength) this.ensure(8);
    const high = Math.floor(value / TWO_POW_32);
    this.view.setUint32(this.pos, value - high * TWO_POW_32, true);
    this.view.setUint32(this.pos + 4, high, true);
    this.pos += 8;
  }

  /** Writes a `u32` length followed by the bytes. */
  bytes(data: Uint8Array, field: string): void {
    const n = data.byteLength;
    this.u32(n, field);
    if (n === 0) return;
    if (this.pos + n > this.buf.byteLength) this.ensure(n);
    this.buf.set(data, this.pos);
    this.pos += n;
  }

  /** Writes bytes with no length prefix. */
  raw(data: Uint8Array): void {
    const n = data.byteLength;
    if (this.pos + n > this.buf.byteLength) this.ensure(n);
    this.buf.set(data, this.pos);
    this.pos += n;
  }

  /** Overwrites the `u32` at `at` (e.g. a length reserved with a placeholder). */
  patchU32(at: number, value: number): void {
    this.view.setUint32(at, value, true);
  }

  /** A view of what was written; valid only until the next write or reset. */
  written(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  /** A copy of what was written, owned by the caller. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/**
 * A bounds-checked reader over a byte array. Every method throws
 * {@linkcode MessageDecodeError} (never a `RangeError`) when the bytes are
 * short or a value is out of range.
 *
 * @example
 * ```ts
 * import { ByteReader } from "./binary.ts";
 * const r = new ByteReader(new Uint8Array([7, 0, 0, 0]));
 * r.u32("count"); // 7
 * r.expectEnd();
 * ```
 */
export class ByteReader {
  /** Offset of the next byte to read. */
  pos: number;
  /** Offset just past the last readable byte. */
  end: number;
  private readonly buf: Uint8Array;
  private readonly view: DataView;

  /**
   * Creates a reader over `bytes[start, end)`.
   *
   * @param bytes the input (byte fields are returned as views into it)
   * @param start first offset to read
   * @param end offset just past the last byte to read
   */
  constructor(bytes: Uint8Array, start = 0, end: number = bytes.byteLength) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  /** Bytes left before `end`. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Reads one byte. */
  u8(field: string): number {
    if (this.pos + 1 > this.end) shortRead(this, 1, field);
    return this.buf[this.pos++];
  }

  /** Reads a boolean byte; anything but 0 or 1 is `invalid_value`. */
  bool(field: string): boolean {
    const at = this.pos;
    const b = this.u8(field);
    if (b > 1) {
      throw new MessageDecodeError(
        "invalid_value",
        at,
        `${field} is a boolean but holds ${b}`,
      );
    }
    return b === 1;
  }

  /** Reads a 32-bit unsigned integer. */
  u32(field: string): number {
    if (this.pos + 4 > this.end) shortRead(this, 4, field);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads a 64-bit unsigned integer that must be a safe integer. */
  u64(field: string): number {
    if (this.pos + 8 > this.end) shortRead(this, 8, field);
    const low = this.view.getUint32(this.pos, true);
    const high = this.view.getUint32(this.pos + 4, true);
    if (high > MAX_SAFE_HIGH) {
      throw new MessageDecodeError(
        "unsafe_integer",
        this.pos,
        `${field} is above Number.MAX_SAFE_INTEGER (high word 0x${
          high.toString(16)
        })`,
      );
    }
    this.pos += 8;
    return high * TWO_POW_32 + low;
  }

  /**
   * Reads a `u32` count of items that each take at least `minItemBytes`,
   * rejecting a count above `max` or one the remaining bytes cannot hold —
   * before the caller allocates anything for it.
   */
  count(max: number, minItemBytes: number, field: string): number {
    const at = this.pos;
    const n = this.u32(field);
    if (n > max) {
      throw new MessageDecodeError(
        "length_limit",
        at,
        `${field} is ${n}, above the limit of ${max}`,
      );
    }
    if (n * minItemBytes > this.end - this.pos) {
      throw new MessageDecodeError(
        "short_read",
        at,
        `${field} is ${n} but only ${this.end - this.pos} bytes remain`,
      );
    }
    return n;
  }

  /** Reads a `u32` length (at most `max`) and that many bytes, as a view into the input. */
  bytes(max: number, field: string): Uint8Array {
    const at = this.pos;
    const n = this.u32(field);
    if (n > max) {
      throw new MessageDecodeError(
        "length_limit",
        at,
        `${field} is ${n} bytes long, above the limit of ${max}`,
      );
    }
    if (n > this.end - this.pos) {
      throw new MessageDecodeError(
        "short_read",
        at,
        `${field} is ${n} bytes long but only ${this.end - this.pos} remain`,
      );
    }
    const start = this.pos;
    this.pos += n;
    return this.buf.subarray(start, start + n);
  }

  /** Throws `trailing_bytes` unless everything up to `end` was read. */
  expectEnd(what = "message"): void {
    if (this.pos !== this.end) {
      throw new MessageDecodeError(
        "trailing_bytes",
        this.pos,
        `${this.end - this.pos} bytes left after a complete ${what}`,
      );
    }
  }
}

function shortRead(r: ByteReader, need: number, field: string): never {
  throw new MessageDecodeError(
    "short_read",
    r.pos,
    `${field} needs ${need} bytes but only ${r.end - r.pos} remain`,
  );
}
