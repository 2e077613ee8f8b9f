/**
 * The simulated cluster's shared state: nodes (each a {@linkcode RaftNode}
 * over a `SimLog` (by default a `MemoryLog`) with a {@linkcode KvModel}), the
 * network, the seeded random source, the virtual clock, counters and the
 * trace. The nemesis, the workload and the driver all act through it.
 *
 * @module
 */

import type { Ready } from "../../core/node.ts";
import { RaftNode } from "../../core/node.ts";
import { InvariantChecker } from "../invariants.ts";
import { KvModel } from "../kv_model.ts";
import { SimNetwork, simRandom } from "./network.ts";
import type { FaultKind, SimLog, SimOptions } from "./options.ts";

/** One simulated node and its process state. */
export interface SimNode {
  /** Node id (1-based, also its index + 1 in `SimCluster.nodes`). */
  id: number;
  /** False while crashed. */
  alive: boolean;
  /** Its log; replaced by `log.crash()` when it crashes. */
  log: SimLog;
  /** The consensus core; replaced on restart. */
  node: RaftNode;
  /** The replicated key-value state. */
  sm: KvModel;
  /** Ticks per step (clock skew). */
  rate: number;
  /** Fractional tick carried to the next step. */
  phase: number;
  /** A Ready whose fsync has not completed yet. */
  pending?: { rd: Ready; at: number };
  /** Step at which a crashed node restarts. */
  restartAt: number;
  /** Applied index of the last snapshot taken. */
  lastSnapshot: number;
  /** A targeted crash scheduled for this step (-1: none). */
  crashAt: number;
}

/** A client pinned to one node for a while (a reader on the wrong side of a partition). */
export interface Pin {
  /** Client id. */
  client: number;
  /** Node it must use. */
  node: number;
  /** First step it is free again. */
  until: number;
}

/** Counters reported in `SimResult.stats`. */
export interface SimStats {
  [name: string]: number;
  /** Node crashes. */
  crashes: number;
  /** Partitions started. */
  partitions: number;
  /** Membership changes accepted. */
  membershipChanges: number;
  /** Leadership transfers started by the nemesis. */
  transfers: number;
  /** Snapshots taken by the application. */
  snapshots: number;
  /** Leaders elected. */
  elections: number;
}

/** Shared state of one simulated run. */
export class SimCluster {
  /** Options with defaults filled in. */
  readonly o: Required<SimOptions>;
  /** Faults switched on. */
  readonly faults: Set<FaultKind>;
  /** The run's random source: every random choice comes from it, in a fixed order. */
  readonly rand: () => number;
  /** The network. */
  readonly net: SimNetwork;
  /** The nodes, by id - 1. */
  readonly nodes: SimNode[] = [];
  /** The invariants. */
  readonly inv = new InvariantChecker();
  /** Counters. */
  readonly stats: SimStats = {
    crashes: 0,
    partitions: 0,
    membershipChanges: 0,
    transfers: 0,
    snapshots: 0,
    elections: 0,
  };
  /** The current step (virtual time). */
  now = 0;
  /** True once the faults are healed. */
  healed = false;
  /** A client pinned to a node, if any. */
  pinned: Pin | undefined;
  readonly #trace: string[] = [];
  readonly #voters: number[];
  readonly #maxBytesPerMessage: number;
  readonly #checkQuorum: boolean;

  /** Builds the nodes; the random draws happen in a fixed order. */
  constructor(o: Required<SimOptions>) {
    this.o = o;
    this.faults = new Set(o.faults);
    this.rand = simRandom(o.seed);
    this.net = new SimNetwork(simRandom(o.seed ^ 0x5bd1e995));
    this.#voters = Array.from({ length: o.nodes }, (_, i) => i + 1);
    const rates: number[] = [];
    const phases: number[] = [];
    for (let i = 0; i < o.nodes; i++) {
      const spread = o.leaseReads ? 0.16 : 0.5;
      rates.push(
        this.faults.has("skew") ? 1 - spread / 2 + this.rand() * spread : 1,
      );
      phases.push(this.rand());
    }
    // Small messages split replication into many appends (pipelining).
    this.#maxBytesPerMessage = this.rand() < 0.5 ? 256 : 1 << 20;
    // Check-quorum on or off (lease reads need it on).
    this.#checkQuorum = o.leaseReads || this.rand() < 0.5;
    for (const id of this.#voters) {
      const log = o.createLog(id);
      this.nodes.push({
        id,
        alive: true,
        log,
        node: this.newNode(id, log),
        sm: new KvModel(),
        rate: rates[id - 1],
        phase: phases[id - 1],
        restartAt: 0,
        lastSnapshot: 0,
        crashAt: -1,
      });
    }
    if (this.faults.has("drop")) this.net.faults.drop = 0.05;
    if (this.faults.has("duplicate")) this.net.faults.duplicate = 0.03;
    if (this.faults.has("reorder")) this.net.faults.maxExtraDelay = 3;
  }

  /** A fresh core over `log` (at start, or on restart after a crash). */
  newNode(id: number, log: SimLog): RaftNode {
    return new RaftNode(
      {
        id,
        voters: this.#voters,
        electionTick: 10,
        heartbeatTick: 1,
        compactionLag: this.faults.has("snapshot") ? 3 : 1000,
        maxInflightMessages: 16,
        maxBytesPerMessage: this.#maxBytesPerMessage,
        leaseReads: this.o.leaseReads,
        checkQuorum: this.#checkQuorum,
      },
      log,
      simRandom(this.o.seed * 31 + id * 7919 + this.stats.crashes),
    );
  }

  /** A random integer in `[0, n)`. */
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  /** Adds a trace line for `node` (0: the cluster). */
  log(node: number, text: string): void {
    this.#trace.push(
      `[${String(this.now).padStart(4)}] ${
        node > 0 ? `n${node}` : "--"
      } ${text}`,
    );
    if (this.#trace.length > this.o.traceLines) this.#trace.shift();
  }

  /** The trace so far. */
  trace(): string[] {
    return this.#trace.slice();
  }

  /** Live nodes that believe they lead. */
  leaders(): SimNode[] {
    return this.nodes.filter((n) =>
      n.alive && n.node.status().role === "leader"
    );
  }

  /** The live leader of the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.leaders()) {
      if (!best || n.node.status().term > best.node.status().term) best = n;
    }
    return best;
  }

  /** Crashes `n`: it loses everything its log had not synced, and any fsync in progress. */
  crash(n: SimNode): void {
    n.alive = false;
    n.pending = undefined;
    n.log = n.log.crash();
    n.restartAt = this.now + 5 + this.int(40);
    this.stats.crashes++;
    this.log(n.id, `crash (durable last index ${n.log.lastIndex()})`);
  }

  /** Restarts `n` from its durable log, restoring the state machine from the log's snapshot. */
  restart(n: SimNode): void {
    n.alive = true;
    n.pending = undefined;
    this.inv.restarted(n.id);
    n.node = this.newNode(n.id, n.log);
    n.sm = new KvModel();
    n.sm.restore(n.log.snapshotData());
    n.lastSnapshot = n.log.snapshotMeta().index;
    this.log(
      n.id,
      `restart (term ${n.log.hardState().term}, last index ${n.log.lastIndex()})`,
    );
  }
}
