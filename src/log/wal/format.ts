/**
 * The on-disk format of the write-ahead log (format version 1).
 *
 * A log directory holds:
 * - segments `<seq:20 digits>.wal`: a 32-byte header, then records framed by
 *   the codec (`[u32 length][u32 crc32c][u8 type][payload]`);
 * - snapshot files `snapshot-<id:20 digits>.snap`: header, config, data, CRC;
 * - `LOCK`, and `*.tmp` files that are never read (left by a crash, removed).
 *
 * - `MANIFEST`: which segment is the last one, and whether a repair left this
 *   node needing to catch up before it may vote ({@linkcode Manifest});
 * Segment header (little-endian): magic `RAFTIOWL` (8), u16 format version,
 * u16 header length (32), u32 flags (bit 0: the log keeps a `MANIFEST`),
 * u64 segment sequence number, u32 reserved (0), u32 CRC32C of the
 * preceding 28 bytes.
 *
 * Records are written in batches, one batch per `sync()`: the records, then a
 * COMMIT record `[u64 batch seq][u32 bytes of the batch before it]`. Batch
 * sequence numbers rise by one across all segments. Every segment begins
 * with a batch holding one CHECKPOINT record (first and last index, hard
 * state, snapshot reference as of the end of the previous segment), so the
 * segments before it can be deleted once compaction has passed their entries.
 *
 * Payloads (u64 = two u32 LE halves, values are safe integers):
 * - ENTRIES `[u64 firstIndex][u32 count]` then per entry `[u64 term][u8 kind][u32 len][data]`
 * - HARD_STATE `[u64 term][u64 vote][u64 commit]`
 * - TRUNCATE `[u64 from]`, COMPACT `[u64 upTo]`
 * - SNAPSHOT `[u8 action 1=save 2=apply]` + snapshot reference
 * - CHECKPOINT `[u64 firstIndex][u64 lastIndex][u64 term][u64 vote][u64 commit]` + reference
 * - snapshot reference: `[u64 fileId][u64 index][u64 term][u64 dataLength][u32 configLength][config]`
 *
 * @module
 */

import type { Entry, HardState, SnapshotMeta } from "../raft_log.ts";

/** The format version this build writes and reads. */
export const FORMAT_VERSION = 1;
/** Segment file magic. */
export const SEGMENT_MAGIC = new TextEncoder().encode("RAFTIOWL");
/** Snapshot file magic. */
export const SNAPSHOT_MAGIC = new TextEncoder().encode("RAFTSNAP");
/** Bytes of a segment header. */
export const SEGMENT_HEADER_BYTES = 32;
/** Bytes of a snapshot file header. */
export const SNAPSHOT_HEADER_BYTES = 48;

/** Record types. */
export const RecordType = {
  entries: 1,
  hardState: 2,
  truncate: 3,
  snapshot: 4,
  compact: 5,
  checkpoint: 6,
  commit: 7,
} as const;

/** Snapshot marker actions. */
export const SnapshotAction = { save: 1, apply: 2 } as const;

/** Payload bytes of a COMMIT record. */
export const COMMIT_PAYLOAD_BYTES = 12;
/** Bytes of one entry's header inside an ENTRIES payload. */
export const ENTRY_HEADER_BYTES = 13;
/** Bytes before the first entry of an ENTRIES payload. */
export const ENTRIES_HEADER_BYTES = 12;

const SEGMENT_NAME = /^(\d{20})\.wal$/;
const SNAPSHOT_NAME = /^snapshot-(\d{20})\.snap$/;

/** File name of segment `seq`. */
export function segmentName(seq: number): string {
  return `${String(seq).padStart(20, "0")}.wal`;
}

/** File name of snapshot file `id`. */
export function snapshotName(id: number): string {
  return `snapshot-${String(id).padStart(20, "0")}.snap`;
}

/** The sequence number in a segment file name, or undefined. */
export function parseSegmentName(name: string): number | undefined {
  const m = SEGMENT_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** The id in a snapshot file name, or undefined. */
export function parseSnapshotName(name: string): number | undefined {
  const m = SNAPSHOT_NAME.exec(name);
  return m ? Number(m[1]) : undefined;
}

/** Writes a u32 LE. */
export function writeU32(b: Uint8Array, p: number, v: number): void {
  b[p] = v;
  b[p + 1] = v >>> 8;
  b[p + 2] = v >>> 16;
  b[p + 3] = v >>> 24;
}

/** Reads a u32 LE. */
export function readU32(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

/** Writes a safe non-negative integer as u64 LE. */
export function writeU64(b: Uint8Array, p: number, v: number): void {
  writeU32(b, p, v >>> 0);
  writeU32(b, p + 4, Math.floor(v / 4294967296));
}

/** Reads a u64 LE; -1 when it is not a safe integer. */
export function readU64(b: Uint8Array, p: number): number {
  const hi = readU32(b, p + 4);
  if (hi > 0x1fffff) return -1;
  return readU32(b, p) + hi * 4294967296;
}

/** Segment header flag: segments of this log are listed by a `MANIFEST`. */
export const SEGMENT_FLAG_MANIFEST = 1;

/** Builds a segment header for `seq`, CRC filled by `crc`. */
export function segmentHeader(
  seq: number,
  crc: (b: Uint8Array) => number,
): Uint8Array {
  const h = new Uint8Array(SEGMENT_HEADER_BYTES);
  h.set(SEGMENT_MAGIC, 0);
  h[8] = FORMAT_VERSION;
  h[10] = SEGMENT_HEADER_BYTES;
  writeU32(h, 12, SEGMENT_FLAG_MANIFEST);
  writeU64(h, 16, seq);
  writeU32(h, 28, crc(h.subarray(0, 28)));
  return h;
}

/** Where the snapshot data a log refers to lives, and what it stands for. */
export interface SnapshotRef {
  /** File id (0: no snapshot). */
  fileId: number;
  /** Snapshot metadata. */
  meta: SnapshotMeta;
  /** Bytes of snapshot data. */
  dataLength: number;
}

/** The reference of an empty log. */
export const NO_SNAPSHOT_REF: SnapshotRef = Object.freeze({
  fileId: 0,
  meta: Object.freeze({ index: 0, term: 0, config: new Uint8Array(0) }),
  dataLength: 0,
});

/** Payload bytes of a snapshot reference. */
export function refBytes(ref: SnapshotRef): number {
  return 36 + ref.meta.config.length;
}

/** Writes a snapshot reference at `p`; returns the end offset. */
export function writeRef(b: Uint8Array, p: number, ref: SnapshotRef): number {
  writeU64(b, p, ref.fileId);
  writeU64(b, p + 8, ref.meta.index);
  writeU64(b, p + 16, ref.meta.term);
  writeU64(b, p + 24, ref.dataLength);
  writeU32(b, p + 32, ref.meta.config.length);
  b.set(ref.meta.config, p + 36);
  return p + 36 + ref.meta.config.length;
}

/** Reads a snapshot reference at `p` of a payload ending at `end` (config is copied). */
export function readRef(
  b: Uint8Array,
  p: number,
  end: number,
): SnapshotRef | undefined {
  if (end - p < 36) return undefined;
  const fileId = readU64(b, p);
  const index = readU64(b, p + 8);
  const term = readU64(b, p + 16);
  const dataLength = readU64(b, p + 24);
  const configLength = readU32(b, p + 32);
  if (fileId < 0 || index < 0 || term < 0 || dataLength < 0) return undefined;
  if (p + 36 + configLength !== end) return undefined;
  const config = b.slice(p + 36, end);
  return { fileId, meta: Object.freeze({ index, term, config }), dataLength };
}

/** A checkpoint: the state at the start of a segment. */
export interface Checkpoint {
  /** First held index. */
  firstIndex: number;
  /** Last index. */
  lastIndex: number;
  /** Hard state. */
  hardState: HardState;
  /** Snapshot reference. */
  snapshot: SnapshotRef;
}

/** Payload bytes of a checkpoint record. */
export function checkpointBytes(c: Checkpoint): number {
  return 40 + refBytes(c.snapshot);
}

/** Writes a checkpoint payload into `b` (sized by {@linkcode checkpointBytes}). */
export function writeCheckpoint(b: Uint8Array, c: Checkpoint): void {
  writeU64(b, 0, c.firstIndex);
  writeU64(b, 8, c.lastIndex);
  writeU64(b, 16, c.hardState.term);
  writeU64(b, 24, c.hardState.vote);
  writeU64(b, 32, c.hardState.commit);
  writeRef(b, 40, c.snapshot);
}

/** Reads a checkpoint payload `b[p, end)`; undefined when malformed. */
export function readCheckpoint(
  b: Uint8Array,
  p: number,
  end: number,
): Checkpoint | undefined {
  if (end - p < 40) return undefined;
  const firstIndex = readU64(b, p);
  const lastIndex = readU64(b, p + 8);
  const term = readU64(b, p + 16);
  const vote = readU64(b, p + 24);
  const commit = readU64(b, p + 32);
  const snapshot = readRef(b, p + 40, end);
  if (
    snapshot === undefined || firstIndex < 1 || lastIndex < firstIndex - 1 ||
    term < 0 || vote < 0 || commit < 0
  ) return undefined;
  return { firstIndex, lastIndex, hardState: { term, vote, commit }, snapshot };
}

/** Bytes of an ENTRIES payload for `entries[from, to)`. */
export function entriesPayloadBytes(
  entries: readonly Entry[],
  from: number,
  to: number,
): number {
  let n = ENTRIES_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    n += ENTRY_HEADER_BYTES + entries[i].data.length;
  }
  return n;
}

/** Writes an ENTRIES payload for `entries[from, to)` into `b` in place. */
export function writeEntriesPayload(
  b: Uint8Array,
  entries: readonly Entry[],
  from: number,
  to: number,
): void {
  writeU64(b, 0, entries[from].index);
  writeU32(b, 8, to - from);
  let p = ENTRIES_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    const e = entries[i];
    const data = e.data;
    const len = data.length;
    writeU64(b, p, e.term);
    b[p + 8] = e.kind === "config" ? 1 : 0;
    writeU32(b, p + 9, len);
    p += ENTRY_HEADER_BYTES;
    if (len <= 32) {
      // A byte loop beats the call overhead of set() for small commands.
      for (let j = 0; j < len; j++) b[p + j] = data[j];
    } else {
      b.set(data, p);
    }
    p += len;
  }
}

/** Name of the manifest file inside a log directory. */
export const MANIFEST_FILE = "MANIFEST";
/** Manifest file magic. */
export const MANIFEST_MAGIC = new TextEncoder().encode("RAFTIOMF");
/** Bytes of the manifest file. */
export const MANIFEST_BYTES = 48;
const MANIFEST_FLAG_CATCH_UP = 1;

/**
 * What must be true of the segments, beyond what they say themselves.
 * Rewritten (temporary name, synced, renamed, directory synced) when a new
 * segment is started, before any batch is written into it, and by a repair.
 *
 * Layout (LE): magic `RAFTIOMF` (8), u16 version (1), u16 length (48),
 * u32 flags (bit 0: needs catch-up), u64 last segment, u64 catch-up index,
 * u64 catch-up term, u32 reserved, u32 CRC32C of the preceding 44 bytes.
 */
export interface Manifest {
  /** Sequence number of the last segment: it must exist. */
  lastSegment: number;
  /** Set by a repair: what this node may have acknowledged and lost. */
  catchUp: CatchUp | undefined;
}

/**
 * A repaired node's debt: it cut acknowledged records, so until it has
 * caught up from a leader it must not vote (see `WalLog.needsCatchUp`).
 */
export interface CatchUp {
  /** Highest log index the node may have held (and acknowledged) before the repair. */
  index: number;
  /** Highest term the node may have seen (and voted in) before the repair. */
  term: number;
}

/** Encodes a manifest. */
export function encodeManifest(
  m: Manifest,
  crc: (b: Uint8Array) => number,
): Uint8Array {
  const b = new Uint8Array(MANIFEST_BYTES);
  b.set(MANIFEST_MAGIC, 0);
  b[8] = 1;
  b[10] = MANIFEST_BYTES;
  writeU32(b, 12, m.catchUp ? MANIFEST_FLAG_CATCH_UP : 0);
  writeU64(b, 16, m.lastSegment);
  writeU64(b, 24, m.catchUp?.index ?? 0);
  writeU64(b, 32, m.catchUp?.term ?? 0);
  writeU32(b, 44, crc(b.subarray(0, 44)));
  return b;
}

/** Decodes a manifest; a string says what is wrong with it. */
export function decodeManifest(
  b: Uint8Array,
  crc: (b: Uint8Array) => number,
): Manifest | string {
  if (b.length !== MANIFEST_BYTES) return `it has ${b.length} bytes, not 48`;
  for (let i = 0; i < MANIFEST_MAGIC.length; i++) {
    if (b[i] !== MANIFEST_MAGIC[i]) return "it does not start with its magic";
  }
  if (readU32(b, 44) !== crc(b.subarray(0, 44))) {
    return "it fails its checksum";
  }
  const lastSegment = readU64(b, 16);
  const index = readU64(b, 24);
  const term = readU64(b, 32);
  if (b[8] !== 1 || lastSegment < 1 || index < 0 || term < 0) {
    return "its fields are invalid";
  }
  return {
    lastSegment,
    catchUp: (readU32(b, 12) & MANIFEST_FLAG_CATCH_UP) !== 0
      ? { index, term }
      : undefined,
  };
}

/** Snapshot file format version written (1: one trailing CRC, still read). */
export const SNAPSHOT_FORMAT_VERSION = 2;
/** Bytes of head and data covered by one CRC in a version 2 snapshot file. */
export const SNAPSHOT_CRC_CHUNK = 64 * 1024;

/**
 * The head of a snapshot file: header and config. A version 2 file is the
 * head, the data, then a table of the CRC32C of every
 * {@linkcode SNAPSHOT_CRC_CHUNK} bytes of head and data (u32 LE each, the
 * last chunk shorter), then the CRC32C of that table (u32 LE) — so a damaged
 * byte is located to its chunk. (Version 1: head, data, one CRC32C.)
 */
export function snapshotFileHead(id: number, meta: SnapshotMeta): Uint8Array {
  const b = new Uint8Array(SNAPSHOT_HEADER_BYTES + meta.config.length);
  b.set(SNAPSHOT_MAGIC, 0);
  b[8] = SNAPSHOT_FORMAT_VERSION;
  b[10] = SNAPSHOT_HEADER_BYTES;
  writeU64(b, 16, id);
  writeU64(b, 24, meta.index);
  writeU64(b, 32, meta.term);
  writeU32(b, 40, meta.config.length);
  b.set(meta.config, SNAPSHOT_HEADER_BYTES);
  return b;
}
