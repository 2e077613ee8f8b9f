/**
 * Snapshot transfer (§7): a follower that needs entries the leader has
 * compacted receives the leader's latest snapshot in chunks. The leader sends
 * one chunk, waits for its acknowledgement, then sends the next: a snapshot is
 * streamed once, never re-sent with every heartbeat. A chunk left
 * unacknowledged for an election timeout is re-sent (the message may have
 * been lost), but only to a follower heard from recently: nothing is streamed
 * to a follower that is not `recentActive`. After the last chunk is acknowledged the follower is probed and
 * replication resumes after the snapshot.
 *
 * @module
 */

import { noteLeaderMatch } from "./catch_up.ts";
import { decodeMembership } from "./membership.ts";
import type { InstallSnapshot, InstallSnapshotResponse } from "./messages.ts";
import type { Progress } from "./progress.ts";
import type { Raft } from "./raft.ts";
import { sendAppend } from "./replication.ts";

/** Leader: starts streaming the latest snapshot to `to`. Returns whether a chunk was sent. */
export function sendSnapshot(r: Raft, to: number, pr: Progress): boolean {
  const meta = r.log.snapshotMeta();
  if (meta.index === 0) return false;
  // A follower not heard from lately may be down: stream nothing until it
  // answers again (its next heartbeat response retries).
  if (!pr.recentActive) return false;
  pr.becomeSnapshot({
    index: meta.index,
    term: meta.term,
    config: meta.config,
    data: r.log.snapshotData(),
    offset: 0,
    idleTicks: 0,
  });
  sendChunk(r, to, pr);
  return true;
}

function sendChunk(r: Raft, to: number, pr: Progress): void {
  const t = pr.snapshot;
  if (t === undefined) return;
  const end = Math.min(t.offset + r.cfg.snapshotChunkBytes, t.data.byteLength);
  const m: InstallSnapshot = {
    type: "InstallSnapshot",
    from: r.id,
    to,
    term: r.term,
    meta: { index: t.index, term: t.term, config: t.config },
    offset: t.offset,
    data: t.data.subarray(t.offset, end),
    done: end === t.data.byteLength,
  };
  t.idleTicks = 0;
  r.send(m);
}

/** Leader tick: re-sends a chunk that went unacknowledged for an election timeout. */
export function tickSnapshots(r: Raft): void {
  for (const [id, pr] of r.progress) {
    const t = pr.snapshot;
    if (pr.state !== "snapshot" || t === undefined) continue;
    t.idleTicks++;
    // Re-sent only to a follower heard from lately: a dead one costs nothing.
    if (t.idleTicks >= r.cfg.electionTick && pr.recentActive) {
      sendChunk(r, id, pr);
    }
  }
}

/** Leader: the follower acknowledged (or refused) a chunk. */
export function handleInstallSnapshotResponse(
  r: Raft,
  m: InstallSnapshotResponse,
): void {
  const pr = r.progress.get(m.from);
  if (pr === undefined) return;
  pr.recentActive = true;
  const t = pr.snapshot;
  if (
    pr.state !== "snapshot" || t === undefined || t.index !== m.snapshotIndex
  ) return;
  if (m.success && m.done) {
    pr.maybeUpdate(t.index);
    pr.becomeProbe();
    sendAppend(r, m.from, true);
    return;
  }
  // Next chunk, or resume where the follower says it is.
  if (m.nextOffset > t.data.byteLength) return;
  t.offset = m.nextOffset;
  sendChunk(r, m.from, pr);
}

/** Follower: stores a chunk; installs the snapshot when the last one arrives. */
export function handleInstallSnapshot(r: Raft, m: InstallSnapshot): void {
  const meta = m.meta;
  if (meta.index <= r.commit) {
    // Already have everything it covers.
    r.incomingSnapshot = undefined;
    respond(r, m, true, true, m.offset + m.data.byteLength);
    return;
  }
  let inc = r.incomingSnapshot;
  if (m.offset === 0) {
    inc = { index: meta.index, term: meta.term, chunks: [], received: 0 };
    r.incomingSnapshot = inc;
  } else if (
    inc === undefined || inc.index !== meta.index || inc.term !== meta.term ||
    inc.received !== m.offset
  ) {
    // Out of order (lost or duplicated chunk): ask to resume where we are.
    const resume =
      inc !== undefined && inc.index === meta.index && inc.term === meta.term
        ? inc.received
        : 0;
    respond(r, m, false, false, resume);
    return;
  }
  inc.chunks.push(m.data);
  inc.received += m.data.byteLength;
  if (!m.done) {
    respond(r, m, true, false, inc.received);
    return;
  }
  const data = new Uint8Array(inc.received);
  let at = 0;
  for (const c of inc.chunks) {
    data.set(c, at);
    at += c.byteLength;
  }
  r.incomingSnapshot = undefined;
  const snapMeta = { index: meta.index, term: meta.term, config: meta.config };
  if (r.log.termAt(meta.index) === meta.term) {
    // Our log already holds the snapshot's last entry: keep the log, just commit up to it.
    r.commitTo(meta.index);
  } else {
    r.log.applySnapshot(snapMeta, data);
    r.logChanged = true;
    r.commitTo(meta.index);
    r.stableIndex = Math.min(r.stableIndex, meta.index);
    r.unstableFrom = Math.min(r.unstableFrom, meta.index + 1);
    r.snapshotToRestore = { meta: snapMeta, data };
    if (meta.config.byteLength > 0) {
      r.setMembership(decodeMembership(meta.config), meta.index);
    } else r.refreshMembership();
    r.resetCommittedMembership();
  }
  // The snapshot is committed state of this leader: the log matches it there.
  noteLeaderMatch(r, meta.index, meta.index);
  respond(r, m, true, true, inc.received);
}

function respond(
  r: Raft,
  m: InstallSnapshot,
  success: boolean,
  done: boolean,
  nextOffset: number,
): void {
  const resp: InstallSnapshotResponse = {
    type: "InstallSnapshotResponse",
    from: r.id,
    to: m.from,
    term: r.term,
    snapshotIndex: m.meta.index,
    nextOffset,
    success,
    done,
  };
  r.send(resp);
}
