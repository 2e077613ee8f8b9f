/**
 * The storage seam of raft-io: what the consensus core reads and writes.
 *
 * Reads and appends are synchronous against memory; {@linkcode RaftLog.sync}
 * makes everything done so far durable. A driver appends, calls `sync()` once
 * for a whole batch, and only then tells the core what was persisted.
 *
 * @module
 */

/** What an entry carries: an application command or a membership configuration. */
export type EntryKind = "normal" | "config";

/** One entry of the replicated log. */
export interface Entry {
  /** Position in the log, starting at 1. */
  index: number;
  /** Term of the leader that created the entry. */
  term: number;
  /** `"normal"` for application commands, `"config"` for membership changes. */
  kind: EntryKind;
  /** The command or encoded configuration. May be empty (a leader's no-op). */
  data: Uint8Array;
}

/** The state a node must persist before it votes or acknowledges (§5.1, Figure 2). */
export interface HardState {
  /** The latest term this node has seen. */
  term: number;
  /** The candidate this node voted for in `term`; 0 means none. */
  vote: number;
  /** The highest index known to be committed. */
  commit: number;
}

/** Describes the state a snapshot stands for. */
export interface SnapshotMeta {
  /** Last log index the snapshot covers (0: no snapshot). */
  index: number;
  /** Term of the entry at `index`. */
  term: number;
  /** The membership configuration as of `index`, encoded by the core. */
  config: Uint8Array;
}

/** Fixed per-entry overhead counted by {@linkcode entrySize} (index, term, kind, length). */
export const ENTRY_OVERHEAD_BYTES = 24;

/**
 * The size an entry counts for in byte budgets (`maxBytes`, in-flight windows).
 *
 * @example
 * ```ts
 * import { entrySize } from "./raft_log.ts";
 * entrySize({ index: 1, term: 1, kind: "normal", data: new Uint8Array(100) }); // 124
 * ```
 */
export function entrySize(entry: Entry): number {
  return entry.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/** The empty snapshot: nothing compacted yet. */
export const NO_SNAPSHOT: SnapshotMeta = Object.freeze({
  index: 0,
  term: 0,
  config: new Uint8Array(0),
}) as SnapshotMeta;

/**
 * A Raft log store.
 *
 * Index rules: the log holds entries `firstIndex() .. lastIndex()`; entries
 * at or below `snapshotMeta().index` may have been compacted away.
 * `termAt(snapshotMeta().index)` is always answerable. An empty log has
 * `firstIndex() === 1` and `lastIndex() === 0`.
 *
 * Every mutation is visible at once to reads and becomes durable at the next
 * resolved `sync()`. Implementations throw a `RangeError` for requests
 * outside the held range rather than returning wrong data.
 */
export interface RaftLog {
  /** Index of the first entry still held (snapshot index + 1 after compaction). */
  firstIndex(): number;
  /** Index of the last entry (the snapshot index when no entries follow it). */
  lastIndex(): number;
  /** Term of the last entry (the snapshot term when no entries follow it). */
  lastTerm(): number;
  /**
   * Term of the entry at `index`, for `snapshotMeta().index <= index <= lastIndex()`
   * (and any held entry below it); `undefined` when compacted away or beyond the end.
   * `termAt(0)` is 0.
   */
  termAt(index: number): number | undefined;
  /** The entry at `index`, or `undefined` when it is not held. */
  entry(index: number): Entry | undefined;
  /**
   * Entries `[from, to)`. With `maxBytes`, stops before the entry that would
   * exceed it, but always returns at least one entry when `from < to`.
   * Throws `RangeError` when `from < firstIndex()` or `to > lastIndex() + 1`.
   */
  entries(from: number, to: number, maxBytes?: number): Entry[];
  /**
   * Appends entries that continue the log: `entries[0].index === lastIndex() + 1`
   * and indexes consecutive. Remove a conflicting suffix with `truncate` first.
   */
  append(entries: readonly Entry[]): void;
  /** Removes every entry with index `>= from` (from must be > snapshot index). */
  truncate(from: number): void;
  /** The persisted-at-next-sync hard state. */
  hardState(): HardState;
  /** Replaces the hard state; durable at the next `sync()`. */
  setHardState(hardState: HardState): void;
  /** Metadata of the latest snapshot ({@linkcode NO_SNAPSHOT} when none). */
  snapshotMeta(): SnapshotMeta;
  /** Data of the latest snapshot (empty when none). */
  snapshotData(): Uint8Array;
  /**
   * Records a snapshot the local application took of entries `<= meta.index`
   * (which must be held, with `termAt(meta.index) === meta.term`). Entries stay
   * until `compact`.
   */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void;
  /**
   * Replaces the whole log with a snapshot received from a leader: every entry
   * is dropped and the log continues at `meta.index + 1`.
   */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array): void;
  /** Drops entries `<= upTo`; `upTo` must not pass `snapshotMeta().index`. */
  compact(upTo: number): void;
  /** Makes every mutation so far durable. Concurrent calls share one flush. */
  sync(): Promise<void>;
  /** Releases files and locks. The log is unusable afterwards. */
  close(): Promise<void>;
  /**
   * Set when this log was repaired after losing records it may have
   * acknowledged (`WalLog.repair`): `index` and `term` are the highest log
   * index and term the node may have held (and acknowledged, or voted in)
   * before. The runtime passes it to the core (`RaftNodeOptions.catchUp`),
   * which then grants no vote and never campaigns until it has caught up
   * from a leader; see `docs/guide.md` ("Repair and catch-up"). Undefined
   * (or absent) for a log that lost nothing. Survives restarts until
   * {@linkcode RaftLog.markCaughtUp} resolves.
   */
  readonly needsCatchUp?: { index: number; term: number } | undefined;
  /**
   * Clears {@linkcode RaftLog.needsCatchUp} durably: resolves once a
   * restart would no longer report it. Required of a log that can report
   * `needsCatchUp`.
   */
  markCaughtUp?(): Promise<void>;
}
