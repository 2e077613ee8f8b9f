/**
 * Record framing for the write-ahead log: `[u32 length][u32 crc32c][u8 type][payload]`,
 * little-endian, the CRC covering the length field, the type byte and the
 * payload. Encoding and verification run in the WASM module, one call per
 * batch; the plain TypeScript reference is the fallback.
 *
 * A header of all zeros is never a valid record (its CRC is not zero), so
 * zero-filled space after the last record reads as a stop, never as data.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";
import { CodecInstance, wasmAvailable } from "../wasm/codec_wasm.ts";
import {
  frameRecordsReference,
  readU32,
  RECORD_HEADER_BYTES,
  StopReason,
  verifyRecordsReference,
  writeU32,
} from "./records_reference.ts";

export { RECORD_HEADER_BYTES } from "./records_reference.ts";

/** Largest payload a record may carry (1 GiB); larger lengths read as corrupt. */
export const MAX_RECORD_PAYLOAD = 0x4000_0000;

/** Which implementation runs: the WASM module or the TypeScript reference. */
export type CodecBackend = "wasm" | "ts";

/** Why a record failed to decode. */
export type RecordCorruptionReason =
  | "truncated_header"
  | "truncated_payload"
  | "length_past_end"
  | "checksum_mismatch";

const REASONS: readonly RecordCorruptionReason[] = [
  "truncated_header", // unused slot 0 (none) is never looked up
  "truncated_header",
  "truncated_payload",
  "length_past_end",
  "checksum_mismatch",
];

const REASON_TEXT: Record<RecordCorruptionReason, string> = {
  truncated_header: "fewer than 9 bytes remain for its header",
  truncated_payload: "its payload runs past the end of the data",
  length_past_end: "its length field is larger than any record may be",
  checksum_mismatch: "its CRC32C does not match its contents",
};

/** A record that is torn, truncated or fails its checksum. */
export class RecordCorruptionError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "RECORD_CORRUPTION" as const;
  /** Byte offset of the bad record's header within the decoded buffer. */
  readonly offset: number;
  /** What is wrong with it. */
  readonly reason: RecordCorruptionReason;

  /** Creates the error for the record whose header starts at `offset`. */
  constructor(offset: number, reason: RecordCorruptionReason) {
    super(
      "RECORD_CORRUPTION",
      `record at byte ${offset} is corrupt: ${REASON_TEXT[reason]}`,
    );
    this.name = "RecordCorruptionError";
    this.offset = offset;
    this.reason = reason;
  }
}

function pickBackend(requested: CodecBackend | undefined): CodecBackend {
  if (requested === "wasm" && !wasmAvailable()) {
    throw new Error(
      "the WASM codec was requested but WebAssembly is unavailable",
    );
  }
  return requested ?? (wasmAvailable() ? "wasm" : "ts");
}

// An encoder whose memory grew past this after a huge batch gets a fresh one on reset().
const ENCODER_SHRINK_BYTES = 64 << 20;

/** Options for {@linkcode RecordEncoder} and {@linkcode decodeRecords}. */
export interface CodecOptions {
  /** Force an implementation (default: WASM where available). */
  backend?: CodecBackend;
}

/**
 * Builds a batch of records in one contiguous buffer. Payloads are written
 * in place (into WASM memory with the WASM backend); `finish()` frames and
 * checksums the whole batch in one call.
 *
 * @example
 * ```ts
 * import { decodeRecords, RecordEncoder } from "@raft-io/raft/codec";
 * const encoder = new RecordEncoder();
 * encoder.add(1, new TextEncoder().encode("hello"));
 * encoder.reserve(2, 3).set([7, 8, 9]);
 * const bytes = encoder.finish().slice();
 * decodeRecords(bytes).count; // 2
 * ```
 */
export class RecordEncoder {
  /** The implementation in use. */
  readonly backend: CodecBackend;
  #wasm: CodecInstance | null;
  #js: Uint8Array;
  #length = 0;
  #count = 0;

  /** Creates an empty batch; `options.backend` forces WASM or TypeScript. */
  constructor(options: CodecOptions = {}) {
    this.backend = pickBackend(options.backend);
    this.#wasm = this.backend === "wasm" ? new CodecInstance() : null;
    this.#js = new Uint8Array(this.#wasm ? 0 : 4096);
  }

  /** Bytes framed so far. */
  get byteLength(): number {
    return this.#length;
  }

  /** Records added so far. */
  get count(): number {
    return this.#count;
  }

  /**
   * Adds a record of `size` payload bytes and returns the payload's view to
   * fill in place. Fill it before the next call on this encoder: growing the
   * memory invalidates earlier views.
   */
  reserve(type: number, size: number): Uint8Array {
    const p = this.#allocate(type, size);
    return this.#buffer().subarray(
      p + RECORD_HEADER_BYTES,
      p + RECORD_HEADER_BYTES + size,
    );
  }

  /** Adds a record, copying `payload`. */
  add(type: number, payload: Uint8Array): void {
    const p = this.#allocate(type, payload.length);
    this.#buffer().set(payload, p + RECORD_HEADER_BYTES);
  }

  #buffer(): Uint8Array {
    return this.#wasm ? this.#wasm.heap() : this.#js;
  }

  /** Writes a record header and returns its position in {@linkcode #buffer}. */
  #allocate(type: number, size: number): number {
    if (!(type >= 0 && type <= 255 && Number.isInteger(type))) {
      throw new RangeError(
        `record type must be an integer 0..255, got ${type}`,
      );
    }
    if (!(size >= 0 && size <= MAX_RECORD_PAYLOAD && Number.isInteger(size))) {
      throw new RangeError(
        `record payload must be 0..${MAX_RECORD_PAYLOAD} bytes, got ${size}`,
      );
    }
    const total = RECORD_HEADER_BYTES + size;
    let p: number;
    if (this.#wasm) {
      this.#wasm.reserve(this.#length + total);
      p = this.#wasm.base + this.#length;
    } else {
      if (this.#length + total > this.#js.length) {
        const grown = new Uint8Array(
          Math.max(this.#length + total, this.#js.length * 2),
        );
        grown.set(this.#js.subarray(0, this.#length));
        this.#js = grown;
      }
      p = this.#length;
    }
    const buffer = this.#buffer();
    writeU32(buffer, p, size);
    buffer[p + 8] = type;
    this.#length += total;
    this.#count++;
    return p;
  }

  /**
   * Frames and checksums every record added and returns the batch. The view
   * is valid until the next `add`, `reserve` or `reset`; copy it to keep it.
   */
  finish(): Uint8Array {
    let buffer: Uint8Array;
    let start: number;
    let framed: number;
    if (this.#wasm) {
      start = this.#wasm.base;
      framed = this.#wasm.exports.frameRecords(start, start + this.#length);
      buffer = this.#wasm.heap();
    } else {
      start = 0;
      buffer = this.#js;
      framed = frameRecordsReference(buffer, 0, this.#length);
    }
    if (framed !== this.#count) {
      throw new Error(
        `record framing failed: framed ${framed} of ${this.#count} records`,
      );
    }
    return buffer.subarray(start, start + this.#length);
  }

  /** Empties the batch (and drops an oversized WASM memory). */
  reset(): void {
    this.#length = 0;
    this.#count = 0;
    if (this.#wasm && this.#wasm.memoryBytes > ENCODER_SHRINK_BYTES) {
      this.#wasm = new CodecInstance();
    }
  }
}

/**
 * Encodes `records` into a fresh buffer.
 *
 * @example
 * ```ts
 * import { encodeRecords } from "@raft-io/raft/codec";
 * const bytes = encodeRecords([{ type: 1, payload: new Uint8Array([42]) }]);
 * bytes.length; // 10
 * ```
 */
export function encodeRecords(
  records: readonly { type: number; payload: Uint8Array }[],
  options: CodecOptions = {},
): Uint8Array {
  const encoder = new RecordEncoder(options);
  for (let i = 0; i < records.length; i++) {
    encoder.add(records[i].type, records[i].payload);
  }
  return encoder.finish().slice();
}

/** The records found in a buffer, as offsets into it (no copies). */
export class DecodedRecords {
  /** The decoded buffer. */
  readonly bytes: Uint8Array;
  /** Number of valid records. */
  readonly count: number;
  /** Bytes covered by the valid records: where the first bad one starts, or the buffer's length. */
  readonly validLength: number;
  /** The first bad record, if any; decoding stopped there. */
  readonly error: RecordCorruptionError | undefined;
  #offsets: Uint32Array;

  /** Built by {@linkcode decodeRecords}. */
  constructor(
    bytes: Uint8Array,
    offsets: Uint32Array,
    count: number,
    validLength: number,
    error: RecordCorruptionError | undefined,
  ) {
    this.bytes = bytes;
    this.#offsets = offsets;
    this.count = count;
    this.validLength = validLength;
    this.error = error;
  }

  #check(i: number): number {
    if (!(i >= 0 && i < this.count)) {
      throw new RangeError(`record ${i} out of range 0..${this.count - 1}`);
    }
    return this.#offsets[i];
  }

  /** Byte offset of record `i`'s header. */
  headerOffset(i: number): number {
    return this.#check(i);
  }

  /** Type byte of record `i`. */
  type(i: number): number {
    return this.bytes[this.#check(i) + 8];
  }

  /** Offset of record `i`'s payload in the buffer. */
  payloadOffset(i: number): number {
    return this.#check(i) + RECORD_HEADER_BYTES;
  }

  /** Payload length of record `i`. */
  payloadLength(i: number): number {
    return readU32(this.bytes, this.#check(i));
  }

  /** Payload of record `i` as a view of the buffer. */
  payload(i: number): Uint8Array {
    const p = this.#check(i);
    return this.bytes.subarray(
      p + RECORD_HEADER_BYTES,
      p + RECORD_HEADER_BYTES + readU32(this.bytes, p),
    );
  }
}

/** Growable list of u32 offsets. */
class OffsetList {
  data = new Uint32Array(256);
  length = 0;
  push(chunk: Uint32Array, count: number, shift: number): void {
    if (this.length + count > this.data.length) {
      const grown = new Uint32Array(
        Math.max(this.length + count, this.data.length * 2),
      );
      grown.set(this.data.subarray(0, this.length));
      this.data = grown;
    }
    for (let i = 0; i < count; i++) {
      this.data[this.length + i] = chunk[i] + shift;
    }
    this.length += count;
  }
}

// Decoding copies the input into WASM memory one window at a time, so memory
// stays bounded by the window (or the largest record) whatever the input size.
const WINDOW_BYTES = 4 << 20;
const OUT_CAPACITY = 1 << 16;
let decodeInstance: CodecInstance | undefined;

/** Options for {@linkcode decodeRecords}. */
export interface DecodeOptions extends CodecOptions {
  /** Largest payload accepted (default {@linkcode MAX_RECORD_PAYLOAD}). */
  maxPayload?: number;
}

/**
 * Verifies and indexes every record of `bytes`, stopping at the first bad
 * one, which is reported in `error` (with its offset) rather than thrown.
 * Use {@linkcode decodeRecordsStrict} to throw instead.
 *
 * @example
 * ```ts
 * import { decodeRecords, encodeRecords } from "@raft-io/raft/codec";
 * const bytes = encodeRecords([{ type: 3, payload: new Uint8Array([1, 2]) }]);
 * const decoded = decodeRecords(bytes);
 * decoded.type(0); // 3
 * decodeRecords(bytes.subarray(0, 5)).error?.reason; // "truncated_header"
 * ```
 */
export function decodeRecords(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): DecodedRecords {
  const maxPayload = Math.min(
    options.maxPayload ?? MAX_RECORD_PAYLOAD,
    MAX_RECORD_PAYLOAD,
  );
  return pickBackend(options.backend) === "wasm"
    ? decodeWasm(bytes, maxPayload)
    : decodeReference(bytes, maxPayload);
}

/**
 * Like {@linkcode decodeRecords} but throws {@linkcode RecordCorruptionError}
 * when any part of `bytes` is not a valid record.
 */
export function decodeRecordsStrict(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): DecodedRecords {
  const decoded = decodeRecords(bytes, options);
  if (decoded.error) throw decoded.error;
  return decoded;
}

function decodeReference(
  bytes: Uint8Array,
  maxPayload: number,
): DecodedRecords {
  const list = new OffsetList();
  const out = new Uint32Array(OUT_CAPACITY);
  let pos = 0;
  for (;;) {
    const r = verifyRecordsReference(bytes, pos, bytes.length, out, maxPayload);
    list.push(out, r.count, pos);
    pos += r.stopOffset;
    if (r.stopReason !== StopReason.none) {
      return new DecodedRecords(
        bytes,
        list.data,
        list.length,
        pos,
        new RecordCorruptionError(pos, REASONS[r.stopReason]),
      );
    }
    if (pos === bytes.length) {
      return new DecodedRecords(bytes, list.data, list.length, pos, undefined);
    }
  }
}

function decodeWasm(bytes: Uint8Array, maxPayload: number): DecodedRecords {
  decodeInstance ??= new CodecInstance();
  const instance = decodeInstance;
  const list = new OffsetList();
  const outBytes = OUT_CAPACITY * 4;
  let pos = 0;
  let window = WINDOW_BYTES;
  for (;;) {
    const windowLength = Math.min(window, bytes.length - pos);
    instance.reserve(outBytes + windowLength);
    const heap = instance.heap();
    const out = instance.base;
    const data = out + outBytes;
    heap.set(bytes.subarray(pos, pos + windowLength), data);
    const count = instance.exports.verifyRecords(
      data,
      data + windowLength,
      out,
      OUT_CAPACITY,
      maxPayload,
    );
    list.push(
      new Uint32Array(instance.exports.memory.buffer, out, count),
      count,
      pos,
    );
    const stop = instance.exports.lastStopOffset();
    const reason = instance.exports.lastStopReason();
    pos += stop;
    window = WINDOW_BYTES;
    if (reason === StopReason.none) {
      if (pos === bytes.length) {
        return new DecodedRecords(
          bytes,
          list.data,
          list.length,
          pos,
          undefined,
        );
      }
      continue;
    }
    const windowEndsEarly = pos - stop + windowLength < bytes.length;
    if (
      windowEndsEarly &&
      (reason === StopReason.truncatedHeader ||
        reason === StopReason.truncatedPayload)
    ) {
      // The record may continue past this window: retry from it, with a
      // window large enough to hold it whole.
      const remaining = bytes.length - pos;
      const needed = remaining < RECORD_HEADER_BYTES
        ? remaining
        : RECORD_HEADER_BYTES + readU32(bytes, pos);
      window = Math.max(WINDOW_BYTES, Math.min(needed, remaining));
      continue;
    }
    return new DecodedRecords(
      bytes,
      list.data,
      list.length,
      pos,
      new RecordCorruptionError(pos, REASONS[reason]),
    );
  }
}
