/**
 * Replaying one segment: complete batches are applied to a {@linkcode Replay}
 * (the log being rebuilt), damage is located for the caller to judge.
 *
 * @module
 */

import {
  decodeRecords,
  RECORD_HEADER_BYTES,
  type RecordCorruptionReason,
} from "../../codec/records.ts";
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
  /** What the damage is: a record that fails to decode (the codec's reason) or a batch without its commit record. */
  damageReason: RecordCorruptionReason | "unclosed_batch" | undefined;
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
  let damageReason: SegmentResult["damageReason"];
  if (decoded.error !== undefined) {
    damageOffset = H + decoded.error.offset;
    damageReason = decoded.error.reason;
    damageDetail = decoded.error.message.replace(
      /^record at byte \d+ is corrupt: /,
      "a record is corrupt: ",
    );
  } else if (batchStart < decoded.count) {
    damageOffset = H + decoded.headerOffset(batchStart);
    damageDetail = "a batch ends without its commit record";
    damageReason = "unclosed_batch";
  }
  return {
    validEnd,
    completeBatches,
    nextBatch: expectedBatch,
    maxEntryIndex,
    damageOffset,
    damageDetail,
    damageReason,
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
 * batch after `damagedBatch` (returned first), else of the damaged batch
 * itself (starting at `batchStart`). Candidates are cheap to reject: an
 * exact length (12) and type byte (7) before any CRC is computed.
 */
export function findLaterCommit(
  file: Uint8Array,
  from: number,
  damagedBatch: number,
  batchStart: number,
): { offset: number; seq: number } | undefined {
  const size = RECORD_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;
  let own: { offset: number; seq: number } | undefined;
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
    // The damaged batch's own commit record, sized to match it.
    if (
      own === undefined && seq === damagedBatch &&
      readU32(file, p + RECORD_HEADER_BYTES + 8) === p - batchStart
    ) own = { offset: p, seq };
  }
  return own;
}

/** Sector size assumed for torn writes: the smallest a disk writes at once. */
export const SECTOR_BYTES = 512;

/**
 * Whether damage at the tail of the last segment is what a crash leaves
 * (see the rules in recovery.ts): `undefined` when it is, else why not.
 *
 * @param file the segment's bytes
 * @param batchStart file offset of the damaged batch (just past the last complete one)
 * @param at file offset of the damage (a record's header, or `batchStart` for an unclosed batch)
 * @param reason what the damage is
 * @param damagedBatch the damaged batch's sequence number
 */
export function tornTailVerdict(
  file: Uint8Array,
  batchStart: number,
  at: number,
  reason: RecordCorruptionReason | "unclosed_batch",
  damagedBatch: number,
): string | undefined {
  const later = findLaterCommit(file, at, damagedBatch, batchStart);
  if (later !== undefined && later.seq > damagedBatch) {
    return `batch ${later.seq} at byte ${later.offset} was written after it, so it was synced`;
  }
  if (reason === "unclosed_batch") return undefined; // ends at EOF: a prefix
  if (zeroFilled(file, at, reason)) return undefined;
  if (later !== undefined) {
    return `its batch is complete on disk (its commit record is at byte ${later.offset}) and holds wrong bytes, which no crash leaves`;
  }
  if (reason === "truncated_header") return undefined; // the file ends inside it
  if (reason === "truncated_payload") {
    // A prefix of a commit record declares its true length (12).
    const isCommit = file[at + 8] === RecordType.commit;
    if (!isCommit || readU32(file, at) === COMMIT_PAYLOAD_BYTES) {
      return undefined;
    }
    return "a commit record declares a wrong length, which no crash leaves";
  }
  return reason === "length_past_end"
    ? "its length field is impossible and not zero, which no crash leaves"
    : "a complete record fails its checksum and is not zero-filled, which no crash leaves";
}

/**
 * Whether the damaged record at `at` shows space a crash left unwritten:
 * its header is all zeros, the file is all zeros from a sector boundary
 * inside it to the end, or a sector-aligned piece of it reaching the end of
 * its sector (or of the file) is all zeros (as etcd's `isTornEntry`).
 */
function zeroFilled(
  file: Uint8Array,
  at: number,
  reason: RecordCorruptionReason,
): boolean {
  const headerEnd = Math.min(file.length, at + RECORD_HEADER_BYTES);
  if (allZero(file, at, headerEnd)) return true;
  const length = reason === "truncated_header" || reason === "length_past_end"
    ? 0
    : readU32(file, at);
  const end = Math.min(file.length, at + RECORD_HEADER_BYTES + length);
  // Zeros from inside the record to the end of the file: the write stopped
  // there (no commit record of a complete batch can follow).
  if (reason === "checksum_mismatch") {
    // Lost sectors from a boundary inside the record to the end of the
    // file (no commit record can follow). An intact batch ends in at most
    // 12 zero bytes (its commit record's high bytes), so shorter runs do not count.
    let zeros = file.length;
    while (zeros > at && file[zeros - 1] === 0) zeros--;
    const sector = Math.ceil(zeros / SECTOR_BYTES) * SECTOR_BYTES;
    if (file.length - zeros > 12 && sector < end) return true;
  }
  for (let from = at; from < end;) {
    const sectorEnd = (Math.floor(from / SECTOR_BYTES) + 1) * SECTOR_BYTES;
    const to = Math.min(sectorEnd, end);
    // Only a piece up to the sector's end (or the file's) was a unit of I/O.
    if ((to === sectorEnd || to === file.length) && allZero(file, from, to)) {
      return true;
    }
    from = to;
  }
  return false;
}

function allZero(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}
