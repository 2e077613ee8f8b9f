/**
 * The application's side of replication: a deterministic state machine that
 * applies committed commands in log order.
 *
 * @module
 */

import type { Entry } from "../log/raft_log.ts";

/**
 * What a {@linkcode RaftServer} drives. `apply` must be deterministic: every
 * node applies the same entries in the same order and must reach the same
 * state. `apply` is called only for application commands (`kind: "normal"`
 * with data), in index order, exactly once per entry between snapshots.
 *
 * Each method may return a Promise; the server waits for it before going on
 * (keep them fast: the apply loop is the server's critical path).
 *
 * @example
 * ```ts
 * import type { Entry, StateMachine } from "@raft-io/raft";
 * class Counter implements StateMachine<number> {
 *   value = 0;
 *   apply(entry: Entry): number {
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
  /** Applies one committed command; the result resolves its proposal's Promise. */
  apply(entry: Entry): R | Promise<R>;
  /** Serializes the whole state (everything applied so far). */
  snapshot(): Uint8Array | Promise<Uint8Array>;
  /** Replaces the whole state with a snapshot's bytes (empty bytes: the initial state). */
  restore(bytes: Uint8Array): void | Promise<void>;
}
