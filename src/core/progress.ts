/**
 * The leader's view of one follower (§5.3 nextIndex/matchIndex), with the
 * flow-control state machine of etcd's raft:
 *
 * - `probe`: the leader does not know where the follower's log matches; it
 *   sends one AppendEntries at a time and waits for the answer.
 * - `replicate`: the logs match up to `match`; the leader streams entries
 *   optimistically (advancing `next` at once), bounded by an in-flight window
 *   counted in messages **and** bytes.
 * - `snapshot`: the follower is behind the leader's first index and is
 *   receiving a snapshot in chunks; nothing else is sent until it ends.
 *
 * @module
 */

/** Replication state of a follower. */
export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * The in-flight window: last index and byte size of each unacknowledged
 * AppendEntries, in a ring buffer (no allocation per message).
 */
export class Inflights {
  #lastIndexes: Float64Array;
  #bytes: Float64Array;
  #start = 0;
  #count = 0;
  #totalBytes = 0;
  readonly #maxCount: number;
  readonly #maxBytes: number;

  /**
   * Creates an empty window.
   *
   * @param maxCount Maximum messages in flight.
   * @param maxBytes Maximum entry bytes in flight (0 = unlimited).
   */
  constructor(maxCount: number, maxBytes: number) {
    this.#maxCount = maxCount;
    this.#maxBytes = maxBytes;
    const cap = Math.min(maxCount, 16);
    this.#lastIndexes = new Float64Array(cap);
    this.#bytes = new Float64Array(cap);
  }

  /** Messages in flight. */
  get count(): number {
    return this.#count;
  }

  /** Entry bytes in flight. */
  get bytes(): number {
    return this.#totalBytes;
  }

  /** True when no further message may be sent. */
  full(): boolean {
    return this.#count >= this.#maxCount ||
      (this.#maxBytes > 0 && this.#totalBytes >= this.#maxBytes);
  }

  /** Records a message whose last entry is `lastIndex` carrying `bytes`. */
  add(lastIndex: number, bytes: number): void {
    if (this.#count === this.#lastIndexes.length) this.#grow();
    const cap = this.#lastIndexes.length;
    let slot = this.#start + this.#count;
    if (slot >= cap) slot -= cap;
    this.#lastIndexes[slot] = lastIndex;
    this.#bytes[slot] = bytes;
    this.#count++;
    this.#totalBytes += bytes;
  }

  /** Frees every message whose last index is `<= index` (they were acknowledged). */
  freeLE(index: number): void {
    const cap = this.#lastIndexes.length;
    while (this.#count > 0 && this.#lastIndexes[this.#start] <= index) {
      this.#totalBytes -= this.#bytes[this.#start];
      this.#start++;
      if (this.#start === cap) this.#start = 0;
      this.#count--;
    }
    if (this.#count === 0) {
      this.#start = 0;
      this.#totalBytes = 0;
    }
  }

  /** Forgets everything in flight. */
  reset(): void {
    this.#start = 0;
    this.#count = 0;
    this.#totalBytes = 0;
  }

  #grow(): void {
    const cap = this.#lastIndexes.length;
    const next = Math.min(Math.max(cap * 2, 1), Math.max(this.#maxCount, 1));
    const li = new Float64Array(next);
    const by = new Float64Array(next);
    for (let i = 0; i < this.#count; i++) {
      let s = this.#start + i;
      if (s >= cap) s -= cap;
      li[i] = this.#lastIndexes[s];
      by[i] = this.#bytes[s];
    }
    this.#lastIndexes = li;
    this.#bytes = by;
    this.#start = 0;
  }
}

/** A snapshot being streamed to a follower, chunk by chunk. */
export interface SnapshotTransfer {
  /** Snapshot index (`meta.index`). */
  index: number;
  /** Snapshot term. */
  term: number;
  /** Encoded configuration of the snapshot. */
  config: Uint8Array;
  /** The snapshot bytes (held so a newer local snapshot cannot shift offsets). */
  data: Uint8Array;
  /** Offset of the chunk in flight (or next to send). */
  offset: number;
  /** Ticks since the last acknowledgement; the chunk is re-sent after an election timeout. */
  idleTicks: number;
}

/** Per-follower replication progress held by the leader. */
export class Progress {
  /** Highest index known to be replicated on the follower (§5.3 matchIndex). */
  match = 0;
  /** Next index to send (§5.3 nextIndex). */
  next: number;
  /** Flow-control state. */
  state: ProgressState = "probe";
  /** In `probe`: an AppendEntries is outstanding; wait for its answer or a heartbeat response. */
  probeSent = false;
  /** Highest commit index sent to the follower (to know when it must be told of a newer one). */
  sentCommit = 0;
  /** Set by any message from the follower; cleared each election timeout (check-quorum). */
  recentActive = false;
  /** True when the follower is a learner (replicated to, never counted). */
  isLearner: boolean;
  /**
   * A repaired follower's catch-up index (its `needsCatchUp.index`, see
   * catch_up.ts) while it has not yet been shown to hold this leader's log
   * through it; 0 otherwise.
   */
  catchUpIndex = 0;
  /** The snapshot in flight in state `snapshot`. */
  snapshot: SnapshotTransfer | undefined = undefined;
  /** The pipelining window. */
  readonly inflights: Inflights;

  /**
   * Creates the progress of a follower in `probe` state.
   *
   * @param next Initial next index (the leader's last index + 1).
   * @param isLearner Whether the follower is a learner.
   * @param maxInflight Window size in messages.
   * @param maxInflightBytes Window size in bytes (0 = unlimited).
   */
  constructor(
    next: number,
    isLearner: boolean,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.isLearner = isLearner;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  /** Enters `probe`: resend from `match + 1`, one message at a time. */
  becomeProbe(): void {
    if (this.state === "snapshot" && this.snapshot) {
      // The follower now holds the snapshot: continue after it.
      this.next = Math.max(this.match + 1, this.snapshot.index + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = "probe";
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  /**
   * Forgets what the follower acknowledged before: `match` becomes `match`
   * (lower than before: a repaired follower lost entries, see catch_up.ts)
   * and the follower is probed at `next`. The only place `match` goes down.
   */
  forgetMatch(match: number, next: number): void {
    this.match = match;
    this.state = "probe";
    this.next = Math.max(next, match + 1);
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  /** Enters `replicate`: stream optimistically from `match + 1`. */
  becomeReplicate(): void {
    this.state = "replicate";
    this.next = this.match + 1;
    this.probeSent = false;
    this.snapshot = undefined;
    this.inflights.reset();
  }

  /** Enters `snapshot`, streaming `transfer`. */
  becomeSnapshot(transfer: SnapshotTransfer): void {
    this.state = "snapshot";
    this.probeSent = false;
    this.snapshot = transfer;
    this.inflights.reset();
  }

  /** True when the follower holds entries up to a commit index it has not been sent. */
  canBumpCommit(commit: number): boolean {
    return this.state !== "probe" &&
      this.sentCommit < Math.min(commit, this.next - 1);
  }

  /** True when nothing more may be sent now (probe outstanding, window full, snapshot streaming). */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  /**
   * Records an acknowledgement up to `index`; returns false if it was stale
   * (already known). Acknowledgements may arrive duplicated or reordered.
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    return updated;
  }

  /**
   * Handles a rejection of the append with `prevLogIndex === rejected`.
   * `matchHint` is the highest index that may still match (from the
   * follower's term hint). Returns false when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === "replicate") {
      // Stale: we already know the logs match beyond it.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In probe only the rejection of the outstanding probe counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }
}
