/**
 * Options and results of a simulated run, and the command that replays one.
 *
 * @module
 */

import type { CheckResult } from "../linearizability/checker.ts";
import type { KvOperation } from "../linearizability/history.ts";
import type { Violation } from "../invariants.ts";

/** Faults the simulator can inject; each is switched on by name. */
export type FaultKind =
  | "drop"
  | "duplicate"
  | "reorder"
  | "delay"
  | "partition"
  | "crash"
  | "skew"
  | "churn"
  | "snapshot"
  | "transfer"
  | "disk";

/** Every fault, the default mix. */
export const ALL_FAULTS: readonly FaultKind[] = [
  "drop",
  "duplicate",
  "reorder",
  "delay",
  "partition",
  "crash",
  "skew",
  "churn",
  "snapshot",
  "transfer",
  "disk",
];

/** The replicated state machine a run uses. */
export type SimStateMachineKind = "kv" | "list";

/** Options of one simulated run. */
export interface SimOptions {
  /** The seed: the same seed and options replay the same run exactly. */
  seed: number;
  /** Cluster size. Default 3. */
  nodes?: number;
  /** Ticks (10 virtual ms each) with faults before the heal. Default 300. */
  steps?: number;
  /** Faults to inject. Default {@linkcode ALL_FAULTS}. */
  faults?: readonly FaultKind[];
  /** Concurrent clients. Default 3. */
  clients?: number;
  /** Keys the clients use (KV runs). Default 3. */
  keys?: number;
  /** Ticks after which a client's request times out (it becomes indefinite). Default 30. */
  opTimeout?: number;
  /** Ticks after the heal within which the cluster must serve a write and a read, transfer leadership, and serve again. Default 200. */
  livenessSteps?: number;
  /** Events kept per node (and for the cluster) for a failure report. Default 40. */
  traceLines?: number;
  /**
   * Leases on (`leaseReads`, `checkQuorum`): clients also read with
   * `consistency: "lease"`, and clock skew stays within ±4%, inside the
   * lease's safety margin.
   */
  leaseReads?: boolean;
  /** The state machine: `"kv"` (the `./kv` service's) or `"list"` (an append-only list). Default: by seed (every third seed a list). */
  stateMachine?: SimStateMachineKind;
}

/** A violation with where it happened. */
export interface SimViolation extends Violation {
  /** Virtual time it was detected at, ms. */
  at: number;
}

/** One line of a node's (or the cluster's) timeline. */
export interface SimEvent {
  /** Virtual time, ms. */
  at: number;
  /** The node (0: the cluster, the nemesis, the clients). */
  node: number;
  /** What happened. */
  text: string;
}

/** The outcome of {@linkcode simulate}. */
export interface SimResult {
  /** The seed. */
  seed: number;
  /** The state machine used. */
  stateMachine: SimStateMachineKind;
  /** Virtual milliseconds simulated. */
  virtualMs: number;
  /** The first violation, if any. */
  violation?: SimViolation;
  /** The KV client history (empty for a list run). */
  history: KvOperation[];
  /** The checker's verdict on the KV history (absent when a safety invariant broke first, or for a list run). */
  linearizability?: CheckResult;
  /** The last events, in order (each node's last `traceLines`, and the cluster's). */
  trace: SimEvent[];
  /** Every node's role changes, crashes, restarts and faults, in order (the whole run: the timeline the determinism test compares). */
  timeline: SimEvent[];
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
    }` + (options.leaseReads ? " --leases" : "") +
    (options.stateMachine ? ` --sm ${options.stateMachine}` : "");
}
