/**
 * Recovery: rebuilds the in-memory log from a directory's segments.
 *
 * Rules:
 * - segment sequence numbers must be consecutive; the first segment's
 *   checkpoint says which entries came before it, and those must all be
 *   compacted by the end of replay (else a segment is missing);
 * - records count only in complete batches (closed by a COMMIT record with
 *   the next batch sequence number);
 * - damage (a record that is torn or fails its CRC, or an unclosed batch) in
 *   the last segment is a torn tail when no later batch follows it on disk:
 *   the unfinished batch is cut off. Batches are written one after another,
 *   each only after the previous one is durable, so a later batch proves the
 *   damaged one was synced: that, or damage in any other segment, is a
 *   {@linkcode WalCorruptionError} naming the file and byte offset.
 *
 * @module
 */

import { decodeRecords } from "../../codec/records.ts";
import { crc32c } from "../../codec/crc32c.ts";
import { RECORD_HEADER_BYTES } from "../../codec/records.ts";
import { LogState } from "../log_state.ts";
import type { HardState } from "../raft_log.ts";
import { PackedEntries } from "./packed_entries.ts";
import { joinPath } from "./backend.ts";
import type { WalBackend } from "./backend.ts";
import {
  WalCorruptionError,
  WalFormatError,
  WalMissingSegmentError,
} from "./errors.ts";
import {
  COMMIT_PAYLOAD_BYTES,
  ENTRIES_HEADER_BYTES,
  ENTRY_HEADER_BYTES,
  FORMAT_VERSION,
  NO_SNAPSHOT_REF,
  parseSegmentName,
  parseSnapshotName,
  readCheckpoint,
  readRef,
  readU32,
  readU64,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  segmentName,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  SnapshotAction,
  snapshotName,
  type SnapshotRef,
} from "./format.ts";

/** What the log knows about one segment file. */
export interface SegmentInfo {
  /** Sequence number. */
  seq: number;
  /** File name. */
  name: string;
  /** Bytes of valid content (the write position for the last segment). */
  size: number;
  /** Highest entry index written into it (0: none). */
  maxEntryIndex: number;
}

/** The result of recovering a directory. */
export interface Recovered {
  /** The rebuilt in-memory log. */
  state: LogState;
  /** Where the snapshot data lives. */
  snapshot: SnapshotRef;
  /** Segments in order; empty for a new log. */
  segments: SegmentInfo[];
  /** Size of the last segment file on disk (bigger than its `size` when a tail must be cut). */
  lastFileSize: number;
  /** Next batch sequence number. */
  nextBatchSeq: number;
  /** Next snapshot file id. */
  nextSnapshotId: number;
  /** Files to delete: temporaries and superseded snapshots. */
  garbage: string[];
}

class Replay {
  firstIndex = 1;
  /** Index of entries[head]; entries below it and >= firstIndex are unknown. */
  entriesStart = 1;
  entries: PackedEntries = new PackedEntries();
  head = 0;
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshot: SnapshotRef = NO_SNAPSHOT_REF;

  lastIndex(): number {
    return this.entriesStart + (this.entries.length - this.head) - 1;
  }

  truncate(from: number): boolean {
    if (from <= this.snapshot.meta.index || from < this.firstIndex) {
      return false;
    }
    if (from > this.lastIndex()) return true;
    if (from <= this.entriesStart) {
      this.entries.truncate(this.head);
      this.entriesStart = from;
    } else {
      this.entries.truncate(this.head + (from - this.entriesStart));
    }
    return true;
  }

  compact(upTo: number): boolean {
    if (upTo > this.snapshot.meta.index) return false;
    if (upTo < this.firstIndex) return true;
    this.firstIndex = upTo + 1;
    if (upTo >= this.entriesStart) {
      const drop = Math.min(
        upTo + 1 - this.entriesStart,
        this.entries.length - this.head,
      );
      this.head += drop;
      this.entriesStart = upTo + 1;
    }
    return true;
  }

  applySnapshot(ref: SnapshotRef): void {
    this.snapshot = ref;
    this.head = this.entries.length;
    this.firstIndex = this.entriesStart = ref.meta.index + 1;
    if (this.hardState.commit < ref.meta.index) {
      this.hardState = { ...this.hardState, commit: ref.meta.index };
    }
  }
}

class SegmentReader {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  corrupt(offset: number, detail: string): WalCorruptionError {
    return new WalCorruptionError(this.path, offset, detail);
  }
}

/** Checks a segment header; returns nothing, throws the typed error. */
export function checkSegmentHeader(
  path: string,
  bytes: Uint8Array,
  seq: number,
): void {
  if (bytes.length < SEGMENT_MAGIC.length || !hasMagic(bytes, SEGMENT_MAGIC)) {
    throw new WalFormatError(
      path,
      "foreign_file",
      bytes.length === 0
        ? "the file is empty"
        : "it does not start with the segment magic",
    );
  }
  if (bytes.length < SEGMENT_HEADER_BYTES) {
    throw new WalCorruptionError(path, 0, "the segment header is cut short");
  }
  const version = bytes[8] | (bytes[9] << 8);
  if (version !== FORMAT_VERSION) {
    throw new WalFormatError(path, "unknown_version", `version ${version}`);
  }
  if (readU32(bytes, 28) !== crc32c(bytes.subarray(0, 28))) {
    throw new WalCorruptionError(
      path,
      0,
      "the segment header fails its checksum",
    );
  }
  if (
    (bytes[10] | (bytes[11] << 8)) !== SEGMENT_HEADER_BYTES ||
    readU64(bytes, 16) !== seq
  ) {
    throw new WalCorruptionError(
      path,
      10,
      "the segment header does not match its file name",
    );
  }
}

function hasMagic(bytes: Uint8Array, magic: Uint8Array): boolean {
  for (let i = 0; i < magic.length; i++) {
    if (bytes[i] !== magic[i]) return false;
  }
  return true;
}

/** Reads and checks snapshot file `id`; returns its data (a view). */
export async function readSnapshotFile(
  backend: WalBackend,
  dir: string,
  ref: SnapshotRef,
): Promise<Uint8Array> {
  const name = snapshotName(ref.fileId);
  const path = joinPath(dir, name);
  let bytes: Uint8Array;
  try {
    bytes = await backend.readFile(path);
  } catch (e) {
    if (isNotFound(e)) {
      throw new WalMissingSegmentError(
        dir,
        path,
        `the log's snapshot at index ${ref.meta.index} is stored there`,
      );
    }
    throw e;
  }
  if (
    bytes.length < SNAPSHOT_MAGIC.length || !hasMagic(bytes, SNAPSHOT_MAGIC)
  ) {
    throw new WalFormatError(
      path,
      "foreign_file",
      "it does not start with the snapshot magic",
    );
  }
  if (bytes.length < SNAPSHOT_HEADER_BYTES + 4) {
    throw new WalCorruptionError(path, 0, "the snapshot file is cut short");
  }
  const version = bytes[8] | (bytes[9] << 8);
  if (version !== FORMAT_VERSION) {
    throw new WalFormatError(path, "unknown_version", `version ${version}`);
  }
  const end = bytes.length - 4;
  if (readU32(bytes, end) !== crc32c(bytes.subarray(0, end))) {
    throw new WalCorruptionError(
      path,
      end,
      "the snapshot file fails its checksum",
    );
  }
  const configLength = readU32(bytes, 40);
  const dataStart = SNAPSHOT_HEADER_BYTES + configLength;
  if (
    readU64(bytes, 16) !== ref.fileId ||
    readU64(bytes, 24) !== ref.meta.index ||
    readU64(bytes, 32) !== ref.meta.term || end - dataStart !== ref.dataLength
  ) {
    throw new WalCorruptionError(
      path,
      16,
      "the snapshot file does not match the log's reference",
    );
  }
  return bytes.subarray(dataStart, end);
}

function isNotFound(e: unknown): boolean {
  return (e as { code?: unknown }).code === "ENOENT" ||
    (e instanceof Error && e.name === "NotFound");
}

/**
 * Replays the log in `dir` (which the caller has locked).
 */
export async function recover(
  backend: WalBackend,
  dir: string,
): Promise<Recovered> {
  const names = await backend.readDir(dir);
  const segmentSeqs: number[] = [];
  const snapshotIds: number[] = [];
  const garbage: string[] = [];
  for (const name of names) {
    const seq = parseSegmentName(name);
    if (seq !== undefined) segmentSeqs.push(seq);
    const id = parseSnapshotName(name);
    if (id !== undefined) snapshotIds.push(id);
    if (name.endsWith(".tmp")) garbage.push(joinPath(dir, name));
  }
  segmentSeqs.sort((a, b) => a - b);
  let nextSnapshotId = 1;
  for (const id of snapshotIds) {
    nextSnapshotId = Math.max(nextSnapshotId, id + 1);
  }

  if (segmentSeqs.length === 0) {
    if (snapshotIds.length > 0) {
      throw new WalMissingSegmentError(
        dir,
        joinPath(dir, "*.wal"),
        "snapshot files are there but no segment refers to them",
      );
    }
    for (const id of snapshotIds) garbage.push(joinPath(dir, snapshotName(id)));
    return {
      state: new LogState(),
      snapshot: NO_SNAPSHOT_REF,
      segments: [],
      lastFileSize: 0,
      nextBatchSeq: 1,
      nextSnapshotId,
      garbage,
    };
  }
  for (let i = 1; i < segmentSeqs.length; i++) {
    if (segmentSeqs[i] !== segmentSeqs[i - 1] + 1) {
      throw new WalMissingSegmentError(
        dir,
        joinPath(dir, segmentName(segmentSeqs[i - 1] + 1)),
        `segments ${segmentSeqs[i - 1]} and ${
          segmentSeqs[i]
        } exist, so the one between is missing`,
      );
    }
  }

  const replay = new Replay();
  const segments: SegmentInfo[] = [];
  let expectedBatch = 0; // 0: not known yet (first batch of the first segment)
  let lastFileSize = 0;
  let reading = backend.readFile(joinPath(dir, segmentName(segmentSeqs[0])));
  for (let s = 0; s < segmentSeqs.length; s++) {
    const seq = segmentSeqs[s];
    const name = segmentName(seq);
    const path = joinPath(dir, name);
    const isLast = s === segmentSeqs.length - 1;
    const bytes = await reading;
    // Read the next segment while this one is decoded and replayed.
    if (!isLast) {
      reading = backend.readFile(
        joinPath(dir, segmentName(segmentSeqs[s + 1])),
      );
      reading.catch(() => {}); // awaited (and thrown) in the next round
    }
    checkSegmentHeader(path, bytes, seq);
    lastFileSize = bytes.length;
    const reader = new SegmentReader(path);
    const result = replaySegment(
      reader,
      bytes,
      replay,
      expectedBatch,
      s === 0,
      seq === 1,
    );
    if (result.damageOffset !== undefined) {
      if (!isLast) {
        throw reader.corrupt(result.damageOffset, result.damageDetail);
      }
      if (result.completeBatches === 0) {
        throw reader.corrupt(
          result.damageOffset,
          "the segment's first batch (its checkpoint) is damaged; it was synced before the segment was named, so this is not a torn write",
        );
      }
      const later = findLaterCommit(
        bytes,
        result.damageOffset,
        result.nextBatch,
      );
      if (later !== undefined) {
        throw reader.corrupt(
          result.damageOffset,
          `${result.damageDetail}, and batch ${later.seq} at byte ${later.offset} was written after it`,
        );
      }
      // A torn tail: the unfinished batch was never acknowledged.
    }
    expectedBatch = result.nextBatch;
    segments.push({
      seq,
      name,
      size: result.validEnd,
      maxEntryIndex: result.maxEntryIndex,
    });
  }

  if (replay.entriesStart !== replay.firstIndex) {
    const first = segmentSeqs[0];
    throw new WalMissingSegmentError(
      dir,
      joinPath(dir, segmentName(Math.max(first - 1, 0))),
      `segment ${first} starts after entries ${replay.firstIndex}..${
        replay.entriesStart - 1
      }, which no remaining segment or snapshot holds`,
    );
  }

  const ref = replay.snapshot;
  const snapshotData = ref.fileId === 0
    ? new Uint8Array(0)
    : await readSnapshotFile(backend, dir, ref);
  for (const id of snapshotIds) {
    if (id !== ref.fileId) garbage.push(joinPath(dir, snapshotName(id)));
  }
  let state: LogState;
  try {
    state = LogState.restore({
      firstIndex: replay.firstIndex,
      packed: {
        source: replay.entries,
        start: replay.head,
        count: replay.entries.length - replay.head,
      },
      entries: [],
      hardState: replay.hardState,
      snapshot: ref.meta,
      snapshotData,
    });
  } catch (e) {
    throw new WalCorruptionError(
      joinPath(dir, segmentName(segmentSeqs[segmentSeqs.length - 1])),
      0,
      `the replayed log is inconsistent: ${(e as Error).message}`,
    );
  }
  return {
    state,
    snapshot: ref,
    segments,
    lastFileSize,
    nextBatchSeq: expectedBatch,
    nextSnapshotId,
    garbage,
  };
}

interface SegmentResult {
  /** File offset just past the last complete batch. */
  validEnd: number;
  completeBatches: number;
  nextBatch: number;
  maxEntryIndex: number;
  damageOffset: number | undefined;
  damageDetail: string;
}

/** Applies every complete batch of one segment to `replay`. */
function replaySegment(
  reader: SegmentReader,
  file: Uint8Array,
  replay: Replay,
  expectedBatch: number,
  isFirst: boolean,
  isGenesis: boolean,
): SegmentResult {
  const body = file.subarray(SEGMENT_HEADER_BYTES);
  const decoded = decodeRecords(body);
  const chunk = replay.entries.addChunk(body);
  const H = SEGMENT_HEADER_BYTES;
  let batchStart = 0; // record index of the current batch's first record
  let completeBatches = 0;
  let validEnd = H;
  let maxEntryIndex = 0;
  for (let k = 0; k < decoded.count; k++) {
    if (decoded.type(k) !== RecordType.commit) continue;
    const at = decoded.headerOffset(k);
    const p = decoded.payloadOffset(k);
    const batchBytes = at -
      (batchStart < k ? decoded.headerOffset(batchStart) : at);
    const seq = decoded.payloadLength(k) === COMMIT_PAYLOAD_BYTES
      ? readU64(body, p)
      : -1;
    if (seq < 1 || readU32(body, p + 8) !== batchBytes) {
      throw reader.corrupt(
        H + at,
        "a batch's commit record does not match the batch",
      );
    }
    if (expectedBatch !== 0 && seq !== expectedBatch) {
      throw reader.corrupt(
        H + at,
        `batch ${seq} found where batch ${expectedBatch} belongs`,
      );
    }
    if (completeBatches === 0) {
      // The first batch of every segment is exactly one checkpoint.
      if (
        k - batchStart !== 1 ||
        decoded.type(batchStart) !== RecordType.checkpoint
      ) {
        throw reader.corrupt(
          H + decoded.headerOffset(batchStart),
          "the segment does not begin with a checkpoint",
        );
      }
      const c = readCheckpoint(
        body,
        decoded.payloadOffset(batchStart),
        decoded.payloadOffset(batchStart) + decoded.payloadLength(batchStart),
      );
      if (c === undefined) {
        throw reader.corrupt(
          H + decoded.headerOffset(batchStart),
          "the checkpoint is malformed",
        );
      }
      if (isFirst) {
        if (isGenesis && (c.firstIndex !== 1 || c.lastIndex !== 0)) {
          throw reader.corrupt(
            H + decoded.headerOffset(batchStart),
            "the first segment's checkpoint is not empty",
          );
        }
        replay.firstIndex = c.firstIndex;
        replay.entriesStart = c.lastIndex + 1;
        replay.hardState = c.hardState;
        replay.snapshot = c.snapshot;
      } else if (
        c.firstIndex !== replay.firstIndex ||
        c.lastIndex !== replay.lastIndex() ||
        c.snapshot.fileId !== replay.snapshot.fileId
      ) {
        throw reader.corrupt(
          H + decoded.headerOffset(batchStart),
          "the checkpoint disagrees with the segments before it",
        );
      }
    } else {
      for (let r = batchStart; r < k; r++) {
        const m = applyRecord(
          reader,
          body,
          decoded.type(r),
          decoded.payloadOffset(r),
          decoded.payloadLength(r),
          replay,
          chunk,
        );
        if (m > maxEntryIndex) maxEntryIndex = m;
      }
    }
    expectedBatch = seq + 1;
    completeBatches++;
    batchStart = k + 1;
    validEnd = H + at + RECORD_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;
  }
  let damageOffset: number | undefined;
  let damageDetail = "";
  if (decoded.error !== undefined) {
    damageOffset = H + decoded.error.offset;
    damageDetail = decoded.error.message.replace(
      /^record at byte \d+ is corrupt: /,
      "a record is corrupt: ",
    );
  } else if (batchStart < decoded.count) {
    damageOffset = H + decoded.headerOffset(batchStart);
    damageDetail = "a batch ends without its commit record";
  }
  return {
    validEnd,
    completeBatches,
    nextBatch: expectedBatch,
    maxEntryIndex,
    damageOffset,
    damageDetail,
  };
}

/** Applies one record; returns the highest entry index it wrote (0: none). */
function applyRecord(
  reader: SegmentReader,
  b: Uint8Array,
  type: number,
  p: number,
  len: number,
  replay: Replay,
  chunk: number,
): number {
  const end = p + len;
  const at = SEGMENT_HEADER_BYTES + p - RECORD_HEADER_BYTES;
  switch (type) {
    case RecordType.entries: {
      if (len < ENTRIES_HEADER_BYTES) {
        throw reader.corrupt(at, "an entries record is too short");
      }
      let index = readU64(b, p);
      const count = readU32(b, p + 8);
      if (index !== replay.lastIndex() + 1) {
        throw reader.corrupt(
          at,
          `entries start at ${index} but the log ends at ${replay.lastIndex()}`,
        );
      }
      let q = p + ENTRIES_HEADER_BYTES;
      const entries = replay.entries;
      for (let i = 0; i < count; i++) {
        if (end - q < ENTRY_HEADER_BYTES) {
          throw reader.corrupt(at, "an entries record is cut short");
        }
        const term = readU64(b, q);
        const kind = b[q + 8];
        const size = readU32(b, q + 9);
        q += ENTRY_HEADER_BYTES;
        if (term < 1 || kind > 1 || size > end - q) {
          throw reader.corrupt(at, `entry ${index} is malformed`);
        }
        entries.push(term, kind, chunk, q, size);
        q += size;
        index++;
      }
      if (q !== end) {
        throw reader.corrupt(at, "an entries record has trailing bytes");
      }
      return index - 1;
    }
    case RecordType.hardState: {
      const term = readU64(b, p);
      const vote = readU64(b, p + 8);
      const commit = readU64(b, p + 16);
      if (len !== 24 || term < 0 || vote < 0 || commit < 0) {
        throw reader.corrupt(at, "a hard state record is malformed");
      }
      replay.hardState = { term, vote, commit };
      return 0;
    }
    case RecordType.truncate: {
      const from = readU64(b, p);
      if (len !== 8 || !replay.truncate(from)) {
        throw reader.corrupt(at, "a truncate record is invalid here");
      }
      return 0;
    }
    case RecordType.compact: {
      const upTo = readU64(b, p);
      if (len !== 8 || !replay.compact(upTo)) {
        throw reader.corrupt(at, "a compact record is invalid here");
      }
      return 0;
    }
    case RecordType.snapshot: {
      const action = b[p];
      const ref = len >= 1 ? readRef(b, p + 1, end) : undefined;
      if (ref === undefined || ref.fileId < 1 || ref.meta.index < 1) {
        throw reader.corrupt(at, "a snapshot record is malformed");
      }
      if (action === SnapshotAction.apply) {
        replay.applySnapshot(ref);
      } else if (action === SnapshotAction.save) {
        if (
          ref.meta.index < replay.snapshot.meta.index ||
          ref.meta.index > replay.lastIndex()
        ) {
          throw reader.corrupt(at, "a snapshot record does not fit the log");
        }
        replay.snapshot = ref;
      } else {
        throw reader.corrupt(at, `unknown snapshot action ${action}`);
      }
      return 0;
    }
    default:
      throw reader.corrupt(at, `unknown record type ${type}`);
  }
}

/**
 * Looks past damage at file offset `from` for a valid COMMIT record of a
 * batch after `damagedBatch`. Candidates are cheap to reject: an exact
 * length (12) and type byte (7) before any CRC is computed.
 */
function findLaterCommit(
  file: Uint8Array,
  from: number,
  damagedBatch: number,
): { offset: number; seq: number } | undefined {
  const size = RECORD_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;
  for (let p = from + 1; p + size <= file.length; p++) {
    if (
      file[p + 8] !== RecordType.commit || file[p] !== COMMIT_PAYLOAD_BYTES ||
      file[p + 1] !== 0 ||
      file[p + 2] !== 0 || file[p + 3] !== 0
    ) continue;
    const one = decodeRecords(file.subarray(p, p + size));
    if (one.count !== 1) continue;
    const seq = readU64(file, p + RECORD_HEADER_BYTES);
    if (seq > damagedBatch) return { offset: p, seq };
  }
  return undefined;
}
