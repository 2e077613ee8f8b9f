/**
 * Event dispatch: logical time (`tick`) and messages (`step`), with the
 * term rules common to every message (§5.1: a newer term turns a node into
 * a follower; messages of older terms are answered or ignored).
 *
 * @module
 */

import {
  handleRequestVote,
  handleTimeoutNow,
  handleVoteResponse,
  hup,
} from "./election.ts";
import {
  NotLeaderError,
  OverloadedError,
  TransferInProgressError,
} from "./errors.ts";
import { isMember } from "./membership.ts";
import type { Message, Removed } from "./messages.ts";
import type { Raft } from "./raft.ts";
import { leaderReadIndex } from "./read_index.ts";
import {
  bcastHeartbeat,
  handleAppendEntries,
  handleAppendResponse,
  handleHeartbeat,
  handleHeartbeatResponse,
} from "./replication.ts";
import {
  handleInstallSnapshot,
  handleInstallSnapshotResponse,
  tickSnapshots,
} from "./snapshot.ts";

/** Advances logical time by one tick: election timeouts, heartbeats, check-quorum. */
export function tickRaft(r: Raft): void {
  if (r.role === "leader") {
    tickLeader(r);
    return;
  }
  r.electionElapsed++;
  if (r.promotable() && r.electionElapsed >= r.randomizedElectionTimeout) {
    r.electionElapsed = 0;
    hup(r);
  }
}

function tickLeader(r: Raft): void {
  r.leaderTicks++;
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.cfg.electionTick) {
    r.electionElapsed = 0;
    if (r.cfg.checkQuorum) {
      // Check-quorum: a leader that heard from no quorum for an election
      // timeout steps down (thesis §6.2).
      if (!r.quorumActive()) {
        r.becomeFollower(r.term, 0);
        return;
      }
      for (const pr of r.progress.values()) pr.recentActive = false;
    }
    // A transfer that has not completed within an election timeout is abandoned.
    if (r.leadTransferee !== 0) r.leadTransferee = 0;
  }
  tickSnapshots(r);
  if (r.heartbeatElapsed >= r.cfg.heartbeatTick) {
    r.heartbeatElapsed = 0;
    bcastHeartbeat(r);
  }
}

/** Handles a message from a peer; messages not addressed to this node are ignored. */
export function stepRaft(r: Raft, m: Message): void {
  if (m.to !== r.id) return;
  if (
    r.role === "leader" && sentByFollowerSide(m) &&
    !isMember(r.membership, m.from) &&
    r.configIndex <= r.commit
  ) {
    // A node the committed configuration no longer holds is told so, and
    // its message is dropped (it must not disturb the cluster). Only a
    // committed removal is announced: an uncommitted one may still be undone.
    sendRemoved(r, m.from);
    return;
  }
  // Requests relayed between nodes are not Raft RPCs: no term rules.
  switch (m.type) {
    case "Removed":
      onRemoved(r, m);
      return;
    case "Propose":
      onForwardedProposal(r, m.commands);
      return;
    case "ReadIndexRequest":
      // A follower's read: lease reads only where the leader is configured for them.
      if (r.role === "leader") {
        leaderReadIndex(r, m.context, m.from, r.cfg.leaseReads);
      } else {
        r.send({
          type: "ReadIndexResponse",
          from: r.id,
          to: m.from,
          term: r.term,
          context: m.context,
          index: 0,
          success: false,
        });
      }
      return;
    case "ReadIndexResponse":
      if (m.success) {
        r.readStates.push({ index: m.index, context: m.context });
      }
      return;
  }
  if (m.term > r.term) {
    if (m.type === "RequestVote") {
      // Leader stickiness (thesis §4.2.3): while we hear from a live
      // leader, ignore (pre-)votes unless the leader itself asked for the
      // election (transfer).
      const inLease = r.cfg.checkQuorum && r.leader !== 0 &&
        r.electionElapsed < r.cfg.electionTick;
      if (inLease && !m.transfer) return;
      if (!m.preVote) r.becomeFollower(m.term, 0);
    } else if (m.type === "RequestVoteResponse" && m.preVote && m.granted) {
      // A granted pre-vote carries the future term: nothing to adopt.
    } else if (
      m.type === "AppendEntries" || m.type === "Heartbeat" ||
      m.type === "InstallSnapshot"
    ) {
      r.becomeFollower(m.term, m.from);
    } else {
      r.becomeFollower(m.term, 0);
    }
  } else if (m.term < r.term) {
    if (
      (r.cfg.checkQuorum || r.cfg.preVote) &&
      (m.type === "AppendEntries" || m.type === "Heartbeat")
    ) {
      // Tell a stale leader about the newer term so it steps down; without
      // this it could stay leader forever under pre-vote/check-quorum.
      r.send({
        type: "AppendEntriesResponse",
        from: r.id,
        to: m.from,
        term: r.term,
        success: false,
        matchIndex: 0,
        rejectIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
      });
    } else if (m.type === "RequestVote" && m.preVote) {
      r.send({
        type: "RequestVoteResponse",
        from: r.id,
        to: m.from,
        term: r.term,
        preVote: true,
        granted: false,
      });
    }
    return;
  }
  switch (m.type) {
    case "RequestVote":
      handleRequestVote(r, m);
      return;
    case "RequestVoteResponse":
      if (r.role === "candidate" || r.role === "precandidate") {
        handleVoteResponse(r, m);
      }
      return;
    case "AppendEntries":
    case "Heartbeat":
    case "InstallSnapshot":
      if (r.role === "leader") return;
      if (r.role !== "follower") r.becomeFollower(m.term, m.from);
      r.electionElapsed = 0;
      r.leader = m.from;
      if (m.type === "AppendEntries") handleAppendEntries(r, m);
      else if (m.type === "Heartbeat") handleHeartbeat(r, m);
      else handleInstallSnapshot(r, m);
      return;
    case "AppendEntriesResponse":
      if (r.role === "leader") handleAppendResponse(r, m);
      return;
    case "HeartbeatResponse":
      if (r.role === "leader") handleHeartbeatResponse(r, m);
      return;
    case "InstallSnapshotResponse":
      if (r.role === "leader") handleInstallSnapshotResponse(r, m);
      return;
    case "TimeoutNow":
      if (r.role === "follower") handleTimeoutNow(r, m);
      return;
    default: {
      const never: never = m;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}

/** Messages a follower, candidate or relaying node sends (never a leader's own kinds). */
function sentByFollowerSide(m: Message): boolean {
  switch (m.type) {
    case "RequestVote":
    case "RequestVoteResponse":
    case "AppendEntriesResponse":
    case "HeartbeatResponse":
    case "InstallSnapshotResponse":
    case "ReadIndexRequest":
    case "Propose":
      return true;
    default:
      return false;
  }
}

/** Leader: tells `to` it was removed, at most once per election timeout. */
function sendRemoved(r: Raft, to: number): void {
  const last = r.removedSentAt.get(to);
  if (last !== undefined && r.leaderTicks - last < r.cfg.electionTick) return;
  // Bounded: a flood of strangers cannot grow the map without limit.
  if (r.removedSentAt.size >= 1024) r.removedSentAt.clear();
  r.removedSentAt.set(to, r.leaderTicks);
  r.send({
    type: "Removed",
    from: r.id,
    to,
    term: r.term,
    configIndex: r.configIndex,
  });
}

/**
 * A leader said this node was removed: believed from the leader this node
 * knows, or from any node in a term at least its own (a stale node of an
 * older term cannot remove anyone).
 */
function onRemoved(r: Raft, m: Removed): void {
  if (m.from !== r.leader && m.term < r.term) return;
  r.markRemoved(m.configIndex ?? r.configIndex);
  if (r.removed && r.role !== "follower") r.becomeFollower(r.term, 0);
}

/** Throws when a leader may not take `bytes` more of proposals now. */
export function checkAccepting(r: Raft, bytes: number): void {
  if (r.leadTransferee !== 0) {
    throw new TransferInProgressError(r.leadTransferee);
  }
  const max = r.cfg.maxUncommittedBytes;
  // A single proposal larger than the cap is let through when nothing is
  // pending; an empty one (it adds no bytes) is never refused.
  if (
    max > 0 && bytes > 0 && r.uncommittedBytes > 0 &&
    r.uncommittedBytes + bytes > max
  ) {
    throw new OverloadedError(r.uncommittedBytes, max);
  }
}

/** A follower forwards proposals to the leader it knows (or throws NotLeaderError). */
export function forwardProposals(r: Raft, commands: Uint8Array[]): void {
  if (!r.cfg.forwardProposals || r.leader === 0) {
    throw new NotLeaderError(r.leader);
  }
  r.send({
    type: "Propose",
    from: r.id,
    to: r.leader,
    term: r.term,
    commands,
  });
}

function onForwardedProposal(r: Raft, commands: Uint8Array[]): void {
  // Best effort: dropped when not leader, transferring or overloaded.
  if (r.role !== "leader" || commands.length === 0) return;
  let bytes = 0;
  for (let i = 0; i < commands.length; i++) bytes += commands[i].byteLength;
  try {
    checkAccepting(r, bytes);
  } catch {
    return;
  }
  for (let i = 0; i < commands.length; i++) {
    r.appendLeaderEntry("normal", commands[i]);
  }
}
