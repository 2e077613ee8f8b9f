/**
 * Linearizable reads without writing to the log (§6.4, thesis §6.4):
 *
 * - ReadIndex: the leader records its commit index, confirms it is still the
 *   leader with a heartbeat round acknowledged by a quorum, and releases the
 *   read once the state machine has applied up to that index. It serves no
 *   read before it has committed an entry of its own term (its commit index
 *   may be stale until then).
 * - Lease reads (opt-in): the leader skips the round while it holds a lease:
 *   a quorum acknowledged a heartbeat sent at leader tick `s`, so no voter of
 *   that quorum votes for another candidate before `s + electionTick` of its
 *   own ticks (leader stickiness). The lease ends `LEASE_MARGIN_TICKS` early.
 *   Clock assumption: tick rates of the nodes differ by less than
 *   `LEASE_MARGIN_TICKS / electionTick`, message delays are not counted in
 *   the leader's favour (the lease starts at send time), and no voter
 *   restarts and votes within the lease. Lease reads stop for the rest of the
 *   term once a leadership transfer was started.
 * - Follower reads: a follower relays the request to the leader
 *   (`ReadIndexRequest`) and waits for applied >= the returned index.
 *
 * Each heartbeat broadcast is a numbered round; followers echo the round in
 * `HeartbeatResponse.context`. An acknowledgement of round `s` confirms every
 * read registered at or before `s`.
 *
 * @module
 */

import type { ReadIndexResponse } from "./messages.ts";
import { jointCommitted } from "./quorum.ts";
import type { Raft } from "./raft.ts";
import { bcastHeartbeat } from "./replication.ts";

/** A read that may be served once the local state machine applied `index`. */
export interface ReadState {
  /** Applied index the read must wait for. */
  index: number;
  /** The caller's context, as passed to `readIndex`. */
  context: Uint8Array;
}

/** A read waiting for a quorum to confirm leadership. */
export interface ReadRequest {
  /** Heartbeat round that confirms it. */
  round: number;
  /** The leader's commit index when the read arrived. */
  index: number;
  /** Caller context. */
  context: Uint8Array;
  /** Node that asked (the leader itself, or a follower to answer). */
  from: number;
}

/** Lease reads end this many ticks before the followers' stickiness does. */
export const LEASE_MARGIN_TICKS = 2;

/** The leader's bookkeeping of heartbeat rounds and pending reads. */
export class ReadOnly {
  /** Latest heartbeat round sent. */
  round = 0;
  /** Reads waiting for confirmation, in round order (from `head`). */
  queue: ReadRequest[] = [];
  /** Reads that arrived before the leader committed an entry of its term. */
  waiting: { context: Uint8Array; from: number; lease: boolean }[] = [];
  /** Highest round acknowledged by each peer. */
  readonly acked = new Map<number, number>();
  /** Leader tick at which each recent round was sent (for leases). */
  readonly sentAt = new Map<number, number>();
  /** Set once a transfer started in this term: no more lease reads. */
  leaseDisabled = false;

  /** Forgets everything (new term or lost leadership). The round counter keeps growing. */
  reset(): void {
    this.queue = [];
    this.waiting = [];
    this.acked.clear();
    this.sentAt.clear();
    this.leaseDisabled = false;
  }

  /** Starts a new heartbeat round at leader tick `now`; returns its number. */
  nextRound(now: number): number {
    this.round++;
    this.sentAt.set(this.round, now);
    if (this.sentAt.size > 1024) {
      // Followers that never answer must not grow this map without bound.
      const oldest = this.sentAt.keys().next().value;
      if (oldest !== undefined) this.sentAt.delete(oldest);
    }
    return this.round;
  }

  /** Records that `from` acknowledged round `round`. */
  ack(from: number, round: number): void {
    const prev = this.acked.get(from) ?? 0;
    if (round > prev) this.acked.set(from, round);
  }

  /** The acknowledged round of `id` (the leader itself has acknowledged every round). */
  ackedRound(id: number, self: number): number {
    return id === self ? this.round : (this.acked.get(id) ?? 0);
  }

  /** Removes and returns reads confirmed by quorum round `confirmed`. */
  takeConfirmed(confirmed: number): ReadRequest[] | undefined {
    let n = 0;
    while (n < this.queue.length && this.queue[n].round <= confirmed) n++;
    if (n === 0) return undefined;
    return this.queue.splice(0, n);
  }

  /** Drops bookkeeping of rounds older than `confirmed` (no longer needed for leases). */
  prune(confirmed: number): void {
    for (const round of this.sentAt.keys()) {
      if (round >= confirmed) break;
      this.sentAt.delete(round);
    }
  }
}

/** True when the leader has committed an entry of its own term (§6.4 step 1). */
export function committedInTerm(r: Raft): boolean {
  return r.log.termAt(r.commit) === r.term;
}

/** The highest heartbeat round acknowledged by a (joint) quorum. */
function confirmedRound(r: Raft): number {
  const m = r.membership;
  const c = jointCommitted(m.voters, m.outgoing, r.readAckIndexer);
  return c === Infinity ? r.readOnly.round : c;
}

/**
 * True while the leader holds a lease (see the module comment for the clock
 * assumption) and `lease` asks for it. Never without check-quorum: only its
 * leader stickiness keeps voters from electing another leader meanwhile.
 */
export function leaseValid(r: Raft, lease: boolean): boolean {
  const ro = r.readOnly;
  if (
    !lease || !r.cfg.checkQuorum || ro.leaseDisabled || r.leadTransferee !== 0
  ) {
    return false;
  }
  const sentAt = ro.sentAt.get(confirmedRound(r));
  if (sentAt === undefined) return false;
  return r.leaderTicks < sentAt + r.cfg.electionTick - LEASE_MARGIN_TICKS;
}

/**
 * Leader: registers a read from `from` (this node or a follower). Served at
 * once by a single-voter cluster or, when `lease` allows it, under a lease;
 * otherwise a heartbeat round must confirm leadership first.
 */
export function leaderReadIndex(
  r: Raft,
  context: Uint8Array,
  from: number,
  lease: boolean,
): void {
  if (!committedInTerm(r)) {
    r.readOnly.waiting.push({ context, from, lease });
    return;
  }
  const index = r.commit;
  if (r.voterIds.length === 1 && r.voterIds[0] === r.id) {
    releaseRead(r, index, context, from);
    return;
  }
  if (leaseValid(r, lease)) {
    releaseRead(r, index, context, from);
    return;
  }
  // A fresh round: its acknowledgement proves we were leader after the read arrived.
  bcastHeartbeat(r);
  r.readOnly.queue.push({ round: r.readOnly.round, index, context, from });
}

/** Leader: a follower acknowledged heartbeat round `round`. */
export function onReadRoundAck(r: Raft, from: number, round: number): void {
  const ro = r.readOnly;
  ro.ack(from, round);
  const confirmed = confirmedRound(r);
  ro.prune(confirmed);
  const done = ro.takeConfirmed(confirmed);
  if (done === undefined) return;
  for (let i = 0; i < done.length; i++) {
    releaseRead(r, done[i].index, done[i].context, done[i].from);
  }
}

/** Leader: the first entry of its term committed; reads held back may proceed. */
export function onOwnTermCommit(r: Raft): void {
  const ro = r.readOnly;
  if (ro.waiting.length === 0 || !committedInTerm(r)) return;
  const waiting = ro.waiting;
  ro.waiting = [];
  for (const w of waiting) leaderReadIndex(r, w.context, w.from, w.lease);
}

function releaseRead(
  r: Raft,
  index: number,
  context: Uint8Array,
  from: number,
): void {
  if (from === r.id) {
    r.readStates.push({ index, context });
    return;
  }
  const resp: ReadIndexResponse = {
    type: "ReadIndexResponse",
    from: r.id,
    to: from,
    term: r.term,
    context,
    index,
    success: true,
  };
  r.send(resp);
}
