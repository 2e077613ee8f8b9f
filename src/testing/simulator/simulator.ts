/**
 * A deterministic cluster simulator: many {@linkcode RaftNode}s in one
 * process over a simulated network, one seeded PRNG, a virtual clock,
 * switchable faults (the {@linkcode Nemesis}), a key-value client workload
 * whose history is checked for linearizability, and Raft's safety
 * invariants after every step.
 *
 * Each step: the nemesis strikes, every live node ticks (at its own rate),
 * due messages are delivered, clients act, and every node's Ready is handled
 * by the core's driver protocol (send messages, sync, send persisted
 * messages, apply, serve reads, advance). A sync may take a few steps, so a
 * crash can lose it.
 *
 * @module
 */

import { isCoreError } from "../../core/errors.ts";
import type { RaftNode, Ready } from "../../core/node.ts";
import { MemoryLog } from "../../log/memory_log.ts";
import { checkHistory, type CheckResult } from "../linearizability/checker.ts";
import type { NodeView, Violation } from "../invariants.ts";
import { SimCluster, type SimNode } from "./cluster.ts";
import { Nemesis } from "./nemesis.ts";
import {
  ALL_FAULTS,
  replayCommand,
  type SimOptions,
  type SimResult,
  type SimViolation,
} from "./options.ts";
import { Workload } from "./workload.ts";

export {
  ALL_FAULTS,
  type FaultKind,
  replayCommand,
  type SimLog,
  type SimOptions,
  type SimResult,
  type SimViolation,
} from "./options.ts";

/** Thrown inside a step to stop the run at a violation. */
class Stop extends Error {
  constructor(readonly violation: Violation) {
    super(violation.detail);
  }
}

/**
 * Runs one seeded simulation and reports the first violation.
 *
 * @example
 * ```ts
 * import { simulate } from "@raft-io/raft/testing";
 * const result = simulate({ seed: 1, nodes: 3, steps: 200 });
 * result.violation; // undefined when every invariant held
 * ```
 */
export function simulate(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  readonly #c: SimCluster;
  readonly #nemesis: Nemesis;
  readonly #workload: Workload;
  /**
   * Liveness after the heal: 0 until a read completes; then a leadership
   * transfer is requested (1 while pending); 2 until a read completes under
   * the new leader with every pending proposal decided; 3 when met.
   */
  #stage = 0;
  #stageStep = 0;
  #transferTerm = 0;

  constructor(options: SimOptions) {
    this.#c = new SimCluster({
      seed: options.seed,
      nodes: options.nodes ?? 3,
      steps: options.steps ?? 300,
      faults: options.faults ?? ALL_FAULTS,
      clients: options.clients ?? 3,
      keys: options.keys ?? 3,
      opTimeout: options.opTimeout ?? 40,
      livenessSteps: options.livenessSteps ?? 150,
      traceLines: options.traceLines ?? 80,
      leaseReads: options.leaseReads ?? false,
      createLog: options.createLog ?? (() => new MemoryLog()),
    });
    this.#nemesis = new Nemesis(this.#c);
    this.#workload = new Workload(this.#c);
  }

  run(): SimResult {
    const c = this.#c;
    let violation: SimViolation | undefined;
    let linearizability: CheckResult | undefined;
    const heal = c.o.steps;
    // Both liveness stages may take `livenessSteps`; then in-flight calls drain.
    const end = heal + 2 * c.o.livenessSteps + c.o.opTimeout + 1;
    try {
      for (c.now = 1; c.now <= end; c.now++) {
        if (c.now === heal + 1) {
          this.#nemesis.heal();
          this.#stageStep = c.now;
        }
        if (!c.healed) this.#nemesis.step();
        this.#step();
        if (c.healed) this.#liveness();
        if (this.#stage === 3) this.#workload.stopped = true;
        if (this.#stage === 3 && this.#workload.idle()) break;
      }
      linearizability = checkHistory(this.#workload.history, {
        timeBudgetMs: 5_000,
      });
      if (linearizability.verdict === "illegal") {
        violation = {
          invariant: "linearizability",
          detail: linearizability.illegal?.message ?? "not linearizable",
          step: c.now,
        };
      }
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      violation = { ...error.violation, step: c.now };
      c.log(
        0,
        `VIOLATION ${error.violation.invariant}: ${error.violation.detail}`,
      );
    }
    return {
      seed: c.o.seed,
      steps: c.now,
      violation,
      history: this.#workload.history,
      linearizability,
      trace: c.trace(),
      stats: {
        ...c.stats,
        ...c.net.stats,
        operations: this.#workload.history.length,
      },
      replay: replayCommand(c.o),
    };
  }

  /**
   * After the heal the cluster must serve a read (a leader that committed
   * an entry of its term), hand leadership over when asked, and then serve
   * a read under the new leader with every pending proposal decided, each
   * within `livenessSteps`.
   */
  #liveness(): void {
    const c = this.#c;
    if (this.#stage === 3) return;
    const leader = c.leader();
    const status = (n: RaftNode) => n.status();
    const readSince = this.#workload.lastReadInvokedAt >= this.#stageStep;
    if (this.#stage === 0 && readSince) this.#stage = 1;
    if (this.#stage === 1 && leader) {
      const voters = status(leader.node).membership.voters.filter((v) =>
        v !== leader.id
      );
      if (voters.length === 0) this.#stage = 3;
      else {
        try {
          leader.node.transferLeadership(voters[c.int(voters.length)]);
          this.#transferTerm = status(leader.node).term;
          this.#stage = 2;
          this.#stageStep = c.now;
          c.log(leader.id, "liveness check: transfer leadership");
        } catch (error) {
          if (!isCoreError(error)) throw error;
        }
      }
    }
    if (
      this.#stage === 2 && leader &&
      status(leader.node).term === this.#transferTerm &&
      status(leader.node).leadTransferee === 0 && c.now - this.#stageStep > 30
    ) {
      // The transfer was abandoned (it may be, after an election timeout): ask again.
      this.#stage = 1;
    }
    if (
      this.#stage === 2 &&
      this.#workload.lastReadInvokedAt >= this.#stageStep && leader &&
      status(leader.node).term > this.#transferTerm &&
      // Every pending proposal decided: the leader's whole log is committed.
      status(leader.node).commit === leader.log.lastIndex()
    ) {
      this.#stage = 3;
    }
    const deadline = (this.#stage === 2 ? this.#stageStep : c.o.steps) +
      c.o.livenessSteps;
    if (this.#stage !== 3 && c.now > deadline) {
      const what = [
        "no read served",
        "no leader to transfer from",
        "no read served (or proposals left undecided) after a leadership transfer",
      ][Math.min(this.#stage, 2)];
      const since = this.#stage === 2
        ? "the transfer was requested"
        : "the faults healed";
      const leaders = c.leaders().map((n) => n.id).join(",") || "none";
      throw new Stop({
        invariant: "liveness",
        detail:
          `${what} within ${c.o.livenessSteps} steps after ${since} (leaders: ${leaders})`,
      });
    }
  }

  #step(): void {
    const c = this.#c;
    for (const n of c.nodes) {
      if (!n.alive) continue;
      n.phase += n.rate;
      while (n.phase >= 1) {
        n.phase -= 1;
        n.node.tick();
      }
    }
    for (const m of c.net.deliverDue(c.now)) {
      const n = c.nodes[m.to - 1];
      if (n && n.alive) n.node.step(m);
    }
    this.#workload.step();
    for (const n of c.nodes) if (n.alive) this.#drive(n);
    const views: NodeView[] = c.nodes.map((n) => {
      const s = n.node.status();
      return {
        id: n.id,
        alive: n.alive,
        role: s.role,
        term: s.term,
        commit: s.commit,
        log: n.log,
        isVoter: s.membership.voters.includes(n.id) ||
          s.membership.outgoing.includes(n.id),
      };
    });
    const v = c.inv.observe(views);
    if (v) throw new Stop(v);
  }

  /** The driver protocol of the core (see src/core/node.ts), with a slow disk. */
  #drive(n: SimNode): void {
    const c = this.#c;
    for (let round = 0; round < 4; round++) {
      if (n.pending) {
        if (n.pending.at > c.now) return;
        this.#finish(n, n.pending.rd);
        continue;
      }
      if (!n.node.hasReady()) return;
      const rd = n.node.ready();
      if (rd.softState) {
        c.log(
          n.id,
          `${rd.softState.role} (term ${n.node.status().term}, leader n${rd.softState.leader})`,
        );
        if (rd.softState.role === "leader") c.stats.elections++;
      }
      for (const m of rd.messages) c.net.send(m, c.now);
      // A disk whose fsync takes a while: a crash meanwhile loses the batch.
      const delay = rd.mustSync && c.faults.has("crash") ? c.int(3) : 0;
      if (delay > 0) {
        n.pending = { rd, at: c.now + delay };
        return;
      }
      this.#finish(n, rd);
    }
  }

  /** The rest of a Ready once its sync completed: persisted messages, snapshot, apply, reads, advance. */
  #finish(n: SimNode, rd: Ready): void {
    const c = this.#c;
    n.pending = undefined;
    if (rd.mustSync) n.log.syncNow();
    for (const m of rd.persistedMessages) {
      c.net.send(m, c.now);
      // Targeted fault: crash a voter right after it granted a vote, when a
      // lost vote would let it vote twice in one term.
      if (
        m.type === "RequestVoteResponse" && m.granted && !m.preVote &&
        c.faults.has("crash") && !c.healed && c.rand() < 0.3
      ) n.crashAt = c.now + 1;
    }
    if (rd.snapshot) {
      n.sm.restore(rd.snapshot.data);
      c.log(n.id, `restored snapshot at index ${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      const v = c.inv.applied(n.id, e);
      if (v) throw new Stop(v);
      if (e.kind !== "normal") continue;
      const result = n.sm.apply(e.data);
      if (result !== undefined) this.#workload.applied(n, e, result);
    }
    for (const rs of rd.readStates) this.#workload.readReady(n, rs.context);
    n.node.advance(rd);
    if (c.faults.has("snapshot")) {
      const applied = n.node.status().applied;
      if (applied - n.lastSnapshot >= 15) {
        n.node.snapshotTaken(applied, n.sm.snapshot());
        n.lastSnapshot = applied;
        c.stats.snapshots++;
      }
    }
  }
}
