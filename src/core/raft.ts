/**
 * The internal state of one Raft node and its role transitions. Message
 * handlers live beside it (election.ts, replication.ts, snapshot.ts,
 * read_index.ts); {@linkcode RaftNode} in node.ts is the public facade.
 * Not exported from the package: fields are public only to these modules.
 *
 * @module
 */

import type { Entry, RaftLog, SnapshotMeta } from "../log/raft_log.ts";
import type { ResolvedConfig } from "./config.ts";
import {
  applyMembershipChange,
  decodeMembership,
  encodeMembership,
  isJoint,
  isLearner,
  isMember,
  isVoter,
  members,
  type Membership,
  simpleMembership,
} from "./membership.ts";
import { type Message, needsDurability } from "./messages.ts";
import { Progress } from "./progress.ts";
import type { AckedIndexer, VoteLookup } from "./quorum.ts";
import { jointCommitted, jointVoteResult, type VoteResult } from "./quorum.ts";
import { ReadOnly, type ReadState } from "./read_index.ts";

/** Role of a node. `learner` is reported by `status()` for a follower that is a learner. */
export type Role = "follower" | "precandidate" | "candidate" | "leader";

/** A snapshot being received in chunks. */
export interface IncomingSnapshot {
  /** Snapshot index. */
  index: number;
  /** Snapshot term. */
  term: number;
  /** Chunks received so far. */
  chunks: Uint8Array[];
  /** Bytes received so far. */
  received: number;
}

/**
 * A repaired node's debt (`RaftLog.needsCatchUp`): the highest log index and
 * term it may have acknowledged, or voted in, before its log lost records.
 */
export interface CatchUpMarker {
  /** Highest index the node may have acknowledged. */
  index: number;
  /** Highest term the node may have seen or voted in. */
  term: number;
}

/** Raft state of one node (Figure 2 plus the bookkeeping of a practical implementation). */
export class Raft {
  readonly cfg: ResolvedConfig;
  readonly log: RaftLog;
  readonly random: () => number;
  readonly id: number;

  // Persistent state (§5.1), written to the log's hard state at ready().
  term: number;
  vote: number;
  /** Highest index known committed; never decreases. */
  commit: number;

  role: Role = "follower";
  /** Known leader of `term`, 0 when unknown. */
  leader = 0;

  // Membership (§6): the latest configuration in the log, in effect once appended.
  membership: Membership;
  /** Index of the entry (or snapshot) holding `membership`; 0 for the bootstrap configuration. */
  configIndex: number;
  /** Every voter of both halves, without duplicates. */
  voterIds: number[] = [];
  /** Every member except this node. */
  peerIds: number[] = [];
  /** Set when the configuration changed since the last Ready. */
  membershipChanged = false;
  /** The configuration at or below `commit` (what removal is judged by). */
  committedMembership: Membership;
  /** Index of `committedMembership` (0: bootstrap). */
  committedConfigIndex = 0;
  /** Config entries above `commit`, ascending (they commit in order). */
  pendingConfigs: { index: number; membership: Membership }[] = [];
  /** This node was a member once (bootstrap or a committed configuration). */
  wasMember = false;
  /**
   * Set when a leader told this node it was removed (`Removed`); cleared when a
   * committed configuration newer than `removedAt` contains it again.
   */
  removedByMessage = false;
  /** The leader's config index of the last `Removed` notice. */
  removedAt = 0;
  /** Removed from the cluster: never campaigns, refuses proposals and reads. */
  removed = false;
  /** Leader only: leader tick of the last `Removed` sent to each non-member. */
  readonly removedSentAt = new Map<number, number>();

  /** Leader only: replication progress of every member except this node. */
  readonly progress = new Map<number, Progress>();
  /** Candidate only: votes received. */
  readonly votes = new Map<number, boolean>();

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** Ticks since this node became leader (lease clock). */
  leaderTicks = 0;
  /** Leadership transfer target, 0 when none (thesis §3.10). */
  leadTransferee = 0;
  /** Leader only: bytes of uncommitted entry data (proposal flow control). */
  uncommittedBytes = 0;
  /** Leader only: entries appended but not yet broadcast (batching). */
  pendingBroadcast = false;

  /** Highest index known durable in the local log (what this node may count for itself). */
  stableIndex: number;
  /** Set when the log was mutated since the last Ready (it must be synced). */
  logChanged = false;
  /** Lowest index appended or truncated since the last Ready. */
  unstableFrom: number;
  /** Highest index handed to the application (applied once the Ready is advanced). */
  applied: number;

  readonly readOnly = new ReadOnly();
  /** Read states waiting for the application to apply their index. */
  readStates: ReadState[] = [];
  /** Snapshot received from a leader, to hand to the application. */
  snapshotToRestore: { meta: SnapshotMeta; data: Uint8Array } | undefined =
    undefined;
  incomingSnapshot: IncomingSnapshot | undefined = undefined;

  /**
   * Set while this node must catch up after a repair (see catch_up.ts): it
   * grants no vote or pre-vote, never campaigns and ignores TimeoutNow.
   * Cleared only by `caughtUpDurable()`, once the log's marker is cleared.
   */
  catchUp: CatchUpMarker | undefined = undefined;
  /** The catch-up condition held (reported in a Ready); voting waits for durability. */
  caughtUp = false;
  /** `caughtUp` was handed out in a Ready. */
  caughtUpReported = false;
  /** Term and leader last sent a response carrying `catchUpIndex` (catch_up.ts). */
  catchUpToldTerm = 0;
  catchUpToldLeader = 0;

  /** Messages that may leave at once. */
  msgs: Message[] = [];
  /** Messages that may leave only after the log is synced. */
  msgsAfterSync: Message[] = [];

  /** Lookup adapters, allocated once (quorum functions take interfaces, not closures). */
  readonly matchIndexer: AckedIndexer;
  readonly voteLookup: VoteLookup;
  readonly activeLookup: VoteLookup;
  readonly readAckIndexer: AckedIndexer;

  constructor(
    cfg: ResolvedConfig,
    log: RaftLog,
    random: () => number,
    applied?: number,
    catchUp?: CatchUpMarker,
  ) {
    this.cfg = cfg;
    this.log = log;
    this.random = random;
    this.id = cfg.id;
    const hs = log.hardState();
    this.term = hs.term;
    this.vote = hs.vote;
    if (catchUp !== undefined) {
      this.catchUp = { index: catchUp.index, term: catchUp.term };
      if (catchUp.term > this.term) {
        // The repair may have cut a hard state that raised the term: without
        // it this node would accept (and acknowledge) a deposed leader of a
        // lower term, which could then commit an entry the newer leader
        // lacks. Its vote in that term is unknown: none is granted until
        // caught up (catch_up.ts).
        this.term = catchUp.term;
        this.vote = 0;
      }
    }
    const snap = log.snapshotMeta();
    this.commit = Math.max(hs.commit, snap.index);
    if (this.commit > log.lastIndex()) this.commit = log.lastIndex();
    // What a log holds when opened is what survived: it is durable.
    this.stableIndex = log.lastIndex();
    this.unstableFrom = log.lastIndex() + 1;
    this.applied = Math.max(applied ?? snap.index, snap.index);
    if (this.applied > this.commit) this.commit = this.applied;
    const found = this.membershipAt(log.lastIndex());
    this.membership = found.membership;
    this.configIndex = found.index;
    this.matchIndexer = {
      ackedIndex: (id) =>
        id === this.id ? this.stableIndex : this.progress.get(id)?.match,
    };
    this.voteLookup = { vote: (id) => this.votes.get(id) };
    this.activeLookup = {
      vote: (id) =>
        id === this.id || this.progress.get(id)?.recentActive === true,
    };
    this.readAckIndexer = {
      ackedIndex: (id) => this.readOnly.ackedRound(id, this.id),
    };
    this.committedMembership = this.membership;
    this.setMembership(this.membership, this.configIndex);
    this.membershipChanged = false;
    this.wasMember = cfg.voters.includes(this.id) ||
      cfg.learners.includes(this.id) || this.#memberOfCommittedLog();
    this.resetCommittedMembership();
    this.becomeFollower(this.term, 0);
  }

  /** True when a configuration at or below `commit` in the log or snapshot contains this node. */
  #memberOfCommittedLog(): boolean {
    const snap = this.log.snapshotMeta();
    if (
      snap.config.byteLength > 0 &&
      isMember(decodeMembership(snap.config), this.id)
    ) return true;
    const last = Math.min(this.commit, this.log.lastIndex());
    for (let i = this.log.firstIndex(); i <= last; i++) {
      const e = this.log.entry(i);
      if (
        e !== undefined && e.kind === "config" &&
        isMember(decodeMembership(e.data), this.id)
      ) return true;
    }
    return false;
  }

  /** Re-derives the committed and pending configurations from the log (start-up, snapshot install). */
  resetCommittedMembership(): void {
    const found = this.membershipAt(this.commit);
    this.committedMembership = found.membership;
    this.committedConfigIndex = found.index;
    this.pendingConfigs = [];
    const last = this.log.lastIndex();
    for (
      let i = Math.max(this.commit + 1, this.log.firstIndex());
      i <= last;
      i++
    ) {
      const e = this.log.entry(i);
      if (e !== undefined && e.kind === "config") {
        this.pendingConfigs.push({
          index: i,
          membership: decodeMembership(e.data),
        });
      }
    }
    this.updateRemoved();
  }

  /** Re-evaluates `removed` from the committed configuration and any Removed notice. */
  updateRemoved(): void {
    const inCommitted = isMember(this.committedMembership, this.id);
    if (inCommitted) {
      this.wasMember = true;
      if (
        this.removedByMessage && this.committedConfigIndex > this.removedAt
      ) {
        this.removedByMessage = false;
      }
    }
    // A node its latest (uncommitted) configuration holds again is being
    // re-added, not removed.
    this.removed = this.removedByMessage ||
      (this.wasMember && !inCommitted && !isMember(this.membership, this.id));
  }

  /** A leader said this node is not in its configuration `configIndex`. */
  markRemoved(configIndex: number): void {
    if (
      isMember(this.committedMembership, this.id) &&
      this.committedConfigIndex >= configIndex && configIndex > 0
    ) {
      // Stale notice: a configuration at least as new contains us again.
      return;
    }
    this.removedByMessage = true;
    if (configIndex > this.removedAt) this.removedAt = configIndex;
    this.updateRemoved();
  }

  // ---- membership ----

  /**
   * The configuration in effect at `index`: the latest config entry at or
   * below it, else the snapshot's, else the bootstrap configuration.
   */
  membershipAt(index: number): { membership: Membership; index: number } {
    const first = this.log.firstIndex();
    for (let i = Math.min(index, this.log.lastIndex()); i >= first; i--) {
      const e = this.log.entry(i);
      if (e !== undefined && e.kind === "config") {
        return { membership: decodeMembership(e.data), index: i };
      }
    }
    const snap = this.log.snapshotMeta();
    if (snap.config.byteLength > 0) {
      return { membership: decodeMembership(snap.config), index: snap.index };
    }
    return {
      membership: simpleMembership(
        this.cfg.voters,
        this.cfg.learners,
        this.cfg.nodes,
      ),
      index: 0,
    };
  }

  /** Puts a configuration in effect (§6: as soon as it is appended). */
  setMembership(m: Membership, index: number): void {
    this.membership = m;
    this.configIndex = index;
    this.membershipChanged = true;
    const voters = new Set([...m.voters, ...m.outgoing]);
    this.voterIds = [...voters].sort((a, b) => a - b);
    this.peerIds = members(m).filter((id) => id !== this.id);
    if (this.role === "leader") {
      for (const id of [...this.progress.keys()]) {
        if (!this.peerIds.includes(id)) this.progress.delete(id);
      }
      for (const id of this.peerIds) {
        const pr = this.progress.get(id);
        const learner = isLearner(m, id);
        if (pr === undefined) {
          const p = this.newProgress(id);
          p.isLearner = learner;
          // A member just added counts as active, so check-quorum does not
          // depose the leader before it could answer.
          p.recentActive = true;
          this.progress.set(id, p);
        } else {
          pr.isLearner = learner;
        }
      }
      if (this.leadTransferee !== 0 && !voters.has(this.leadTransferee)) {
        this.leadTransferee = 0;
      }
    }
    this.updateRemoved();
  }

  /** Re-derives the configuration after the log's tail was truncated or replaced. */
  refreshMembership(): void {
    const found = this.membershipAt(this.log.lastIndex());
    if (found.index !== this.configIndex) {
      this.setMembership(found.membership, found.index);
    }
  }

  /**
   * True when this node may campaign: it is a voter of its latest
   * configuration, or of the committed one while a change that removes it is
   * still uncommitted. (A leader removed by an uncommitted configuration may
   * have stepped down by check-quorum; it may hold the only complete log, so
   * it must still be able to win an election among the new voters and
   * finish the change.)
   */
  promotable(): boolean {
    if (this.removed) return false;
    if (isVoter(this.membership, this.id)) return true;
    if (this.configIndex <= this.commit) return false;
    return isVoter(this.membershipAt(this.commit).membership, this.id);
  }

  /** Leader: has committed an entry of its current term (§8: reads and changes are safe). */
  leaderReady(): boolean {
    return this.role === "leader" && this.log.termAt(this.commit) === this.term;
  }

  /** True when this node is a learner. */
  isLearner(): boolean {
    return isLearner(this.membership, this.id);
  }

  // ---- output ----

  /** Queues a message; the ones that need durability wait for the sync. */
  send(m: Message): void {
    if (needsDurability(m)) this.msgsAfterSync.push(m);
    else this.msgs.push(m);
  }

  // ---- log ----

  /** Appends entries that continue the log, tracking what is not yet durable. */
  appendToLog(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    this.log.append(entries);
    this.logChanged = true;
    if (first < this.unstableFrom) this.unstableFrom = first;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i].kind === "config") {
        const m = decodeMembership(entries[i].data);
        this.setMembership(m, entries[i].index);
        this.pendingConfigs.push({ index: entries[i].index, membership: m });
      }
    }
  }

  /** Removes a conflicting suffix from `from` (never committed entries: §5.3). */
  truncateLog(from: number): void {
    if (from <= this.commit) {
      throw new Error(
        `raft safety violation: asked to truncate committed entry ${from} (commit ${this.commit})`,
      );
    }
    this.log.truncate(from);
    this.logChanged = true;
    if (from < this.unstableFrom) this.unstableFrom = from;
    if (this.stableIndex >= from) this.stableIndex = from - 1;
    if (this.configIndex >= from) this.refreshMembership();
    const pending = this.pendingConfigs;
    if (pending.length > 0 && pending[pending.length - 1].index >= from) {
      this.pendingConfigs = pending.filter((p) => p.index < from);
    }
  }

  /** Advances the commit index; it never goes backwards. */
  commitTo(index: number): boolean {
    if (index <= this.commit) return false;
    this.commit = index;
    const pending = this.pendingConfigs;
    if (pending.length > 0 && pending[0].index <= index) {
      let n = 0;
      while (n < pending.length && pending[n].index <= index) n++;
      this.committedMembership = pending[n - 1].membership;
      this.committedConfigIndex = pending[n - 1].index;
      pending.splice(0, n);
      this.updateRemoved();
    }
    return true;
  }

  // ---- quorum ----

  /** Highest index held by a (joint) quorum, counting this node only for durable entries. */
  quorumMatch(): number {
    const c = jointCommitted(
      this.membership.voters,
      this.membership.outgoing,
      this.matchIndexer,
    );
    return c === Infinity ? 0 : c;
  }

  /** Tally of the current election. */
  voteResult(): VoteResult {
    return jointVoteResult(
      this.membership.voters,
      this.membership.outgoing,
      this.voteLookup,
    );
  }

  /** Whether a quorum was heard from in the last election timeout (check-quorum). */
  quorumActive(): boolean {
    return jointVoteResult(
      this.membership.voters,
      this.membership.outgoing,
      this.activeLookup,
    ) ===
      "won";
  }

  // ---- roles ----

  newProgress(id: number): Progress {
    return new Progress(
      this.log.lastIndex() + 1,
      isLearner(this.membership, id),
      this.cfg.maxInflightMessages,
      this.cfg.maxInflightBytes,
    );
  }

  resetRandomizedElectionTimeout(): void {
    const e = this.cfg.electionTick;
    this.randomizedElectionTimeout = e + Math.floor(this.random() * e);
  }

  /** Clears per-term volatile state. */
  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = 0;
    }
    this.leader = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = 0;
    this.votes.clear();
    this.progress.clear();
    this.readOnly.reset();
    this.uncommittedBytes = 0;
    this.pendingBroadcast = false;
    this.removedSentAt.clear();
  }

  becomeFollower(term: number, leader: number): void {
    this.reset(term);
    this.role = "follower";
    this.leader = leader;
  }

  becomePreCandidate(): void {
    if (this.role === "leader") {
      throw new Error("invalid transition leader -> precandidate");
    }
    // Pre-vote changes neither term nor vote (thesis §9.6).
    this.votes.clear();
    this.role = "precandidate";
    this.leader = 0;
  }

  becomeCandidate(): void {
    if (this.role === "leader") {
      throw new Error("invalid transition leader -> candidate");
    }
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
  }

  becomeLeader(): void {
    if (this.role === "follower") {
      throw new Error("invalid transition follower -> leader");
    }
    this.reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    this.leaderTicks = 0;
    for (const id of this.peerIds) this.progress.set(id, this.newProgress(id));
    // §8: a new leader commits a blank entry of its term at once, so that
    // entries of earlier terms commit (§5.4.2) and reads can be served.
    const index = this.log.lastIndex() + 1;
    this.appendToLog([{
      index,
      term: this.term,
      kind: "normal",
      data: new Uint8Array(0),
    }]);
    this.pendingBroadcast = true;
  }

  /**
   * Leader: appends one entry of the current term; it is broadcast at the
   * next Ready (batching). Returns its index.
   */
  appendLeaderEntry(kind: "normal" | "config", data: Uint8Array): number {
    const index = this.log.lastIndex() + 1;
    this.appendToLog([{ index, term: this.term, kind, data }]);
    this.uncommittedBytes += data.byteLength;
    this.pendingBroadcast = true;
    return index;
  }

  /** Leader: appends the configuration that leaves the current joint one (§6). */
  proposeLeaveJoint(): number {
    const next = applyMembershipChange(this.membership, { type: "leaveJoint" });
    return this.appendLeaderEntry("config", encodeMembership(next));
  }

  /** True when the configuration is joint and should be left now. */
  shouldAutoLeave(): boolean {
    return isJoint(this.membership) && this.membership.autoLeave &&
      this.commit >= this.configIndex;
  }
}
