/**
 * The in-memory index every log store keeps: entries since the last
 * compaction, the hard state and the latest snapshot. It validates each
 * mutation, so stores built on it (MemoryLog, WalLog) share one set of rules.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";
import {
  type Entry,
  ENTRY_OVERHEAD_BYTES,
  entrySize,
  type HardState,
  NO_SNAPSHOT,
  type SnapshotMeta,
} from "./raft_log.ts";

const EMPTY = new Uint8Array(0);

/** Thrown when a caller breaks the log's continuity rules. */
export class LogContinuityError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "LOG_CONTINUITY" as const;
  /** Creates the error; `message` says which rule was broken. */
  constructor(message: string) {
    super("LOG_CONTINUITY", message);
    this.name = "LogContinuityError";
  }
}

/**
 * Entries held in packed form (for example views into recovered segment
 * files) and turned into {@linkcode Entry} objects only when read, so a
 * store can hold millions of recovered entries without millions of objects.
 * Positions `k` count from the source's own start; it never changes once
 * handed to a {@linkcode LogState}.
 */
export interface EntrySource {
  /** Term of entry `k`. */
  term(k: number): number;
  /** Data bytes of entry `k`. */
  size(k: number): number;
  /** Entry `k`, materialized, with the given index. */
  get(k: number, index: number): Entry;
  /** Optional: entries before `k` will never be read again (memory may be freed). */
  discardBefore?(k: number): void;
}

/** Entries, hard state and snapshot held in memory, with the RaftLog rules. */
export class LogState {
  /**
   * Held entries: indexes `offset .. offset + lazyCount - 1` come from
   * `lazy` (positions `lazyStart ..`), the rest from `entries`.
   */
  #lazy: EntrySource | undefined;
  #lazyStart = 0;
  #lazyCount = 0;
  #entries: Entry[] = [];
  #offset = 1;
  #hardState: HardState = { term: 0, vote: 0, commit: 0 };
  #snapshot: SnapshotMeta = NO_SNAPSHOT;
  #snapshotData: Uint8Array = EMPTY;

  /**
   * Rebuilds a state a store persisted (WalLog recovery): entries
   * `firstIndex .. firstIndex + entries.length - 1`, the hard state and the
   * snapshot. Throws {@linkcode LogContinuityError} when the parts disagree.
   * The `entries` array is adopted, not copied.
   */
  static restore(parts: {
    firstIndex: number;
    /** Packed entries first (`count` of them from position `start`), then `entries`. */
    packed?: { source: EntrySource; start: number; count: number };
    entries: Entry[];
    hardState: HardState;
    snapshot: SnapshotMeta;
    snapshotData: Uint8Array;
  }): LogState {
    const { entries, snapshot } = parts;
    const lazyCount = parts.packed?.count ?? 0;
    const firstIndex = parts.firstIndex;
    const lastIndex = firstIndex + lazyCount + entries.length - 1;
    if (!Number.isSafeInteger(firstIndex) || firstIndex < 1) {
      throw new LogContinuityError(
        `restore: invalid first index ${firstIndex}`,
      );
    }
    if (
      snapshot.index < firstIndex - 1 ||
      snapshot.index > Math.max(lastIndex, firstIndex - 1)
    ) {
      throw new LogContinuityError(
        `restore: snapshot ${snapshot.index} does not fit the held range ${firstIndex}..${lastIndex}`,
      );
    }
    for (let i = 0; i < entries.length; i++) {
      if (entries[i].index !== firstIndex + lazyCount + i) {
        throw new LogContinuityError(
          `restore: entry ${entries[i].index} found where ${
            firstIndex + lazyCount + i
          } belongs`,
        );
      }
    }
    const state = new LogState();
    if (parts.packed && lazyCount > 0) {
      state.#lazy = parts.packed.source;
      state.#lazyStart = parts.packed.start;
      state.#lazyCount = lazyCount;
    }
    state.#entries = entries;
    state.#offset = firstIndex;
    state.setHardState(parts.hardState);
    state.#snapshot = snapshot.index === 0 ? NO_SNAPSHOT : freezeMeta(snapshot);
    state.#snapshotData = parts.snapshotData;
    return state;
  }

  /** A deep-enough copy: entries are immutable once appended, so they are shared. */
  clone(): LogState {
    const copy = new LogState();
    // The copy gets plain entries: a packed source may free memory as its owner compacts.
    copy.#entries = this.#lazyCount > 0
      ? this.entries(this.#offset, this.lastIndex() + 1)
      : this.#entries.slice();
    copy.#offset = this.#offset;
    copy.#hardState = { ...this.#hardState };
    copy.#snapshot = this.#snapshot;
    copy.#snapshotData = this.#snapshotData;
    return copy;
  }

  /** See {@linkcode RaftLog.firstIndex}. */
  firstIndex(): number {
    return this.#offset;
  }

  /** See {@linkcode RaftLog.lastIndex}. */
  lastIndex(): number {
    return this.#offset + this.#lazyCount + this.#entries.length - 1;
  }

  /** See {@linkcode RaftLog.lastTerm}. */
  lastTerm(): number {
    const n = this.#entries.length;
    if (n > 0) return this.#entries[n - 1].term;
    if (this.#lazyCount > 0) {
      return this.#lazy!.term(this.#lazyStart + this.#lazyCount - 1);
    }
    return this.#snapshot.term;
  }

  /** See {@linkcode RaftLog.termAt}. */
  termAt(index: number): number | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.term;
    if (index === 0) return 0;
    const k = index - this.#offset;
    if (k >= 0 && k < this.#lazyCount) {
      return this.#lazy!.term(this.#lazyStart + k);
    }
    const e = this.#entries[k - this.#lazyCount];
    return e === undefined ? undefined : e.term;
  }

  /** See {@linkcode RaftLog.entry}. */
  entry(index: number): Entry | undefined {
    const k = index - this.#offset;
    if (k >= 0 && k < this.#lazyCount) {
      return this.#lazy!.get(this.#lazyStart + k, index);
    }
    return this.#entries[k - this.#lazyCount];
  }

  /** See {@linkcode RaftLog.entries}. */
  entries(from: number, to: number, maxBytes?: number): Entry[] {
    if (from < this.#offset || to > this.lastIndex() + 1 || from > to) {
      throw new RangeError(
        `entries(${from}, ${to}) is outside the held range ${this.#offset}..${this.lastIndex()}`,
      );
    }
    const start = from - this.#offset;
    let end = to - this.#offset;
    if (maxBytes !== undefined && end > start) {
      let bytes = this.#sizeAt(start);
      let i = start + 1;
      while (i < end) {
        bytes += this.#sizeAt(i);
        if (bytes > maxBytes) break;
        i++;
      }
      end = i;
    }
    const lazyCount = this.#lazyCount;
    if (start >= lazyCount) {
      return this.#entries.slice(start - lazyCount, end - lazyCount);
    }
    const out: Entry[] = [];
    for (let k = start; k < end; k++) {
      out.push(
        k < lazyCount
          ? this.#lazy!.get(this.#lazyStart + k, this.#offset + k)
          : this.#entries[k - lazyCount],
      );
    }
    return out;
  }

  #sizeAt(k: number): number {
    return k < this.#lazyCount
      ? this.#lazy!.size(this.#lazyStart + k) + ENTRY_OVERHEAD_BYTES
      : entrySize(this.#entries[k - this.#lazyCount]);
  }

  /**
   * The held entries in order (do not mutate). Entries held in packed form
   * are materialized first, so this costs O(n) once after a recovery.
   */
  heldEntries(): readonly Entry[] {
    this.#materialize();
    return this.#entries;
  }

  #materialize(): void {
    if (this.#lazyCount === 0) return;
    const out: Entry[] = [];
    for (let k = 0; k < this.#lazyCount; k++) {
      out.push(this.#lazy!.get(this.#lazyStart + k, this.#offset + k));
    }
    for (let i = 0; i < this.#entries.length; i++) out.push(this.#entries[i]);
    this.#entries = out;
    this.#dropLazy();
  }

  #dropLazy(): void {
    this.#lazy = undefined;
    this.#lazyStart = 0;
    this.#lazyCount = 0;
  }

  /** See {@linkcode RaftLog.append}. */
  append(entries: readonly Entry[]): void {
    let expected = this.lastIndex() + 1;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.index !== expected) {
        throw new LogContinuityError(
          `append: entry index ${e.index} does not continue the log (expected ${expected}); truncate a conflicting suffix first`,
        );
      }
      if (!Number.isSafeInteger(e.term) || e.term < 1) {
        throw new LogContinuityError(
          `append: entry ${e.index} has invalid term ${e.term}`,
        );
      }
      expected++;
    }
    for (let i = 0; i < entries.length; i++) this.#entries.push(entries[i]);
  }

  /** See {@linkcode RaftLog.truncate}. */
  truncate(from: number): void {
    if (from <= this.#snapshot.index) {
      throw new LogContinuityError(
        `truncate(${from}): cannot remove entries covered by the snapshot at ${this.#snapshot.index}`,
      );
    }
    if (from < this.#offset) {
      throw new LogContinuityError(
        `truncate(${from}): below the first held index ${this.#offset}`,
      );
    }
    if (from > this.lastIndex()) return;
    const k = from - this.#offset;
    if (k < this.#lazyCount) {
      this.#lazyCount = k;
      this.#entries = [];
      if (k === 0) this.#dropLazy();
    } else {
      this.#entries.length = k - this.#lazyCount;
    }
  }

  /** See {@linkcode RaftLog.hardState}. */
  hardState(): HardState {
    return { ...this.#hardState };
  }

  /** See {@linkcode RaftLog.setHardState}. */
  setHardState(hardState: HardState): void {
    const { term, vote, commit } = hardState;
    if (![term, vote, commit].every((n) => Number.isSafeInteger(n) && n >= 0)) {
      throw new RangeError(
        `setHardState: fields must be non-negative safe integers`,
      );
    }
    this.#hardState = { term, vote, commit };
  }

  /** See {@linkcode RaftLog.snapshotMeta}. */
  snapshotMeta(): SnapshotMeta {
    return this.#snapshot;
  }

  /** See {@linkcode RaftLog.snapshotData}. */
  snapshotData(): Uint8Array {
    return this.#snapshotData;
  }

  /** See {@linkcode RaftLog.saveSnapshot}. */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index < 1) {
      throw new LogContinuityError(
        `saveSnapshot: index must be positive, got ${meta.index}`,
      );
    }
    if (meta.index < this.#snapshot.index) {
      throw new LogContinuityError(
        `saveSnapshot: index ${meta.index} is older than the current snapshot ${this.#snapshot.index}`,
      );
    }
    const term = this.termAt(meta.index);
    if (term === undefined || term !== meta.term) {
      throw new LogContinuityError(
        `saveSnapshot: the log holds no entry ${meta.index} of term ${meta.term}`,
      );
    }
    this.#snapshot = freezeMeta(meta);
    this.#snapshotData = data;
  }

  /** See {@linkcode RaftLog.applySnapshot}. */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    if (meta.index < 1 || meta.term < 1) {
      throw new LogContinuityError(
        `applySnapshot: index and term must be positive`,
      );
    }
    this.#snapshot = freezeMeta(meta);
    this.#snapshotData = data;
    this.#dropLazy();
    this.#entries = [];
    this.#offset = meta.index + 1;
    if (this.#hardState.commit < meta.index) {
      this.#hardState = { ...this.#hardState, commit: meta.index };
    }
  }

  /** See {@linkcode RaftLog.compact}. */
  compact(upTo: number): void {
    if (upTo > this.#snapshot.index) {
      throw new LogContinuityError(
        `compact(${upTo}): passes the snapshot at ${this.#snapshot.index}; save a snapshot first`,
      );
    }
    if (upTo < this.#offset) return;
    let drop = upTo - this.#offset + 1;
    if (this.#lazyCount > 0) {
      const lazyDrop = Math.min(drop, this.#lazyCount);
      this.#lazyStart += lazyDrop;
      this.#lazyCount -= lazyDrop;
      drop -= lazyDrop;
      if (this.#lazyCount === 0) this.#dropLazy();
      else this.#lazy!.discardBefore?.(this.#lazyStart);
    }
    if (drop > 0) this.#entries.splice(0, drop);
    this.#offset = upTo + 1;
  }
}

function freezeMeta(meta: SnapshotMeta): SnapshotMeta {
  return Object.freeze({
    index: meta.index,
    term: meta.term,
    config: meta.config,
  });
}
