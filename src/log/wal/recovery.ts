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

import { crc32c } from "../../codec/crc32c.ts";
import { LogState } from "../log_state.ts";
import { joinPath, type WalBackend } from "./backend.ts";
import {
  WalCorruptionError,
  WalFormatError,
  WalMissingSegmentError,
} from "./errors.ts";
import {
  FORMAT_VERSION,
  NO_SNAPSHOT_REF,
  parseSegmentName,
  parseSnapshotName,
  readU32,
  readU64,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  segmentName,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  snapshotName,
  type SnapshotRef,
} from "./format.ts";
import {
  findLaterCommit,
  Replay,
  replaySegment,
  SegmentReader,
} from "./replay.ts";

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
  // The checksum first: a version field that fails it is damage, not a newer format.
  if (readU32(bytes, 28) !== crc32c(bytes.subarray(0, 28))) {
    throw new WalCorruptionError(
      path,
      0,
      "the segment header fails its checksum",
    );
  }
  const version = bytes[8] | (bytes[9] << 8);
  if (version !== FORMAT_VERSION) {
    throw new WalFormatError(path, "unknown_version", `version ${version}`);
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
  const end = bytes.length - 4;
  if (readU32(bytes, end) !== crc32c(bytes.subarray(0, end))) {
    throw new WalCorruptionError(
      path,
      end,
      "the snapshot file fails its checksum",
    );
  }
  const version = bytes[8] | (bytes[9] << 8);
  if (version !== FORMAT_VERSION) {
    throw new WalFormatError(path, "unknown_version", `version ${version}`);
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
  try {
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
  } catch (e) {
    // Let a read-ahead still in flight finish, so no file handle outlives the call.
    await reading.catch(() => {});
    throw e;
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
