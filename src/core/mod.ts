/**
 * The consensus core: a pure, synchronous, deterministic Raft node.
 *
 * @module
 */

export * from "./messages.ts";
