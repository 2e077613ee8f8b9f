/**
 * {@linkcode RaftNode}: the public face of the consensus core. Pure,
 * synchronous and deterministic: events in (`tick`, `step`, `propose`, ...),
 * batches of work out (`ready()`). No clock, no Promise, no I/O.
 *
 * ## Driver protocol
 *
 * The node writes entries, hard state and received snapshots into the
 * {@linkcode RaftLog} itself (synchronously, in memory). A driver loops:
 *
 * 1. `const rd = node.ready()` (when `node.hasReady()`);
 * 2. send `rd.messages` at once: they may leave before the local sync (e.g. a
 *    leader's AppendEntries to followers, §10.2.1 of the thesis);
 * 3. if `rd.mustSync`: `await log.sync()` (MemoryLog: `syncNow()`);
 * 4. send `rd.persistedMessages`: they promise durability (votes, append
 *    acknowledgements) and must not leave before the sync;
 * 5. if `rd.snapshot`: restore the state machine from it; apply
 *    `rd.committedEntries` in order; then serve `rd.readStates` (each is safe
 *    once the entries of this Ready are applied);
 * 6. `node.advance(rd)`: tells the node what is now durable and applied.
 *
 * Between `ready()` and `advance()` the driver may keep calling `tick`,
 * `step` and `propose`; `hasReady()` is false and `ready()` throws until the
 * outstanding Ready is advanced. The leader counts itself towards a quorum
 * only for entries made durable by an advanced Ready.
 *
 * @module
 */

import type { Entry, HardState, RaftLog } from "../log/raft_log.ts";
import { type RaftConfig, resolveConfig } from "./config.ts";
import { hup, startTransfer } from "./election.ts";
import {
  ConfigChangeInProgressError,
  InvalidMembershipChangeError,
  InvalidTransferTargetError,
  NotLeaderError,
  ProposalDroppedError,
  ReadyProtocolError,
  RemovedFromClusterError,
  TransferInProgressError,
} from "./errors.ts";
import {
  applyMembershipChange,
  copyMembership,
  encodeMembership,
  isVoter,
  members,
  type Membership,
  type MembershipChange,
} from "./membership.ts";
import type { Message } from "./messages.ts";
import { Raft } from "./raft.ts";
import { seededRandom } from "./random.ts";
import { leaderReadIndex, type ReadState } from "./read_index.ts";
import type {
  NodeRole,
  NodeStatus,
  PeerStatus,
  Ready,
  SoftState,
} from "./ready.ts";
import { afterCommit, flushAppends, maybeCommit } from "./replication.ts";
import {
  checkAccepting,
  forwardProposals,
  stepRaft,
  tickRaft,
} from "./step.ts";

// Re-exported so that node.ts stays the one import a driver needs.
export type {
  NodeRole,
  NodeStatus,
  PeerStatus,
  Ready,
  SnapshotToRestore,
  SoftState,
} from "./ready.ts";
export { seededRandom } from "./random.ts";

const encoder = new TextEncoder();

interface OutstandingReady {
  ready: Ready;
  lastIndex: number;
  lastTerm: number;
  appliedTo: number;
}

/** Options of the {@linkcode RaftNode} constructor beyond the Raft config. */
export interface RaftNodeOptions {
  /**
   * The index the application's state machine has already applied when the
   * node starts (default: the log's snapshot index, i.e. the state machine
   * was restored from the snapshot and nothing after it).
   */
  applied?: number;
  /**
   * The log's catch-up marker after a repair (`log.needsCatchUp`): the
   * highest index and term this node may have acknowledged (or voted in)
   * and lost. Until it has caught up from a leader — accepted an append or
   * a snapshot from a leader of term ≥ `term` with its log then matching
   * the leader's through `max(index, leader's commit)` — the node grants no
   * vote or pre-vote, never campaigns and ignores TimeoutNow, and its
   * append responses tell the leader to forget its earlier
   * acknowledgements. Then a Ready has `caughtUp: true`; see
   * {@linkcode RaftNode.caughtUpDurable}. Default: none.
   */
  catchUp?: { index: number; term: number };
}

/**
 * One Raft node.
 *
 * @example
 * ```ts
 * import { MemoryLog } from "@raft-io/raft";
 * import { RaftNode } from "@raft-io/raft/core";
 * const log = new MemoryLog();
 * const node = new RaftNode({ id: 1 }, log); // a single-node cluster
 * node.campaign();
 * const step = () => {
 *   const rd = node.ready();
 *   if (rd.mustSync) log.syncNow();
 *   node.advance(rd);
 *   return rd;
 * };
 * step(); // leader, with its no-op entry durable
 * const index = node.propose(new TextEncoder().encode("x"));
 * step(); // entry durable
 * step().committedEntries.map((e) => e.index).includes(index); // true
 * ```
 */
export class RaftNode {
  readonly #r: Raft;
  #outstanding: OutstandingReady | undefined = undefined;
  #prevRole: NodeRole;
  #prevLeader: number;
  #prevHard: HardState;
  #prevRemoved = false;
  #lastHint = 0;
  /** The extra fraction of the thresholds the next hint waits for (`snapshotJitter`). */
  #hintJitter = 0;
  /** Bytes of normal entries handed out for applying since the latest snapshot or hint. */
  #hintBytes = 0;
  /** Highest index handed out for applying (in a Ready). */
  #handedTo = 0;

  /**
   * Creates a node over `log`, restoring term, vote, commit and membership from it.
   *
   * @param config Node configuration (validated; throws `InvalidConfigError`).
   * @param log The node's log store; the node reads and writes it directly.
   * @param random Source of randomness in [0, 1) for election timeouts;
   *   default: a PRNG seeded from `config.id`, so runs are reproducible.
   * @param options Start-up options.
   */
  constructor(
    config: RaftConfig,
    log: RaftLog,
    random?: () => number,
    options?: RaftNodeOptions,
  ) {
    const cfg = resolveConfig(config);
    this.#r = new Raft(
      cfg,
      log,
      random ?? seededRandom(cfg.id),
      options?.applied,
      options?.catchUp,
    );
    this.#prevRole = this.#role();
    this.#prevLeader = 0;
    this.#prevHard = log.hardState();
    this.#drawHintJitter();
    this.#handedTo = this.#r.applied;
  }

  /** Draws the extra fraction the next snapshot hint waits for (no draw without jitter). */
  #drawHintJitter(): void {
    const jitter = this.#r.cfg.snapshotJitter;
    this.#hintJitter = jitter > 0 ? this.#r.random() * jitter : 0;
  }

  /** This node's id. */
  get id(): number {
    return this.#r.id;
  }

  /**
   * True once this node was removed from the cluster: its committed
   * configuration no longer contains it although it was a member before (it
   * was in its bootstrap `voters`/`learners`, or a committed configuration
   * held it), or a leader told it so (a `Removed` message). A node that has
   * not joined yet (started with the founders as `voters`, itself absent)
   * is not removed. A removed node never campaigns, and `propose` /
   * `readIndex` throw `RemovedFromClusterError`. It becomes a member again
   * only if a newer committed configuration contains it. The Ready after it
   * turns true carries `softState` (with `removed: true`).
   *
   * @example
   * ```ts
   * import { MemoryLog } from "@raft-io/raft";
   * import { RaftNode } from "@raft-io/raft/core";
   * const node = new RaftNode({ id: 1 }, new MemoryLog());
   * node.removed; // false
   * ```
   */
  get removed(): boolean {
    return this.#r.removed;
  }

  /**
   * True only on a leader that has committed an entry of its current term
   * (§8): it may then serve ReadIndex and accept membership changes.
   *
   * @example
   * ```ts
   * import { MemoryLog } from "@raft-io/raft";
   * import { RaftNode } from "@raft-io/raft/core";
   * const log = new MemoryLog();
   * const node = new RaftNode({ id: 1 }, log);
   * node.campaign();
   * node.leaderReady; // false: its no-op entry is not committed yet
   * while (node.hasReady()) {
   *   const rd = node.ready();
   *   if (rd.mustSync) log.syncNow();
   *   node.advance(rd);
   * }
   * node.leaderReady; // true
   * ```
   */
  get leaderReady(): boolean {
    return this.#r.leaderReady();
  }

  /** Advances logical time by one tick: election timeouts, heartbeats, check-quorum. */
  tick(): void {
    tickRaft(this.#r);
  }

  /** Starts an election now (pre-vote first when enabled), as if the election timeout elapsed. */
  campaign(): void {
    hup(this.#r);
  }

  /**
   * Handles a message from a peer. Messages not addressed to this node are
   * ignored.
   */
  step(m: Message): void {
    stepRaft(this.#r, m);
  }

  /**
   * Proposes an application command. On the leader, appends it and returns
   * its log index (it is committed when it appears in `committedEntries`).
   * On a follower with proposal forwarding (the default) and a known leader,
   * forwards it and returns 0 (the index is not known here).
   *
   * @throws {NotLeaderError} not leader, and forwarding is off or no leader is known.
   * @throws {TransferInProgressError} a leadership transfer is in flight.
   * @throws {OverloadedError} the uncommitted-bytes cap would be exceeded.
   * @throws {RemovedFromClusterError} this node was removed from the cluster.
   */
  propose(data: Uint8Array): number {
    const r = this.#r;
    this.#checkNotRemoved();
    if (r.role !== "leader") {
      forwardProposals(r, [data]);
      return 0;
    }
    checkAccepting(r, data.byteLength);
    return r.appendLeaderEntry("normal", data);
  }

  /**
   * Proposes several commands as consecutive entries in one append. Returns
   * the index of the first (0 when forwarded). All or none are accepted.
   *
   * @throws {RemovedFromClusterError} this node was removed from the cluster.
   */
  proposeBatch(datas: readonly Uint8Array[]): number {
    const r = this.#r;
    this.#checkNotRemoved();
    if (datas.length === 0) throw new ProposalDroppedError("empty batch");
    if (r.role !== "leader") {
      forwardProposals(r, datas.slice());
      return 0;
    }
    let bytes = 0;
    for (let i = 0; i < datas.length; i++) bytes += datas[i].byteLength;
    checkAccepting(r, bytes);
    const first = r.log.lastIndex() + 1;
    const entries: Entry[] = new Array(datas.length);
    for (let i = 0; i < datas.length; i++) {
      entries[i] = {
        index: first + i,
        term: r.term,
        kind: "normal",
        data: datas[i],
      };
    }
    r.appendToLog(entries);
    r.uncommittedBytes += bytes;
    r.pendingBroadcast = true;
    return first;
  }

  /**
   * Requests a linearizable read (§6.4). The read may be served once a
   * `ReadState` with the same context appears in a Ready (and that Ready's
   * entries are applied). A follower relays the request to the leader.
   *
   * With `lease` (default: the `leaseReads` option), a leader holding a
   * lease serves the read at once, without a heartbeat round (see
   * read_index.ts for the clock assumption); never without check-quorum,
   * and never for the rest of a term in which a transfer started. A
   * follower's relayed read uses the leader's `leaseReads` option.
   *
   * @throws {NotLeaderError} not leader and no leader is known.
   * @throws {RemovedFromClusterError} this node was removed from the cluster.
   */
  readIndex(
    context: Uint8Array | string,
    options?: { lease?: boolean },
  ): void {
    const r = this.#r;
    this.#checkNotRemoved();
    const ctx = typeof context === "string" ? encoder.encode(context) : context;
    if (r.role === "leader") {
      leaderReadIndex(r, ctx, r.id, options?.lease ?? r.cfg.leaseReads);
      return;
    }
    if (r.leader === 0) throw new NotLeaderError(0);
    r.send({
      type: "ReadIndexRequest",
      from: r.id,
      to: r.leader,
      term: r.term,
      context: ctx,
    });
  }

  /**
   * Proposes a membership change (§6); returns the index of its config
   * entry. The new configuration takes effect as soon as it is appended.
   *
   * @throws {NotLeaderError} not leader.
   * @throws {ConfigChangeInProgressError} a change is not yet committed, or
   *   the leader has not yet committed an entry of its own term.
   * @throws {TransferInProgressError} a leadership transfer is in flight.
   * @throws {InvalidMembershipChangeError} the change is not valid, or it
   *   makes a voter of a node that is not a caught-up learner (a current
   *   learner, recently active, whose match index is at least the leader's
   *   last index minus `learnerCatchUpEntries`) and `force` is not set.
   */
  changeMembership(change: MembershipChange): number {
    const r = this.#r;
    if (r.role !== "leader") throw new NotLeaderError(r.leader);
    if (r.leadTransferee !== 0) {
      throw new TransferInProgressError(r.leadTransferee);
    }
    if (r.configIndex > r.commit) {
      throw new ConfigChangeInProgressError(
        `the configuration at index ${r.configIndex} is not committed yet (commit ${r.commit}); retry after it commits`,
      );
    }
    if (r.log.termAt(r.commit) !== r.term) {
      throw new ConfigChangeInProgressError(
        "a new leader must commit an entry of its term before changing membership; retry shortly",
      );
    }
    let effective = change;
    if (change.type === "enterJoint" && change.autoLeave === undefined) {
      effective = { ...change, autoLeave: r.cfg.autoLeaveJoint };
    }
    if (change.type === "addVoter" && change.force !== true) {
      this.#checkCaughtUp(change.id);
    } else if (change.type === "enterJoint" && change.force !== true) {
      for (const id of change.voters) this.#checkCaughtUp(id);
    }
    const next = applyMembershipChange(r.membership, effective);
    return r.appendLeaderEntry("config", encodeMembership(next));
  }

  /**
   * A node becomes a voter only through a caught-up learner (unless forced):
   * a voter that cannot yet hold the log would weaken the quorum at once.
   */
  #checkCaughtUp(id: number): void {
    const r = this.#r;
    const m = r.membership;
    if (m.voters.includes(id)) return; // already a voter: no promotion
    const pr = r.progress.get(id);
    const need = r.log.lastIndex() - r.cfg.learnerCatchUpEntries;
    let why: string | undefined;
    if (!m.learners.includes(id)) why = "it is not a learner";
    else if (pr === undefined || !pr.recentActive) {
      why = "it was not heard from recently";
    } else if (pr.match === 0) {
      // A just-added learner counts as active before it ever answered, and
      // a short log is within any lag of 0: demand a real acknowledgement.
      why =
        "it has not acknowledged any entry yet (is it running and reachable?)";
    } else if (pr.match < need) {
      why =
        `it holds the log up to ${pr.match}, the leader up to ${r.log.lastIndex()} ` +
        `(learnerCatchUpEntries ${r.cfg.learnerCatchUpEntries})`;
    }
    if (why === undefined) return;
    throw new InvalidMembershipChangeError(
      `node ${id} cannot become a voter yet: ${why}; add it as a learner first, ` +
        "wait until it catches up, or pass force: true",
    );
  }

  #checkNotRemoved(): void {
    const r = this.#r;
    if (r.removed) {
      // The leader may have told it before it saw the removing entry, so its
      // configuration can still list it.
      throw new RemovedFromClusterError(
        r.id,
        members(r.membership).filter((id) => id !== r.id),
      );
    }
  }

  /**
   * Transfers leadership to voter `to` (thesis §3.10): proposals are refused
   * meanwhile; the target is caught up, then told to campaign at once. The
   * transfer is abandoned after an election timeout.
   *
   * @throws {NotLeaderError} not leader.
   * @throws {TransferInProgressError} a transfer is already in flight.
   * @throws {ConfigChangeInProgressError} a membership change is in flight.
   * @throws {InvalidTransferTargetError} `to` is not a voter.
   */
  transferLeadership(to: number): void {
    const r = this.#r;
    if (r.role !== "leader") throw new NotLeaderError(r.leader);
    if (r.leadTransferee !== 0) {
      throw new TransferInProgressError(r.leadTransferee);
    }
    if (r.configIndex > r.commit) {
      throw new ConfigChangeInProgressError(
        `the configuration at index ${r.configIndex} is not committed yet; transfer after it commits`,
      );
    }
    if (to === r.id) return;
    if (!isVoter(r.membership, to)) {
      throw new InvalidTransferTargetError(
        to,
        "it is not a voter of the current configuration",
      );
    }
    startTransfer(r, to);
  }

  /**
   * The application took a snapshot of its state machine covering entries
   * `<= index` (which must be applied). The snapshot is saved in the log and
   * the log compacted up to `index - compactionLag`.
   */
  snapshotTaken(index: number, data: Uint8Array): void {
    const r = this.#r;
    if (index > r.applied) {
      throw new RangeError(
        `snapshotTaken(${index}): only applied entries (<= ${r.applied}) can be snapshotted`,
      );
    }
    const current = r.log.snapshotMeta().index;
    if (index <= current) return;
    const term = r.log.termAt(index);
    if (term === undefined) {
      throw new RangeError(`snapshotTaken(${index}): entry is not in the log`);
    }
    const config = encodeMembership(r.membershipAt(index).membership);
    r.log.saveSnapshot({ index, term, config }, data);
    // The byte threshold now counts from the snapshot.
    let bytes = 0;
    for (let i = index + 1; i <= this.#handedTo; i++) {
      const e = r.log.entry(i);
      if (e !== undefined && e.kind === "normal") bytes += e.data.byteLength;
    }
    this.#hintBytes = bytes;
    const upTo = index - r.cfg.compactionLag;
    if (upTo >= r.log.firstIndex()) r.log.compact(upTo);
  }

  /**
   * True while this node catches up after a repair (see
   * {@linkcode RaftNodeOptions.catchUp}): it grants no vote and does not
   * campaign.
   *
   * @example
   * ```ts
   * import { MemoryLog } from "@raft-io/raft";
   * import { RaftNode } from "@raft-io/raft/core";
   * const node = new RaftNode({ id: 1, voters: [1, 2, 3] }, new MemoryLog(), undefined, {
   *   catchUp: { index: 5, term: 2 },
   * });
   * node.catchingUp; // true
   * ```
   */
  get catchingUp(): boolean {
    return this.#r.catchUp !== undefined;
  }

  /**
   * The driver made the end of catch-up durable (`await
   * log.markCaughtUp()` resolved after a Ready with `caughtUp: true`): the
   * node votes and campaigns again. A no-op when not catching up.
   *
   * @throws {ReadyProtocolError} the node has not reported `caughtUp` yet
   *   (clearing the marker earlier would be unsafe).
   */
  caughtUpDurable(): void {
    const r = this.#r;
    if (r.catchUp === undefined) return;
    if (!r.caughtUpReported) {
      throw new ReadyProtocolError(
        "caughtUpDurable() before a Ready reported caughtUp: the node has not caught up yet",
      );
    }
    r.catchUp = undefined;
    r.caughtUp = false;
    r.caughtUpReported = false;
    // It may have waited out many election timeouts: start a fresh one.
    r.electionElapsed = 0;
  }

  /** The transport could not reach `id`: the leader falls back to probing it. */
  reportUnreachable(id: number): void {
    const pr = this.#r.progress.get(id);
    if (pr !== undefined && pr.state === "replicate") pr.becomeProbe();
  }

  /** A snapshot of this node's state. */
  status(): NodeStatus {
    const r = this.#r;
    const progress: PeerStatus[] = [];
    for (const id of [...r.progress.keys()].sort((a, b) => a - b)) {
      const pr = r.progress.get(id)!;
      progress.push({
        id,
        match: pr.match,
        next: pr.next,
        state: pr.state,
        inflight: pr.inflights.count,
        isLearner: pr.isLearner,
        recentActive: pr.recentActive,
      });
    }
    const m = r.membership;
    return {
      id: r.id,
      role: this.#role(),
      term: r.term,
      vote: r.vote,
      leader: r.leader,
      commit: r.commit,
      applied: r.applied,
      lastIndex: r.log.lastIndex(),
      stableIndex: r.stableIndex,
      membership: copyMembership(m),
      leadTransferee: r.leadTransferee,
      removed: r.removed,
      leaderReady: r.leaderReady(),
      catchingUp: r.catchUp !== undefined,
      progress,
    };
  }

  #role(): NodeRole {
    const r = this.#r;
    if (r.role === "follower" && r.isLearner()) return "learner";
    return r.role;
  }

  /** True when `ready()` has work (and no Ready is outstanding). */
  hasReady(): boolean {
    if (this.#outstanding !== undefined) return false;
    const r = this.#r;
    if (r.pendingBroadcast && r.role === "leader") return true;
    if (r.msgs.length > 0 || r.msgsAfterSync.length > 0) return true;
    if (r.unstableFrom <= r.log.lastIndex() || r.logChanged) return true;
    if (r.snapshotToRestore !== undefined || r.membershipChanged) return true;
    if (r.caughtUp && !r.caughtUpReported) return true;
    const hs = this.#prevHard;
    if (hs.term !== r.term || hs.vote !== r.vote || hs.commit !== r.commit) {
      return true;
    }
    if (
      this.#role() !== this.#prevRole || r.leader !== this.#prevLeader ||
      r.removed !== this.#prevRemoved
    ) {
      return true;
    }
    const lastCommitted = Math.min(r.commit, r.log.lastIndex());
    if (lastCommitted > r.applied) return true;
    for (let i = 0; i < r.readStates.length; i++) {
      if (r.readStates[i].index <= Math.max(r.applied, lastCommitted)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Takes the next batch of work. Must be followed by `advance(rd)` before
   * the next `ready()`.
   *
   * @throws {ReadyProtocolError} when the previous Ready was not advanced.
   */
  ready(): Ready {
    if (this.#outstanding !== undefined) {
      throw new ReadyProtocolError(
        "ready() called again before advance() of the previous Ready",
      );
    }
    const r = this.#r;
    // Batching: everything proposed since the last Ready leaves in as few
    // AppendEntries as the window and message size allow.
    if (r.pendingBroadcast && r.role === "leader") flushAppends(r);
    const log = r.log;

    let softState: SoftState | undefined;
    const role = this.#role();
    if (
      role !== this.#prevRole || r.leader !== this.#prevLeader ||
      r.removed !== this.#prevRemoved
    ) {
      softState = { role, leader: r.leader, removed: r.removed };
      this.#prevRole = role;
      this.#prevLeader = r.leader;
      this.#prevRemoved = r.removed;
    }

    let mustSync = false;
    let hardState: HardState | undefined;
    const prev = this.#prevHard;
    if (
      prev.term !== r.term || prev.vote !== r.vote || prev.commit !== r.commit
    ) {
      // Term and vote must be durable before any vote or ack leaves (§5.1).
      if (prev.term !== r.term || prev.vote !== r.vote) mustSync = true;
      hardState = { term: r.term, vote: r.vote, commit: r.commit };
      log.setHardState(hardState);
      this.#prevHard = hardState;
    }

    const lastIndex = log.lastIndex();
    let entries: Entry[] = [];
    const from = Math.max(r.unstableFrom, log.firstIndex());
    if (from <= lastIndex) entries = log.entries(from, lastIndex + 1);
    if (entries.length > 0 || r.logChanged) mustSync = true;
    r.unstableFrom = lastIndex + 1;
    r.logChanged = false;

    const snapshot = r.snapshotToRestore;
    r.snapshotToRestore = undefined;
    if (snapshot !== undefined) mustSync = true;

    let appliedTo = r.applied;
    if (snapshot !== undefined && snapshot.meta.index > appliedTo) {
      appliedTo = snapshot.meta.index;
    }
    let committedEntries: Entry[] = [];
    const lastCommitted = Math.min(r.commit, lastIndex);
    if (lastCommitted > appliedTo) {
      committedEntries = log.entries(
        appliedTo + 1,
        lastCommitted + 1,
        r.cfg.maxApplyBytesPerReady,
      );
      appliedTo = committedEntries[committedEntries.length - 1].index;
      for (let i = 0; i < committedEntries.length; i++) {
        if (committedEntries[i].kind === "normal") {
          this.#hintBytes += committedEntries[i].data.byteLength;
        }
      }
      if (r.role === "leader" && r.uncommittedBytes > 0) {
        let bytes = 0;
        for (let i = 0; i < committedEntries.length; i++) {
          bytes += committedEntries[i].data.byteLength;
        }
        r.uncommittedBytes = bytes >= r.uncommittedBytes
          ? 0
          : r.uncommittedBytes - bytes;
      }
    }

    const readStates: ReadState[] = [];
    if (r.readStates.length > 0) {
      const keep: ReadState[] = [];
      for (const rs of r.readStates) {
        (rs.index <= appliedTo ? readStates : keep).push(rs);
      }
      r.readStates = keep;
    }

    let membership: Membership | undefined;
    if (r.membershipChanged) {
      r.membershipChanged = false;
      membership = copyMembership(r.membership);
    }

    if (snapshot !== undefined) this.#hintBytes = 0;
    this.#handedTo = appliedTo;
    // One snapshot policy: by entries or by bytes, whichever comes first.
    // A hint not acted on is given again a threshold later.
    let snapshotHint: number | undefined;
    const stretch = 1 + this.#hintJitter;
    const threshold = Math.ceil(r.cfg.snapshotThreshold * stretch);
    const base = Math.max(log.snapshotMeta().index, this.#lastHint);
    const byBytes = r.cfg.snapshotThresholdBytes > 0 &&
      this.#hintBytes >= r.cfg.snapshotThresholdBytes * stretch;
    if (
      appliedTo > base &&
      ((threshold > 0 && appliedTo - base >= threshold) || byBytes)
    ) {
      snapshotHint = appliedTo;
      this.#lastHint = appliedTo;
      this.#hintBytes = 0;
      this.#drawHintJitter();
    }

    const caughtUp = r.caughtUp && !r.caughtUpReported;
    if (caughtUp) r.caughtUpReported = true;

    const messages = r.msgs;
    const persistedMessages = r.msgsAfterSync;
    r.msgs = [];
    r.msgsAfterSync = [];
    const rd: Ready = {
      softState,
      hardState,
      entries,
      snapshot,
      mustSync,
      messages,
      persistedMessages,
      committedEntries,
      readStates,
      membership,
      snapshotHint,
      caughtUp,
    };
    this.#outstanding = {
      ready: rd,
      lastIndex,
      lastTerm: log.lastTerm(),
      appliedTo,
    };
    return rd;
  }

  /**
   * Reports that `rd` was handled: its log state is durable (if `mustSync`)
   * and its committed entries are applied.
   *
   * @throws {ReadyProtocolError} when `rd` is not the outstanding Ready.
   */
  advance(rd: Ready): void {
    const out = this.#outstanding;
    if (out === undefined || out.ready !== rd) {
      throw new ReadyProtocolError(
        "advance() must be given the Ready last returned by ready()",
      );
    }
    this.#outstanding = undefined;
    const r = this.#r;
    if (
      out.lastIndex > r.stableIndex &&
      r.log.termAt(out.lastIndex) === out.lastTerm
    ) {
      r.stableIndex = out.lastIndex;
    }
    if (out.appliedTo > r.applied) r.applied = out.appliedTo;
    if (r.role === "leader" && maybeCommit(r)) afterCommit(r);
  }
}
