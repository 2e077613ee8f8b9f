/**
 * Cluster membership (§6): voters, learners, and the joint configuration
 * used while moving between voter sets. Config entries in the log and
 * `SnapshotMeta.config` carry a whole {@linkcode Membership}, encoded with
 * {@linkcode encodeMembership}.
 *
 * @module
 */

import { InvalidMembershipChangeError } from "./errors.ts";

/**
 * A configuration. Outside a joint change `outgoing` is empty. In a joint
 * configuration decisions need a majority of `voters` *and* of `outgoing`.
 * A learner replicates but never votes; during a joint change a demoted
 * voter may be both in `outgoing` and in `learners` (it votes in the
 * outgoing half until the joint configuration is left).
 */
export interface Membership {
  /** Voters (the incoming voters in a joint configuration), sorted. */
  voters: number[];
  /** The outgoing voters of a joint configuration, sorted; empty otherwise. */
  outgoing: number[];
  /** Learners, sorted. Never overlaps `voters`. */
  learners: number[];
  /** Leave the joint configuration automatically once it commits. */
  autoLeave: boolean;
}

/**
 * A membership change request.
 *
 * Simple (single-server) changes, valid only outside a joint configuration:
 * `addVoter` (also promotes a learner), `addLearner` (also demotes a voter),
 * `removeNode` (voter or learner). Each changes the voter set by at most one
 * node, which is safe without a joint phase (thesis §4.1).
 *
 * Joint changes (§6): `enterJoint` moves to an arbitrary new voter set via a
 * joint configuration; `leaveJoint` ends it (automatic by default).
 */
export type MembershipChange =
  | { type: "addVoter"; id: number }
  | { type: "addLearner"; id: number }
  | { type: "removeNode"; id: number }
  | {
    type: "enterJoint";
    voters: number[];
    learners?: number[];
    autoLeave?: boolean;
  }
  | { type: "leaveJoint" };

/** Builds a simple configuration. */
export function simpleMembership(
  voters: readonly number[],
  learners: readonly number[] = [],
): Membership {
  return {
    voters: sortedUnique(voters),
    outgoing: [],
    learners: sortedUnique(learners),
    autoLeave: false,
  };
}

/** True when `m` is a joint configuration. */
export function isJoint(m: Membership): boolean {
  return m.outgoing.length > 0;
}

/** True when `id` votes in `m` (in either half of a joint configuration). */
export function isVoter(m: Membership, id: number): boolean {
  return m.voters.includes(id) || m.outgoing.includes(id);
}

/** True when `id` is only a learner in `m`. */
export function isLearner(m: Membership, id: number): boolean {
  return !isVoter(m, id) && m.learners.includes(id);
}

/** Every member of `m` (voters of both halves and learners), sorted. */
export function members(m: Membership): number[] {
  return sortedUnique([...m.voters, ...m.outgoing, ...m.learners]);
}

/**
 * Applies `change` to `current`, returning the new configuration. Throws
 * `InvalidMembershipChangeError` when the change is not valid.
 *
 * @example
 * ```ts
 * import { applyMembershipChange, simpleMembership } from "@raft-io/raft/core";
 * const next = applyMembershipChange(simpleMembership([1, 2, 3]), { type: "addLearner", id: 4 });
 * next.learners; // [4]
 * ```
 */
export function applyMembershipChange(
  current: Membership,
  change: MembershipChange,
): Membership {
  if (change.type === "leaveJoint") {
    if (!isJoint(current)) {
      throw new InvalidMembershipChangeError("not in a joint configuration");
    }
    return {
      voters: current.voters.slice(),
      outgoing: [],
      learners: current.learners.filter((l) => !current.voters.includes(l)),
      autoLeave: false,
    };
  }
  if (isJoint(current)) {
    throw new InvalidMembershipChangeError(
      "the configuration is joint; leave it (leaveJoint) before another change",
    );
  }
  switch (change.type) {
    case "addVoter": {
      checkId(change.id);
      if (current.voters.includes(change.id)) {
        throw new InvalidMembershipChangeError(
          `node ${change.id} is already a voter`,
        );
      }
      return simpleMembership(
        [...current.voters, change.id],
        current.learners.filter((l) => l !== change.id),
      );
    }
    case "addLearner": {
      checkId(change.id);
      if (current.learners.includes(change.id)) {
        throw new InvalidMembershipChangeError(
          `node ${change.id} is already a learner`,
        );
      }
      const voters = current.voters.filter((v) => v !== change.id);
      if (voters.length === 0) {
        throw new InvalidMembershipChangeError("cannot demote the last voter");
      }
      return simpleMembership(voters, [...current.learners, change.id]);
    }
    case "removeNode": {
      checkId(change.id);
      if (
        !current.voters.includes(change.id) &&
        !current.learners.includes(change.id)
      ) {
        throw new InvalidMembershipChangeError(
          `node ${change.id} is not a member`,
        );
      }
      const voters = current.voters.filter((v) => v !== change.id);
      if (voters.length === 0) {
        throw new InvalidMembershipChangeError("cannot remove the last voter");
      }
      return simpleMembership(
        voters,
        current.learners.filter((l) => l !== change.id),
      );
    }
    case "enterJoint": {
      const voters = sortedUnique(change.voters);
      const learners = sortedUnique(change.learners ?? []);
      for (const id of voters) checkId(id);
      for (const id of learners) {
        checkId(id);
        if (voters.includes(id)) {
          throw new InvalidMembershipChangeError(
            `node ${id} cannot be both voter and learner`,
          );
        }
      }
      if (voters.length === 0) {
        throw new InvalidMembershipChangeError("the new voter set is empty");
      }
      return {
        voters,
        outgoing: current.voters.slice(),
        learners,
        autoLeave: change.autoLeave ?? true,
      };
    }
    default: {
      const never: never = change;
      throw new InvalidMembershipChangeError(
        `unknown change ${JSON.stringify(never)}`,
      );
    }
  }
}

/** A short human-readable form, e.g. `voters=(1 2 3)&&(1 2) learners=(4)`. */
export function formatMembership(m: Membership): string {
  let s = `voters=(${m.voters.join(" ")})`;
  if (isJoint(m)) s += `&&(${m.outgoing.join(" ")})`;
  if (m.learners.length > 0) s += ` learners=(${m.learners.join(" ")})`;
  if (isJoint(m) && m.autoLeave) s += " autoleave";
  return s;
}

const MEMBERSHIP_VERSION = 1;
const HEADER = 14; // version u8, flags u8, three u32 counts

/**
 * Encodes a configuration for a config entry or `SnapshotMeta.config`:
 * `[version=1 u8][flags u8: bit0 autoLeave][voters u32][outgoing u32][learners u32]`
 * then every id as a little-endian float64 (safe integers).
 */
export function encodeMembership(m: Membership): Uint8Array {
  const n = m.voters.length + m.outgoing.length + m.learners.length;
  const out = new Uint8Array(HEADER + n * 8);
  const view = new DataView(out.buffer);
  view.setUint8(0, MEMBERSHIP_VERSION);
  view.setUint8(1, m.autoLeave ? 1 : 0);
  view.setUint32(2, m.voters.length, true);
  view.setUint32(6, m.outgoing.length, true);
  view.setUint32(10, m.learners.length, true);
  let at = HEADER;
  for (const list of [m.voters, m.outgoing, m.learners]) {
    for (const id of list) {
      view.setFloat64(at, id, true);
      at += 8;
    }
  }
  return out;
}

/**
 * Decodes {@linkcode encodeMembership}'s bytes; throws `RangeError` on
 * malformed input.
 *
 * @example
 * ```ts
 * import { decodeMembership, encodeMembership, simpleMembership } from "@raft-io/raft/core";
 * decodeMembership(encodeMembership(simpleMembership([1, 2, 3]))).voters; // [1, 2, 3]
 * ```
 */
export function decodeMembership(bytes: Uint8Array): Membership {
  if (bytes.byteLength < HEADER) {
    throw new RangeError("membership: truncated header");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(0) !== MEMBERSHIP_VERSION) {
    throw new RangeError(`membership: unknown version ${view.getUint8(0)}`);
  }
  const autoLeave = (view.getUint8(1) & 1) === 1;
  const counts = [
    view.getUint32(2, true),
    view.getUint32(6, true),
    view.getUint32(10, true),
  ];
  if (bytes.byteLength !== HEADER + (counts[0] + counts[1] + counts[2]) * 8) {
    throw new RangeError("membership: length does not match the counts");
  }
  let at = HEADER;
  const lists: number[][] = [];
  for (const count of counts) {
    const list: number[] = [];
    for (let i = 0; i < count; i++) {
      const id = view.getFloat64(at, true);
      at += 8;
      if (!Number.isSafeInteger(id) || id < 1) {
        throw new RangeError(`membership: invalid id ${id}`);
      }
      list.push(id);
    }
    lists.push(list);
  }
  return {
    voters: lists[0],
    outgoing: lists[1],
    learners: lists[2],
    autoLeave,
  };
}

function checkId(id: number): void {
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new InvalidMembershipChangeError(
      `node id must be a positive safe integer (got ${id})`,
    );
  }
}

function sortedUnique(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}
