/**
 * Proof tools for raft-io and for applications built on it: a
 * linearizability checker for key-value histories (and, alongside, the
 * deterministic cluster simulator and its invariants).
 *
 * @example
 * ```ts
 * import { checkHistory } from "@raft-io/raft/testing";
 * const result = checkHistory([
 *   { id: 1, process: 0, f: "put", key: "x", value: "a", status: "ok", invokeTime: 0, returnTime: 1 },
 *   { id: 2, process: 1, f: "get", key: "x", value: "a", status: "ok", invokeTime: 2, returnTime: 3 },
 * ]);
 * result.verdict; // "ok"
 * ```
 *
 * @module
 */

export * from "./linearizability/mod.ts";
export {
  ALL_FAULTS,
  type Applied,
  type ApplyObserver,
  type FaultKind,
  ListStateMachine,
  NodeScheduler,
  RecordingStateMachine,
  replayCommand,
  type SimEvent,
  type SimOptions,
  simRandom,
  type SimResult,
  type SimStateMachineKind,
  simulate,
  type SimViolation,
  VirtualLoop,
} from "./simulator/mod.ts";
export {
  SimDisk,
  type SimDiskFaultListener,
  type SimDiskFaults,
  type SimDiskOptions,
  type SimDiskStats,
  type SimDiskTimer,
} from "./sim_disk.ts";
export {
  type AppliedEntry,
  InvariantChecker,
  type InvariantName,
  type LogView,
  type NodeView,
  type Violation,
} from "./invariants.ts";
export {
  type ConformanceOptions,
  type RaftLogFactory,
  runRaftLogConformance,
  type TestRegistrar,
} from "./log_conformance.ts";
// The log types the public signatures above mention (the conformance suite).
export type {
  Entry,
  EntryKind,
  HardState,
  RaftLog,
  SnapshotMeta,
} from "../log/raft_log.ts";
