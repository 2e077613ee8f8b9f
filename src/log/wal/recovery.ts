/**
 * Recovery: rebuilds the in-memory log from a directory's segments.
 *
 * Rules:
 * - segment sequence numbers must be consecutive; the first segment's
 *   checkpoint says which entries came before it, and those must all be
 *   compacted by the end of replay (else a segment is missing);
 * - the last segment is the one `MANIFEST` names. The manifest (not a
 *   successor field in each segment, which could not name the last one,
 *   nor the hard state's commit index, which lives in the segments it
 *   would check) is rewritten — temporary name, synced, renamed, directory
 *   synced — when a segment is started, after the segment is durable and
 *   before any batch goes into it. So a missing or renamed last segment
 *   is a {@linkcode WalMissingSegmentError}, never an older state; a
 *   segment one past the manifest holding only its checkpoint (or less) is
 *   a rotation a crash interrupted, and is removed. A named segment without
 *   its checkpoint batch (e.g. header only) is damage: its checkpoint is
 *   synced before it is named. Segments flagged as written with a manifest
 *   but no `MANIFEST` are an error, except segment 1 holding only its
 *   checkpoint (a crash between creating it and the manifest); logs from
 *   before manifests (no flag) open and get one;
 * - records count only in complete batches (closed by a COMMIT record with
 *   the next batch sequence number);
 * - damage in any segment but the last, or in a first (checkpoint) batch, is
 *   a {@linkcode WalCorruptionError} naming the file and byte offset;
 * - damage in the last segment's final batch is cut as a torn tail only
 *   when a crash can have left it. On ext4 (data=ordered, the default) a
 *   crash leaves of an unsynced write a prefix, possibly followed by zeros
 *   (space allocated or sectors not written, whole sectors at a time, in
 *   any order); never a complete batch with wrong bytes, never stale data.
 *   So the tail is cut when (1) no valid COMMIT of a later batch follows
 *   (a later batch proves this one was synced), and (2) it is zero-filled —
 *   the damaged record's header is zeros, or a sector-aligned piece of it
 *   running to its sector's end or the file's end is zeros (as etcd's
 *   `isTornEntry`), or the file is zeros from a sector boundary inside it to
 *   the end — or short: the batch ends at the end of the file without its
 *   COMMIT, or the damaged record runs past the end of the file while the
 *   batch's own COMMIT is nowhere after it (and it is not a COMMIT record
 *   declaring a length other than 12). Anything else — a complete record
 *   failing its CRC, an impossible length, a batch whose own COMMIT is on
 *   disk — is a {@linkcode WalCorruptionError}: an acknowledged batch is
 *   never dropped silently. `WalLog.repair` cuts it on request and marks the
 *   node as needing to catch up before it votes. (A file system that can
 *   show stale blocks after a crash, e.g. ext4 data=writeback, may turn a
 *   torn write into a reported corruption: a false alarm, never a loss.)
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
import { decodeRecords, RECORD_HEADER_BYTES } from "../../codec/records.ts";
import {
  decodeManifest,
  ENTRY_HEADER_BYTES,
  FORMAT_VERSION,
  type Manifest,
  MANIFEST_FILE,
  NO_SNAPSHOT_REF,
  parseSegmentName,
  parseSnapshotName,
  readU32,
  readU64,
  RecordType,
  SEGMENT_FLAG_MANIFEST,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAGIC,
  segmentName,
  SNAPSHOT_CRC_CHUNK,
  SNAPSHOT_FORMAT_VERSION,
  SNAPSHOT_HEADER_BYTES,
  SNAPSHOT_MAGIC,
  snapshotName,
  type SnapshotRef,
} from "./format.ts";
import {
  Replay,
  replaySegment,
  SegmentReader,
  tornTailVerdict,
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
  /** Files to delete: temporaries, superseded snapshots, a segment an interrupted rotation left. */
  garbage: string[];
  /** The manifest read, or undefined when the log has none yet (a new or older log): write one. */
  manifest: Manifest | undefined;
  /** Set when `acceptDamage` matched: where the damaged tail is cut, and what it may have held. */
  repaired: RepairedCut | undefined;
}

/** The damaged tail a repair cuts off. */
export interface RepairedCut {
  /** The last segment. */
  file: string;
  /** Where the damage was reported. */
  damageOffset: number;
  /** Where the file is cut: the end of the last intact batch. */
  cutAt: number;
  /** Bytes removed. */
  bytesRemoved: number;
  /** Highest entry index and term the cut bytes seem to hold (0: none found). */
  lostIndex: number;
  lostTerm: number;
}

/** Options of {@linkcode recover}. */
export interface RecoverOptions {
  /** Damage in the last segment to cut as if it were a torn tail (a repair). */
  acceptDamage?: { file: string; offset: number };
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
  const version = bytes[8] | (bytes[9] << 8);
  let end: number;
  if (version === 1) {
    end = bytes.length - 4;
    if (readU32(bytes, end) !== crc32c(bytes.subarray(0, end))) {
      throw new WalCorruptionError(
        path,
        0,
        `the snapshot file (format 1, one checksum for bytes 0..${end}) fails its checksum; the damage is somewhere in bytes 0..${end}`,
      );
    }
  } else if (version === SNAPSHOT_FORMAT_VERSION) {
    end = checkSnapshotChunks(path, bytes, ref);
  } else {
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

/**
 * Checks a version 2 snapshot file's chunk CRCs; returns where its data
 * ends. Damage is reported at the first chunk whose bytes fail their CRC
 * (or at the table entry, when the table itself is what is damaged).
 */
function checkSnapshotChunks(
  path: string,
  bytes: Uint8Array,
  ref: SnapshotRef,
): number {
  const configLength = bytes.length >= SNAPSHOT_HEADER_BYTES
    ? readU32(bytes, 40)
    : 0;
  // The table's size follows from the data length the log's reference
  // records, so a damaged length field cannot move it.
  const covered = SNAPSHOT_HEADER_BYTES + ref.meta.config.length +
    ref.dataLength;
  const chunks = Math.max(1, Math.ceil(covered / SNAPSHOT_CRC_CHUNK));
  const tableAt = covered;
  if (bytes.length !== covered + chunks * 4 + 4) {
    throw new WalCorruptionError(
      path,
      Math.min(bytes.length, covered),
      `the snapshot file has ${bytes.length} bytes where its reference (${ref.dataLength} bytes of data, ${configLength} of config) needs ${
        covered + chunks * 4 + 4
      }`,
    );
  }
  const tableEnd = tableAt + chunks * 4;
  const tableOk = readU32(bytes, tableEnd) ===
    crc32c(bytes.subarray(tableAt, tableEnd));
  for (let c = 0; c < chunks; c++) {
    const from = c * SNAPSHOT_CRC_CHUNK;
    const to = Math.min(from + SNAPSHOT_CRC_CHUNK, covered);
    if (crc32c(bytes.subarray(from, to)) !== readU32(bytes, tableAt + c * 4)) {
      // With an intact table the chunk's bytes are damaged; with a damaged
      // table its entry may be (both are reported).
      throw new WalCorruptionError(
        path,
        tableOk ? from : tableAt + c * 4,
        tableOk
          ? `snapshot bytes ${from}..${to - 1} fail their checksum`
          : `snapshot bytes ${from}..${
            to - 1
          } do not match their checksum, and the checksum table at byte ${tableAt} fails its own: the damage is in those bytes or in this table entry`,
      );
    }
  }
  if (!tableOk) {
    throw new WalCorruptionError(
      path,
      tableEnd,
      "the snapshot file's checksum table fails its checksum (the data matches every chunk checksum, so the damage is in the table's checksum)",
    );
  }
  return covered;
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
  options: RecoverOptions = {},
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
  const manifest = await readManifest(backend, dir);
  if (manifest !== undefined) {
    await dropUnlistedSegments(backend, dir, manifest, segmentSeqs, garbage);
  }
  let nextSnapshotId = 1;
  for (const id of snapshotIds) {
    nextSnapshotId = Math.max(nextSnapshotId, id + 1);
  }

  if (segmentSeqs.length === 0) {
    if (manifest !== undefined) {
      throw missingLast(dir, manifest);
    }
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
      manifest: undefined,
      repaired: undefined,
    };
  }
  if (
    manifest !== undefined &&
    segmentSeqs[segmentSeqs.length - 1] !== manifest.lastSegment
  ) {
    throw missingLast(dir, manifest);
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
  let cut: { path: string; offset: number } | undefined;
  let repaired: RepairedCut | undefined;
  let managed = false; // a segment was written by a log that keeps a manifest
  let onlyGenesis = false;
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
      if ((readU32(bytes, 12) & SEGMENT_FLAG_MANIFEST) !== 0) managed = true;
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
      if (result.completeBatches === 0) {
        // createSegment syncs a segment's checkpoint before naming it, so a
        // named segment without one was cut or overwritten, not torn.
        throw reader.corrupt(
          result.damageOffset ?? SEGMENT_HEADER_BYTES,
          result.damageOffset === undefined
            ? "the segment holds no checkpoint batch (only its header); segments are synced with their checkpoint before they are named, so this is not a torn write"
            : "the segment's first batch (its checkpoint) is damaged; it was synced before the segment was named, so this is not a torn write",
        );
      }
      if (result.damageOffset !== undefined) {
        if (!isLast) {
          throw reader.corrupt(result.damageOffset, result.damageDetail);
        }
        const notTorn = tornTailVerdict(
          bytes,
          result.validEnd,
          result.damageOffset,
          result.damageReason!,
          result.nextBatch,
        );
        const accept = options.acceptDamage;
        if (
          notTorn !== undefined && accept !== undefined &&
          accept.file === path && accept.offset === result.damageOffset
        ) {
          const lost = scanLost(bytes, result.validEnd, replay.lastIndex());
          repaired = {
            file: path,
            damageOffset: result.damageOffset,
            cutAt: result.validEnd,
            bytesRemoved: bytes.length - result.validEnd,
            lostIndex: lost.index,
            lostTerm: lost.term,
          };
        } else if (notTorn !== undefined) {
          throw reader.corrupt(
            result.damageOffset,
            `${result.damageDetail} in the last batch, but ${notTorn}. If you accept losing that batch, cut it with WalLog.repair (deno task wal:repair); the node then rejoins without voting until it has caught up`,
          );
        }
        // A torn tail: the unfinished batch was never acknowledged.
        cut = { path, offset: result.validEnd };
      }
      expectedBatch = result.nextBatch;
      onlyGenesis = seq === 1 && isLast && result.completeBatches === 1;
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

  if (manifest === undefined && managed && !onlyGenesis) {
    // A crash between creating segment 1 and its manifest leaves segment 1
    // holding only its checkpoint; anything more was listed by a manifest.
    throw new WalMissingSegmentError(
      dir,
      joinPath(dir, MANIFEST_FILE),
      "the segments were written by a log that keeps a manifest naming its last segment; without it a removed last segment cannot be told from an older state",
    );
  }
  if (replay.entriesStart !== replay.firstIndex) {
    const first = segmentSeqs[0];
    if (cut !== undefined) {
      // The segments were deleted after a batch that compacted them was
      // durable: the cut removed that batch, so the cut is the damage.
      throw new WalCorruptionError(
        cut.path,
        cut.offset,
        `the tail from here reads as a torn write, but it must hold the batch that compacted entries ${replay.firstIndex}..${
          replay.entriesStart - 1
        } (the segments holding them are deleted, which happens only after that batch is durable)`,
      );
    }
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
    manifest,
    repaired,
  };
}

/**
 * What a damaged tail seems to have held, for a repaired node's catch-up
 * bound: entries and hard states of the records past `from` that still
 * pass their CRC, and the index range an ENTRIES record there declares
 * when it starts right after `lastIndex`. A lower bound on what was lost;
 * the runtime's rule adds the leader's commit index.
 */
function scanLost(
  file: Uint8Array,
  from: number,
  lastIndex: number,
): { index: number; term: number } {
  let index = 0;
  let term = 0;
  const H = RECORD_HEADER_BYTES;
  for (let p = from; p + H <= file.length; p++) {
    const type = file[p + 8];
    if (type !== RecordType.entries && type !== RecordType.hardState) continue;
    const len = readU32(file, p);
    if (len < 8 || p + H + len > file.length) continue;
    const q = p + H;
    const valid = decodeRecords(file.subarray(p, p + H + len)).count === 1;
    if (type === RecordType.hardState) {
      if (valid && len === 24) term = Math.max(term, readU64(file, q));
      continue;
    }
    const first = readU64(file, q);
    const count = readU32(file, q + 8);
    if (first < 1 || count > (len - 12) / ENTRY_HEADER_BYTES) continue;
    if (!valid && first !== lastIndex + 1) continue;
    index = Math.max(index, first + count - 1);
    if (valid && count > 0) term = Math.max(term, readU64(file, q + 12));
  }
  return { index, term };
}

function missingLast(dir: string, manifest: Manifest): WalMissingSegmentError {
  return new WalMissingSegmentError(
    dir,
    joinPath(dir, segmentName(manifest.lastSegment)),
    `${MANIFEST_FILE} names segment ${manifest.lastSegment} as the last one; opening without it would return an older state and lose acknowledged entries`,
  );
}

/** Reads the manifest; undefined when there is none. */
export async function readManifest(
  backend: WalBackend,
  dir: string,
): Promise<Manifest | undefined> {
  const path = joinPath(dir, MANIFEST_FILE);
  let bytes: Uint8Array;
  try {
    bytes = await backend.readFile(path);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  const m = decodeManifest(bytes, (b) => crc32c(b));
  if (typeof m === "string") {
    throw new WalCorruptionError(
      path,
      0,
      `the manifest is damaged: ${m} (it is written to a temporary name, synced and renamed, so a crash never leaves it half written)`,
    );
  }
  return m;
}

/**
 * Segments after the manifest's last one: a rotation creates the next
 * segment (synced, named), then rewrites the manifest, and only then writes
 * batches into it. So one segment past the manifest holding only its
 * checkpoint is a rotation a crash interrupted (removed); more is damage.
 */
async function dropUnlistedSegments(
  backend: WalBackend,
  dir: string,
  manifest: Manifest,
  segmentSeqs: number[],
  garbage: string[],
): Promise<void> {
  while (
    segmentSeqs.length > 0 &&
    segmentSeqs[segmentSeqs.length - 1] > manifest.lastSegment
  ) {
    const seq = segmentSeqs[segmentSeqs.length - 1];
    const path = joinPath(dir, segmentName(seq));
    if (seq !== manifest.lastSegment + 1) {
      throw new WalCorruptionError(
        path,
        0,
        `segment ${seq} lies past segment ${manifest.lastSegment}, the last one ${MANIFEST_FILE} names`,
      );
    }
    const bytes = await backend.readFile(path);
    const records = bytes.length > SEGMENT_HEADER_BYTES
      ? decodeRecords(bytes.subarray(SEGMENT_HEADER_BYTES)).count
      : 0;
    if (records > 2) {
      throw new WalCorruptionError(
        path,
        SEGMENT_HEADER_BYTES,
        `segment ${seq} holds batches, but ${MANIFEST_FILE} says segment ${manifest.lastSegment} is the last one (a manifest older than its segments)`,
      );
    }
    garbage.push(path);
    segmentSeqs.pop();
  }
}
