/**
 * A deterministic cluster simulator: many {@linkcode RaftNode}s in one
 * process over a {@linkcode SimNetwork}, one seeded PRNG, a virtual clock,
 * switchable faults, a key-value client workload whose history is checked
 * for linearizability, and Raft's safety invariants after every step.
 *
 * @module
 */

import { RaftError } from "../../core/errors.ts";
import type { MembershipChange } from "../../core/membership.ts";
import { RaftNode, type Ready } from "../../core/node.ts";
import { MemoryLog } from "../../log/memory_log.ts";
import { checkHistory, type CheckResult } from "../linearizability/checker.ts";
import type { KvOperation, KvValue } from "../linearizability/history.ts";
import {
  InvariantChecker,
  type NodeView,
  type Violation,
} from "../invariants.ts";
import {
  encodeKvCommand,
  type KvCommand,
  KvStateMachine,
} from "../kv_model.ts";
import { SimNetwork, simRandom } from "./network.ts";

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

interface SimNode {
  id: number;
  alive: boolean;
  log: MemoryLog;
  node: RaftNode;
  sm: KvStateMachine;
  rate: number;
  phase: number;
  pending?: { rd: Ready; at: number };
  restartAt: number;
  lastSnapshot: number;
  /** A targeted crash scheduled for this step (-1: none). */
  crashAt: number;
}

interface ClientCall {
  op: KvOperation;
  node: number;
  req: string;
  deadline: number;
  /** The step it was invoked at. */
  invokedAt: number;
}

interface Client {
  id: number;
  call?: ClientCall;
  nextAt: number;
  count: number;
  lastSeen: Map<string, KvValue | null>;
  /** The node this client talks to until it fails it (a cached leader). */
  preferred: number;
}

const decoder = new TextDecoder();

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

class Simulation {
  readonly #o: Required<SimOptions>;
  readonly #rand: () => number;
  readonly #net: SimNetwork;
  readonly #nodes: SimNode[] = [];
  readonly #clients: Client[] = [];
  readonly #history: KvOperation[] = [];
  readonly #inv = new InvariantChecker();
  readonly #trace: string[] = [];
  readonly #faults: Set<FaultKind>;
  readonly #voters: number[];
  readonly #stats: Record<string, number> = {
    crashes: 0,
    partitions: 0,
    membershipChanges: 0,
    transfers: 0,
    snapshots: 0,
    elections: 0,
  };
  #now = 0;
  #clock = 0;
  #partitionUntil = -1;
  #healed = false;
  /**
   * Liveness after the heal: 0 until a read completes; then a leadership
   * transfer is requested (1 while pending); 2 until a read completes under
   * the new leader; 3 when met.
   */
  #stage = 0;
  #stageStep = 0;
  #transferTerm = 0;
  #healRead = false;
  readonly #maxBytesPerMessage: number;
  readonly #checkQuorum: boolean;
  #pinned: { client: number; node: number; until: number } | undefined;

  constructor(options: SimOptions) {
    this.#o = {
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
    };
    this.#faults = new Set(this.#o.faults);
    this.#rand = simRandom(this.#o.seed);
    this.#net = new SimNetwork(simRandom(this.#o.seed ^ 0x5bd1e995));
    this.#voters = Array.from({ length: this.#o.nodes }, (_, i) => i + 1);
    for (const id of this.#voters) {
      const log = new MemoryLog();
      const spread = this.#o.leaseReads ? 0.16 : 0.5;
      const rate = this.#faults.has("skew")
        ? 1 - spread / 2 + this.#rand() * spread
        : 1;
      const n: SimNode = {
        id,
        alive: true,
        log,
        node: this.#newNode(id, log),
        sm: new KvStateMachine(),
        rate,
        phase: this.#rand(),
        restartAt: 0,
        lastSnapshot: 0,
        crashAt: -1,
      };
      this.#nodes.push(n);
    }
    for (let c = 1; c <= this.#o.clients; c++) {
      this.#clients.push({
        id: c,
        nextAt: 1 + c,
        count: 0,
        lastSeen: new Map(),
        preferred: 1 + ((c - 1) % this.#o.nodes),
      });
    }
    // Small messages split replication into many appends (pipelining).
    this.#maxBytesPerMessage = this.#rand() < 0.5 ? 256 : 1 << 20;
    // Check-quorum on or off (lease reads need it on).
    this.#checkQuorum = this.#o.leaseReads || this.#rand() < 0.5;
    if (this.#faults.has("drop")) this.#net.faults.drop = 0.05;
    if (this.#faults.has("duplicate")) this.#net.faults.duplicate = 0.03;
    if (this.#faults.has("reorder")) this.#net.faults.maxExtraDelay = 3;
  }

  #newNode(id: number, log: MemoryLog): RaftNode {
    return new RaftNode(
      {
        id,
        voters: this.#voters,
        electionTick: 10,
        heartbeatTick: 1,
        compactionLag: this.#faults.has("snapshot") ? 3 : 1000,
        maxInflightMessages: 16,
        maxBytesPerMessage: this.#maxBytesPerMessage,
        leaseReads: this.#o.leaseReads,
        checkQuorum: this.#checkQuorum,
      },
      log,
      simRandom(this.#o.seed * 31 + id * 7919 + this.#stats.crashes),
    );
  }

  #log(node: number, text: string): void {
    this.#trace.push(
      `[${String(this.#now).padStart(4)}] ${
        node > 0 ? `n${node}` : "--"
      } ${text}`,
    );
    if (this.#trace.length > this.#o.traceLines) this.#trace.shift();
  }

  #int(n: number): number {
    return Math.floor(this.#rand() * n);
  }

  run(): SimResult {
    let violation: SimViolation | undefined;
    let linearizability: CheckResult | undefined;
    const heal = this.#o.steps;
    // Both liveness stages may take `livenessSteps`; then in-flight calls drain.
    const end = heal + 2 * this.#o.livenessSteps + this.#o.opTimeout + 1;
    try {
      for (this.#now = 1; this.#now <= end; this.#now++) {
        if (this.#now === heal + 1) this.#heal();
        if (!this.#healed) this.#injectFaults();
        this.#step();
        if (this.#healed) this.#liveness();
        if (
          this.#stage === 3 && this.#clients.every((c) => c.call === undefined)
        ) break;
      }
      linearizability = checkHistory(this.#history, { timeBudgetMs: 5_000 });
      if (linearizability.verdict === "illegal") {
        violation = {
          invariant: "linearizability",
          detail: linearizability.illegal?.message ?? "not linearizable",
          step: this.#now,
        };
      }
    } catch (error) {
      if (!(error instanceof Stop)) throw error;
      violation = { ...error.violation, step: this.#now };
      this.#log(
        0,
        `VIOLATION ${error.violation.invariant}: ${error.violation.detail}`,
      );
    }
    return {
      seed: this.#o.seed,
      steps: this.#now,
      violation,
      history: this.#history,
      linearizability,
      trace: this.#trace.slice(),
      stats: {
        ...this.#stats,
        ...this.#net.stats,
        operations: this.#history.length,
      },
      replay: replayCommand(this.#o),
    };
  }

  /**
   * After the heal the cluster must serve a read (a leader that committed
   * an entry of its term), hand leadership over when asked, and serve a read
   * under the new leader, all within `livenessSteps`.
   */
  #liveness(): void {
    if (this.#stage === 3) return;
    const leader = this.#leader();
    if (this.#stage === 0 && this.#healRead) this.#stage = 1;
    if (this.#stage === 1 && leader) {
      const voters = leader.node.status().membership.voters.filter((v) =>
        v !== leader.id
      );
      if (voters.length === 0) this.#stage = 3;
      else {
        try {
          leader.node.transferLeadership(voters[this.#int(voters.length)]);
          this.#transferTerm = leader.node.status().term;
          this.#stage = 2;
          this.#stageStep = this.#now;
          this.#healRead = false;
          this.#log(leader.id, "liveness check: transfer leadership");
        } catch (error) {
          if (!(error instanceof RaftError)) throw error;
        }
      }
    }
    if (
      this.#stage === 2 && leader &&
      leader.node.status().term === this.#transferTerm &&
      leader.node.status().leadTransferee === 0 &&
      this.#now - this.#stageStep > 30
    ) {
      // The transfer was abandoned (it may be, after an election timeout): ask again.
      this.#stage = 1;
    }
    if (
      this.#stage === 2 && this.#healRead && leader &&
      leader.node.status().term > this.#transferTerm &&
      // Every pending proposal decided: the leader's whole log is committed.
      leader.node.status().commit === leader.log.lastIndex()
    ) {
      this.#stage = 3;
    }
    if (
      this.#stage !== 3 && this.#now > this.#stageDeadline()
    ) {
      const what = [
        "no read served",
        "no leader to transfer from",
        "no read served (or proposals left undecided) after a leadership transfer",
      ];
      throw new Stop({
        invariant: "liveness",
        detail:
          `${
            what[Math.min(this.#stage, 2)]
          } within ${this.#o.livenessSteps} steps after ` +
          `${
            this.#stage === 2
              ? "the transfer was requested"
              : "the faults healed"
          } (leaders: ${this.#leaders().map((n) => n.id).join(",") || "none"})`,
      });
    }
  }

  /** Before the transfer: `livenessSteps` after the heal; after it: `livenessSteps` after the transfer. */
  #stageDeadline(): number {
    return (this.#stage === 2 ? this.#stageStep : this.#o.steps) +
      this.#o.livenessSteps;
  }

  #leaders(): SimNode[] {
    return this.#nodes.filter((n) =>
      n.alive && n.node.status().role === "leader"
    );
  }

  #leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.#leaders()) {
      if (!best || n.node.status().term > best.node.status().term) best = n;
    }
    return best;
  }

  #heal(): void {
    this.#healed = true;
    this.#stageStep = this.#now;
    this.#net.heal();
    this.#net.faults = { drop: 0, duplicate: 0, maxExtraDelay: 0 };
    for (const n of this.#nodes) if (!n.alive) this.#restart(n);
    this.#log(
      0,
      "heal: partitions removed, crashed nodes restarted, drops stopped",
    );
  }

  #injectFaults(): void {
    const f = this.#faults;
    if (f.has("partition")) {
      if (this.#partitionUntil >= 0 && this.#now >= this.#partitionUntil) {
        this.#net.heal();
        this.#partitionUntil = -1;
        this.#log(0, "partition healed");
      } else if (this.#partitionUntil < 0 && this.#rand() < 0.02) {
        this.#partition();
      }
    }
    if (f.has("crash")) {
      for (const n of this.#nodes) {
        if (!n.alive && this.#now >= n.restartAt) this.#restart(n);
      }
      // Never more down at once than a majority can spare.
      const down = this.#nodes.filter((n) => !n.alive).length;
      const targeted = this.#nodes.find((n) =>
        n.alive && n.crashAt === this.#now
      );
      if (targeted) {
        targeted.crashAt = -1;
        if (down < Math.floor((this.#o.nodes - 1) / 2)) {
          this.#crash(targeted);
          return;
        }
      }
      if (down < Math.floor((this.#o.nodes - 1) / 2) && this.#rand() < 0.01) {
        const alive = this.#nodes.filter((n) => n.alive);
        this.#crash(alive[this.#int(alive.length)]);
      }
    }
    if (f.has("churn") && this.#rand() < 0.01) this.#churn();
    if (f.has("transfer") && this.#rand() < 0.01) {
      const leader = this.#leader();
      if (leader) {
        const voters = leader.node.status().membership.voters.filter((v) =>
          v !== leader.id
        );
        if (voters.length > 0) {
          const to = voters[this.#int(voters.length)];
          try {
            leader.node.transferLeadership(to);
            this.#stats.transfers++;
            this.#log(leader.id, `transfer leadership to n${to}`);
          } catch (error) {
            if (!(error instanceof RaftError)) throw error;
          }
        }
      }
    }
  }

  #partition(): void {
    const ids = this.#nodes.map((n) => n.id);
    const kind = this.#int(4);
    const leader = this.#leader();
    const block = (a: number, b: number) => this.#net.setLink(a, b, true);
    let text: string;
    if (kind === 0 || (kind === 2 && !leader)) {
      // Symmetric split into two groups.
      const shuffled = ids.slice().sort(() => this.#rand() - 0.5);
      const cut = 1 + this.#int(ids.length - 1);
      const left = shuffled.slice(0, cut);
      const right = shuffled.slice(cut);
      for (const a of left) for (const b of right) (block(a, b), block(b, a));
      text = `partition {${left.join(",")}} | {${right.join(",")}}`;
    } else if (kind === 1) {
      const a = ids[this.#int(ids.length)];
      const others = ids.filter((x) => x !== a);
      const b = others[this.#int(others.length)];
      block(a, b);
      text = `one-way partition n${a} -> n${b} blocked`;
    } else if (kind === 2 && leader) {
      for (const b of ids) {
        if (b !== leader.id) (block(leader.id, b), block(b, leader.id));
      }
      text = `leader n${leader.id} isolated`;
      // A reader on the wrong side: client 1 keeps reading from the old
      // leader while the others move on (stale reads show up here).
      this.#pinned = {
        client: 1,
        node: leader.id,
        until: this.#now + 20 + this.#int(60),
      };
    } else {
      // Bridge: two groups that only hear each other through one node.
      const bridge = ids[this.#int(ids.length)];
      const rest = ids.filter((x) => x !== bridge);
      const left = rest.filter((_, i) => i % 2 === 0);
      const right = rest.filter((_, i) => i % 2 === 1);
      for (const a of left) for (const b of right) (block(a, b), block(b, a));
      text = `bridge through n${bridge}: {${left.join(",")}} | {${
        right.join(",")
      }}`;
    }
    this.#partitionUntil = Math.max(
      this.#now + 20 + this.#int(60),
      this.#pinned?.until ?? 0,
    );
    this.#stats.partitions++;
    this.#log(0, text);
  }

  #crash(n: SimNode): void {
    n.alive = false;
    n.pending = undefined;
    n.log = n.log.crash();
    n.restartAt = this.#now + 5 + this.#int(40);
    this.#stats.crashes++;
    this.#log(n.id, `crash (durable last index ${n.log.lastIndex()})`);
  }

  #restart(n: SimNode): void {
    n.alive = true;
    n.pending = undefined;
    this.#inv.restarted(n.id);
    n.node = this.#newNode(n.id, n.log);
    n.sm = new KvStateMachine();
    n.sm.restore(n.log.snapshotData());
    n.lastSnapshot = n.log.snapshotMeta().index;
    this.#log(
      n.id,
      `restart (term ${n.log.hardState().term}, last index ${n.log.lastIndex()})`,
    );
  }

  #churn(again = false): void {
    const leader = this.#leader();
    if (!leader) return;
    const m = leader.node.status().membership;
    const all = this.#nodes.map((n) => n.id);
    const missing = all.filter((id) => !m.voters.includes(id));
    let change: MembershipChange;
    if (this.#rand() < 0.25) {
      // A joint change (§6): several voters swapped at once; the core
      // leaves the joint configuration by itself once it commits.
      const voters = all.filter(() => this.#rand() < 0.7);
      if (voters.length < 2) return;
      const learners = all.filter((id) =>
        !voters.includes(id) && this.#rand() < 0.5
      );
      change = { type: "enterJoint", voters, learners };
    } else if (missing.length > 0) {
      const id = missing[this.#int(missing.length)];
      change = m.learners.includes(id) || this.#rand() < 0.5
        ? { type: "addVoter", id }
        : { type: "addLearner", id };
    } else if (m.voters.length > 2) {
      change = { type: "removeNode", id: m.voters[this.#int(m.voters.length)] };
    } else return;
    try {
      leader.node.changeMembership(change);
      this.#stats.membershipChanges++;
      this.#log(
        leader.id,
        `membership change ${change.type} ${
          "id" in change
            ? `n${change.id}`
            : change.type === "enterJoint"
            ? `voters ${change.voters.join(",")} learners ${
              (change.learners ?? []).join(",")
            }`
            : ""
        }`,
      );
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      return;
    }
    // Impatient operators: sometimes a second change right away (the core
    // must refuse it while the first is in flight).
    if (!again && this.#rand() < 0.5) this.#churn(true);
  }

  #step(): void {
    for (const n of this.#nodes) {
      if (!n.alive) continue;
      n.phase += n.rate;
      while (n.phase >= 1) {
        n.phase -= 1;
        n.node.tick();
      }
    }
    for (const m of this.#net.deliverDue(this.#now)) {
      const n = this.#nodes[m.to - 1];
      if (n && n.alive) n.node.step(m);
    }
    for (const c of this.#clients) this.#client(c);
    for (const n of this.#nodes) if (n.alive) this.#drive(n);
    const views: NodeView[] = this.#nodes.map((n) => {
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
    const v = this.#inv.observe(views);
    if (v) throw new Stop(v);
  }

  #drive(n: SimNode): void {
    for (let round = 0; round < 4; round++) {
      if (n.pending) {
        if (n.pending.at > this.#now) return;
        this.#finish(n, n.pending.rd);
        continue;
      }
      if (!n.node.hasReady()) return;
      const rd = n.node.ready();
      if (rd.softState) {
        this.#log(
          n.id,
          `${rd.softState.role} (term ${n.node.status().term}, leader n${rd.softState.leader})`,
        );
        if (rd.softState.role === "leader") this.#stats.elections++;
      }
      for (const m of rd.messages) this.#net.send(m, this.#now);
      // A disk whose fsync takes a while: a crash meanwhile loses the batch.
      const delay = rd.mustSync && this.#faults.has("crash") ? this.#int(3) : 0;
      if (delay > 0) {
        n.pending = { rd, at: this.#now + delay };
        return;
      }
      this.#finish(n, rd);
    }
  }

  #finish(n: SimNode, rd: Ready): void {
    n.pending = undefined;
    if (rd.mustSync) n.log.syncNow();
    for (const m of rd.persistedMessages) {
      this.#net.send(m, this.#now);
      // Targeted fault: crash a voter right after it granted a vote, when a
      // lost vote would let it vote twice in one term.
      if (
        m.type === "RequestVoteResponse" && m.granted && !m.preVote &&
        this.#faults.has("crash") && !this.#healed && this.#rand() < 0.3
      ) n.crashAt = this.#now + 1;
    }
    if (rd.snapshot) {
      n.sm.restore(rd.snapshot.data);
      this.#log(n.id, `restored snapshot at index ${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      const v = this.#inv.applied(n.id, e);
      if (v) throw new Stop(v);
      if (e.kind !== "normal") continue;
      const result = n.sm.apply(e.data);
      if (result === undefined) continue;
      for (const c of this.#clients) {
        const call = c.call;
        if (!call || call.req !== result.req || call.node !== n.id) continue;
        call.op.status = "ok";
        call.op.returnTime = ++this.#clock;
        if (call.op.f === "cas") call.op.outcome = result.ok ? "ok" : "failed";
        if (call.op.f !== "cas" || result.ok) {
          this.#inv.acknowledged(e.index, e.term, `${call.op.f} ${call.req}`);
          c.lastSeen.set(
            call.op.key,
            call.op.f === "delete" ? null : call.op.value ?? null,
          );
        }
        c.call = undefined;
        this.#log(
          n.id,
          `ack ${call.req} ${call.op.f}(${call.op.key}) at index ${e.index} term ${e.term}`,
        );
      }
    }
    for (const rs of rd.readStates) {
      const ctx = decoder.decode(rs.context);
      for (const c of this.#clients) {
        const call = c.call;
        if (!call || call.req !== ctx || call.node !== n.id) continue;
        const value = n.sm.get(call.op.key);
        call.op.status = "ok";
        call.op.value = value;
        call.op.returnTime = ++this.#clock;
        c.lastSeen.set(call.op.key, value);
        c.call = undefined;
        if (this.#healed && call.invokedAt >= this.#stageStep) {
          this.#healRead = true;
        }
      }
    }
    n.node.advance(rd);
    if (this.#faults.has("snapshot")) {
      const applied = n.node.status().applied;
      if (applied - n.lastSnapshot >= 15) {
        n.node.snapshotTaken(applied, n.sm.snapshot());
        n.lastSnapshot = applied;
        this.#stats.snapshots++;
      }
    }
  }

  /** Picks the node to talk to next: the leader some node believes in, else any node. */
  #rediscover(c: Client): void {
    if (this.#isPinned(c)) return;
    const alive = this.#nodes.filter((n) => n.alive);
    if (alive.length === 0) return;
    const asked = alive[this.#int(alive.length)];
    const leader = asked.node.status().leader;
    c.preferred = leader > 0 && leader <= this.#nodes.length
      ? leader
      : asked.id;
  }

  #isPinned(c: Client): boolean {
    const p = this.#pinned;
    if (p === undefined || p.client !== c.id) return false;
    if (this.#now >= p.until || this.#healed) {
      this.#pinned = undefined;
      return false;
    }
    c.preferred = p.node;
    return true;
  }

  #client(c: Client): void {
    const call = c.call;
    if (call) {
      if (this.#now < call.deadline) return;
      // Timed out: the outcome is unknown.
      call.op.status = "info";
      c.call = undefined;
      this.#rediscover(c);
      c.nextAt = this.#now + 1 + this.#int(5);
      return;
    }
    if (this.#now < c.nextAt) return;
    if (this.#stage === 3) {
      return;
    }
    c.count++;
    const req = `c${c.id}-${c.count}`;
    const key = `k${this.#int(this.#o.keys)}`;
    const roll = this.#rand();
    // Client 1 mostly reads (a read-heavy client); the others mix.
    const reads = c.id === 1 ? 0.85 : 0.4;
    const f = this.#healed || this.#isPinned(c) || roll < reads
      ? "get"
      : roll < reads + (1 - reads) * 0.5
      ? "put"
      : roll < reads + (1 - reads) * 0.83
      ? "cas"
      : "delete";
    const op: KvOperation = {
      id: req,
      process: c.id,
      f,
      key,
      status: "info",
      invokeTime: ++this.#clock,
    };
    const value = `${req}`;
    if (f === "put" || f === "cas") op.value = value;
    if (f === "cas") op.expect = c.lastSeen.get(key) ?? null;
    this.#history.push(op);
    // Like a real client: it keeps using its cached node (which may be a
    // deposed leader that does not know it yet) until that fails it.
    const cached = this.#nodes[c.preferred - 1];
    const alive = this.#nodes.filter((n) => n.alive);
    const target = cached && cached.alive
      ? cached
      : alive.length > 0
      ? alive[this.#int(alive.length)]
      : undefined;
    const refuse = () => {
      op.status = "fail";
      op.returnTime = ++this.#clock;
      c.nextAt = this.#now + 1 + this.#int(3);
      this.#rediscover(c);
    };
    if (!target) return refuse();
    try {
      if (f === "get") target.node.readIndex(req);
      else {
        let command: KvCommand;
        if (f === "put") command = { op: "put", req, key, value };
        else if (f === "delete") command = { op: "delete", req, key };
        else {command = {
            op: "cas",
            req,
            key,
            expect: op.expect ?? null,
            value,
          };}
        target.node.propose(encodeKvCommand(command));
      }
    } catch (error) {
      if (!(error instanceof RaftError)) throw error;
      return refuse();
    }
    c.call = {
      op,
      node: target.id,
      req,
      deadline: this.#now + this.#o.opTimeout,
      invokedAt: this.#now,
    };
  }
}
