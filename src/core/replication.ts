/**
 * Log replication (§5.3) and commitment (§5.4.2): the leader's sending side
 * with flow control, the follower's AppendEntries handling, heartbeats, and
 * the commit rule.
 *
 * @module
 */

import { type Entry, entrySize } from "../log/raft_log.ts";
import {
  noteLeaderMatch,
  responseCatchUpIndex,
  screenAppendResponse,
} from "./catch_up.ts";
import { sendTimeoutNow } from "./election.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
} from "./messages.ts";
import type { Raft } from "./raft.ts";
import { onOwnTermCommit, onReadRoundAck } from "./read_index.ts";
import { sendSnapshot } from "./snapshot.ts";

/**
 * Sends the next AppendEntries to `to` if its progress allows it. With
 * `sendIfEmpty` false, only sends when there are entries to carry. Returns
 * whether a message was sent.
 */
export function sendAppend(r: Raft, to: number, sendIfEmpty: boolean): boolean {
  const pr = r.progress.get(to);
  if (pr === undefined || pr.isPaused()) return false;
  const prevLogIndex = pr.next - 1;
  const prevLogTerm = r.log.termAt(prevLogIndex);
  if (prevLogTerm === undefined || pr.next < r.log.firstIndex()) {
    // §7: the entries it needs were compacted: send the snapshot instead.
    return sendSnapshot(r, to, pr);
  }
  const last = r.log.lastIndex();
  let entries: Entry[];
  let bytes = 0;
  if (pr.next <= last) {
    entries = r.log.entries(pr.next, last + 1, r.cfg.maxBytesPerMessage);
    for (let i = 0; i < entries.length; i++) bytes += entrySize(entries[i]);
  } else {
    if (!sendIfEmpty) return false;
    entries = [];
  }
  if (pr.state === "replicate") {
    if (entries.length > 0) {
      const lastSent = entries[entries.length - 1].index;
      pr.next = lastSent + 1;
      pr.inflights.add(lastSent, bytes);
    }
  } else {
    pr.probeSent = true;
  }
  if (r.commit > pr.sentCommit) pr.sentCommit = r.commit;
  const m: AppendEntries = {
    type: "AppendEntries",
    from: r.id,
    to,
    term: r.term,
    prevLogIndex,
    prevLogTerm,
    entries,
    leaderCommit: r.commit,
  };
  r.send(m);
  return true;
}

/** Sends an append without entries after `prevLogIndex`, outside flow control. */
function sendEmptyAppend(r: Raft, to: number, prevLogIndex: number): boolean {
  const prevLogTerm = r.log.termAt(prevLogIndex);
  if (prevLogTerm === undefined) return false;
  r.send({
    type: "AppendEntries",
    from: r.id,
    to,
    term: r.term,
    prevLogIndex,
    prevLogTerm,
    entries: [],
    leaderCommit: r.commit,
  });
  return true;
}

/** Sends appends to every follower (used after new entries or a commit advance). */
export function bcastAppend(r: Raft): void {
  r.pendingBroadcast = false;
  const peers = r.peerIds;
  for (let i = 0; i < peers.length; i++) sendAppend(r, peers[i], true);
}

/** Sends newly appended entries to every follower that can take them (batched proposals). */
export function flushAppends(r: Raft): void {
  r.pendingBroadcast = false;
  const peers = r.peerIds;
  for (let i = 0; i < peers.length; i++) {
    const id = peers[i];
    while (sendAppend(r, id, false)) {
      // Fill the in-flight window (pipelining).
    }
    const pr = r.progress.get(id);
    if (pr === undefined) continue;
    // A peer in probe with nothing outstanding (e.g. just added) is probed now;
    // one that holds entries up to a commit index it was not told, is told.
    if ((pr.state === "probe" && !pr.probeSent) || pr.canBumpCommit(r.commit)) {
      sendAppend(r, id, true);
    }
  }
}

/** Sends a heartbeat round to every follower; `round` confirms pending reads. */
export function bcastHeartbeat(r: Raft): void {
  const round = r.readOnly.nextRound(r.leaderTicks);
  const peers = r.peerIds;
  for (let i = 0; i < peers.length; i++) {
    const to = peers[i];
    const pr = r.progress.get(to);
    const match = pr === undefined ? 0 : pr.match;
    if (pr !== undefined && match > pr.sentCommit) {
      pr.sentCommit = match < r.commit ? match : r.commit;
    }
    const hb: Heartbeat = {
      type: "Heartbeat",
      from: r.id,
      to,
      term: r.term,
      // Never past what the follower is known to hold.
      commit: match < r.commit ? match : r.commit,
      context: round,
    };
    r.send(hb);
  }
}

/**
 * §5.4.2: advances the commit index to the highest index held by a quorum,
 * but only if that entry is of the current term (older entries commit
 * indirectly). Returns whether it advanced.
 */
export function maybeCommit(r: Raft): boolean {
  const index = r.quorumMatch();
  if (index <= r.commit) return false;
  if (r.log.termAt(index) !== r.term) return false;
  r.commitTo(index);
  return true;
}

/** Leader: what follows a commit advance (reads, joint leave, removed-leader step-down). */
export function afterCommit(r: Raft): void {
  onOwnTermCommit(r);
  if (r.commit >= r.configIndex && !r.promotable()) {
    // §6: a leader removed by a configuration steps down once it commits
    // (after telling the others, so they apply the new configuration).
    bcastAppend(r);
    r.becomeFollower(r.term, 0);
    return;
  }
  // Followers learn the new commit index at the next Ready: one empty
  // append per follower however many acknowledgements advanced it.
  r.pendingBroadcast = true;
  if (r.shouldAutoLeave() && r.leadTransferee === 0) {
    // §6: once the joint configuration commits, move on to the new one.
    // (Appending it ends the joint configuration at once, so this runs once.)
    r.proposeLeaveJoint();
  }
}

/** Follower: §5.3 AppendEntries receiver rules, with a fast back-tracking hint on rejection. */
export function handleAppendEntries(r: Raft, m: AppendEntries): void {
  if (m.prevLogIndex < r.commit) {
    // Everything up to our commit index matches the leader (Log Matching):
    // acknowledge that much; anything beyond it will be re-sent.
    respondAppend(r, m.from, true, r.commit, 0, 0, 0);
    noteLeaderMatch(r, r.commit, m.leaderCommit);
    return;
  }
  const prevTerm = r.log.termAt(m.prevLogIndex);
  if (prevTerm !== m.prevLogTerm) {
    // Find the last index <= prevLogIndex whose term is <= the leader's
    // prevLogTerm: every index above it cannot match.
    let hintIndex = Math.min(m.prevLogIndex, r.log.lastIndex());
    let hintTerm = r.log.termAt(hintIndex);
    while (
      hintTerm !== undefined && hintTerm > m.prevLogTerm && hintIndex > r.commit
    ) {
      hintIndex--;
      hintTerm = r.log.termAt(hintIndex);
    }
    respondAppend(
      r,
      m.from,
      false,
      0,
      m.prevLogIndex,
      hintIndex,
      hintTerm ?? 0,
    );
    return;
  }
  const entries = m.entries;
  const n = entries.length;
  const last = r.log.lastIndex();
  // Skip entries we already hold; truncate at the first conflict (§5.3 step 3).
  let i = 0;
  for (; i < n; i++) {
    const e = entries[i];
    if (e.index > last) break;
    if (r.log.termAt(e.index) !== e.term) {
      r.truncateLog(e.index);
      break;
    }
  }
  if (i < n) r.appendToLog(i === 0 ? entries : entries.slice(i));
  const lastNew = m.prevLogIndex + n;
  // The commit index only moves forward: a reordered or duplicated append
  // with an older leaderCommit or a shorter suffix never lowers it.
  const target = m.leaderCommit < lastNew ? m.leaderCommit : lastNew;
  r.commitTo(target);
  // The answer that proves the catch-up still carries catchUpIndex.
  respondAppend(r, m.from, true, lastNew, 0, 0, 0);
  noteLeaderMatch(r, lastNew, m.leaderCommit);
}

function respondAppend(
  r: Raft,
  to: number,
  success: boolean,
  matchIndex: number,
  rejectIndex: number,
  hintIndex: number,
  hintTerm: number,
): void {
  const resp: AppendEntriesResponse = {
    type: "AppendEntriesResponse",
    from: r.id,
    to,
    term: r.term,
    success,
    matchIndex,
    rejectIndex,
    hintIndex,
    hintTerm,
  };
  const catchUpIndex = responseCatchUpIndex(r);
  if (catchUpIndex !== undefined) {
    resp.catchUpIndex = catchUpIndex;
    r.catchUpToldTerm = r.term;
    r.catchUpToldLeader = to;
  }
  r.send(resp);
}

/** Leader: handles an AppendEntries acknowledgement or rejection. */
export function handleAppendResponse(r: Raft, m: AppendEntriesResponse): void {
  const pr = r.progress.get(m.from);
  if (pr === undefined) return;
  pr.recentActive = true;
  // A repaired follower's earlier acknowledgements are not trusted (catch_up.ts).
  if (!screenAppendResponse(pr, m)) return;
  if (!m.success) {
    // Fast back-tracking: skip every index whose term proves a mismatch.
    let matchHint = m.hintIndex;
    if (m.hintTerm > 0) {
      let t = r.log.termAt(matchHint);
      while (t !== undefined && t > m.hintTerm && matchHint > 0) {
        matchHint--;
        t = r.log.termAt(matchHint);
      }
    }
    if (pr.maybeDecrTo(m.rejectIndex, matchHint)) {
      if (pr.state === "replicate") pr.becomeProbe();
      sendAppend(r, m.from, true);
    }
    return;
  }
  const updated = pr.maybeUpdate(m.matchIndex);
  if (!updated && !(pr.match === m.matchIndex && pr.state === "probe")) {
    proveToRepaired(r, m);
    return;
  }
  if (pr.state === "probe") {
    pr.becomeReplicate();
  } else if (pr.state === "snapshot") {
    if (pr.match + 1 >= r.log.firstIndex()) pr.becomeReplicate();
  } else {
    pr.inflights.freeLE(m.matchIndex);
  }
  if (maybeCommit(r)) {
    afterCommit(r);
    if (r.role !== "leader") return;
  } else if (pr.canBumpCommit(r.commit)) {
    // It holds entries up to a commit index it was not told: tell it at the next Ready.
    r.pendingBroadcast = true;
  }
  let sent = false;
  while (sendAppend(r, m.from, false)) {
    sent = true; // Refill the window.
  }
  if (!sent) proveToRepaired(r, m);
  if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) {
    sendTimeoutNow(r, m.from);
  }
}

/**
 * A repaired follower answered and nothing else goes to it: it can only
 * prove its log through an append, so send one (maybe empty) — unless this
 * leader's log does not yet reach its catch-up index (catch_up.ts, rule 4).
 * Not a loop: the answer that completes the catch-up no longer asks.
 */
function proveToRepaired(r: Raft, m: AppendEntriesResponse): void {
  if (m.catchUpIndex === undefined || !m.success) return;
  if (r.log.lastIndex() < m.catchUpIndex) return;
  sendAppend(r, m.from, true);
}

/** Follower: a heartbeat advances the commit index (never backwards) and is answered. */
export function handleHeartbeat(r: Raft, m: Heartbeat): void {
  const last = r.log.lastIndex();
  r.commitTo(m.commit < last ? m.commit : last);
  if (
    responseCatchUpIndex(r) !== undefined &&
    (m.commit > last || r.catchUpToldTerm !== r.term ||
      r.catchUpToldLeader !== m.from)
  ) {
    // A repaired node tells the leader at once (an idle leader sends no
    // append to a follower it believes caught up): its committed prefix
    // matches every leader's log, and nothing above it is proven.
    respondAppend(r, m.from, true, r.commit, 0, 0, 0);
  }
  const resp: HeartbeatResponse = {
    type: "HeartbeatResponse",
    from: r.id,
    to: m.from,
    term: r.term,
    context: m.context,
  };
  r.send(resp);
}

/** Leader: a heartbeat answer marks the follower alive and may confirm reads. */
export function handleHeartbeatResponse(r: Raft, m: HeartbeatResponse): void {
  const pr = r.progress.get(m.from);
  if (pr === undefined) return;
  pr.recentActive = true;
  pr.probeSent = false;
  if (pr.state === "replicate" && pr.inflights.full()) {
    // The window may be full of lost messages: an empty append at `next`
    // is answered either way (ack frees the window, reject triggers probing).
    if (!sendEmptyAppend(r, m.from, pr.next - 1)) {
      // Its predecessor was compacted: start over from `match` (snapshot if needed).
      pr.becomeProbe();
      sendAppend(r, m.from, true);
    }
  } else if (pr.match < r.log.lastIndex() || pr.state === "probe") {
    // A probing follower is sent an (empty) append even when it looks caught
    // up: its acknowledgement moves it back to replicate at once.
    sendAppend(r, m.from, true);
  }
  if (m.context > 0) onReadRoundAck(r, m.from, m.context);
}
