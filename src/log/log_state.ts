/**
 * The in-memory index every log store keeps: entries since the last
 * compaction, the hard state and the latest snapshot. It validates each
 * mutation, so stores built on it (MemoryLog, WalLog) share one set of rules.
 *
 * @module
 */

import {
  type Entry,
  entrySize,
  type HardState,
  NO_SNAPSHOT,
  type SnapshotMeta,
} from "./raft_log.ts";

const EMPTY = new Uint8Array(0);

/** Thrown when a caller breaks the log's continuity rules. */
export class LogContinuityError extends RangeError {
  /** Stable code for programmatic handling. */
  readonly code = "LOG_CONTINUITY";
  /** Creates the error; `message` says which rule was broken. */
  constructor(message: string) {
    super(message);
    this.name = "LogContinuityError";
  }
}

/** Entries, hard state and snapshot held in memory, with the RaftLog rules. */
export class LogState {
  /** Entries with indexes `offset .. offset + entries.length - 1`. */
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
    entries: Entry[];
    hardState: HardState;
    snapshot: SnapshotMeta;
    snapshotData: Uint8Array;
  }): LogState {
    const { firstIndex, entries, snapshot } = parts;
    const lastIndex = firstIndex + entries.length - 1;
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
      if (entries[i].index !== firstIndex + i) {
        throw new LogContinuityError(
          `restore: entry ${entries[i].index} found where ${
            firstIndex + i
          } belongs`,
        );
      }
    }
    const state = new LogState();
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
    copy.#entries = this.#entries.slice();
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
    return this.#offset + this.#entries.length - 1;
  }

  /** See {@linkcode RaftLog.lastTerm}. */
  lastTerm(): number {
    const n = this.#entries.length;
    return n === 0 ? this.#snapshot.term : this.#entries[n - 1].term;
  }

  /** See {@linkcode RaftLog.termAt}. */
  termAt(index: number): number | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.term;
    if (index === 0) return 0;
    const e = this.#entries[index - this.#offset];
    return e === undefined ? undefined : e.term;
  }

  /** See {@linkcode RaftLog.entry}. */
  entry(index: number): Entry | undefined {
    return this.#entries[index - this.#offset];
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
      let bytes = entrySize(this.#entries[start]);
      let i = start + 1;
      while (i < end) {
        bytes += entrySize(this.#entries[i]);
        if (bytes > maxBytes) break;
        i++;
      }
      end = i;
    }
    return this.#entries.slice(start, end);
  }

  /** The held entries in order (shared, do not mutate). */
  heldEntries(): readonly Entry[] {
    return this.#entries;
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
    this.#entries.length = from - this.#offset;
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
    this.#entries.splice(0, upTo - this.#offset + 1);
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
