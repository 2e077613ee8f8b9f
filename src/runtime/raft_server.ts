/**
 * {@linkcode RaftServer}: the runtime around one {@linkcode RaftNode}. It owns
 * the node, its {@linkcode RaftLog}, a {@linkcode RaftTransport} and the
 * application's {@linkcode StateMachine}, and is the only place with timers
 * and Promises. All time comes from one injected {@linkcode Scheduler}.
 *
 * The drive loop follows the core's driver protocol, one Ready at a time:
 *
 * 1. `rd = node.ready()`;
 * 2. send `rd.messages` at once (a leader's appends leave before its own
 *    fsync, §10.2.1 of the thesis);
 * 3. start `log.sync()` once for the whole batch when `rd.mustSync` — the
 *    group commit: every proposal made while the previous sync was running
 *    lands in this one;
 * 4. restore a received snapshot, apply `rd.committedEntries` in order
 *    (they are durable on a quorum already) while the sync runs, settling
 *    each proposal's Promise with the state machine's result or rejection;
 * 5. await the sync, then send `rd.persistedMessages` (votes,
 *    acknowledgements: they promise durability, so never before it);
 * 6. release the reads of `rd.readStates`; `node.advance(rd)`.
 *
 * Between Readies the loop starts a snapshot when the core hints one
 * (`rd.snapshotHint`, the one snapshot policy) or the application asks
 * (`takeSnapshot`); the state machine's view is serialized off the loop.
 *
 * @module
 */

import {
  ConfigChangeInProgressError,
  InvalidMembershipChangeError,
  InvalidTransferTargetError,
  type MemberInfo,
  type Membership,
  type MembershipChange,
  type Message,
  type NodeRole,
  NotLeaderError,
  ProposalDroppedError,
  RaftNode,
  type Ready,
} from "../core/mod.ts";
import type { Entry, RaftLog } from "../log/raft_log.ts";
import type { Logger } from "../logger.ts";
import type {
  RaftTransport,
  TransportStats,
} from "../transport/raft_transport.ts";
import {
  ApplyError,
  CatchUpTimeoutError,
  InvalidProposalError,
  SnapshotFailedError,
  StartFailedError,
  StateMachineFatalError,
  StoppedError,
  TimeoutError,
  TransferAbandonedError,
} from "./errors.ts";
import { Histogram } from "./metrics.ts";
import type { Scheduler } from "./scheduler.ts";
import { ServerEvents } from "./server_events.ts";
import {
  positiveMs,
  type ResolvedServerOptions,
  resolveServerOptions,
} from "./server_options.ts";
import { readSnapshotSource } from "./snapshot_reader.ts";
import type { StateMachine } from "./state_machine.ts";
import type {
  AddVoterOptions,
  MemberOptions,
  RaftServerOptions,
  ReadConsistency,
  ReadOptions,
  RequestOptions,
  ServerEventListener,
  ServerEventMap,
  ServerMetrics,
  ServerStatus,
  WaitForLeaderOptions,
} from "./server_types.ts";

interface PendingProposal<R> {
  /**
   * An older proposal at the same index, from an earlier term: its entry
   * was overwritten in this log before it was applied, and it is settled
   * when that index is applied (then it is known not to have committed).
   */
  older: PendingProposal<R> | undefined;
  term: number;
  startedAt: number;
  deadline: number;
  timeoutMs: number;
  resolve: (value: R) => void;
  reject: (error: Error) => void;
}

interface PendingRead {
  deadline: number;
  timeoutMs: number;
  consistency: ReadConsistency;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
}

interface Waiter {
  /** Checked after every batch and tick; true settles the waiter. */
  done: () => boolean;
  deadline: number;
  resolve: () => void;
  reject: (error: Error) => void;
  /** The error when the deadline passes. */
  expired: () => Error;
}

interface PendingTransfer {
  target: number;
  deadline: number;
  resolve: (leader: number) => void;
  reject: (error: Error) => void;
}

interface SnapshotDemand {
  /** The applied index when `takeSnapshot` was called: a snapshot must cover it. */
  minIndex: number;
  resolve: (index: number) => void;
  reject: (error: Error) => void;
}

const decoder = new TextDecoder();

/**
 * A running Raft node: timers, batching, persistence, apply loop and the
 * Promises of proposals and reads.
 *
 * Every method that returns a Promise settles: with its result, a typed
 * error, a `TimeoutError` at its deadline, or `StoppedError` (at once after
 * `stop()`).
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

  readonly #node: RaftNode;
  readonly #log: RaftLog;
  readonly #transport: RaftTransport<Message>;
  readonly #sm: StateMachine<R>;
  readonly #o: ResolvedServerOptions;
  readonly #logger: Logger;
  readonly #sched: Scheduler;
  readonly #events: ServerEvents;

  #role: NodeRole = "follower";
  #leader = 0;
  #term = 0;
  #commit = 0;
  #applied = 0;
  #snapshotIndex = 0;
  #leaderReady = false;
  #removed = false;

  readonly #proposals = new Map<number, PendingProposal<R>>();
  readonly #reads = new Map<string, PendingRead>();
  #waiters: Waiter[] = [];
  #transfer: PendingTransfer | undefined;
  #readSeq = 0;
  /** `now()` when the current batch of committed entries began to apply. */
  #settleNow = 0;

  // Snapshots: one at a time, started between two Readies.
  #snapshotWanted = false;
  #snapshotRetryAt = 0;
  #snapshotTask: Promise<void> | undefined;
  #snapshotDemands: SnapshotDemand[] = [];

  #stopped = false;
  #stopping: Promise<void> | undefined;
  #failure: Error | undefined;
  #wakeLoop: (() => void) | undefined;
  #loopDone: Promise<void> = Promise.resolve();
  #cancelTick: (() => void) | undefined;

  readonly #m: ServerMetrics = {
    proposals: 0,
    proposalsCommitted: 0,
    proposalsFailed: 0,
    commitLatency: new Histogram(),
    fsyncLatency: new Histogram(),
    syncs: 0,
    bytesWritten: 0,
    entriesApplied: 0,
    applyRejected: 0,
    elections: 0,
    leaderships: 0,
    snapshotsTaken: 0,
    snapshotsFailed: 0,
    snapshotsRestored: 0,
    reads: { linearizable: 0, lease: 0, stale: 0 },
    spoofedMessages: 0,
  };

  private constructor(
    options: RaftServerOptions<R>,
    resolved: ResolvedServerOptions,
    node: RaftNode,
  ) {
    this.#node = node;
    this.id = node.id;
    this.#log = options.log;
    this.#transport = options.transport;
    this.#sm = options.stateMachine;
    this.#o = resolved;
    this.tickMs = resolved.tickMs;
    this.#logger = resolved.logger;
    this.#sched = resolved.scheduler;
    this.#events = new ServerEvents(resolved.logger);
    const st = node.status();
    this.#term = st.term;
    this.#commit = st.commit;
    this.#applied = st.applied;
    this.#snapshotIndex = options.log.snapshotMeta().index;
  }

  /**
   * Validates the options, restores the state machine from the log's
   * snapshot (if any), starts ticking and serving, and resolves once the
   * state machine has re-applied every entry this node knew to be committed
   * (so a restarted node answers reads from a caught-up state).
   *
   * Rejects with `InvalidConfigError` for bad options (nothing is closed
   * then), and with `StartFailedError` (its `cause`: a
   * `StateMachineFatalError`, a storage error, ...) when restoring the
   * snapshot or re-applying the log fails: the log and the transport are
   * closed in that case.
   */
  static async start<R>(options: RaftServerOptions<R>): Promise<RaftServer<R>> {
    const resolved = resolveServerOptions(options);
    const log = options.log;
    const meta = log.snapshotMeta();
    let server: RaftServer<R>;
    try {
      if (meta.index > 0) {
        try {
          await options.stateMachine.restore(log.snapshotData());
        } catch (e) {
          throw new StartFailedError("restore", e);
        }
      }
      // A repaired log (WalLog.repair) must catch up before it votes.
      const catchUp = log.needsCatchUp;
      const node = new RaftNode(
        resolved.config,
        log,
        options.random,
        { applied: meta.index, catchUp },
      );
      if (catchUp !== undefined) {
        resolved.logger.warn(
          `the log was repaired and may have lost acknowledged entries up to index ${catchUp.index} (term ${catchUp.term}): this node grants no vote and does not campaign until it has caught up from a leader`,
        );
      }
      server = new RaftServer<R>(options, resolved, node);
    } catch (e) {
      await closeQuietly(options.transport, log);
      throw e;
    }
    server.#begin();
    const replayTo = Math.min(log.hardState().commit, log.lastIndex());
    try {
      await server.#until(
        () => server.#applied >= replayTo,
        Infinity,
        () => new TimeoutError("replay", Infinity),
      );
    } catch (e) {
      await server.stop().catch(() => {});
      throw new StartFailedError("replay", server.#failure?.cause ?? e);
    }
    return server;
  }

  #begin(): void {
    this.#transport.onMessage((m, from) => this.#onMessage(m, from));
    this.#transport.onUnreachable?.((peer) => {
      if (!this.#stopped) this.#node.reportUnreachable(peer);
    });
    this.#learnAddresses(this.#node.status().membership);
    this.#cancelTick = this.#sched.every(this.tickMs, () => this.#onTick());
    this.#loopDone = this.#loop();
    this.#kick();
  }

  // ---------------------------------------------------------------- state

  /** This node's role as last reported by the core. */
  get role(): NodeRole {
    return this.#role;
  }

  /** The leader this node knows of (0: none). */
  get leaderId(): number {
    return this.#leader;
  }

  /** The node's current term as last reported. */
  get term(): number {
    return this.#term;
  }

  /** Index of the last entry applied to the state machine (`lastApplied`). */
  get applied(): number {
    return this.#applied;
  }

  /** Whether `stop()` was called (or the server failed). */
  get isStopped(): boolean {
    return this.#stopped;
  }

  /** Whether this node learned that it is no longer a member. */
  get isRemoved(): boolean {
    return this.#removed;
  }

  /** The core's status plus runtime facts. */
  status(): ServerStatus {
    return {
      ...this.#node.status(),
      tickMs: this.tickMs,
      snapshotIndex: this.#snapshotIndex,
      snapshotInProgress: this.#snapshotTask !== undefined,
      pendingProposals: this.#proposals.size,
      pendingReads: this.#reads.size,
    };
  }

  /** The server's counters and histograms (live objects; do not modify). */
  metrics(): ServerMetrics {
    return this.#m;
  }

  /** The transport's counters. */
  transportStats(): TransportStats {
    return this.#transport.stats();
  }

  /**
   * Subscribes to a lifecycle event; returns the function that
   * unsubscribes. Listeners run synchronously in the server's loop: keep
   * them short (a throwing listener is logged and ignored).
   *
   * @example
   * ```ts ignore
   * const off = server.on("role", ({ role, leaderId }) => console.log(role, leaderId));
   * server.on("fatal", ({ error }) => console.error(error));
   * off();
   * ```
   */
  on<K extends keyof ServerEventMap>(
    type: K,
    listener: ServerEventListener<K>,
  ): () => void {
    return this.#events.on(type, listener);
  }

  // ------------------------------------------------------------- requests

  /**
   * Proposes a command. Resolves with the state machine's result once the
   * entry is committed and applied on this node.
   *
   * Rejects at once, before anything reaches the log (definite failures):
   * `InvalidProposalError` (not a `Uint8Array`, empty, over
   * `maxProposalBytes`), `NotLeaderError` (with `leaderId`),
   * `OverloadedError`, `TransferInProgressError`,
   * `RemovedFromClusterError`, `StoppedError` after `stop()`. Later:
   * `ApplyError` when the state machine rejected the command (definite),
   * `ProposalDroppedError` when a new leader overwrote the entry
   * (definite), `TimeoutError` at the deadline and `StoppedError` when the
   * server stops first (both: outcome unknown).
   */
  propose(data: Uint8Array, options?: RequestOptions): Promise<R> {
    if (this.#stopped) return this.#rejectStopped();
    let timeoutMs: number;
    let index: number;
    try {
      this.#checkProposal(data);
      timeoutMs = this.#timeout(options, this.#o.proposalTimeoutMs);
      index = this.#node.propose(data);
    } catch (e) {
      this.#m.proposalsFailed++;
      if (this.#storageFailed(e)) return this.#rejectStopped();
      return Promise.reject(e);
    }
    this.#m.proposals++;
    const p = this.#track(index, timeoutMs);
    this.#kick();
    return p;
  }

  #checkProposal(data: unknown): void {
    if (!(data instanceof Uint8Array)) {
      const what = data === null
        ? "null"
        : typeof data === "object"
        ? (data as object).constructor?.name ?? "object"
        : typeof data;
      throw new InvalidProposalError(
        "not_bytes",
        `a command must be a Uint8Array, got ${what} (encode it first, e.g. with TextEncoder)`,
      );
    }
    if (data.byteLength === 0) {
      throw new InvalidProposalError(
        "empty",
        "a command needs at least one byte (empty entries are the leader's no-ops)",
      );
    }
    if (data.byteLength > this.#o.maxProposalBytes) {
      throw new InvalidProposalError(
        "too_large",
        `${data.byteLength} bytes exceed maxProposalBytes (${this.#o.maxProposalBytes})`,
      );
    }
  }

  #track(index: number, timeoutMs: number): Promise<R> {
    const now = this.#sched.now();
    return new Promise<R>((resolve, reject) => {
      this.#proposals.set(index, {
        older: this.#proposals.get(index),
        term: this.#log.termAt(index) ?? 0,
        startedAt: now,
        deadline: now + timeoutMs,
        timeoutMs,
        resolve,
        reject,
      });
    });
  }

  /**
   * Waits until it is safe to read the state machine with the given
   * consistency and resolves with the read index (the state machine has
   * applied at least that far).
   *
   * - `linearizable` (default): ReadIndex — the leader confirms it is still
   *   leader with a heartbeat round, then waits until its state machine has
   *   applied the leader's commit index (§6.4). On the leader this is always
   *   a round, whatever `leaseReads` says.
   * - `lease`: on the leader, the core's tick-based lease: the round is
   *   skipped while a round acknowledged by a quorum within the last
   *   `electionTick - 2` ticks vouches for its leadership (assumes the
   *   nodes' tick rates differ by less than that margin, and needs
   *   check-quorum, whose leader stickiness keeps voters from electing
   *   anyone else meanwhile; none after a transfer started in the term);
   *   otherwise a ReadIndex round.
   * - On a follower both relay the read to the leader, which serves relayed
   *   reads from its lease only when it is configured with `leaseReads:
   *   true` — so with `leaseReads` on, a follower's `linearizable` read may
   *   be a lease read.
   * - `stale`: no check: whatever this node has applied.
   */
  read(options: ReadOptions = {}): Promise<number> {
    if (this.#stopped) return this.#rejectStopped();
    const consistency = options.consistency ?? "linearizable";
    let timeoutMs: number;
    try {
      if (
        consistency !== "linearizable" && consistency !== "lease" &&
        consistency !== "stale"
      ) {
        throw new TypeError(
          `unknown read consistency ${
            JSON.stringify(consistency)
          }: use linearizable, lease or stale`,
        );
      }
      timeoutMs = this.#timeout(options, this.#o.readTimeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
    if (consistency === "stale") {
      this.#m.reads.stale++;
      return Promise.resolve(this.#applied);
    }
    const now = this.#sched.now();
    const key = `${this.id}:${++this.#readSeq}`;
    try {
      this.#node.readIndex(key, { lease: consistency === "lease" });
    } catch (e) {
      return Promise.reject(e);
    }
    const p = new Promise<number>((resolve, reject) => {
      this.#reads.set(key, {
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

  /** Resolves once the state machine has applied `index` (rejects at the deadline). */
  waitApplied(index: number, options?: RequestOptions): Promise<number> {
    if (this.#stopped) return this.#rejectStopped();
    let timeoutMs: number;
    try {
      timeoutMs = this.#timeout(options, this.#o.readTimeoutMs);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#applied >= index) return Promise.resolve(this.#applied);
    return this.#until(
      () => this.#applied >= index,
      this.#sched.now() + timeoutMs,
      () => new TimeoutError("read", timeoutMs, `waiting to apply ${index}`),
    ).then(() => this.#applied);
  }

  /**
   * Proposes a membership change; resolves with its log index once the
   * configuration entry is committed and applied here. A change made right
   * after an election, or while the previous change commits, waits for it
   * (within the deadline) instead of failing.
   *
   * Prefer {@linkcode addVoter}, {@linkcode addLearner} and
   * {@linkcode removeNode}. Rejects with the core's errors
   * (`NotLeaderError`, `InvalidMembershipChangeError`, ...),
   * `TimeoutError` or `StoppedError`.
   */
  async changeMembership(
    change: MembershipChange,
    options?: RequestOptions,
  ): Promise<number> {
    this.#throwIfStopped();
    const timeoutMs = this.#timeout(options, this.#o.proposalTimeoutMs);
    const deadline = this.#sched.now() + timeoutMs;
    const index = await this.#whenAccepted(
      () => this.#node.changeMembership(change),
      deadline,
      timeoutMs,
      "membership change",
    );
    const p = this.#track(index, Math.max(1, deadline - this.#sched.now()));
    this.#kick();
    await p;
    return index;
  }

  /**
   * Adds (or re-addresses) a learner: a member that replicates the log but
   * does not vote. Resolves with the index of the configuration entry.
   */
  addLearner(id: number, options: MemberOptions = {}): Promise<number> {
    return this.changeMembership({
      type: "addLearner",
      id,
      ...memberInfo(options),
    }, options);
  }

  /**
   * Adds a voter safely: adds it as a learner (with its address and
   * metadata), waits until it has caught up with the leader (within the
   * core's `learnerCatchUpEntries`), then promotes it — one call, like
   * openraft's blocking membership change. A node that never starts is
   * left a learner and the call rejects with `CatchUpTimeoutError`, so the
   * quorum never grows by a node that cannot vote. `force: true` adds the
   * voter at once. Resolves with the index of the promoting entry.
   */
  async addVoter(id: number, options: AddVoterOptions = {}): Promise<number> {
    this.#throwIfStopped();
    const timeoutMs = this.#timeout(options, this.#o.proposalTimeoutMs);
    const deadline = this.#sched.now() + timeoutMs;
    const info = memberInfo(options);
    const remaining = () => ({
      timeoutMs: Math.max(1, deadline - this.#sched.now()),
    });
    if (options.force === true) {
      return await this.changeMembership(
        { type: "addVoter", id, ...info, force: true },
        remaining(),
      );
    }
    const m = this.#node.status().membership;
    if (m.voters.includes(id) || m.outgoing.includes(id)) {
      throw new InvalidMembershipChangeError(`node ${id} is already a voter`);
    }
    if (!m.learners.includes(id) || info.address !== undefined) {
      await this.changeMembership(
        m.learners.includes(id)
          ? { type: "updateNode", id, ...info }
          : { type: "addLearner", id, ...info },
        remaining(),
      );
    }
    const lag = this.#o.config.learnerCatchUpEntries;
    let match = 0;
    let last = 0;
    await this.#until(
      () => {
        const st = this.#node.status();
        if (st.role !== "leader") throw new NotLeaderError(st.leader);
        const pr = st.progress.find((p) => p.id === id);
        match = pr?.match ?? 0;
        last = st.lastIndex;
        return pr !== undefined && pr.recentActive && match > 0 &&
          match + lag >= last;
      },
      deadline,
      () => new CatchUpTimeoutError(id, match, last, timeoutMs),
    );
    return await this.changeMembership({ type: "addVoter", id }, remaining());
  }

  /** Removes a voter or learner. Resolves with the index of the configuration entry. */
  removeNode(id: number, options?: RequestOptions): Promise<number> {
    return this.changeMembership({ type: "removeNode", id }, options);
  }

  /**
   * Transfers leadership (thesis §3.10) to voter `to`, or by default to the
   * most caught-up voter, and resolves with the new leader's id once it
   * has taken over. Rejects with `TransferAbandonedError` when the core
   * abandoned it (the target did not take over within an election timeout)
   * or another node won, `NotLeaderError` on a non-leader, the core's
   * `InvalidTransferTargetError`, `StoppedError`.
   */
  async transferLeadership(
    to?: number,
    options?: RequestOptions,
  ): Promise<number> {
    this.#throwIfStopped();
    const timeoutMs = this.#timeout(options, this.#o.proposalTimeoutMs);
    const deadline = this.#sched.now() + timeoutMs;
    if (this.#transfer !== undefined) {
      await this.#until(
        () => this.#transfer === undefined,
        deadline,
        () => new TimeoutError("leadership transfer", timeoutMs),
      );
    }
    const target = to ?? this.#mostCaughtUpVoter();
    await this.#whenAccepted(
      () => this.#node.transferLeadership(target),
      deadline,
      timeoutMs,
      "leadership transfer",
    );
    if (target === this.id) return this.id;
    const p = new Promise<number>((resolve, reject) => {
      this.#transfer = { target, deadline, resolve, reject };
    });
    this.#kick();
    return await p;
  }

  #mostCaughtUpVoter(): number {
    const st = this.#node.status();
    if (st.role !== "leader") throw new NotLeaderError(st.leader);
    let best = 0;
    let bestMatch = -1;
    for (const pr of st.progress) {
      if (pr.id === this.id || pr.isLearner) continue;
      if (!st.membership.voters.includes(pr.id)) continue;
      if (pr.match > bestMatch) {
        best = pr.id;
        bestMatch = pr.match;
      }
    }
    if (best === 0) {
      throw new InvalidTransferTargetError(
        this.id,
        "there is no other voter to transfer leadership to",
      );
    }
    return best;
  }

  /** Starts an election now (useful to bootstrap a cluster quickly in tests). Throws `StoppedError` after `stop()`. */
  campaign(): void {
    this.#throwIfStopped();
    this.#node.campaign();
    this.#kick();
  }

  /**
   * Resolves with the leader's id once this node knows a leader; with
   * `ready: true`, once that leader has committed an entry of its term (it
   * then serves linearizable reads and accepts membership changes without
   * waiting). Rejects with `TimeoutError` (default 10 s) or `StoppedError`.
   */
  waitForLeader(options: WaitForLeaderOptions | number = {}): Promise<number> {
    if (this.#stopped) return this.#rejectStopped();
    const o = typeof options === "number" ? { timeoutMs: options } : options;
    let timeoutMs: number;
    try {
      timeoutMs = this.#timeout(o, 10_000);
    } catch (e) {
      return Promise.reject(e);
    }
    const ready = o.ready === true;
    const known = () =>
      this.#leader !== 0 && (!ready || this.#leaderReady) && !this.#removed;
    if (known()) return Promise.resolve(this.#leader);
    return this.#until(
      known,
      this.#sched.now() + timeoutMs,
      () =>
        new TimeoutError(
          ready ? "waiting for a ready leader" : "waiting for a leader",
          timeoutMs,
        ),
    ).then(() => this.#leader);
  }

  /**
   * Takes a snapshot now (or joins the one in progress when it covers
   * everything applied at the call) and resolves with the index it covers.
   * Rejects with `SnapshotFailedError` or `StoppedError`.
   */
  takeSnapshot(): Promise<number> {
    if (this.#stopped) return this.#rejectStopped();
    if (this.#applied <= this.#snapshotIndex) {
      return Promise.resolve(this.#snapshotIndex);
    }
    const p = new Promise<number>((resolve, reject) => {
      this.#snapshotDemands.push({ minIndex: this.#applied, resolve, reject });
    });
    this.#snapshotWanted = true;
    this.#snapshotRetryAt = 0;
    this.#kick();
    return p;
  }

  /**
   * Stops ticking and serving, settles every pending Promise with
   * `StoppedError`, waits for a snapshot being written, then closes the
   * transport and the log. Idempotent.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown();
    return this.#stopping;
  }

  // ------------------------------------------------------------- internals

  #throwIfStopped(): void {
    if (this.#stopped) throw this.#failure ?? new StoppedError();
  }

  #rejectStopped<T>(): Promise<T> {
    return Promise.reject(this.#failure ?? new StoppedError());
  }

  #timeout(options: RequestOptions | undefined, fallback: number): number {
    return positiveMs("timeoutMs", options?.timeoutMs, fallback);
  }

  /**
   * Runs `attempt` until the core accepts it: a `ConfigChangeInProgressError`
   * (the leader has not committed an entry of its term yet, or the previous
   * change is not committed) is retried after each tick until `deadline`.
   */
  async #whenAccepted<T>(
    attempt: () => T,
    deadline: number,
    timeoutMs: number,
    what: string,
  ): Promise<T> {
    while (true) {
      this.#throwIfStopped();
      try {
        return attempt();
      } catch (e) {
        if (this.#storageFailed(e)) this.#throwIfStopped();
        if (!(e instanceof ConfigChangeInProgressError)) throw e;
        if (this.#sched.now() >= deadline) {
          throw new TimeoutError(what, timeoutMs, e.message);
        }
      }
      await this.#sleep(Math.min(this.tickMs, deadline - this.#sched.now()));
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) =>
      this.#sched.after(Math.max(0, ms), resolve)
    );
  }

  /** Resolves when `done()` holds (checked after each batch and tick), rejects at `deadline`. */
  #until(
    done: () => boolean,
    deadline: number,
    expired: () => Error,
  ): Promise<void> {
    if (this.#stopped) return this.#rejectStopped();
    try {
      if (done()) return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<void>((resolve, reject) => {
      this.#waiters.push({ done, deadline, resolve, reject, expired });
    });
  }

  #checkWaiters(now: number): void {
    if (this.#waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.#waiters) {
      let settled = false;
      try {
        if (w.done()) {
          w.resolve();
          settled = true;
        }
      } catch (e) {
        w.reject(e instanceof Error ? e : new Error(String(e)));
        settled = true;
      }
      if (settled) continue;
      if (w.deadline <= now) w.reject(w.expired());
      else keep.push(w);
    }
    this.#waiters = keep;
  }

  async #shutdown(): Promise<void> {
    this.#stop(this.#failure ?? new StoppedError());
    await this.#loopDone;
    await this.#snapshotTask;
    await closeQuietly(this.#transport, this.#log, true);
  }

  /** Stops the timers and loop and settles everything with `error`. */
  #stop(error: Error): void {
    this.#stopped = true;
    this.#cancelTick?.();
    this.#cancelTick = undefined;
    this.#kick();
    for (const first of this.#proposals.values()) {
      for (let p: PendingProposal<R> | undefined = first; p; p = p.older) {
        this.#m.proposalsFailed++;
        p.reject(error);
      }
    }
    this.#proposals.clear();
    for (const r of this.#reads.values()) r.reject(error);
    this.#reads.clear();
    for (const w of this.#waiters) w.reject(error);
    this.#waiters = [];
    this.#transfer?.reject(error);
    this.#transfer = undefined;
    for (const d of this.#snapshotDemands) d.reject(error);
    this.#snapshotDemands = [];
  }

  #fail(e: unknown): void {
    if (this.#stopped) return;
    const error = e instanceof Error ? e : new Error(String(e));
    this.#logger.error(`fatal: ${error.message}; stopping the server`);
    this.#failure = new StoppedError(`failed: ${error.message}`, {
      cause: error,
    });
    this.#stop(this.#failure);
    this.#events.emit("fatal", { error });
  }

  /**
   * A log that failed a write or sync (e.g. a background snapshot write)
   * refuses every later one: this node can no longer persist anything, so
   * it stops (a restart reopens the log) instead of refusing every message
   * and proposal from then on. Returns whether `e` was such a failure.
   */
  #storageFailed(e: unknown): boolean {
    if ((e as { code?: unknown } | null)?.code !== "WAL_FAILED") return false;
    this.#fail(e);
    return true;
  }

  #kick(): void {
    const w = this.#wakeLoop;
    if (w !== undefined) {
      this.#wakeLoop = undefined;
      w();
    }
  }

  #onMessage(m: Message, from: number): void {
    if (this.#stopped) return;
    if (m.from !== from || m.to !== this.id) {
      this.#m.spoofedMessages++;
      return;
    }
    try {
      this.#node.step(m);
    } catch (e) {
      if (this.#storageFailed(e)) return;
      this.#logger.warn(
        `dropped a ${m.type} from node ${from}: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
      return;
    }
    this.#kick();
  }

  #onTick(): void {
    if (this.#stopped) return;
    this.#node.tick();
    const now = this.#sched.now();
    this.#expire(now);
    this.#checkWaiters(now);
    this.#checkTransfer(now);
    this.#kick();
  }

  /** Rejects every proposal and read past its deadline. */
  #expire(now: number): void {
    for (const [index, first] of this.#proposals) {
      let keep: PendingProposal<R> | undefined;
      let last: PendingProposal<R> | undefined;
      for (let p: PendingProposal<R> | undefined = first; p; p = p.older) {
        if (p.deadline > now) {
          if (last === undefined) keep = p;
          else last.older = p;
          last = p;
          continue;
        }
        this.#m.proposalsFailed++;
        p.reject(
          new TimeoutError("proposal", p.timeoutMs, `log index ${index}`),
        );
      }
      if (last !== undefined) last.older = undefined;
      if (keep === undefined) this.#proposals.delete(index);
      else if (keep !== first) this.#proposals.set(index, keep);
    }
    for (const [key, r] of this.#reads) {
      if (r.deadline <= now) {
        this.#reads.delete(key);
        r.reject(
          new TimeoutError(
            "read",
            r.timeoutMs,
            this.#leader === 0 ? "no leader known" : undefined,
          ),
        );
      }
    }
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (this.#snapshotDue()) await this.#beginSnapshot();
        if (!this.#node.hasReady()) {
          await new Promise<void>((resolve) => (this.#wakeLoop = resolve));
          continue;
        }
        await this.#handleReady(this.#node.ready());
      } catch (e) {
        // Storage or state machine failure: continuing could break safety.
        this.#fail(e);
        return;
      }
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) this.#onSoftState(rd);
    if (rd.hardState !== undefined) {
      this.#term = rd.hardState.term;
      this.#commit = rd.hardState.commit;
    }
    for (const msg of rd.messages) this.#transport.send(msg.to, msg);
    // The sync runs while committed entries are applied: they are already
    // durable on a quorum (and, on the leader, locally: it counts itself
    // only for what it persisted), so the state machine need not wait for
    // this batch's new entries to reach the disk.
    let sync: Promise<void> | undefined;
    const t0 = this.#sched.now();
    if (rd.mustSync) {
      sync = this.#log.sync();
      sync.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
    }
    if (rd.membership !== undefined) {
      this.#learnAddresses(rd.membership);
      this.#events.emit("membership", { membership: rd.membership });
    }
    if (rd.snapshot !== undefined) {
      await this.#restoreSnapshot(rd.snapshot.meta.index, rd.snapshot.data);
    }
    // One clock reading per batch for the commit latencies of its entries.
    this.#settleNow = this.#sched.now();
    const entries = rd.committedEntries;
    for (let i = 0; i < entries.length; i++) {
      const pending = this.#applyEntry(entries[i]);
      if (pending !== undefined) {
        await pending;
        this.#settleNow = this.#sched.now();
      }
    }
    if (sync !== undefined) {
      await sync;
      this.#m.fsyncLatency.observe(this.#sched.now() - t0);
      this.#m.syncs++;
      for (const e of rd.entries) {
        this.#m.bytesWritten += e.data.byteLength + 24;
      }
    }
    // Votes and acknowledgements promise durability: only after the sync.
    for (const msg of rd.persistedMessages) this.#transport.send(msg.to, msg);
    if (rd.caughtUp) await this.#finishCatchUp();
    this.#releaseReads(rd);
    this.#node.advance(rd);
    if (rd.snapshotHint !== undefined) this.#snapshotWanted = true;
    this.#updateReadiness();
    if (entries.length > 0 && this.#events.has("applied")) {
      this.#events.emit("applied", { index: this.#applied });
    }
    const now = this.#sched.now();
    this.#checkWaiters(now);
    this.#checkTransfer(now);
  }

  /**
   * The core caught up after a repair (this Ready, now durable, holds the
   * leader's log far enough): clear the log's marker durably, and only
   * then let the core vote again. A crash before the marker is cleared
   * restarts the node still catching up, which is safe.
   */
  async #finishCatchUp(): Promise<void> {
    const marker = this.#log.needsCatchUp;
    await this.#log.markCaughtUp?.();
    if (this.#stopped) return;
    this.#node.caughtUpDurable();
    const st = this.#node.status();
    this.#logger.info(
      `caught up after the repair (log at ${st.lastIndex}, term ${st.term}, leader ${st.leader}): voting again`,
    );
    this.#events.emit("caughtUp", {
      index: marker?.index ?? 0,
      term: marker?.term ?? 0,
      lastIndex: st.lastIndex,
    });
  }

  #onSoftState(rd: Ready): void {
    const { role, leader } = rd.softState!;
    const was = this.#role;
    const leaderChanged = leader !== this.#leader;
    this.#role = role;
    this.#leader = leader;
    if (role === "candidate" && was !== "candidate") this.#m.elections++;
    if (role === "leader" && was !== "leader") {
      this.#m.leaderships++;
      this.#logger.info(`became leader in term ${this.#node.status().term}`);
    }
    if (rd.softState!.removed && !this.#removed) {
      this.#removed = true;
      const m = this.#node.status().membership;
      const members = [...new Set([...m.voters, ...m.outgoing, ...m.learners])]
        .filter((id) => id !== this.id).sort((a, b) => a - b);
      this.#logger.warn(
        `this node was removed from the cluster (members: ${
          members.join(", ") || "none known"
        }); it no longer campaigns or serves`,
      );
      this.#events.emit("membership", { membership: m });
      this.#events.emit("removed", { members });
    } else if (!rd.softState!.removed && this.#removed) {
      // Added back: a newer committed configuration holds this node again.
      this.#removed = false;
      this.#logger.info("this node is a member of the cluster again");
    }
    if (was !== role || leaderChanged) {
      this.#events.emit("role", { role, leaderId: leader, term: this.#term });
    }
  }

  /** A leader is ready once an entry of its term is committed (§8); any node sees that from its commit index. */
  #updateReadiness(): void {
    const ready = this.#leader !== 0 &&
      this.#log.termAt(this.#commit) === this.#term;
    if (ready === this.#leaderReady) return;
    this.#leaderReady = ready;
    if (ready && this.#role === "leader") {
      this.#events.emit("leaderReady", { term: this.#term });
    }
  }

  /** Tells the transport the address of every member that has one (a no-op for transports without `addPeer`). */
  #learnAddresses(m: Membership): void {
    const add = this.#transport.addPeer;
    if (add === undefined) return;
    const nodes: Record<number, MemberInfo> = m.nodes ?? {};
    for (const key of Object.keys(nodes)) {
      const id = Number(key);
      const address = nodes[id].address;
      if (id === this.id || address === "") continue;
      try {
        add.call(this.#transport, id, address);
      } catch (e) {
        this.#logger.warn(
          `cannot use address ${JSON.stringify(address)} of node ${id}: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      }
    }
  }

  #checkTransfer(now: number): void {
    const t = this.#transfer;
    if (t === undefined) return;
    let error: Error | undefined;
    if (this.#leader === t.target && this.#role !== "leader") {
      this.#transfer = undefined;
      t.resolve(t.target);
      return;
    }
    if (this.#role !== "leader" && this.#leader !== 0) {
      error = new TransferAbandonedError(
        t.target,
        this.#leader,
        "another node won the election",
      );
    } else if (
      this.#role === "leader" && this.#node.status().leadTransferee === 0
    ) {
      error = new TransferAbandonedError(
        t.target,
        this.id,
        "the target did not take over within an election timeout (is it running and caught up?)",
      );
    } else if (now >= t.deadline) {
      error = new TransferAbandonedError(
        t.target,
        this.#leader,
        "the deadline passed",
      );
    }
    if (error !== undefined) {
      this.#transfer = undefined;
      t.reject(error);
    }
  }

  async #restoreSnapshot(index: number, data: Uint8Array): Promise<void> {
    const t0 = this.#sched.now();
    await this.#sm.restore(data);
    this.#applied = index;
    this.#snapshotIndex = index;
    this.#m.snapshotsRestored++;
    this.#logger.info(`restored a snapshot from the leader at index ${index}`);
    this.#events.emit("snapshot", {
      kind: "restored",
      index,
      bytes: data.byteLength,
      durationMs: this.#sched.now() - t0,
    });
    // Proposals at or below the snapshot: their fate is not visible here.
    for (const [i, first] of this.#proposals) {
      if (i > index) continue;
      this.#proposals.delete(i);
      for (let p: PendingProposal<R> | undefined = first; p; p = p.older) {
        this.#m.proposalsFailed++;
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
    if (entry.kind !== "normal" || entry.data.byteLength === 0) {
      this.#settle(entry, undefined, undefined);
      return undefined;
    }
    let out: R | Promise<R>;
    try {
      out = this.#sm.apply(entry);
    } catch (e) {
      this.#rejected(entry, e);
      return undefined;
    }
    if (out instanceof Promise) {
      return out.then(
        (r) => {
          this.#m.entriesApplied++;
          this.#settle(entry, r, undefined);
        },
        (e) => this.#rejected(entry, e),
      );
    }
    this.#m.entriesApplied++;
    this.#settle(entry, out, undefined);
    return undefined;
  }

  /** `apply` threw: a rejected command (every replica rejects it alike), unless the state machine says it is broken. */
  #rejected(entry: Entry, e: unknown): void {
    if (e instanceof StateMachineFatalError) throw e;
    this.#m.entriesApplied++;
    this.#m.applyRejected++;
    this.#settle(entry, undefined, new ApplyError(entry.index, e));
  }

  /** Marks `entry` applied and settles the proposal waiting for it. */
  #settle(entry: Entry, result: R | undefined, error: Error | undefined): void {
    this.#applied = entry.index;
    const first = this.#proposals.get(entry.index);
    if (first === undefined) return;
    this.#proposals.delete(entry.index);
    for (let p: PendingProposal<R> | undefined = first; p; p = p.older) {
      if (p.term !== entry.term) {
        this.#m.proposalsFailed++;
        p.reject(
          new ProposalDroppedError(
            `log index ${entry.index} was taken by an entry of term ${entry.term}`,
          ),
        );
      } else if (error !== undefined) {
        this.#m.proposalsFailed++;
        p.reject(error);
      } else {
        this.#m.proposalsCommitted++;
        this.#m.commitLatency.observe(this.#settleNow - p.startedAt);
        p.resolve(result as R);
      }
    }
  }

  #releaseReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      const key = decoder.decode(rs.context);
      const r = this.#reads.get(key);
      if (r === undefined) continue;
      this.#reads.delete(key);
      this.#m.reads[r.consistency]++;
      if (this.#applied >= rs.index) {
        r.resolve(rs.index);
        continue;
      }
      const index = rs.index;
      this.#waiters.push({
        done: () => this.#applied >= index,
        deadline: r.deadline,
        resolve: () => r.resolve(index),
        reject: r.reject,
        expired: () => new TimeoutError("read", r.timeoutMs),
      });
    }
  }

  // ------------------------------------------------------------- snapshots

  #snapshotDue(): boolean {
    return this.#snapshotWanted && this.#snapshotTask === undefined &&
      this.#applied > this.#snapshotIndex &&
      this.#sched.now() >= this.#snapshotRetryAt;
  }

  /**
   * Takes the state machine's view at the applied index (between two
   * Readies, so nothing else is applied meanwhile), then serializes and
   * saves it off the loop.
   */
  async #beginSnapshot(): Promise<void> {
    this.#snapshotWanted = false;
    const index = this.#applied;
    const t0 = this.#sched.now();
    let done!: () => void;
    this.#snapshotTask = new Promise<void>((resolve) => (done = resolve));
    try {
      const source = await this.#sm.snapshot();
      void this.#finishSnapshot(index, t0, source).finally(() => {
        this.#snapshotTask = undefined;
        done();
        this.#kick();
      });
    } catch (e) {
      this.#snapshotTask = undefined;
      done();
      if (e instanceof StateMachineFatalError) throw e;
      this.#snapshotFailed(index, e);
    }
  }

  async #finishSnapshot(
    index: number,
    t0: number,
    source: Awaited<ReturnType<StateMachine<R>["snapshot"]>>,
  ): Promise<void> {
    let data: Uint8Array | undefined;
    try {
      data = await readSnapshotSource(
        source,
        this.#sched,
        () => this.#stopped,
      );
      if (data === undefined || this.#stopped) return;
      // A snapshot restored from the leader meanwhile may already cover it.
      if (index > this.#log.snapshotMeta().index) {
        this.#node.snapshotTaken(index, data);
      }
    } catch (e) {
      if (e instanceof StateMachineFatalError) this.#fail(e);
      else this.#snapshotFailed(index, e);
      return;
    }
    if (index > this.#snapshotIndex) this.#snapshotIndex = index;
    this.#m.snapshotsTaken++;
    const durationMs = this.#sched.now() - t0;
    this.#logger.info(
      `took a snapshot at index ${index} (${data.byteLength} bytes, ${
        durationMs.toFixed(0)
      } ms)`,
    );
    this.#events.emit("snapshot", {
      kind: "taken",
      index,
      bytes: data.byteLength,
      durationMs,
    });
    const keep: SnapshotDemand[] = [];
    for (const d of this.#snapshotDemands) {
      if (d.minIndex <= this.#snapshotIndex) d.resolve(this.#snapshotIndex);
      else keep.push(d);
    }
    this.#snapshotDemands = keep;
    if (keep.length > 0) this.#snapshotWanted = true;
  }

  #snapshotFailed(index: number, cause: unknown): void {
    const error = new SnapshotFailedError(index, cause);
    this.#m.snapshotsFailed++;
    this.#logger.warn(error.message);
    this.#snapshotWanted = true;
    this.#snapshotRetryAt = this.#sched.now() + this.#o.snapshotRetryMs;
    for (const d of this.#snapshotDemands) d.reject(error);
    this.#snapshotDemands = [];
    this.#events.emit("snapshotFailed", { index, error });
  }
}

function memberInfo(
  o: MemberOptions,
): { address?: string; metadata?: string } {
  const info: { address?: string; metadata?: string } = {};
  if (o.address !== undefined) info.address = o.address;
  if (o.metadata !== undefined) info.metadata = o.metadata;
  return info;
}

/** Closes the transport, then the log; with `rethrow`, the first failure is thrown after both were tried. */
async function closeQuietly(
  transport: RaftTransport<Message>,
  log: RaftLog,
  rethrow = false,
): Promise<void> {
  let first: unknown;
  try {
    await transport.close();
  } catch (e) {
    first = e;
  }
  try {
    await log.close();
  } catch (e) {
    first ??= e;
  }
  if (rethrow && first !== undefined) throw first;
}
