/**
 * Leader election (§5.2, §5.4.1), pre-vote (thesis §9.6), leader
 * stickiness (thesis §4.2.3) and leadership transfer (thesis §3.10).
 *
 * @module
 */

import type {
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from "./messages.ts";
import type { Raft } from "./raft.ts";
import { bcastAppend, sendAppend } from "./replication.ts";

/** How an election starts. */
export type CampaignKind = "preVote" | "election" | "transfer";

/**
 * Starts an election. A pre-vote round asks whether a real election could be
 * won, without touching the term; a transfer election skips the pre-vote and
 * overrides the voters' stickiness (the leader asked for it).
 */
export function campaign(r: Raft, kind: CampaignKind): void {
  if (!r.promotable() || r.role === "leader") return;
  // A repaired node campaigns only once caught up (catch_up.ts, rule 1).
  if (r.catchUp !== undefined) return;
  let voteTerm: number;
  if (kind === "preVote") {
    r.becomePreCandidate();
    voteTerm = r.term + 1;
  } else {
    r.becomeCandidate();
    voteTerm = r.term;
  }
  r.votes.set(r.id, true);
  if (r.voteResult() === "won") {
    // A single-voter cluster wins at once.
    if (kind === "preVote") campaign(r, "election");
    else becomeLeaderAndAnnounce(r);
    return;
  }
  const lastLogIndex = r.log.lastIndex();
  const lastLogTerm = r.log.lastTerm();
  const preVote = kind === "preVote";
  const transfer = kind === "transfer";
  for (const to of r.voterIds) {
    if (to === r.id) continue;
    r.send({
      type: "RequestVote",
      from: r.id,
      to,
      term: voteTerm,
      preVote,
      lastLogIndex,
      lastLogTerm,
      transfer,
    });
  }
}

/** Follower/candidate timeout: start a pre-vote (or a real election without pre-vote). */
export function hup(r: Raft): void {
  if (r.role === "leader") return;
  campaign(r, r.cfg.preVote ? "preVote" : "election");
}

/** Becomes leader and sends the first append (carrying the §8 no-op) to everyone. */
export function becomeLeaderAndAnnounce(r: Raft): void {
  r.becomeLeader();
  bcastAppend(r);
}

/**
 * Answers a (pre-)vote request. Term handling has been done by the caller;
 * here `m.term >= r.term`, or it is a pre-vote for a future term.
 */
export function handleRequestVote(r: Raft, m: RequestVote): void {
  // §5.2: at most one vote per term; a pre-vote for a later term is free.
  const canVote = r.vote === m.from ||
    (r.vote === 0 && r.leader === 0) ||
    (m.preVote && m.term > r.term);
  // §5.4.1: only for a candidate whose log is at least as up-to-date.
  const lastTerm = r.log.lastTerm();
  const upToDate = m.lastLogTerm > lastTerm ||
    (m.lastLogTerm === lastTerm && m.lastLogIndex >= r.log.lastIndex());
  // A repaired node grants nothing until caught up (catch_up.ts, rule 1).
  const granted = canVote && upToDate && r.catchUp === undefined;
  if (granted && !m.preVote) {
    r.electionElapsed = 0;
    r.vote = m.from;
  }
  const resp: RequestVoteResponse = {
    type: "RequestVoteResponse",
    from: r.id,
    to: m.from,
    // A granted pre-vote echoes the future term; a rejection tells our own.
    term: granted ? m.term : r.term,
    preVote: m.preVote,
    granted,
  };
  r.send(resp);
}

/** Counts a vote on a (pre-)candidate. */
export function handleVoteResponse(r: Raft, m: RequestVoteResponse): void {
  if ((r.role === "precandidate") !== m.preVote) return;
  if (!r.voterIds.includes(m.from)) return;
  r.votes.set(m.from, m.granted);
  switch (r.voteResult()) {
    case "won":
      if (r.role === "precandidate") campaign(r, "election");
      else becomeLeaderAndAnnounce(r);
      return;
    case "lost":
      r.becomeFollower(r.term, 0);
      return;
    case "pending":
      return;
  }
}

/** The target of a transfer campaigns at once (thesis §3.10). */
export function handleTimeoutNow(r: Raft, _m: TimeoutNow): void {
  if (!r.promotable() || r.catchUp !== undefined) return;
  campaign(r, "transfer");
}

/** Leader: sends TimeoutNow to the transfer target (its log is caught up). */
export function sendTimeoutNow(r: Raft, to: number): void {
  r.send({ type: "TimeoutNow", from: r.id, to, term: r.term });
}

/**
 * Leader: starts a transfer to `to` (validated by the caller). If the target
 * is caught up TimeoutNow leaves at once; otherwise the target is first sent
 * the missing entries and TimeoutNow follows its acknowledgement.
 */
export function startTransfer(r: Raft, to: number): void {
  r.leadTransferee = to;
  // Abandoned when an election timeout passes without success.
  r.electionElapsed = 0;
  r.readOnly.leaseDisabled = true;
  const pr = r.progress.get(to);
  if (pr !== undefined && pr.match === r.log.lastIndex()) sendTimeoutNow(r, to);
  else sendAppend(r, to, true);
}
