/**
 * Options and results of a simulated run, and the command that replays one.
 *
 * @module
 */

import type { CheckResult } from "../linearizability/checker.ts";
import type { KvOperation } from "../linearizability/history.ts";
import type { Violation } from "../invariants.ts";
import type { RaftLog } from "../../log/raft_log.ts";

/** Faults the simulator can inject; each is switched on by name. */
export type FaultKind =
  | "drop"
  | "duplicate"
  | "reorder"
  | "partition"
  | "crash"
  | "skew"
  | "churn"
  | "snapshot"
  | "transfer";

/** Every fault, the default mix. */
export const ALL_FAULTS: readonly FaultKind[] = [
  "drop",
  "duplicate",
  "reorder",
  "partition",
  "crash",
  "skew",
  "churn",
  "snapshot",
  "transfer",
];

/** Options of one simulated run. */
export interface SimOptions {
  /** The seed: the same seed and options replay the same run exactly. */
  seed: number;
  /** Cluster size. Default 3. */
  nodes?: number;
  /** Steps (virtual ticks) with faults before the heal. Default 300. */
  steps?: number;
  /** Faults to inject. Default {@linkcode ALL_FAULTS}. */
  faults?: readonly FaultKind[];
  /** Concurrent clients. Default 3. */
  clients?: number;
  /** Keys the clients use. Default 3. */
  keys?: number;
  /** Steps after which a client gives up on an operation (it becomes indefinite). Default 40. */
  opTimeout?: number;
  /** Steps after the heal within which a leader must commit a new write. Default 150. */
  livenessSteps?: number;
  /** Trace lines kept for a failure report. Default 80. */
  traceLines?: number;
  /**
   * Serve reads under the leader lease instead of a heartbeat round. Clock
   * skew then stays within ±8%, inside the lease's safety margin.
   */
  leaseReads?: boolean;
  /**
   * Creates each node's log (default: a fresh `MemoryLog`). A crash replaces
   * a node's log with `log.crash()`. Use it to run the simulator over your
   * own in-memory store; a replay then needs the same factory.
   */
  createLog?: (id: number) => SimLog;
}

/**
 * A log the simulator can run and crash: a `RaftLog` with a synchronous
 * sync and a crash that keeps only what was synced (as `MemoryLog` does).
 */
export interface SimLog extends RaftLog {
  /** Makes everything done so far durable, at once. */
  syncNow(): void;
  /** The log a restarted process would find: only what was synced. */
  crash(): SimLog;
}

/** A violation with where it happened. */
export interface SimViolation extends Violation {
  /** The step it was detected at. */
  step: number;
}

/** The outcome of {@linkcode simulate}. */
export interface SimResult {
  /** The seed. */
  seed: number;
  /** Steps run (including the heal phase). */
  steps: number;
  /** The first violation, if any. */
  violation?: SimViolation;
  /** The client history. */
  history: KvOperation[];
  /** The checker's verdict on the history (absent when a safety invariant broke first). */
  linearizability?: CheckResult;
  /** The last events, one line each, prefixed with step and node. */
  trace: string[];
  /** Counters of the run. */
  stats: Record<string, number>;
  /** A command that replays this run. */
  replay: string;
}

/** The replay command for a run. */
export function replayCommand(options: SimOptions): string {
  const faults = options.faults ?? ALL_FAULTS;
  return `deno task sim --seeds 1 --from ${options.seed} --nodes ${
    options.nodes ?? 3
  } ` +
    `--faults ${faults.length > 0 ? faults.join(",") : "none"} --steps ${
      options.steps ?? 300
    }` + (options.leaseReads ? " --leases" : "");
}
