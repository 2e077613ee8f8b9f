/**
 * Catch-up after a repair: a node whose log lost records it may have
 * acknowledged (`WalLog.repair` cut a damaged tail and left the marker
 * `RaftLog.needsCatchUp = { index, term }`) rejoins without voting until it
 * holds the leader's log again.
 *
 * Raft's safety rests on stable storage (§5.1, Figure 2): an acknowledged
 * entry and a granted vote are never forgotten. A repaired node breaks that
 * promise, so it is treated like a server that joins with an empty log and
 * must not take part in elections before it has caught up (Ongaro's thesis
 * §4.2.1, catching up new servers; §4.2.3, disruptive servers; and the
 * raft-dev discussions of recovering a server that lost its log: it must not
 * vote again in a term it may have voted in, nor count towards a quorum for
 * entries it no longer holds). etcd's raft has no repair; it relies on
 * storage never losing synced data.
 *
 * Rules while the marker is set (follower side, this node):
 *
 * 1. No vote and no pre-vote is granted, whatever the log comparison says,
 *    and the node never campaigns (ticks, `campaign()`, TimeoutNow). It may
 *    have voted for someone else in a term up to `term`, and its short log
 *    would make it vote for candidates lacking entries it acknowledged. With
 *    it out of every election quorum, each election quorum still meets each
 *    commit quorum in a node that really holds the entry (|Q| + |Q'| > n and
 *    this node is not in Q'), so Leader Completeness (§5.4) holds even for a
 *    commit that counted its lost acknowledgement.
 * 2. Its term starts at least at `term` (raft.ts), so it rejects a deposed
 *    leader of a lower term it may have already turned away.
 * 3. It accepts entries and snapshots from a leader, and answers appends
 *    with `catchUpIndex` set (below). The first heartbeat of a leader (or
 *    one whose commit index is beyond its log) is also answered with such
 *    an append response, acknowledging only its commit index: an idle
 *    leader that believes it caught up would otherwise never learn.
 * 4. It is caught up once it accepted an append (or installed a snapshot)
 *    from a leader of term ≥ `term` and its log then matches that leader's
 *    through `max(index, leaderCommit)`: it again holds every entry it may
 *    have acknowledged that can be committed (Log Matching, Leader
 *    Completeness). If the leader's term is `term` itself, the node records
 *    a vote for that leader, so it can never give away the vote it may have
 *    cast in that term before the repair. The Ready reports `caughtUp`; the
 *    driver clears the log's marker durably (`log.markCaughtUp()`) and only
 *    then calls `caughtUpDurable()`: voting resumes. A crash in between
 *    leaves the marker set, which is safe.
 *
 * Leader side: a leader's `match` for the follower may be stale (it counted
 * entries the follower has lost; `match` otherwise never goes down). A
 * response carrying `catchUpIndex` is believed over any earlier
 * acknowledgement:
 *
 * - a rejection sets `match` to 0 and probes from the rejected index;
 * - a success below `match` lowers `match` to it and probes after it;
 * - until a response proves the follower holds the log through
 *   `catchUpIndex`, a success without the field at or below it is ignored:
 *   it may be an acknowledgement sent before the repair, delayed in the
 *   network (every such acknowledgement is at or below the marker's index).
 *
 * Before the leader hears from the repaired follower it cannot know, and
 * may still count the old `match`; rule 1 keeps that window safe.
 *
 * @module
 */

import type { AppendEntriesResponse } from "./messages.ts";
import type { Progress } from "./progress.ts";
import type { Raft } from "./raft.ts";

/**
 * Follower: the log now matches the leader of `r.term` (`r.leader`) through
 * `matched`; `leaderCommit` is the leader's commit index it sent. Marks the
 * node caught up when rule 4 holds.
 */
export function noteLeaderMatch(
  r: Raft,
  matched: number,
  leaderCommit: number,
): void {
  const marker = r.catchUp;
  if (marker === undefined || r.caughtUp || r.leader === 0) return;
  if (r.term < marker.term) return;
  if (matched < Math.max(marker.index, leaderCommit)) return;
  r.caughtUp = true;
  // The vote this node may have cast in `marker.term` is unknown: spend it
  // on the leader of that term, which is harmless (it already won).
  if (r.term === marker.term && r.vote === 0) r.vote = r.leader;
}

/**
 * Follower: the `catchUpIndex` to put in an append response; undefined
 * when not catching up, or once caught up (the leader's log through the
 * marker's index is held again, so earlier acknowledgements are true
 * again; the vote waits for durability all the same).
 */
export function responseCatchUpIndex(r: Raft): number | undefined {
  const marker = r.catchUp;
  if (marker === undefined || r.caughtUp) return undefined;
  return Math.max(marker.index, 1);
}

/**
 * Leader: applies the rules above to `pr` for response `m`. Returns false
 * when the response must be ignored; otherwise the normal handling follows.
 */
export function screenAppendResponse(
  pr: Progress,
  m: AppendEntriesResponse,
): boolean {
  const catchUpIndex = m.catchUpIndex;
  if (catchUpIndex !== undefined) {
    if (!m.success) {
      // The follower's log may end anywhere below: nothing is proven.
      pr.forgetMatch(0, m.rejectIndex + 1);
      pr.catchUpIndex = catchUpIndex;
    } else {
      if (m.matchIndex < pr.match) {
        pr.forgetMatch(m.matchIndex, m.matchIndex + 1);
      }
      pr.catchUpIndex = m.matchIndex >= catchUpIndex ? 0 : catchUpIndex;
    }
    return true;
  }
  if (pr.catchUpIndex === 0 || !m.success) return true;
  if (m.matchIndex > pr.catchUpIndex) {
    // Above anything acknowledged before the repair: a fresh answer.
    pr.catchUpIndex = 0;
    return true;
  }
  // Could be an acknowledgement from before the repair.
  return m.matchIndex <= pr.match;
}
