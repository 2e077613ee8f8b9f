/**
 * {@linkcode RaftServer}: the runtime around one {@linkcode RaftNode}. It owns
 * the node, its {@linkcode RaftLog}, a {@linkcode RaftTransport} and the
 * application's {@linkcode StateMachine}, and is the only place with timers
 * and Promises.
 *
 * The drive loop follows the core's driver protocol, one Ready at a time:
 *
 * 1. `rd = node.ready()`;
 * 2. send `rd.messages` at once (a leader's appends leave before its own
 *    fsync, §10.2.1 of the thesis);
 * 3. `await log.sync()` once for the whole batch when `rd.mustSync` — this
 *    is the group commit: every proposal made while the previous sync was
 *    running lands in this one;
 * 4. send `rd.persistedMessages` (votes, acknowledgements: they promise
 *    durability, so never before the sync);
 * 5. restore a received snapshot, apply `rd.committedEntries` in order
 *    (resolving each proposal's Promise with the state machine's result),
 *    then release the reads of `rd.readStates`;
 * 6. `node.advance(rd)`; take a snapshot when the policy says so.
 *
 * Ticks come from a timer; inbound messages, proposals and reads are fed to
 * the node as they arrive (the core allows that between `ready` and
 * `advance`) and wake the loop.
 *
 * @module
 */

import {
  LEASE_MARGIN_TICKS,
  type Membership,
  type MembershipChange,
  type Message,
  type NodeRole,
  ProposalDroppedError,
  RaftNode,
  type Ready,
} from "../core/mod.ts";
import type { Entry, RaftLog } from "../log/raft_log.ts";
import type {
  RaftTransport,
  TransportStats,
} from "../transport/raft_transport.ts";
import { StoppedError, TimeoutError } from "./errors.ts";
import { Histogram } from "./metrics.ts";
import type { SnapshotSource, StateMachine } from "./state_machine.ts";
import type {
  RaftServerOptions,
  ReadConsistency,
  ServerLogger,
  ServerMetrics,
  ServerStatus,
} from "./server_types.ts";

export type {
  RaftServerOptions,
  ReadConsistency,
  ServerLogger,
  ServerMetrics,
  ServerStatus,
} from "./server_types.ts";

interface PendingProposal<R> {
  term: number;
  startedAt: number;
  deadline: number;
  timeoutMs: number;
  resolve: (value: R) => void;
  reject: (error: Error) => void;
}

interface PendingRead {
  startedAt: number;
  /** `clock()` when the read began: a confirmed round vouches for leadership from then. */
  leaseStart: number;
  deadline: number;
  timeoutMs: number;
  consistency: ReadConsistency;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
}

interface AppliedWaiter {
  index: number;
  deadline: number;
  timeoutMs: number;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
}

/**
 * A running Raft node: timers, batching, persistence, apply loop and the
 * Promises of proposals and reads.
 *
 * @example
 * ```ts
 * import { MemoryLog, MemoryNetwork, RaftServer, type Entry, type Message } from "@raft-io/raft";
 * const net = new MemoryNetwork<Message>();
 * const server = await RaftServer.start({
 *   config: { id: 1 }, // a single-node cluster
 *   log: new MemoryLog(),
 *   transport: net.endpoint(1),
 *   stateMachine: {
 *     apply: (e: Entry) => new TextDecoder().decode(e.data).toUpperCase(),
 *     snapshot: () => new Uint8Array(0),
 *     restore: () => {},
 *   },
 *   tickMs: 10,
 * });
 * await server.waitForLeader();
 * console.log(await server.propose(new TextEncoder().encode("hello"))); // "HELLO"
 * await server.stop();
 * await net.close();
 * ```
 */
export class RaftServer<R = unknown> {
  /** This node's id. */
  readonly id: number;
  /** Milliseconds per tick. */
  readonly tickMs: number;

  private readonly node: RaftNode;
  private readonly log: RaftLog;
  private readonly transport: RaftTransport<Message>;
  private readonly sm: StateMachine<R>;
  private readonly electionTick: number;
  private readonly proposalTimeoutMs: number;
  private readonly readTimeoutMs: number;
  private readonly snapshotEntries: number;
  private readonly snapshotBytes: number;
  private readonly logger: ServerLogger;
  private readonly onMembershipChange: ((m: Membership) => void) | undefined;
  private readonly onFatal: ((error: Error) => void) | undefined;
  private readonly onRoleChange:
    | ((role: NodeRole, leaderId: number) => void)
    | undefined;

  private roleValue: NodeRole = "follower";
  private leaderValue = 0;
  private termValue = 0;
  private commitKnown = 0;
  private appliedIndex = 0;
  private lastSnapshotIndex = 0;
  private bytesSinceSnapshot = 0;
  private leaseConfirmedAt = -Infinity;
  private readonly clock: () => number;
  /** Lease reads need leader stickiness, which comes with check-quorum. */
  private readonly leaseAllowed: boolean;
  /** A term in which a leadership transfer started: no lease reads in it. */
  private noLeaseTerm = -1;

  private readonly proposals = new Map<number, PendingProposal<R>>();
  private readonly reads = new Map<string, PendingRead>();
  private appliedWaiters: AppliedWaiter[] = [];
  private readSeq = 0;
  /** `performance.now()` when the current batch of committed entries began to apply. */
  private settleNow = 0;

  private stopped = false;
  private stopping: Promise<void> | undefined;
  private failure: Error | undefined;
  private wakeLoop: (() => void) | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private leaderWaiters: { resolve: () => void; reject: (e: Error) => void }[] =
    [];

  private readonly m: ServerMetrics = {
    proposals: 0,
    proposalsCommitted: 0,
    proposalsFailed: 0,
    commitLatency: new Histogram(),
    fsyncLatency: new Histogram(),
    syncs: 0,
    bytesWritten: 0,
    entriesApplied: 0,
    elections: 0,
    leaderships: 0,
    snapshotsTaken: 0,
    snapshotsRestored: 0,
    reads: { linearizable: 0, lease: 0, stale: 0 },
    spoofedMessages: 0,
  };

  private constructor(options: RaftServerOptions<R>, node: RaftNode) {
    this.node = node;
    this.id = node.id;
    this.log = options.log;
    this.transport = options.transport;
    this.sm = options.stateMachine;
    this.tickMs = options.tickMs ?? 100;
    this.electionTick = options.config.electionTick ?? 10;
    this.proposalTimeoutMs = options.proposalTimeoutMs ?? 10_000;
    this.readTimeoutMs = options.readTimeoutMs ?? 10_000;
    this.snapshotEntries = options.snapshotEntries ?? 100_000;
    this.snapshotBytes = options.snapshotBytes ?? 64 * 1024 * 1024;
    const id = node.id;
    this.logger = options.logger ?? {
      info: (msg) => console.log(`[raft-io node ${id}] ${msg}`),
      warn: (msg) => console.warn(`[raft-io node ${id}] ${msg}`),
    };
    this.onMembershipChange = options.onMembershipChange;
    this.onRoleChange = options.onRoleChange;
    this.onFatal = options.onFatal;
    this.clock = options.clock ?? (() => performance.now());
    this.leaseAllowed = options.config.checkQuorum !== false;
    const st = node.status();
    this.termValue = st.term;
    this.commitKnown = st.commit;
    this.appliedIndex = st.applied;
    this.lastSnapshotIndex = options.log.snapshotMeta().index;
  }

  /**
   * Restores the state machine from the log's snapshot (if any), creates the
   * node and starts ticking and serving.
   */
  static async start<R>(options: RaftServerOptions<R>): Promise<RaftServer<R>> {
    const meta = options.log.snapshotMeta();
    if (meta.index > 0) {
      await options.stateMachine.restore(options.log.snapshotData());
    }
    const node = new RaftNode(
      { ...options.config, forwardProposals: false },
      options.log,
      options.random,
      { applied: meta.index },
    );
    const server = new RaftServer<R>(options, node);
    server.#begin();
    return server;
  }

  #begin(): void {
    this.transport.onMessage((m, from) => this.#onMessage(m, from));
    this.transport.onUnreachable?.((peer) => {
      if (!this.stopped) this.node.reportUnreachable(peer);
    });
    this.tickTimer = setInterval(() => this.#onTick(), this.tickMs);
    this.loopDone = this.#loop();
    this.#kick();
  }

  // ---------------------------------------------------------------- state

  /** This node's role as last reported by the core. */
  get role(): NodeRole {
    return this.roleValue;
  }

  /** The leader this node knows of (0: none). */
  get leaderId(): number {
    return this.leaderValue;
  }

  /** The node's current term as last reported. */
  get term(): number {
    return this.termValue;
  }

  /** Index of the last entry applied to the state machine. */
  get applied(): number {
    return this.appliedIndex;
  }

  /** Whether `stop()` was called (or the server failed). */
  get isStopped(): boolean {
    return this.stopped;
  }

  /** The core's status plus runtime facts. */
  status(): ServerStatus {
    return {
      ...this.node.status(),
      tickMs: this.tickMs,
      snapshotIndex: this.lastSnapshotIndex,
      pendingProposals: this.proposals.size,
      pendingReads: this.reads.size + this.appliedWaiters.length,
    };
  }

  /** The server's counters and histograms (live objects; do not modify). */
  metrics(): ServerMetrics {
    return this.m;
  }

  /** The transport's counters. */
  transportStats(): TransportStats {
    return this.transport.stats();
  }

  // ------------------------------------------------------------- requests

  /**
   * Proposes a command. Resolves with the state machine's result once the
   * entry is committed and applied on this node.
   *
   * Rejects with `NotLeaderError` (with `leaderId`) on a non-leader,
   * `OverloadedError` when the leader's uncommitted cap is reached,
   * `TimeoutError` after the deadline (outcome unknown),
   * `ProposalDroppedError` when a new leader overwrote the entry,
   * `StoppedError` when the server stops first.
   */
  propose(data: Uint8Array, options?: { timeoutMs?: number }): Promise<R> {
    if (this.stopped) return Promise.reject(this.failure ?? new StoppedError());
    if (data.byteLength === 0) {
      return Promise.reject(
        new TypeError(
          "a proposal needs at least one byte (empty entries are the leader's no-ops)",
        ),
      );
    }
    let index: number;
    try {
      index = this.node.propose(data);
    } catch (e) {
      this.m.proposalsFailed++;
      return Promise.reject(e);
    }
    this.m.proposals++;
    const timeoutMs = options?.timeoutMs ?? this.proposalTimeoutMs;
    const now = performance.now();
    const p = new Promise<R>((resolve, reject) => {
      this.proposals.set(index, {
        term: this.#currentTermFor(index),
        startedAt: now,
        deadline: now + timeoutMs,
        timeoutMs,
        resolve,
        reject,
      });
    });
    this.#kick();
    return p;
  }

  #currentTermFor(index: number): number {
    return this.log.termAt(index) ?? 0;
  }

  /**
   * Waits until it is safe to read the state machine with the given
   * consistency and resolves with the read index (the state machine has
   * applied at least that far).
   *
   * - `linearizable` (default): ReadIndex — the leader confirms it is still
   *   leader with a heartbeat round (a follower asks the leader), then waits
   *   until its state machine has applied the leader's commit index (§6.4).
   * - `lease`: on the leader, skips the heartbeat round while a round
   *   confirmed within the last `(electionTick - 2)` ticks vouches for its
   *   leadership (assumes clocks of the nodes run at similar rates, and
   *   check-quorum on, whose leader stickiness keeps voters from electing
   *   anyone else meanwhile); falls back to a ReadIndex round otherwise, on
   *   followers, and when check-quorum is off.
   * - `stale`: no check: whatever this node has applied.
   */
  read(
    options: { consistency?: ReadConsistency; timeoutMs?: number } = {},
  ): Promise<number> {
    if (this.stopped) return Promise.reject(this.failure ?? new StoppedError());
    const consistency = options.consistency ?? "linearizable";
    const timeoutMs = options.timeoutMs ?? this.readTimeoutMs;
    if (consistency === "stale") {
      this.m.reads.stale++;
      return Promise.resolve(this.appliedIndex);
    }
    const now = performance.now();
    const leaseNow = this.clock();
    if (
      consistency === "lease" && this.leaseAllowed &&
      this.roleValue === "leader" && this.termValue !== this.noLeaseTerm &&
      leaseNow <
        this.leaseConfirmedAt +
          (this.electionTick - LEASE_MARGIN_TICKS) * this.tickMs
    ) {
      this.m.reads.lease++;
      return this.waitApplied(this.commitKnown, timeoutMs);
    }
    const key = `${this.id}:${++this.readSeq}`;
    try {
      this.node.readIndex(key);
    } catch (e) {
      return Promise.reject(e);
    }
    const p = new Promise<number>((resolve, reject) => {
      this.reads.set(key, {
        startedAt: now,
        leaseStart: leaseNow,
        deadline: now + timeoutMs,
        timeoutMs,
        consistency,
        resolve,
        reject,
      });
    });
    this.#kick();
    return p;
  }

  /** Resolves once the state machine has applied `index` (or rejects after `timeoutMs`). */
  waitApplied(index: number, timeoutMs = this.readTimeoutMs): Promise<number> {
    if (this.appliedIndex >= index) return Promise.resolve(this.appliedIndex);
    if (this.stopped) return Promise.reject(this.failure ?? new StoppedError());
    return new Promise<number>((resolve, reject) => {
      this.appliedWaiters.push({
        index,
        deadline: performance.now() + timeoutMs,
        timeoutMs,
        resolve,
        reject,
      });
    });
  }

  /**
   * Proposes a membership change; resolves with its log index once the
   * configuration entry is committed and applied here.
   *
   * Rejects with the core's errors (`NotLeaderError`,
   * `ConfigChangeInProgressError`, `InvalidMembershipChangeError`, ...),
   * `TimeoutError` or `StoppedError`.
   */
  changeMembership(
    change: MembershipChange,
    options: { timeoutMs?: number } = {},
  ): Promise<number> {
    if (this.stopped) return Promise.reject(this.failure ?? new StoppedError());
    let index: number;
    try {
      index = this.node.changeMembership(change);
    } catch (e) {
      return Promise.reject(e);
    }
    const timeoutMs = options.timeoutMs ?? this.proposalTimeoutMs;
    const now = performance.now();
    const p = new Promise<R>((resolve, reject) => {
      this.proposals.set(index, {
        term: this.#currentTermFor(index),
        startedAt: now,
        deadline: now + timeoutMs,
        timeoutMs,
        resolve,
        reject,
      });
    });
    this.#kick();
    return p.then(() => index);
  }

  /**
   * Starts a leadership transfer to `to` (thesis §3.10). Returns at once;
   * watch `leaderId` (or `waitForLeader`) for the outcome.
   */
  transferLeadership(to: number): void {
    if (this.stopped) throw this.failure ?? new StoppedError();
    this.node.transferLeadership(to);
    // The target campaigns at once and voters waive stickiness for it (thesis
    // §3.10), so no lease is safe for the rest of this term.
    this.leaseConfirmedAt = -Infinity;
    this.noLeaseTerm = this.node.status().term;
    this.#kick();
  }

  /** Starts an election now (useful to bootstrap a cluster quickly in tests). */
  campaign(): void {
    if (this.stopped) throw this.failure ?? new StoppedError();
    this.node.campaign();
    this.#kick();
  }

  /** Resolves once this node knows a leader (bounded by `timeoutMs`). */
  waitForLeader(timeoutMs = 10_000): Promise<number> {
    if (this.leaderValue !== 0) return Promise.resolve(this.leaderValue);
    if (this.stopped) return Promise.reject(this.failure ?? new StoppedError());
    return new Promise<number>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      const waiter = {
        resolve: () => {
          clearTimeout(timer);
          resolve(this.leaderValue);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      timer = setTimeout(() => {
        this.leaderWaiters = this.leaderWaiters.filter((w) => w !== waiter);
        reject(new TimeoutError("waiting for a leader", timeoutMs));
      }, timeoutMs);
      this.leaderWaiters.push(waiter);
    });
  }

  /**
   * Stops ticking and serving, settles every pending Promise with
   * `StoppedError`, then closes the transport and the log. Idempotent.
   */
  stop(): Promise<void> {
    if (this.stopping === undefined) this.stopping = this.#shutdown();
    return this.stopping;
  }

  // ------------------------------------------------------------- internals

  async #shutdown(): Promise<void> {
    this.stopped = true;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.tickTimer = undefined;
    this.#kick();
    await this.loopDone;
    this.#failAll(this.failure ?? new StoppedError());
    try {
      await this.transport.close();
    } finally {
      await this.log.close();
    }
  }

  #failAll(error: Error): void {
    for (const p of this.proposals.values()) {
      this.m.proposalsFailed++;
      p.reject(error);
    }
    this.proposals.clear();
    for (const r of this.reads.values()) r.reject(error);
    this.reads.clear();
    for (const w of this.appliedWaiters) w.reject(error);
    this.appliedWaiters = [];
    for (const w of this.leaderWaiters) w.reject(error);
    this.leaderWaiters = [];
  }

  #kick(): void {
    const w = this.wakeLoop;
    if (w !== undefined) {
      this.wakeLoop = undefined;
      w();
    }
  }

  #onMessage(m: Message, from: number): void {
    if (this.stopped) return;
    if (m.from !== from || m.to !== this.id) {
      this.m.spoofedMessages++;
      return;
    }
    try {
      this.node.step(m);
    } catch (e) {
      this.logger.warn(
        `dropped a ${m.type} from node ${from}: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
      return;
    }
    this.#kick();
  }

  #onTick(): void {
    if (this.stopped) return;
    this.node.tick();
    this.#expire(performance.now());
    this.#kick();
  }

  /** Rejects every request past its deadline. */
  #expire(now: number): void {
    for (const [index, p] of this.proposals) {
      if (p.deadline <= now) {
        this.proposals.delete(index);
        this.m.proposalsFailed++;
        p.reject(
          new TimeoutError("proposal", p.timeoutMs, `log index ${index}`),
        );
      }
    }
    for (const [key, r] of this.reads) {
      if (r.deadline <= now) {
        this.reads.delete(key);
        r.reject(
          new TimeoutError(
            "read",
            r.timeoutMs,
            this.leaderValue === 0 ? "no leader known" : undefined,
          ),
        );
      }
    }
    if (this.appliedWaiters.length > 0) {
      const keep: AppliedWaiter[] = [];
      for (const w of this.appliedWaiters) {
        if (w.deadline <= now) w.reject(new TimeoutError("read", w.timeoutMs));
        else keep.push(w);
      }
      this.appliedWaiters = keep;
    }
  }

  async #loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.node.hasReady()) {
        await new Promise<void>((resolve) => (this.wakeLoop = resolve));
        continue;
      }
      try {
        await this.#handleReady(this.node.ready());
      } catch (e) {
        // Storage or state machine failure: continuing could break safety.
        const error = e instanceof Error ? e : new Error(String(e));
        this.logger.warn(`fatal: ${error.message}; stopping the server`);
        this.failure = new StoppedError(`failed: ${error.message}`);
        this.stopped = true;
        if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
        this.tickTimer = undefined;
        this.#failAll(this.failure);
        try {
          this.onFatal?.(error);
        } catch {
          // a failing callback changes nothing: the server is stopped
        }
        return;
      }
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) {
      this.#onSoftState(rd.softState.role, rd.softState.leader);
    }
    if (rd.hardState !== undefined) {
      if (rd.hardState.term !== this.termValue) {
        this.termValue = rd.hardState.term;
        this.leaseConfirmedAt = -Infinity;
      }
      this.commitKnown = rd.hardState.commit;
    }
    for (const msg of rd.messages) this.transport.send(msg.to, msg);
    // The sync runs while committed entries are applied: they are already
    // durable on a quorum (and, on the leader, locally: it counts itself
    // only for what it persisted), so the state machine need not wait for
    // this batch's new entries to reach the disk.
    let sync: Promise<void> | undefined;
    const t0 = performance.now();
    if (rd.mustSync) {
      sync = this.log.sync();
      sync.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    }
    if (rd.membership !== undefined && this.onMembershipChange !== undefined) {
      try {
        this.onMembershipChange(rd.membership);
      } catch (e) {
        this.logger.warn(
          `onMembershipChange threw: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      }
    }
    if (rd.snapshot !== undefined) {
      await this.#restoreSnapshot(rd.snapshot.meta.index, rd.snapshot.data);
    }
    // One clock reading per batch for the commit latencies of its entries.
    this.settleNow = performance.now();
    for (const entry of rd.committedEntries) {
      const pending = this.#applyEntry(entry);
      if (pending !== undefined) {
        await pending;
        this.settleNow = performance.now();
      }
    }
    if (sync !== undefined) {
      await sync;
      this.m.fsyncLatency.observe(performance.now() - t0);
      this.m.syncs++;
      for (const e of rd.entries) this.m.bytesWritten += e.data.byteLength + 24;
    }
    // Votes and acknowledgements promise durability: only after the sync.
    for (const msg of rd.persistedMessages) this.transport.send(msg.to, msg);
    this.#releaseReads(rd);
    this.#releaseAppliedWaiters();
    this.node.advance(rd);
    if (this.#snapshotDue()) await this.#takeSnapshot();
  }

  #onSoftState(role: NodeRole, leader: number): void {
    const was = this.roleValue;
    this.roleValue = role;
    const leaderChanged = leader !== this.leaderValue;
    this.leaderValue = leader;
    if (role === "candidate" && was !== "candidate") this.m.elections++;
    if (role === "leader" && was !== "leader") {
      this.m.leaderships++;
      this.logger.info(`became leader in term ${this.node.status().term}`);
    }
    if (role !== "leader") this.leaseConfirmedAt = -Infinity;
    if (leaderChanged && leader !== 0) {
      const waiters = this.leaderWaiters;
      this.leaderWaiters = [];
      for (const w of waiters) w.resolve();
    }
    if (this.onRoleChange !== undefined) {
      try {
        this.onRoleChange(role, leader);
      } catch (e) {
        this.logger.warn(
          `onRoleChange threw: ${e instanceof Error ? e.message : String(e)}`,
        );
      }
    }
  }

  async #restoreSnapshot(
    index: number,
    data: Uint8Array,
  ): Promise<void> {
    await this.sm.restore(data);
    this.appliedIndex = index;
    this.lastSnapshotIndex = index;
    this.bytesSinceSnapshot = 0;
    this.m.snapshotsRestored++;
    this.logger.info(`restored a snapshot from the leader at index ${index}`);
    // Proposals at or below the snapshot: their fate is not visible here.
    for (const [i, p] of this.proposals) {
      if (i <= index) {
        this.proposals.delete(i);
        this.m.proposalsFailed++;
        p.reject(
          new TimeoutError(
            "proposal",
            p.timeoutMs,
            "superseded by a snapshot: outcome unknown",
          ),
        );
      }
    }
  }

  /** Applies one entry; returns a Promise only when the state machine did. */
  #applyEntry(entry: Entry): Promise<void> | undefined {
    if (entry.kind === "normal" && entry.data.byteLength > 0) {
      const out = this.sm.apply(entry);
      this.m.entriesApplied++;
      this.bytesSinceSnapshot += entry.data.byteLength;
      if (out instanceof Promise) {
        return out.then((r) => this.#settle(entry, r));
      }
      this.#settle(entry, out);
      return undefined;
    }
    this.#settle(entry, undefined);
    return undefined;
  }

  /** Marks `entry` applied and settles the proposal waiting for it. */
  #settle(entry: Entry, result: R | undefined): void {
    this.appliedIndex = entry.index;
    const p = this.proposals.get(entry.index);
    if (p === undefined) return;
    this.proposals.delete(entry.index);
    if (p.term === entry.term) {
      this.m.proposalsCommitted++;
      this.m.commitLatency.observe(this.settleNow - p.startedAt);
      p.resolve(result as R);
    } else {
      this.m.proposalsFailed++;
      p.reject(
        new ProposalDroppedError(
          `log index ${entry.index} was taken by an entry of term ${entry.term}`,
        ),
      );
    }
  }

  #releaseReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      const key = new TextDecoder().decode(rs.context);
      const r = this.reads.get(key);
      if (r === undefined) continue;
      this.reads.delete(key);
      if (
        this.roleValue === "leader" && this.termValue !== this.noLeaseTerm &&
        r.leaseStart > this.leaseConfirmedAt
      ) {
        this.leaseConfirmedAt = r.leaseStart;
      }
      this.m.reads[r.consistency]++;
      if (this.appliedIndex >= rs.index) {
        r.resolve(rs.index);
      } else {
        const { resolve, reject } = r;
        this.appliedWaiters.push({
          index: rs.index,
          deadline: r.deadline,
          timeoutMs: r.timeoutMs,
          resolve,
          reject,
        });
      }
    }
  }

  #releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const keep: AppliedWaiter[] = [];
    for (const w of this.appliedWaiters) {
      if (w.index <= this.appliedIndex) w.resolve(w.index);
      else keep.push(w);
    }
    this.appliedWaiters = keep;
  }

  #snapshotDue(): boolean {
    if (this.appliedIndex <= this.lastSnapshotIndex) return false;
    return (this.snapshotEntries > 0 &&
      this.appliedIndex - this.lastSnapshotIndex >= this.snapshotEntries) ||
      (this.snapshotBytes > 0 && this.bytesSinceSnapshot >= this.snapshotBytes);
  }

  async #takeSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    const data = await readSnapshot(await this.sm.snapshot());
    this.node.snapshotTaken(index, data);
    this.lastSnapshotIndex = index;
    this.bytesSinceSnapshot = 0;
    this.m.snapshotsTaken++;
  }
}

/** The bytes of a snapshot source (interim: whole; streaming comes with the log's chunked snapshots). */
async function readSnapshot(source: SnapshotSource): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of source.chunks()) {
      parts.push(chunk);
      size += chunk.byteLength;
    }
  } finally {
    source.release?.();
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
