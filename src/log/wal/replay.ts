/**
 * Replaying one segment: complete batches are applied to a {@linkcode Replay}
 * (the log being rebuilt), damage is located for the caller to judge.
 *
 * @module
 */

import { decodeRecords, RECORD_HEADER_BYTES } from "../../codec/records.ts";
import type { HardState } from "../raft_log.ts";
import { WalCorruptionError } from "./errors.ts";
import {
  COMMIT_PAYLOAD_BYTES,
  ENTRIES_HEADER_BYTES,
  ENTRY_HEADER_BYTES,
  NO_SNAPSHOT_REF,
  readCheckpoint,
  readRef,
  readU32,
  readU64,
  RecordType,
  SEGMENT_HEADER_BYTES,
  SnapshotAction,
  type SnapshotRef,
} from "./format.ts";
import { PackedEntries } from "./packed_entries.ts";

/** The log being rebuilt. */
export class Replay {
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

/** Names the file damage is reported in. */
export class SegmentReader {
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }
  corrupt(offset: number, detail: string): WalCorruptionError {
    return new WalCorruptionError(this.path, offset, detail);
  }
}

/** Checks a segment header; returns nothing, throws the typed error. */
export interface SegmentResult {
  /** File offset just past the last complete batch. */
  validEnd: number;
  completeBatches: number;
  nextBatch: number;
  maxEntryIndex: number;
  damageOffset: number | undefined;
  damageDetail: string;
}

/** Applies every complete batch of one segment to `replay`. */
export function replaySegment(
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
export function findLaterCommit(
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
