/**
 * Raft's safety properties (Figure 3 of the Raft paper, plus two the
 * simulator adds) checked over a cluster's observable state after every
 * simulation step.
 *
 * @module
 */

/** Names of the invariants {@linkcode InvariantChecker} enforces. */
export type InvariantName =
  | "election-safety"
  | "leader-append-only"
  | "log-matching"
  | "leader-completeness"
  | "state-machine-safety"
  | "commit-monotonic"
  | "acknowledged-write-lost"
  | "single-config-change"
  | "commit-current-term"
  | "removed-leader-steps-down"
  | "liveness"
  | "linearizability"
  | "apply-beyond-commit"
  | "sync-failure-ignored"
  | "corruption-served"
  | "promise-hang"
  | "replicas-disagree"
  | "definite-failure-applied"
  | "stale-read"
  | "duplicate-apply";

/** A broken invariant and what broke it. */
export interface Violation {
  /** Which invariant. */
  invariant: InvariantName;
  /** What was observed, readably. */
  detail: string;
}

/** The parts of a log the checker reads; every `RaftLog` has them. */
export interface LogView {
  /** Index of the last entry. */
  lastIndex(): number;
  /** Term of the entry at `index`, undefined when not held. */
  termAt(index: number): number | undefined;
  /** The entry at `index`, undefined when not held. */
  entry(index: number): { data: Uint8Array; kind?: string } | undefined;
  /** The latest snapshot's index. */
  snapshotMeta(): { index: number };
}

/** An entry as applied by a node. */
export interface AppliedEntry {
  /** Log index. */
  index: number;
  /** Term of the entry. */
  term: number;
  /** The entry's bytes. */
  data: Uint8Array;
}

/** What the checker sees of one node after a step. */
export interface NodeView {
  /** Node id. */
  id: number;
  /** False while crashed. */
  alive: boolean;
  /** Role as the node reports it. */
  role: string;
  /** Current term. */
  term: number;
  /** Commit index. */
  commit: number;
  /** The node's log (read only). */
  log: LogView;
  /**
   * Whether the node is a voter (incoming or outgoing) of the configuration
   * it currently uses. Omitted: assumed a voter.
   */
  isVoter?: boolean;
}

/** How far back Log Matching compares two logs each step. */
const MATCH_WINDOW = 64;

/**
 * Observations (steps) a leader may keep leading once the configuration
 * that removed it is committed (it should step down at once).
 */
const REMOVED_LEADER_GRACE = 60;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Accumulates what the cluster has done and reports the first safety
 * violation.
 *
 * @example
 * ```ts
 * import { InvariantChecker } from "@raft-io/raft/testing";
 * const checker = new InvariantChecker();
 * checker.observe([]); // undefined: nothing to object to
 * ```
 */
export class InvariantChecker {
  /** term → the leader seen in it. */
  #leaders = new Map<number, number>();
  /** node id → what it held while leader of a term. */
  #leaderLogs = new Map<
    number,
    { term: number; lastIndex: number; lastTerm: number }
  >();
  #commits = new Map<number, number>();
  /** The highest commit index any node has reported. */
  #globalCommit = 0;
  /** node id → consecutive observations as a leader outside its configuration. */
  #removedLeading = new Map<number, number>();
  /** index → the entry first applied there by any node. */
  #applied = new Map<
    number,
    { term: number; data: Uint8Array; node: number }
  >();
  /** index → term of writes a client saw acknowledged. */
  #acked = new Map<number, { term: number; what: string }>();

  /** Forgets a node's volatile history: it crashed and restarts from its durable state. */
  restarted(id: number): void {
    this.#commits.delete(id);
    this.#leaderLogs.delete(id);
  }

  /** Records that `node` applied `entry`; reports State Machine Safety violations. */
  applied(node: number, entry: AppliedEntry): Violation | undefined {
    const first = this.#applied.get(entry.index);
    if (first === undefined) {
      this.#applied.set(entry.index, {
        term: entry.term,
        data: entry.data,
        node,
      });
      return undefined;
    }
    if (first.term !== entry.term || !sameBytes(first.data, entry.data)) {
      return {
        invariant: "state-machine-safety",
        detail:
          `node ${node} applied term ${entry.term} at index ${entry.index}, ` +
          `node ${first.node} applied term ${first.term} there`,
      };
    }
    return undefined;
  }

  /** Records a write the client saw acknowledged, at `index` in `term`. */
  acknowledged(index: number, term: number, what: string): void {
    this.#acked.set(index, { term, what });
  }

  /** Checks everything after a step. */
  observe(nodes: readonly NodeView[]): Violation | undefined {
    for (const n of nodes) {
      if (!n.alive) continue;
      const v = this.#electionSafety(n) ?? this.#appendOnly(n) ??
        this.#commitMonotonic(n) ?? this.#removedLeader(n);
      if (v) return v;
    }
    for (const n of nodes) {
      if (n.alive && n.commit > this.#globalCommit) {
        this.#globalCommit = n.commit;
      }
    }
    for (const n of nodes) {
      const v = n.alive && n.role === "leader"
        ? this.#singleConfigChange(n)
        : undefined;
      if (v) return v;
    }
    return this.#logMatching(nodes) ?? this.#ackedWrites(nodes);
  }

  /** A leader removed from the configuration steps down (§6 of the paper, thesis §4.2.2). */
  #removedLeader(n: NodeView): Violation | undefined {
    if (
      n.role !== "leader" || n.isVoter !== false || !this.#configCommitted(n)
    ) {
      this.#removedLeading.delete(n.id);
      return undefined;
    }
    const count = (this.#removedLeading.get(n.id) ?? 0) + 1;
    this.#removedLeading.set(n.id, count);
    if (count > REMOVED_LEADER_GRACE) {
      return {
        invariant: "removed-leader-steps-down",
        detail:
          `node ${n.id} has led term ${n.term} for ${count} steps outside its configuration`,
      };
    }
    return undefined;
  }

  /** Whether the latest configuration entry in the node's log is committed (by its own commit index). */
  #configCommitted(n: NodeView): boolean {
    const floor = n.log.snapshotMeta().index;
    for (let i = n.log.lastIndex(); i > floor; i--) {
      if (n.log.entry(i)?.kind === "config") return n.commit >= i;
    }
    return true;
  }

  /**
   * One membership change in flight at a time (thesis §4.1): a leader's log
   * holds at most one configuration entry past the highest committed index.
   */
  #singleConfigChange(n: NodeView): Violation | undefined {
    const from = Math.max(
      this.#globalCommit + 1,
      n.log.snapshotMeta().index + 1,
    );
    let found = 0;
    for (let i = from; i <= n.log.lastIndex(); i++) {
      if (n.log.entry(i)?.kind !== "config") continue;
      if (++found > 1) {
        return {
          invariant: "single-config-change",
          detail:
            `leader ${n.id} (term ${n.term}) has two uncommitted configuration entries ` +
            `above commit ${this.#globalCommit} (the second at index ${i})`,
        };
      }
    }
    return undefined;
  }

  #electionSafety(n: NodeView): Violation | undefined {
    if (n.role !== "leader") return undefined;
    const seen = this.#leaders.get(n.term);
    if (seen === undefined) {
      this.#leaders.set(n.term, n.id);
      return this.#leaderCompleteness(n);
    }
    if (seen !== n.id) {
      return {
        invariant: "election-safety",
        detail: `nodes ${seen} and ${n.id} were both leader in term ${n.term}`,
      };
    }
    return undefined;
  }

  /** A new leader holds every entry applied anywhere (§5.4.3). */
  #leaderCompleteness(n: NodeView): Violation | undefined {
    const snap = n.log.snapshotMeta().index;
    for (const [index, e] of this.#applied) {
      if (index <= snap) continue;
      const term = n.log.termAt(index);
      if (term !== e.term) {
        return {
          invariant: "leader-completeness",
          detail:
            `node ${n.id} became leader of term ${n.term} without committed entry ` +
            `${index} (term ${e.term}; it has ${term ?? "nothing"})`,
        };
      }
    }
    return undefined;
  }

  #appendOnly(n: NodeView): Violation | undefined {
    if (n.role !== "leader") {
      this.#leaderLogs.delete(n.id);
      return undefined;
    }
    const prev = this.#leaderLogs.get(n.id);
    // §5.4.2: a leader commits by counting replicas only entries of its own
    // term, so while it leads, its commit index advances onto such entries.
    const prevCommit = this.#commits.get(n.id) ?? 0;
    if (prev !== undefined && prev.term === n.term && n.commit > prevCommit) {
      const t = n.log.termAt(n.commit);
      if (t !== undefined && t !== n.term) {
        return {
          invariant: "commit-current-term",
          detail:
            `leader ${n.id} of term ${n.term} advanced its commit index to ${n.commit}, ` +
            `an entry of term ${t}`,
        };
      }
    }
    const lastIndex = n.log.lastIndex();
    const now = {
      term: n.term,
      lastIndex,
      lastTerm: n.log.termAt(lastIndex) ?? 0,
    };
    this.#leaderLogs.set(n.id, now);
    if (prev === undefined || prev.term !== n.term) return undefined;
    const at = n.log.termAt(prev.lastIndex);
    if (
      lastIndex < prev.lastIndex || (at !== undefined && at !== prev.lastTerm)
    ) {
      return {
        invariant: "leader-append-only",
        detail:
          `leader ${n.id} of term ${n.term} had index ${prev.lastIndex} (term ${prev.lastTerm}); ` +
          `now last index ${lastIndex}, term there ${at ?? "none"}`,
      };
    }
    return undefined;
  }

  #commitMonotonic(n: NodeView): Violation | undefined {
    const prev = this.#commits.get(n.id) ?? 0;
    this.#commits.set(n.id, Math.max(prev, n.commit));
    if (n.commit < prev) {
      return {
        invariant: "commit-monotonic",
        detail: `node ${n.id} commit index went from ${prev} to ${n.commit}`,
      };
    }
    return undefined;
  }

  /** Same index and term ⇒ same entry and same term just before (so, inductively, same prefix). */
  #logMatching(nodes: readonly NodeView[]): Violation | undefined {
    for (let a = 0; a < nodes.length; a++) {
      for (let b = a + 1; b < nodes.length; b++) {
        const x = nodes[a].log;
        const y = nodes[b].log;
        const top = Math.min(x.lastIndex(), y.lastIndex());
        const bottom = Math.max(
          top - MATCH_WINDOW,
          x.snapshotMeta().index + 1,
          y.snapshotMeta().index + 1,
        );
        for (let i = top; i >= bottom; i--) {
          const t = x.termAt(i);
          if (t === undefined || t !== y.termAt(i)) continue;
          const ex = x.entry(i);
          const ey = y.entry(i);
          const prevDiffers = i - 1 >= bottom &&
            x.termAt(i - 1) !== y.termAt(i - 1);
          if ((ex && ey && !sameBytes(ex.data, ey.data)) || prevDiffers) {
            return {
              invariant: "log-matching",
              detail:
                `nodes ${nodes[a].id} and ${
                  nodes[b].id
                } agree on term ${t} at index ${i} ` +
                `but differ ${
                  prevDiffers ? `at index ${i - 1}` : "in the entry"
                }`,
            };
          }
        }
      }
    }
    return undefined;
  }

  #ackedWrites(nodes: readonly NodeView[]): Violation | undefined {
    for (const n of nodes) {
      if (!n.alive || n.role !== "leader") continue;
      const snap = n.log.snapshotMeta().index;
      for (const [index, w] of this.#acked) {
        // Leaders of later terms must hold it (§5.4); a stale leader of an
        // older term, cut off before the write, need not.
        if (index <= snap || n.term <= w.term) continue;
        const term = n.log.termAt(index);
        if (term !== w.term) {
          return {
            invariant: "acknowledged-write-lost",
            detail:
              `leader ${n.id} (term ${n.term}) lacks acknowledged ${w.what} at index ${index}`,
          };
        }
      }
    }
    return undefined;
  }
}
