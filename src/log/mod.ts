/**
 * Log stores: the {@linkcode RaftLog} interface and its implementations.
 *
 * @module
 */

export * from "./raft_log.ts";
export { type EntrySource, LogContinuityError, LogState } from "./log_state.ts";
export { MemoryLog } from "./memory_log.ts";
export * from "./wal/mod.ts";
