/**
 * An in-memory {@linkcode RaftLog} for tests and simulation. It keeps a
 * durable copy beside the visible one, so a simulated crash loses exactly
 * what was never synced.
 *
 * @module
 */

import { LogState } from "./log_state.ts";
import type { Entry, HardState, RaftLog, SnapshotMeta } from "./raft_log.ts";

type PendingOp =
  | { type: "append"; entries: readonly Entry[] }
  | { type: "truncate"; from: number }
  | { type: "hardState"; hardState: HardState }
  | { type: "saveSnapshot"; meta: SnapshotMeta; data: Uint8Array }
  | { type: "applySnapshot"; meta: SnapshotMeta; data: Uint8Array }
  | { type: "compact"; upTo: number };

/**
 * A RaftLog held in memory.
 *
 * Mutations apply at once to what reads see and are queued for the durable
 * copy; `sync()` moves the queue over. {@linkcode MemoryLog.crash} returns
 * the log a restarted process would find: only what was synced.
 *
 * @example
 * ```ts
 * import { MemoryLog } from "@raft-io/raft";
 * const log = new MemoryLog();
 * log.append([{ index: 1, term: 1, kind: "normal", data: new Uint8Array([1]) }]);
 * await log.sync();
 * log.crash().lastIndex(); // 1
 * ```
 */
export class MemoryLog implements RaftLog {
  #visible: LogState;
  #durable: LogState;
  #pending: PendingOp[] = [];
  #closed = false;
  /** The catch-up marker (see {@linkcode MemoryLog.simulateRepair}); always durable at once. */
  #catchUp: { index: number; term: number } | undefined = undefined;

  /** Creates an empty log, or one whose visible and durable state is `state`. */
  constructor(state?: LogState) {
    this.#visible = state ? state.clone() : new LogState();
    this.#durable = state ? state.clone() : new LogState();
  }

  /** The log a process restarted after a crash would see: only synced state. */
  crash(): MemoryLog {
    const log = new MemoryLog(this.#durable);
    log.#catchUp = this.#catchUp;
    return log;
  }

  /**
   * Simulates what `WalLog.repair` leaves behind: the log as it is now, with
   * a durable catch-up marker (see {@linkcode RaftLog.needsCatchUp}). Use it
   * on a log returned by {@linkcode MemoryLog.crash} after cutting its tail
   * with `truncate` + `syncNow`.
   *
   * @example
   * ```ts
   * import { MemoryLog } from "@raft-io/raft";
   * const log = new MemoryLog();
   * log.simulateRepair({ index: 7, term: 2 });
   * log.crash().needsCatchUp; // { index: 7, term: 2 }
   * ```
   */
  simulateRepair(marker: { index: number; term: number }): void {
    this.#checkOpen();
    this.#catchUp = { index: marker.index, term: marker.term };
  }

  /** See {@linkcode RaftLog.needsCatchUp}. */
  get needsCatchUp(): { index: number; term: number } | undefined {
    return this.#catchUp;
  }

  /** See {@linkcode RaftLog.markCaughtUp}: syncs, then clears the marker. */
  markCaughtUp(): Promise<void> {
    try {
      this.syncNow();
      this.#catchUp = undefined;
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Whether any mutation is waiting for `sync()`. */
  hasUnsynced(): boolean {
    return this.#pending.length > 0;
  }

  /** Last index that would survive a crash now. */
  durableLastIndex(): number {
    return this.#durable.lastIndex();
  }

  /**
   * Makes everything so far durable at once, without a Promise; the
   * simulator uses this to model a disk whose fsync completes in one step.
   */
  syncNow(): void {
    this.#checkOpen();
    for (const op of this.#pending) applyOp(this.#durable, op);
    this.#pending = [];
  }

  /** See {@linkcode RaftLog.firstIndex}. */
  firstIndex(): number {
    return this.#visible.firstIndex();
  }
  /** See {@linkcode RaftLog.lastIndex}. */
  lastIndex(): number {
    return this.#visible.lastIndex();
  }
  /** See {@linkcode RaftLog.lastTerm}. */
  lastTerm(): number {
    return this.#visible.lastTerm();
  }
  /** See {@linkcode RaftLog.termAt}. */
  termAt(index: number): number | undefined {
    return this.#visible.termAt(index);
  }
  /** See {@linkcode RaftLog.entry}. */
  entry(index: number): Entry | undefined {
    return this.#visible.entry(index);
  }
  /** See {@linkcode RaftLog.entries}. */
  entries(from: number, to: number, maxBytes?: number): Entry[] {
    return this.#visible.entries(from, to, maxBytes);
  }
  /** See {@linkcode RaftLog.append}. */
  append(entries: readonly Entry[]): void {
    this.#mutate({ type: "append", entries: entries.slice() });
  }
  /** See {@linkcode RaftLog.truncate}. */
  truncate(from: number): void {
    this.#mutate({ type: "truncate", from });
  }
  /** See {@linkcode RaftLog.hardState}. */
  hardState(): HardState {
    return this.#visible.hardState();
  }
  /** See {@linkcode RaftLog.setHardState}. */
  setHardState(hardState: HardState): void {
    this.#mutate({ type: "hardState", hardState: { ...hardState } });
  }
  /** See {@linkcode RaftLog.snapshotMeta}. */
  snapshotMeta(): SnapshotMeta {
    return this.#visible.snapshotMeta();
  }
  /** See {@linkcode RaftLog.snapshotData}. */
  snapshotData(): Uint8Array {
    return this.#visible.snapshotData();
  }
  /** See {@linkcode RaftLog.saveSnapshot}. */
  saveSnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.#mutate({ type: "saveSnapshot", meta, data });
  }
  /** See {@linkcode RaftLog.applySnapshot}. */
  applySnapshot(meta: SnapshotMeta, data: Uint8Array): void {
    this.#mutate({ type: "applySnapshot", meta, data });
  }
  /** See {@linkcode RaftLog.compact}. */
  compact(upTo: number): void {
    this.#mutate({ type: "compact", upTo });
  }
  /** See {@linkcode RaftLog.sync}. */
  sync(): Promise<void> {
    try {
      this.syncNow();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }
  /** See {@linkcode RaftLog.close}. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  #mutate(op: PendingOp): void {
    this.#checkOpen();
    // Validate against the visible state first; it throws before anything is queued.
    applyOp(this.#visible, op);
    this.#pending.push(op);
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error("MemoryLog is closed");
  }
}

function applyOp(state: LogState, op: PendingOp): void {
  switch (op.type) {
    case "append":
      return state.append(op.entries);
    case "truncate":
      return state.truncate(op.from);
    case "hardState":
      return state.setHardState(op.hardState);
    case "saveSnapshot":
      return state.saveSnapshot(op.meta, op.data);
    case "applySnapshot":
      return state.applySnapshot(op.meta, op.data);
    case "compact":
      return state.compact(op.upTo);
    default: {
      const never: never = op;
      throw new Error(`unknown op ${JSON.stringify(never)}`);
    }
  }
}
