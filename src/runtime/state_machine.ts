/**
 * The application's side of replication: a deterministic state machine that
 * applies committed commands in log order.
 *
 * @module
 */

import type { Entry } from "../log/raft_log.ts";

/**
 * What a {@linkcode RaftServer} drives.
 *
 * ## The contract
 *
 * - `apply` is called once per committed application entry (`kind:
 *   "normal"` with data), in index order, on every replica. It must be
 *   deterministic: every replica applies the same entries in the same order
 *   and must reach the same state.
 * - `apply` may **reject** a command by throwing (a malformed command, a
 *   failed precondition). The entry still counts as applied — every replica
 *   rejects it alike — and the proposal's Promise rejects with an
 *   `ApplyError` whose `cause` is what was thrown. The cluster keeps
 *   serving. Do not change state before throwing.
 * - A state machine that is genuinely broken (its own storage failed, an
 *   invariant no longer holds) throws `StateMachineFatalError`: that stops
 *   this node only, with a log line, a `fatal` event and a rejected
 *   `start()` when it happens during start-up.
 * - `snapshot` returns the state as of the last applied entry: either bytes,
 *   or a {@linkcode SnapshotView} — a consistent, frozen view that the
 *   server serializes in chunks while `apply` keeps being called. A
 *   `snapshot` that throws is reported (event, log, metric) and retried
 *   later; the node keeps serving from its log.
 * - `restore` replaces the whole state with a snapshot's bytes (empty
 *   bytes: the initial state).
 * - At-least-once edge: the applied index is made durable by snapshots, not
 *   by every apply. After a crash, a node restores its latest snapshot and
 *   re-applies the committed entries after it. A state machine that keeps
 *   its own durable state must therefore skip entries whose `entry.index`
 *   it has already applied.
 *
 * Each method may return a Promise; the server waits for `apply` and
 * `restore` before going on (keep them fast: the apply loop is the server's
 * critical path).
 *
 * @example
 * ```ts
 * import type { Entry, StateMachine } from "@raft-io/raft";
 * class Counter implements StateMachine<number> {
 *   value = 0;
 *   apply(entry: Entry): number {
 *     if (entry.data[0] === 0) throw new RangeError("adding 0 is refused");
 *     return (this.value += entry.data[0]);
 *   }
 *   snapshot(): Uint8Array {
 *     return new TextEncoder().encode(String(this.value));
 *   }
 *   restore(bytes: Uint8Array): void {
 *     this.value = Number(new TextDecoder().decode(bytes) || 0);
 *   }
 * }
 * ```
 */
export interface StateMachine<R = unknown> {
  /** Applies one committed command; the result resolves its proposal's Promise, a throw rejects it. */
  apply(entry: Entry): R | Promise<R>;
  /** The state as of the last applied entry: bytes, or a frozen view serialized off the apply loop. */
  snapshot(): SnapshotSource | Promise<SnapshotSource>;
  /** Replaces the whole state with a snapshot's bytes (empty bytes: the initial state). */
  restore(bytes: Uint8Array): void | Promise<void>;
}

/** What {@linkcode StateMachine.snapshot} returns. */
export type SnapshotSource = Uint8Array | SnapshotView;

/**
 * A consistent view of a state machine, taken at one applied index, that
 * stays unchanged while later entries are applied (e.g. a frozen
 * copy-on-write map). The server reads its chunks off the apply loop and
 * writes them to the log as they come, then calls `release`.
 *
 * @example
 * ```ts
 * import type { SnapshotView } from "@raft-io/raft";
 * const frozen = new Map([["a", "1"], ["b", "2"]]);
 * const view: SnapshotView = {
 *   *chunks() {
 *     for (const [k, v] of frozen) yield new TextEncoder().encode(`${k}=${v}\n`);
 *   },
 * };
 * ```
 */
export interface SnapshotView {
  /**
   * The serialized state, in order; called once. The reader is done with a
   * chunk before it asks for the next, so a view may reuse one buffer.
   */
  chunks(): Iterable<Uint8Array> | AsyncIterable<Uint8Array>;
  /** The exact total size of the chunks, when known: the reader then allocates once. */
  readonly byteLength?: number;
  /** Releases the view: called once after the chunks were read, or when the snapshot was abandoned. */
  release?(): void;
}
