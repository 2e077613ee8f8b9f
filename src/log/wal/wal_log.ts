/**
 * {@linkcode WalLog}: the durable {@linkcode RaftLog}, a directory of
 * segment files written with group commit.
 *
 * @module
 */

import { crc32c } from "../../codec/crc32c.ts";
import {
  type CodecBackend,
  RECORD_HEADER_BYTES,
  RecordEncoder,
} from "../../codec/records.ts";
import type { LogState } from "../log_state.ts";
import type { Entry, HardState, RaftLog, SnapshotMeta } from "../raft_log.ts";
import {
  joinPath,
  type WalBackend,
  type WalDirLock,
  type WalFile,
} from "./backend.ts";
import {
  WalCorruptionError,
  WalFailedError,
  WalPermissionError,
  WalRepairRefusedError,
} from "./errors.ts";
import {
  type CatchUp,
  type Checkpoint,
  checkpointBytes,
  COMMIT_PAYLOAD_BYTES,
  encodeManifest,
  ENTRIES_HEADER_BYTES,
  ENTRY_HEADER_BYTES,
  type Manifest,
  MANIFEST_FILE,
  NO_SNAPSHOT_REF,
  RecordType,
  refBytes,
  segmentHeader,
  segmentName,
  SNAPSHOT_CRC_CHUNK,
  SnapshotAction,
  snapshotFileHead,
  snapshotName,
  type SnapshotRef,
  writeCheckpoint,
  writeEntriesPayload,
  writeRef,
  writeU32,
  writeU64,
} from "./format.ts";
import { recover, type SegmentInfo } from "./recovery.ts";
import { checkIdentity, type WalIdentity } from "./identity.ts";

/** Default segment size: 64 MiB. */
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const MIN_SEGMENT_BYTES = 4096;
// Appends larger than this are split over several ENTRIES records (small records
// also keep within the 4 MiB window the record decoder verifies at a time).
const MAX_ENTRIES_RECORD = 1024 * 1024;
// Largest single entry: one record (1 GiB) minus the entry and record headers.
const MAX_ENTRY_DATA = 0x4000_0000 - ENTRIES_HEADER_BYTES - ENTRY_HEADER_BYTES;
const COMMIT_RECORD_BYTES = RECORD_HEADER_BYTES + COMMIT_PAYLOAD_BYTES;

/** Options for {@linkcode WalLog.open}. */
export interface WalLogOptions {
  /**
   * Size at which a new segment file is started (default 64 MiB). A batch
   * bigger than this still goes into one segment.
   */
  segmentBytes?: number;
  /**
   * File backend: `"deno"` (default under Deno), `"node"` (`node:fs`,
   * default elsewhere), or a custom {@linkcode WalBackend}.
   */
  backend?: "deno" | "node" | WalBackend;
  /** Record codec implementation (default: WASM where available). */
  codec?: CodecBackend;
  /**
   * Who the directory belongs to. A new directory records it (`IDENTITY`);
   * an existing one must name the same node and cluster, else the open
   * fails with `WalIdentityError` before anything is read or written. A
   * directory from before identities adopts it. Without it, no check.
   */
  identity?: WalIdentity;
  /**
   * Where the background snapshot writer yields between chunks (default:
   * the host's `setTimeout(fn, 0)`). A simulator passes its virtual
   * scheduler so that nothing runs on real time.
   */
  scheduler?: { after(ms: number, fn: () => void): unknown };
}

type WalYieldScheduler = NonNullable<WalLogOptions["scheduler"]>;

interface Waiter {
  gen: number;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * A snapshot the local node took whose file is being written in the
 * background; its record (and the compaction behind it) is not encoded yet.
 */
interface LocalSnapshot {
  ref: SnapshotRef;
  data: Uint8Array;
  /** Highest `compact(upTo)` made after it (0: none): recorded with it. */
  compactUpTo: number;
  /** Superseded by a later snapshot before its record was written. */
  abandoned: boolean;
  /** Settles when its record is durable (or a later snapshot superseded it). */
  done: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

// Background snapshot files are written and checksummed this much at a time,
// yielding to the event loop in between, so the commit path keeps running.
const SNAPSHOT_WRITE_CHUNK = 1024 * 1024;
// ...and synced every this many bytes: on ext4 (data=ordered) a group
// commit's fdatasync also waits for other files' dirty data in the same
// journal commit, so one final sync of a 100+ MB snapshot would stall every
// write behind it; bounded steps keep each group commit's wait short.
const SNAPSHOT_SYNC_EVERY = 8 * 1024 * 1024;

function yieldToEventLoop(scheduler?: WalYieldScheduler): Promise<void> {
  if (scheduler !== undefined) {
    return new Promise((resolve) => scheduler.after(0, resolve));
  }
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * The file backend to use. The built-in ones are imported only here, when a
 * log is opened, so that importing raft-io never loads `node:fs` (or touches
 * `Deno`) in a runtime that has neither.
 */
async function pickBackend(
  choice: WalLogOptions["backend"],
): Promise<WalBackend> {
  if (typeof choice === "object") return choice;
  const name = choice ?? ("Deno" in globalThis ? "deno" : "node");
  if (name === "deno") {
    const { DenoWalBackend } = await import("./deno_backend.ts");
    return new DenoWalBackend();
  }
  const { NodeWalBackend } = await import("./node_backend.ts");
  return new NodeWalBackend();
}

/**
 * A durable Raft log in a directory of segment files.
 *
 * - Reads and mutations work on an in-memory {@linkcode LogState}; each
 *   mutation is also encoded at once into a pending batch of records.
 * - `sync()` writes the whole pending batch with one write and one
 *   `syncData()` (group commit). Calls made while a flush runs share the
 *   next flush. The hard state is written once per batch, as it stands.
 *   (A flush that starts a new segment, every `segmentBytes`, or carries a
 *   snapshot applied from a leader also creates that file: temporary name,
 *   sync, rename, dir sync.)
 * - Snapshot data goes to its own file (temporary name, synced, renamed,
 *   directory synced) before the batch that refers to it; older snapshot
 *   files and segments wholly below the compacted index are deleted after.
 * - A snapshot the local node took (`saveSnapshot`) is written off the
 *   commit path: its file is written in the background while flushes go on,
 *   and its record, with every `compact()` made after it, joins the first
 *   batch after the file is durable. `sync()` does not wait for it (the log
 *   still holds its entries on disk until then); {@linkcode WalLog.syncSnapshot}
 *   and `close()` do. A snapshot applied from a leader (`applySnapshot`) is
 *   durable when the next `sync()` resolves, and supersedes a local one
 *   still being written. Reads see either at once.
 * - Memory: every entry since the last `compact` is held in memory, plus
 *   the latest snapshot's data. Entries recovered on open stay packed (typed
 *   arrays pointing into the segment bytes read) and become `Entry` objects
 *   only when read. Compacting behind snapshots is what bounds memory.
 * - Appended entries and snapshot data are kept as given, not copied: do
 *   not mutate them afterwards.
 * - `close()` syncs what is pending, then releases the files and the lock.
 * - After a failed write or sync the log refuses further use
 *   ({@linkcode WalFailedError}); close and reopen it.
 * - The directory is locked while open ({@linkcode WalLockedError}).
 *
 * @example
 * ```ts
 * import { WalLog } from "@raft-io/raft";
 * const log = await WalLog.open("./raft-data");
 * log.append([{ index: log.lastIndex() + 1, term: 1, kind: "normal", data: new Uint8Array([1]) }]);
 * log.setHardState({ term: 1, vote: 0, commit: 0 });
 * await log.sync(); // durable from here
 * await log.close();
 * ```
 */
export class WalLog implements RaftLog {
  readonly #dir: string;
  readonly #backend: WalBackend;
  readonly #lock: WalDirLock;
  readonly #segmentBytes: number;
  readonly #codec: CodecBackend | undefined;
  readonly #scheduler: WalYieldScheduler | undefined;
  #state: LogState;
  /** The snapshot as the records encoded so far leave it (what replay will see). */
  #snapshot: SnapshotRef;
  /** The first index as the records encoded so far leave it. */
  #loggedFirstIndex: number;
  /** A snapshot applied from a leader, written at the next flush. */
  #pendingSnapshot: { ref: SnapshotRef; data: Uint8Array } | undefined;
  /** A local snapshot whose file is being written in the background. */
  #local: LocalSnapshot | undefined;
  /** Background snapshot file writes, one after another; never rejects. */
  #fileWrites: Promise<void> = Promise.resolve();
  /** Snapshot files superseded by records since the last flush: removed once it is durable. */
  #obsoleteSnapshots: number[] = [];
  #nextSnapshotId: number;
  #hardStateDirty = false;
  #batchMaxEntry = 0;
  #encoder: RecordEncoder;
  #spare: RecordEncoder;
  #segments: SegmentInfo[];
  #active: WalFile;
  #activeBase: number;
  #nextBatchSeq: number;
  #durable: Checkpoint;
  #gen = 0;
  #durableGen = 0;
  #waiters: Waiter[] = [];
  #pumping = false;
  #failed: unknown = undefined;
  #closed = false;
  #catchUp: CatchUp | undefined;
  #manifestWrites: Promise<void> = Promise.resolve();

  private constructor(init: {
    dir: string;
    backend: WalBackend;
    lock: WalDirLock;
    segmentBytes: number;
    codec: CodecBackend | undefined;
    scheduler: WalYieldScheduler | undefined;
    state: LogState;
    snapshot: SnapshotRef;
    nextSnapshotId: number;
    segments: SegmentInfo[];
    active: WalFile;
    activeBase: number;
    nextBatchSeq: number;
    catchUp: CatchUp | undefined;
  }) {
    this.#dir = init.dir;
    this.#backend = init.backend;
    this.#lock = init.lock;
    this.#segmentBytes = init.segmentBytes;
    this.#codec = init.codec;
    this.#scheduler = init.scheduler;
    this.#state = init.state;
    this.#snapshot = init.snapshot;
    this.#loggedFirstIndex = init.state.firstIndex();
    this.#nextSnapshotId = init.nextSnapshotId;
    this.#segments = init.segments;
    this.#active = init.active;
    this.#activeBase = init.activeBase;
    this.#nextBatchSeq = init.nextBatchSeq;
    this.#catchUp = init.catchUp;
    this.#encoder = new RecordEncoder({ backend: init.codec });
    this.#spare = new RecordEncoder({ backend: init.codec });
    this.#durable = this.#capture();
  }

  /**
   * Opens (or creates) the log in `dir`: takes the directory lock, replays
   * the segments and cuts a torn tail off the last one.
   *
   * Throws {@linkcode WalLockedError}, {@linkcode WalCorruptionError},
   * {@linkcode WalFormatError}, {@linkcode WalMissingSegmentError} or
   * {@linkcode WalPermissionError}.
   */
  static async open(dir: string, options: WalLogOptions = {}): Promise<WalLog> {
    const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (
      !Number.isSafeInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES
    ) {
      throw new RangeError(
        `segmentBytes must be an integer >= ${MIN_SEGMENT_BYTES}`,
      );
    }
    const backend = await pickBackend(options.backend);
    await backend.mkdirp(dir);
    const lock = await backend.lock(dir);
    try {
      if (options.identity !== undefined) {
        await checkIdentity(backend, dir, options.identity);
      }
      const rec = await recover(backend, dir);
      // The first write comes next: the lock must still be ours.
      await lock.verify?.();
      for (const path of rec.garbage) await backend.remove(path);
      let active: WalFile;
      let activeBase = 0;
      let segments = rec.segments;
      let nextBatchSeq = rec.nextBatchSeq;
      if (segments.length === 0) {
        const empty: Checkpoint = {
          firstIndex: 1,
          lastIndex: 0,
          hardState: { term: 0, vote: 0, commit: 0 },
          snapshot: NO_SNAPSHOT_REF,
        };
        const created = await createSegment(
          backend,
          dir,
          1,
          empty,
          nextBatchSeq++,
          options.codec,
        );
        active = created.file;
        activeBase = created.size;
        await writeManifest(backend, dir, {
          lastSegment: 1,
          catchUp: undefined,
        });
        await syncParentDir(backend, dir);
        segments = [{
          seq: 1,
          name: segmentName(1),
          size: created.size,
          maxEntryIndex: 0,
        }];
      } else {
        const last = segments[segments.length - 1];
        active = await backend.openFile(joinPath(dir, last.name), {
          create: false,
          truncate: false,
        });
        if (rec.lastFileSize !== last.size) {
          // Cut the torn tail (an unfinished batch that was never acknowledged).
          try {
            await active.truncate(last.size);
            await active.syncData();
          } catch (e) {
            await active.close();
            throw e;
          }
        }
        if (rec.manifest === undefined) {
          // A log from before manifests (or a crash right after segment 1 was made).
          await writeManifest(backend, dir, {
            lastSegment: last.seq,
            catchUp: undefined,
          });
        }
      }
      return new WalLog({
        dir,
        backend,
        lock,
        segmentBytes,
        codec: options.codec,
        scheduler: options.scheduler,
        state: rec.state,
        snapshot: rec.snapshot,
        nextSnapshotId: rec.nextSnapshotId,
        segments,
        active,
        activeBase,
        nextBatchSeq,
        catchUp: rec.manifest?.catchUp,
      });
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  /**
   * Cuts a damaged tail off the last segment — damage that
   * {@linkcode WalLog.open} refuses as a {@linkcode WalCorruptionError}
   * because a crash cannot explain it (e.g. a bit flip inside the final
   * synced batch) — and records in the log's MANIFEST that this node lost
   * acknowledged records and must catch up before it may vote again (see
   * {@linkcode WalLog.needsCatchUp}). `truncateAt` must be the offset the
   * error reported (and `file`, if given, its file), so a repair never cuts
   * anything the operator did not see named. Damage anywhere else (an
   * earlier segment, a snapshot file) is refused: restore from a backup,
   * or remove the node's data and let it rejoin.
   *
   * Throws `WalRepairRefusedError` (code `WAL_REPAIR_REFUSED`; nothing
   * changed) or the error that stops recovery even after the cut.
   *
   * @example
   * ```ts ignore
   * import { WalCorruptionError, WalLog } from "@raft-io/raft";
   * try {
   *   await WalLog.open("./raft-data");
   * } catch (e) {
   *   if (!(e instanceof WalCorruptionError)) throw e;
   *   const report = await WalLog.repair("./raft-data", { truncateAt: e.offset, file: e.file });
   *   console.log(report.catchUp); // { index, term } this node must catch up to
   * }
   * ```
   */
  static async repair(
    dir: string,
    options: {
      /** The offset the WalCorruptionError reported (the cut is at the end of the last intact batch before it). */
      truncateAt: number;
      /** The file the error named (default: the last segment). */
      file?: string;
      /** File backend, as for {@linkcode WalLog.open}. */
      backend?: "deno" | "node" | WalBackend;
    },
  ): Promise<{
    /** The segment cut. */
    file: string;
    /** Where the damage was. */
    damageOffset: number;
    /** The file's new length (the end of its last intact batch). */
    cutAt: number;
    /** Bytes removed. */
    bytesRemoved: number;
    /** The log's last index after the cut. */
    lastIndex: number;
    /** The catch-up the node now owes (also {@linkcode WalLog.needsCatchUp} from now on). */
    catchUp: { index: number; term: number };
  }> {
    const backend = await pickBackend(options.backend);
    const lock = await backend.lock(dir);
    try {
      let damage: WalCorruptionError;
      try {
        await recover(backend, dir);
        throw new WalRepairRefusedError(
          dir,
          "the log opens as it is (a torn tail, if any, is cut by open)",
          undefined,
          undefined,
        );
      } catch (e) {
        if (!(e instanceof WalCorruptionError)) throw e;
        damage = e;
      }
      if (
        damage.offset !== options.truncateAt ||
        (options.file !== undefined && options.file !== damage.file)
      ) {
        throw new WalRepairRefusedError(
          dir,
          `the damage is in ${damage.file} at byte ${damage.offset}, not where the repair was told to cut (${
            options.file ?? "the last segment"
          } at byte ${options.truncateAt})`,
          damage.file,
          damage.offset,
          { cause: damage },
        );
      }
      const rec = await recover(backend, dir, {
        acceptDamage: { file: damage.file, offset: damage.offset },
      }).catch((e) => {
        throw e instanceof WalCorruptionError && e.file === damage.file &&
            e.offset === damage.offset
          ? new WalRepairRefusedError(
            dir,
            "the damage is not in the tail of the last segment, so a cut cannot remove it; restore the directory from a backup, or remove this node's data and let it rejoin",
            damage.file,
            damage.offset,
            { cause: e },
          )
          : e;
      });
      const cut = rec.repaired;
      if (cut === undefined) {
        throw new WalRepairRefusedError(
          dir,
          "recovery no longer finds that damage",
          damage.file,
          damage.offset,
        );
      }
      await lock.verify?.();
      const hs = rec.state.hardState();
      const prior = rec.manifest?.catchUp;
      const catchUp: CatchUp = {
        index: Math.max(
          prior?.index ?? 0,
          rec.state.lastIndex(),
          hs.commit,
          cut.lostIndex,
        ),
        term: Math.max(
          prior?.term ?? 0,
          hs.term,
          rec.state.lastTerm(),
          cut.lostTerm,
        ),
      };
      // The marker first: a crash after it and before the cut leaves a
      // node that still refuses votes and a tail the next repair cuts.
      await writeManifest(backend, dir, {
        lastSegment: rec.segments[rec.segments.length - 1].seq,
        catchUp,
      });
      const file = await backend.openFile(cut.file, {
        create: false,
        truncate: false,
      });
      try {
        await file.truncate(cut.cutAt);
        await file.syncData();
      } finally {
        await file.close();
      }
      return {
        file: cut.file,
        damageOffset: cut.damageOffset,
        cutAt: cut.cutAt,
        bytesRemoved: cut.bytesRemoved,
        lastIndex: rec.state.lastIndex(),
        catchUp,
      };
    } finally {
      await lock.release();
    }
  }

  /**
   * Set after {@linkcode WalLog.repair} cut acknowledged records: this node
   * may have acknowledged entries up to `index` and voted in terms up to
   * `term` that it no longer remembers. Until the runtime has caught up it
   * must not grant votes (nor pre-votes) nor campaign, and a leader must
   * not count its old acknowledgements: the rule is to wait for an
   * AppendEntries from a leader whose term is at least `term`, accept it,
   * and hold a log matching that leader's through
   * `max(index, the leader's commit index)`; then call
   * {@linkcode WalLog.markCaughtUp}. Undefined for a log never repaired
   * (or caught up since). Kept in the log's MANIFEST, so it survives
   * restarts.
   */
  get needsCatchUp(): { index: number; term: number } | undefined {
    return this.#catchUp;
  }

  /**
   * Clears {@linkcode WalLog.needsCatchUp} durably, once the runtime has
   * caught up from a leader (see there). Resolves when the MANIFEST saying
   * so is durable.
   */
  async markCaughtUp(): Promise<void> {
    this.#checkWritable();
    if (this.#catchUp === undefined) return;
    await this.sync();
    this.#catchUp = undefined;
    await this.#saveManifest();
  }

  /** Rewrites the MANIFEST as things stand; one write at a time. */
  #saveManifest(): Promise<void> {
    const write = this.#manifestWrites.then(() =>
      writeManifest(this.#backend, this.#dir, {
        lastSegment: this.#segments[this.#segments.length - 1].seq,
        catchUp: this.#catchUp,
      })
    );
    this.#manifestWrites = write.catch(() => {});
    return write;
  }

  /** The directory this log lives in. */
  get dir(): string {
    return this.#dir;
  }

  /** Name of the file backend in use (`"deno"` or `"node"`). */
  get backendName(): string {
    return this.#backend.name;
  }

  /** Names of the segment files currently making up the log, oldest first. */
  segmentFiles(): string[] {
    return this.#segments.map((s) => s.name);
  }

  /** See {@linkcode RaftLog.firstIndex}. */
  firstIndex(): number {
    return this.#state.firstIndex();
  }
  /** See {@linkcode RaftLog.lastIndex}. */
  lastIndex(): number {
    return this.#state.lastIndex();
  }
  /** See {@linkcode RaftLog.lastTerm}. */
  lastTerm(): number {
    return this.#state.lastTerm();
  }
  /** See {@linkcode RaftLog.termAt}. */
  termAt(index: number): number | undefined {
    return this.#state.termAt(index);
  }
  /** See {@linkcode RaftLog.entry}. */
  entry(index: number): Entry | undefined {
    return this.#state.entry(index);
  }
  /** See {@linkcode RaftLog.entries}. */
  entries(from: number, to: number, maxBytes?: number): Entry[] {
    return this.#state.entries(from, to, maxBytes);
  }
  /** See {@linkcode RaftLog.hardState}. */
  hardState(): HardState {
    return this.#state.hardState();
  }
  /** See {@linkcode RaftLog.snapshotMeta}. */
  snapshotMeta(): SnapshotMeta {
    return this.#state.snapshotMeta();
  }
  /** See {@linkcode RaftLog.snapshotData}. */
  snapshotData(): Uint8Array {
    return this.#state.snapshotData();
  }

  /**
   * See {@linkcode RaftLog.append}. Entries are kept as given (not copied):
   * do not mutate them afterwards.
   */
  append(entries: readonly Entry[]): void {
    this.#checkWritable();
    const n = entries.length;
    if (n === 0) return;
    // One pass validates what the in-memory state does not and sizes the record.
    let total = ENTRIES_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const e = entries[i];
      const data = e.data;
      if (!(data instanceof Uint8Array) || data.length > MAX_ENTRY_DATA) {
        throw new RangeError(
          `append: entry ${e.index} data must be a Uint8Array of at most ${MAX_ENTRY_DATA} bytes`,
        );
      }
      if (e.kind !== "normal" && e.kind !== "config") {
        throw new RangeError(
          `append: entry ${e.index} has unknown kind ${String(e.kind)}`,
        );
      }
      total += ENTRY_HEADER_BYTES + data.length;
    }
    this.#state.append(entries);
    try {
      if (total <= MAX_ENTRIES_RECORD) {
        writeEntriesPayload(
          this.#encoder.reserve(RecordType.entries, total),
          entries,
          0,
          n,
        );
      } else {
        this.#encodeChunked(entries);
      }
    } catch (e) {
      this.#fail(e);
    }
    this.#gen++;
    const last = entries[n - 1].index;
    if (last > this.#batchMaxEntry) this.#batchMaxEntry = last;
  }

  #encodeChunked(entries: readonly Entry[]): void {
    const n = entries.length;
    let i = 0;
    while (i < n) {
      let bytes = ENTRIES_HEADER_BYTES + ENTRY_HEADER_BYTES +
        entries[i].data.length;
      let j = i + 1;
      while (j < n) {
        const next = bytes + ENTRY_HEADER_BYTES + entries[j].data.length;
        if (next > MAX_ENTRIES_RECORD) break;
        bytes = next;
        j++;
      }
      writeEntriesPayload(
        this.#encoder.reserve(RecordType.entries, bytes),
        entries,
        i,
        j,
      );
      i = j;
    }
  }

  /** See {@linkcode RaftLog.truncate}. */
  truncate(from: number): void {
    this.#checkWritable();
    const before = this.#state.lastIndex();
    this.#state.truncate(from);
    if (from > before) return;
    this.#encode(() =>
      writeU64(this.#encoder.reserve(RecordType.truncate, 8), 0, from)
    );
  }

  /** See {@linkcode RaftLog.setHardState}. Written once per batch, as it stands at `sync()`. */
  setHardState(hardState: HardState): void {
    this.#checkWritable();
    this.#state.setHardState(hardState);
    this.#hardStateDirty = true;
    this.#gen++;
  }

  /**
   * See {@linkcode RaftLog.saveSnapshot}. Visible to reads at once; the data
   * is written to its own file in the background, and the snapshot is
   * durable when {@linkcode WalLog.syncSnapshot} resolves (`sync()` does not
   * wait for it). A later `saveSnapshot` supersedes one still being written.
   * Do not mutate the data afterwards.
   */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.#checkWritable();
    this.#state.saveSnapshot(meta, data);
    const ref: SnapshotRef = {
      fileId: this.#nextSnapshotId++,
      meta: this.#state.snapshotMeta(),
      dataLength: data.length,
    };
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // the failure also poisons the log; callers see it there
    const previous = this.#local;
    const local: LocalSnapshot = {
      ref,
      data,
      compactUpTo: previous?.compactUpTo ?? 0,
      abandoned: false,
      done,
      resolve,
      reject,
    };
    if (previous !== undefined) {
      previous.abandoned = true;
      done.then(previous.resolve, previous.reject);
    }
    this.#local = local;
    this.#fileWrites = this.#fileWrites.then(() => this.#writeLocal(local));
  }

  /**
   * Resolves once the latest snapshot taken with `saveSnapshot` is durable
   * (its file and its record), together with what was appended before its
   * record joined a batch; at once when none is being written.
   */
  syncSnapshot(): Promise<void> {
    if (this.#failed !== undefined) {
      return Promise.reject(new WalFailedError(this.#dir, this.#failed));
    }
    return this.#local?.done ?? this.sync();
  }

  /** See {@linkcode RaftLog.applySnapshot}. Durable when the next `sync()` resolves. */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.#checkWritable();
    this.#state.applySnapshot(meta, data);
    const local = this.#local;
    this.#local = undefined;
    this.#recordSnapshot(SnapshotAction.apply, data);
    this.#loggedFirstIndex = meta.index + 1;
    if (local !== undefined) {
      // Superseded: its record must never follow this one.
      local.abandoned = true;
      this.#waiters.push({
        gen: this.#gen,
        resolve: local.resolve,
        reject: local.reject,
      });
    }
  }

  /**
   * See {@linkcode RaftLog.compact}. Segments wholly below `upTo` are deleted
   * after the next sync; a compaction past the durable snapshot waits for
   * the local snapshot being written and is recorded with it.
   */
  compact(upTo: number): void {
    this.#checkWritable();
    const first = this.#state.firstIndex();
    this.#state.compact(upTo);
    if (upTo < first) return;
    const local = this.#local;
    if (local !== undefined && upTo > this.#snapshot.meta.index) {
      local.compactUpTo = Math.max(local.compactUpTo, upTo);
      return;
    }
    this.#encodeCompact(upTo);
  }

  #encodeCompact(upTo: number): void {
    this.#encode(() =>
      writeU64(this.#encoder.reserve(RecordType.compact, 8), 0, upTo)
    );
    this.#loggedFirstIndex = upTo + 1;
  }

  /** Writes a local snapshot's file, then puts its record into the pending batch. */
  async #writeLocal(local: LocalSnapshot): Promise<void> {
    if (local.abandoned || this.#failed !== undefined || this.#closed) return;
    try {
      await this.#writeSnapshotFile(local.ref, local.data);
    } catch (e) {
      this.#failed ??= e;
      local.reject(new WalFailedError(this.#dir, e));
      return;
    }
    if (local.abandoned || this.#failed !== undefined) {
      // Never referenced: only space (recovery removes it too).
      await this.#backend.remove(
        joinPath(this.#dir, snapshotName(local.ref.fileId)),
      ).catch(() => {});
      if (this.#failed !== undefined) {
        local.reject(new WalFailedError(this.#dir, this.#failed));
      }
      return;
    }
    this.#local = undefined;
    try {
      this.#encodeSnapshotRecord(SnapshotAction.save, local.ref);
      if (local.compactUpTo >= this.#loggedFirstIndex) {
        this.#encodeCompact(local.compactUpTo);
      }
    } catch (e) {
      local.reject(e);
      return;
    }
    this.#waiters.push({
      gen: this.#gen,
      resolve: local.resolve,
      reject: local.reject,
    });
    if (!this.#pumping) this.#pump();
  }

  /**
   * See {@linkcode RaftLog.sync}: one write and one `syncData()` for
   * everything since the last flush; concurrent calls share it.
   */
  sync(): Promise<void> {
    if (this.#failed !== undefined) {
      return Promise.reject(new WalFailedError(this.#dir, this.#failed));
    }
    if (this.#closed) {
      return Promise.reject(new Error(`WalLog ${this.#dir} is closed`));
    }
    if (this.#durableGen >= this.#gen) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ gen: this.#gen, resolve, reject });
      if (!this.#pumping) this.#pump();
    });
  }

  /**
   * Syncs what is pending, then releases the files and the lock. The log
   * is unusable afterwards.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      if (this.#failed === undefined) await this.syncSnapshot();
      if (this.#failed === undefined) await this.sync();
    } finally {
      this.#closed = true;
      try {
        await this.#fileWrites;
        await this.#active.close();
      } finally {
        await this.#lock.release();
      }
    }
  }

  #checkWritable(): void {
    if (this.#closed) throw new Error(`WalLog ${this.#dir} is closed`);
    if (this.#failed !== undefined) {
      throw new WalFailedError(this.#dir, this.#failed);
    }
  }

  #encode(write: () => void): void {
    try {
      write();
    } catch (e) {
      // Memory moved on but the batch could not: the log must not pretend otherwise.
      this.#failed = e;
      throw new WalFailedError(this.#dir, e);
    }
    this.#gen++;
  }

  #fail(e: unknown): never {
    // Memory moved on but the batch could not: the log must not pretend otherwise.
    this.#failed = e;
    throw new WalFailedError(this.#dir, e);
  }

  #recordSnapshot(action: number, data: Uint8Array): void {
    const ref: SnapshotRef = {
      fileId: this.#nextSnapshotId++,
      meta: this.#state.snapshotMeta(),
      dataLength: data.length,
    };
    this.#pendingSnapshot = { ref, data };
    this.#encodeSnapshotRecord(action, ref);
  }

  #encodeSnapshotRecord(action: number, ref: SnapshotRef): void {
    if (this.#snapshot.fileId !== 0) {
      this.#obsoleteSnapshots.push(this.#snapshot.fileId);
    }
    this.#snapshot = ref;
    this.#encode(() => {
      const view = this.#encoder.reserve(
        RecordType.snapshot,
        1 + refBytes(ref),
      );
      view[0] = action;
      writeRef(view, 1, ref);
    });
  }

  #capture(): Checkpoint {
    return {
      firstIndex: this.#loggedFirstIndex,
      lastIndex: this.#state.lastIndex(),
      hardState: this.#state.hardState(),
      snapshot: this.#snapshot,
    };
  }

  async #pump(): Promise<void> {
    this.#pumping = true;
    try {
      while (this.#waiters.length > 0) {
        if (this.#failed !== undefined) throw this.#failed;
        await this.#flush();
        const durable = this.#durableGen;
        const waiters = this.#waiters;
        let kept = 0;
        for (let i = 0; i < waiters.length; i++) {
          const w = waiters[i];
          if (w.gen <= durable) w.resolve();
          else waiters[kept++] = w;
        }
        waiters.length = kept;
      }
    } catch (e) {
      this.#failed ??= e;
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w.reject(new WalFailedError(this.#dir, e));
    } finally {
      this.#pumping = false;
    }
  }

  /** Writes the pending batch: one write, one syncData. */
  async #flush(): Promise<void> {
    const gen = this.#gen;
    const enc = this.#encoder;
    this.#encoder = this.#spare;
    this.#spare = enc;
    if (this.#hardStateDirty) {
      this.#hardStateDirty = false;
      const hs = this.#state.hardState();
      const view = enc.reserve(RecordType.hardState, 24);
      writeU64(view, 0, hs.term);
      writeU64(view, 8, hs.vote);
      writeU64(view, 16, hs.commit);
    }
    const snapshot = this.#pendingSnapshot;
    this.#pendingSnapshot = undefined;
    const after = this.#capture();
    const maxEntry = this.#batchMaxEntry;
    this.#batchMaxEntry = 0;
    const obsolete = this.#obsoleteSnapshots;
    this.#obsoleteSnapshots = [];

    if (snapshot !== undefined) {
      await this.#writeSnapshotFile(snapshot.ref, snapshot.data);
    }
    let active = this.#segments[this.#segments.length - 1];
    if (
      active.size + enc.byteLength + COMMIT_RECORD_BYTES > this.#segmentBytes &&
      active.size > this.#activeBase
    ) {
      active = await this.#roll(active);
    }
    const batchBytes = enc.byteLength;
    const commit = enc.reserve(RecordType.commit, COMMIT_PAYLOAD_BYTES);
    writeU64(commit, 0, this.#nextBatchSeq++);
    writeU32(commit, 8, batchBytes);
    const bytes = enc.finish();
    await this.#active.writeAt(bytes, active.size);
    active.size += bytes.length;
    await this.#active.syncData();
    enc.reset();
    if (maxEntry > active.maxEntryIndex) active.maxEntryIndex = maxEntry;
    this.#durable = after;
    this.#durableGen = gen;

    // Durable now: drop what the new state no longer needs. A file that
    // cannot be removed is only space: recovery reads an older segment or
    // snapshot file as a harmless prefix (or removes it), so that is no error.
    try {
      for (const id of obsolete) {
        await this.#backend.remove(joinPath(this.#dir, snapshotName(id)));
      }
      while (
        this.#segments.length > 1 &&
        this.#segments[0].maxEntryIndex < after.firstIndex
      ) {
        await this.#backend.remove(joinPath(this.#dir, this.#segments[0].name));
        this.#segments.shift();
      }
    } catch {
      // Left for the next flush (segments) or the next open (snapshot files).
    }
  }

  /** Starts the next segment, whose checkpoint is the durable state so far. */
  async #roll(current: SegmentInfo): Promise<SegmentInfo> {
    const seq = current.seq + 1;
    const created = await createSegment(
      this.#backend,
      this.#dir,
      seq,
      this.#durable,
      this.#nextBatchSeq++,
      this.#codec,
    );
    const old = this.#active;
    this.#active = created.file;
    this.#activeBase = created.size;
    await old.close();
    const info: SegmentInfo = {
      seq,
      name: segmentName(seq),
      size: created.size,
      maxEntryIndex: 0,
    };
    this.#segments.push(info);
    // Named before any batch goes into it: a missing last segment is then
    // told apart from an older state.
    await this.#saveManifest();
    return info;
  }

  /**
   * Writes a snapshot file: temporary name, synced, renamed, directory
   * synced; the data is written and checksummed in pieces.
   */
  async #writeSnapshotFile(
    ref: SnapshotRef,
    data: Uint8Array,
  ): Promise<void> {
    const path = joinPath(this.#dir, snapshotName(ref.fileId));
    const tmp = path + ".tmp";
    const head = snapshotFileHead(ref.fileId, ref.meta);
    const file = await this.#backend.openFile(tmp, {
      create: true,
      truncate: true,
    });
    try {
      await file.writeAt(head, 0);
      const crcs = new ChunkCrcs(head.length + data.length);
      crcs.add(head);
      // In pieces, for a local snapshot (in the background) and a received
      // one (on the sync path) alike: the event loop runs between pieces,
      // and no single fsync flushes 100+ MB behind every other writer.
      let unsynced = 0;
      for (let at = 0; at < data.length; at += SNAPSHOT_WRITE_CHUNK) {
        const piece = data.subarray(at, at + SNAPSHOT_WRITE_CHUNK);
        crcs.add(piece);
        await file.writeAt(piece, head.length + at);
        unsynced += piece.length;
        if (unsynced >= SNAPSHOT_SYNC_EVERY) {
          await file.syncData();
          unsynced = 0;
        }
        await yieldToEventLoop(this.#scheduler);
      }
      await file.writeAt(crcs.trailer(), head.length + data.length);
      await file.syncData();
    } finally {
      await file.close();
    }
    await this.#backend.rename(tmp, path);
    await this.#backend.syncDir(this.#dir);
  }
}

/**
 * The CRC table of a version 2 snapshot file: the CRC32C of every
 * {@linkcode SNAPSHOT_CRC_CHUNK} bytes of head and data, fed in order.
 */
class ChunkCrcs {
  readonly #table: Uint8Array;
  #chunk = 0;
  #filled = 0;
  #crc = 0;

  constructor(bytes: number) {
    const chunks = Math.max(1, Math.ceil(bytes / SNAPSHOT_CRC_CHUNK));
    this.#table = new Uint8Array(chunks * 4 + 4);
  }

  add(bytes: Uint8Array): void {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(SNAPSHOT_CRC_CHUNK - this.#filled, bytes.length - at);
      this.#crc = crc32c(bytes.subarray(at, at + n), this.#crc);
      this.#filled += n;
      at += n;
      if (this.#filled === SNAPSHOT_CRC_CHUNK) {
        writeU32(this.#table, this.#chunk++ * 4, this.#crc);
        this.#crc = 0;
        this.#filled = 0;
      }
    }
  }

  /** The table and its own CRC. */
  trailer(): Uint8Array {
    const t = this.#table;
    if (this.#filled > 0) writeU32(t, this.#chunk++ * 4, this.#crc);
    writeU32(t, t.length - 4, crc32c(t.subarray(0, t.length - 4)));
    return t;
  }
}

/**
 * Creates segment `seq` holding its header and a checkpoint batch, under a
 * temporary name that is synced and renamed, so a segment never exists
 * without its checkpoint.
 */
async function createSegment(
  backend: WalBackend,
  dir: string,
  seq: number,
  checkpoint: Checkpoint,
  batchSeq: number,
  codec: CodecBackend | undefined,
): Promise<{ file: WalFile; size: number }> {
  const encoder = new RecordEncoder({ backend: codec });
  writeCheckpoint(
    encoder.reserve(RecordType.checkpoint, checkpointBytes(checkpoint)),
    checkpoint,
  );
  const batchBytes = encoder.byteLength;
  const commit = encoder.reserve(RecordType.commit, COMMIT_PAYLOAD_BYTES);
  writeU64(commit, 0, batchSeq);
  writeU32(commit, 8, batchBytes);
  const body = encoder.finish();
  const header = segmentHeader(seq, (b) => crc32c(b));
  const bytes = new Uint8Array(header.length + body.length);
  bytes.set(header, 0);
  bytes.set(body, header.length);
  const path = joinPath(dir, segmentName(seq));
  const tmp = path + ".tmp";
  const file = await backend.openFile(tmp, { create: true, truncate: true });
  try {
    await file.writeAt(bytes, 0);
    await file.syncData();
    await backend.rename(tmp, path);
    await backend.syncDir(dir);
  } catch (e) {
    await file.close();
    throw e;
  }
  return { file, size: bytes.length };
}

/** Writes the manifest: temporary name, synced, renamed, directory synced. */
export async function writeManifest(
  backend: WalBackend,
  dir: string,
  manifest: Manifest,
): Promise<void> {
  const path = joinPath(dir, MANIFEST_FILE);
  const tmp = path + ".tmp";
  const file = await backend.openFile(tmp, { create: true, truncate: true });
  try {
    await file.writeAt(encodeManifest(manifest, (b) => crc32c(b)), 0);
    await file.syncData();
  } finally {
    await file.close();
  }
  await backend.rename(tmp, path);
  await backend.syncDir(dir);
}

/**
 * Makes a new log directory's own entry durable. Best effort: a process
 * allowed into the log directory only (Deno's `--allow-read=<dir>`) may not
 * open its parent; the log is still correct, only its very first creation
 * could be lost to a power cut.
 */
async function syncParentDir(backend: WalBackend, dir: string): Promise<void> {
  const trimmed = dir.replace(/[\\/]+$/, "");
  const cut = Math.max(trimmed.lastIndexOf("/"), trimmed.lastIndexOf("\\"));
  const parent = cut < 0 ? "." : cut === 0 ? "/" : trimmed.slice(0, cut);
  try {
    await backend.syncDir(parent);
  } catch (e) {
    if (!(e instanceof WalPermissionError)) throw e;
  }
}
