/**
 * Quorum arithmetic: majority and joint (§6) commit indexes and vote
 * results. Pure functions over a voter list; no allocation per call.
 *
 * @module
 */

/** Outcome of a vote count. */
export type VoteResult = "won" | "lost" | "pending";

/** Gives the index a voter is known to have acknowledged (`undefined`: nothing yet). */
export interface AckedIndexer {
  /** The acknowledged index of voter `id`, or `undefined`. */
  ackedIndex(id: number): number | undefined;
}

// Scratch space reused by majorityCommitted; clusters are small.
let scratch = new Float64Array(16);

/**
 * The highest index acknowledged by a majority of `voters` (§5.3/§5.4.2:
 * the caller still checks the entry's term). An empty voter set returns
 * `Infinity`, so that it never limits a joint quorum.
 *
 * @example
 * ```ts
 * import { majorityCommitted } from "@raft-io/raft/core";
 * const acked = new Map([[1, 5], [2, 3], [3, 1]]);
 * majorityCommitted([1, 2, 3], { ackedIndex: (id) => acked.get(id) }); // 3
 * ```
 */
export function majorityCommitted(
  voters: readonly number[],
  acked: AckedIndexer,
): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  if (scratch.length < n) scratch = new Float64Array(n * 2);
  // Insertion sort, descending: n is a handful of voters.
  for (let i = 0; i < n; i++) {
    const v = acked.ackedIndex(voters[i]) ?? 0;
    let j = i;
    while (j > 0 && scratch[j - 1] < v) {
      scratch[j] = scratch[j - 1];
      j--;
    }
    scratch[j] = v;
  }
  // The floor(n/2)-th largest value is held by floor(n/2)+1 voters: a majority.
  return scratch[n >> 1];
}

/**
 * The commit index of a joint configuration: an index is committed only when
 * a majority of *both* the incoming and the outgoing voters hold it (§6).
 * With `outgoing` empty this is a plain majority.
 */
export function jointCommitted(
  incoming: readonly number[],
  outgoing: readonly number[],
  acked: AckedIndexer,
): number {
  const a = majorityCommitted(incoming, acked);
  const b = majorityCommitted(outgoing, acked);
  return a < b ? a : b;
}

/** Gives the vote a voter cast (`undefined`: not yet answered). */
export interface VoteLookup {
  /** `true` granted, `false` rejected, `undefined` not answered. */
  vote(id: number): boolean | undefined;
}

/**
 * Counts votes among `voters`: won once a majority granted, lost once a
 * majority can no longer be reached, pending otherwise. An empty voter set
 * wins (it never blocks a joint vote).
 */
export function majorityVoteResult(
  voters: readonly number[],
  votes: VoteLookup,
): VoteResult {
  const n = voters.length;
  if (n === 0) return "won";
  let granted = 0;
  let missing = 0;
  for (let i = 0; i < n; i++) {
    const v = votes.vote(voters[i]);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = (n >> 1) + 1;
  if (granted >= q) return "won";
  if (granted + missing >= q) return "pending";
  return "lost";
}

/**
 * Counts votes in a joint configuration: won only if both halves won, lost
 * if either lost (§6).
 *
 * @example
 * ```ts
 * import { jointVoteResult } from "@raft-io/raft/core";
 * const votes = new Map([[1, true], [2, true]]);
 * jointVoteResult([1, 2, 3], [4, 5, 6], { vote: (id) => votes.get(id) }); // "pending"
 * ```
 */
export function jointVoteResult(
  incoming: readonly number[],
  outgoing: readonly number[],
  votes: VoteLookup,
): VoteResult {
  const a = majorityVoteResult(incoming, votes);
  const b = majorityVoteResult(outgoing, votes);
  if (a === b) return a;
  if (a === "lost" || b === "lost") return "lost";
  return "pending";
}
