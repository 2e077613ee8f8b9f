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
 * What the configuration records about one member besides its role.
 *
 * @example
 * ```ts
 * import type { MemberInfo } from "@raft-io/raft/core";
 * const info: MemberInfo = { address: "127.0.0.1:7001", metadata: "http://127.0.0.1:8001" };
 * info.address; // "127.0.0.1:7001"
 * ```
 */
export interface MemberInfo {
  /**
   * The member's transport address (e.g. `"127.0.0.1:7001"`), `""` when
   * unknown. At most {@linkcode MAX_ADDRESS_BYTES} UTF-8 bytes.
   */
  address: string;
  /**
   * Opaque application text (e.g. the member's client URL), `""` when none.
   * At most {@linkcode MAX_METADATA_BYTES} UTF-8 bytes.
   */
  metadata: string;
}

/** Largest `MemberInfo.address`, in UTF-8 bytes. */
export const MAX_ADDRESS_BYTES = 1024;
/** Largest `MemberInfo.metadata`, in UTF-8 bytes (16 KiB). */
export const MAX_METADATA_BYTES = 16 * 1024;

/**
 * A configuration. Outside a joint change `outgoing` is empty. In a joint
 * configuration decisions need a majority of `voters` *and* of `outgoing`.
 * A learner replicates but never votes; during a joint change a demoted
 * voter may be both in `outgoing` and in `learners` (it votes in the
 * outgoing half until the joint configuration is left).
 *
 * @example
 * ```ts
 * import { simpleMembership } from "@raft-io/raft/core";
 * const m = simpleMembership([1, 2, 3], [], { 1: { address: "10.0.0.1:7001", metadata: "" } });
 * m.nodes[1].address; // "10.0.0.1:7001"
 * ```
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
  /**
   * Address and metadata of the members (voters, outgoing voters, learners)
   * that have any, keyed by member id. Never holds an id that is not a
   * member: every change drops the entries of the nodes it removes.
   */
  nodes: Record<number, MemberInfo>;
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
 *
 * `updateNode` changes the address and/or metadata of a member without
 * changing any role (also allowed in a joint configuration).
 *
 * `address` / `metadata` on `addVoter` and `addLearner`: a given field
 * replaces what the configuration records for that member; an omitted one
 * keeps what is known (`""` for a new member). `enterJoint.nodes` does the
 * same per member. `removeNode` drops the member's info.
 *
 * `force` (on `addVoter` and `enterJoint`): {@linkcode RaftNode}'s
 * `changeMembership` normally refuses to make a node a voter unless it is a
 * caught-up learner (see `learnerCatchUpEntries`); `force: true` skips that
 * check. `applyMembershipChange` itself ignores `force`.
 *
 * @example
 * ```ts
 * import type { MembershipChange } from "@raft-io/raft/core";
 * const steps: MembershipChange[] = [
 *   { type: "addLearner", id: 4, address: "10.0.0.4:7001" },
 *   { type: "addVoter", id: 4 }, // once 4 caught up
 *   { type: "updateNode", id: 4, metadata: "http://10.0.0.4:8001" },
 * ];
 * steps.length; // 3
 * ```
 */
export type MembershipChange =
  | {
    type: "addVoter";
    id: number;
    address?: string;
    metadata?: string;
    force?: boolean;
  }
  | { type: "addLearner"; id: number; address?: string; metadata?: string }
  | { type: "removeNode"; id: number }
  | { type: "updateNode"; id: number; address?: string; metadata?: string }
  | {
    type: "enterJoint";
    voters: number[];
    learners?: number[];
    autoLeave?: boolean;
    nodes?: Record<number, MemberInfo>;
    force?: boolean;
  }
  | { type: "leaveJoint" };

/**
 * Builds a simple configuration. Entries of `nodes` for ids that are not
 * members are dropped; the infos are copied.
 *
 * @example
 * ```ts
 * import { simpleMembership } from "@raft-io/raft/core";
 * simpleMembership([3, 1, 2], [4]).voters; // [1, 2, 3]
 * ```
 */
export function simpleMembership(
  voters: readonly number[],
  learners: readonly number[] = [],
  nodes: Readonly<Record<number, MemberInfo>> = {},
): Membership {
  const m: Membership = {
    voters: sortedUnique(voters),
    outgoing: [],
    learners: sortedUnique(learners),
    autoLeave: false,
    nodes: {},
  };
  m.nodes = memberNodes(m, nodes);
  return m;
}

/**
 * A deep copy of `m` (lists and node infos), for handing out.
 *
 * @example
 * ```ts
 * import { copyMembership, simpleMembership } from "@raft-io/raft/core";
 * const m = simpleMembership([1]);
 * copyMembership(m) !== m; // true
 * ```
 */
export function copyMembership(m: Membership): Membership {
  return {
    voters: m.voters.slice(),
    outgoing: m.outgoing.slice(),
    learners: m.learners.slice(),
    autoLeave: m.autoLeave,
    nodes: copyNodes(m.nodes),
  };
}

/**
 * True when `m` is a joint configuration.
 *
 * @example
 * ```ts
 * import { isJoint, simpleMembership } from "@raft-io/raft/core";
 * isJoint(simpleMembership([1, 2, 3])); // false
 * ```
 */
export function isJoint(m: Membership): boolean {
  return m.outgoing.length > 0;
}

/**
 * True when `id` votes in `m` (in either half of a joint configuration).
 *
 * @example
 * ```ts
 * import { isVoter, simpleMembership } from "@raft-io/raft/core";
 * isVoter(simpleMembership([1, 2, 3], [4]), 4); // false
 * ```
 */
export function isVoter(m: Membership, id: number): boolean {
  return m.voters.includes(id) || m.outgoing.includes(id);
}

/**
 * True when `id` is only a learner in `m`.
 *
 * @example
 * ```ts
 * import { isLearner, simpleMembership } from "@raft-io/raft/core";
 * isLearner(simpleMembership([1, 2, 3], [4]), 4); // true
 * ```
 */
export function isLearner(m: Membership, id: number): boolean {
  return !isVoter(m, id) && m.learners.includes(id);
}

/**
 * True when `id` is a member of `m` (voter of either half or learner).
 *
 * @example
 * ```ts
 * import { isMember, simpleMembership } from "@raft-io/raft/core";
 * isMember(simpleMembership([1, 2, 3], [4]), 5); // false
 * ```
 */
export function isMember(m: Membership, id: number): boolean {
  return m.voters.includes(id) || m.outgoing.includes(id) ||
    m.learners.includes(id);
}

/**
 * Every member of `m` (voters of both halves and learners), sorted.
 *
 * @example
 * ```ts
 * import { members, simpleMembership } from "@raft-io/raft/core";
 * members(simpleMembership([2, 1], [3])); // [1, 2, 3]
 * ```
 */
export function members(m: Membership): number[] {
  return sortedUnique([...m.voters, ...m.outgoing, ...m.learners]);
}

/**
 * Applies `change` to `current`, returning the new configuration. Throws
 * `InvalidMembershipChangeError` when the change is not valid (including an
 * address above 1024 UTF-8 bytes or metadata above 16 KiB).
 *
 * @example
 * ```ts
 * import { applyMembershipChange, simpleMembership } from "@raft-io/raft/core";
 * const next = applyMembershipChange(simpleMembership([1, 2, 3]), {
 *   type: "addLearner", id: 4, address: "10.0.0.4:7001",
 * });
 * next.learners; // [4]
 * next.nodes[4].address; // "10.0.0.4:7001"
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
    const left: Membership = {
      voters: current.voters.slice(),
      outgoing: [],
      learners: current.learners.filter((l) => !current.voters.includes(l)),
      autoLeave: false,
      nodes: {},
    };
    left.nodes = memberNodes(left, current.nodes);
    return left;
  }
  if (change.type === "updateNode") {
    checkId(change.id);
    if (!isMember(current, change.id)) {
      throw new InvalidMembershipChangeError(
        `node ${change.id} is not a member; add it (addLearner) first`,
      );
    }
    if (change.address === undefined && change.metadata === undefined) {
      throw new InvalidMembershipChangeError(
        `updateNode ${change.id}: give an address or metadata to change`,
      );
    }
    const next = copyMembership(current);
    next.nodes[change.id] = mergeInfo(
      current.nodes[change.id],
      change.address,
      change.metadata,
    );
    checkMemberInfo(change.id, next.nodes[change.id]);
    return next;
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
      const nodes = withInfo(
        current.nodes,
        change.id,
        change.address,
        change.metadata,
      );
      return simpleMembership(
        [...current.voters, change.id],
        current.learners.filter((l) => l !== change.id),
        nodes,
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
      const nodes = withInfo(
        current.nodes,
        change.id,
        change.address,
        change.metadata,
      );
      return simpleMembership(voters, [...current.learners, change.id], nodes);
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
        current.nodes,
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
      const merged = copyNodes(current.nodes);
      if (change.nodes !== undefined) {
        for (const key of Object.keys(change.nodes)) {
          const id = Number(key);
          checkId(id);
          const info = change.nodes[id];
          merged[id] = mergeInfo(merged[id], info.address, info.metadata);
        }
      }
      const joint: Membership = {
        voters,
        outgoing: current.voters.slice(),
        learners,
        autoLeave: change.autoLeave ?? true,
        nodes: {},
      };
      joint.nodes = memberNodes(joint, merged);
      return joint;
    }
    default: {
      const never: never = change;
      throw new InvalidMembershipChangeError(
        `unknown change ${JSON.stringify(never)}`,
      );
    }
  }
}

/**
 * A short human-readable form, e.g. `voters=(1 2 3)&&(1 2) learners=(4)`,
 * followed by ` nodes=(4="addr"/"meta")` when members carry info.
 *
 * @example
 * ```ts
 * import { formatMembership, simpleMembership } from "@raft-io/raft/core";
 * formatMembership(simpleMembership([1, 2, 3], [4])); // "voters=(1 2 3) learners=(4)"
 * ```
 */
export function formatMembership(m: Membership): string {
  let s = `voters=(${m.voters.join(" ")})`;
  if (isJoint(m)) s += `&&(${m.outgoing.join(" ")})`;
  if (m.learners.length > 0) s += ` learners=(${m.learners.join(" ")})`;
  if (isJoint(m) && m.autoLeave) s += " autoleave";
  const ids = nodeIds(m.nodes);
  if (ids.length > 0) {
    s += ` nodes=(${
      ids.map((id) => {
        const info = m.nodes[id];
        return `${id}=${JSON.stringify(info.address)}/${
          JSON.stringify(info.metadata)
        }`;
      }).join(" ")
    })`;
  }
  return s;
}

const MEMBERSHIP_V1 = 1;
const MEMBERSHIP_V2 = 2;
const HEADER = 14; // version u8, flags u8, three u32 counts
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a configuration for a config entry or `SnapshotMeta.config`, in
 * format version 2:
 * `[version=2 u8][flags u8: bit0 autoLeave][voters u32][outgoing u32][learners u32]`,
 * every id as a little-endian float64 (safe integers), then the node infos:
 * `[count u32]` and per node, by ascending id,
 * `[id f64][address length u32][address UTF-8][metadata length u32][metadata UTF-8]`.
 * (Version 1 is the same without the node infos; {@linkcode decodeMembership}
 * reads both.)
 *
 * @example
 * ```ts
 * import { encodeMembership, simpleMembership } from "@raft-io/raft/core";
 * encodeMembership(simpleMembership([1]))[0]; // 2 (the format version)
 * ```
 */
export function encodeMembership(m: Membership): Uint8Array {
  const n = m.voters.length + m.outgoing.length + m.learners.length;
  const ids = nodeIds(m.nodes).filter((id) => isMember(m, id));
  const infos: [Uint8Array, Uint8Array][] = [];
  let infoBytes = 4;
  for (const id of ids) {
    const a = encoder.encode(m.nodes[id].address);
    const d = encoder.encode(m.nodes[id].metadata);
    infos.push([a, d]);
    infoBytes += 8 + 4 + a.byteLength + 4 + d.byteLength;
  }
  const out = new Uint8Array(HEADER + n * 8 + infoBytes);
  const view = new DataView(out.buffer);
  view.setUint8(0, MEMBERSHIP_V2);
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
  view.setUint32(at, ids.length, true);
  at += 4;
  for (let i = 0; i < ids.length; i++) {
    view.setFloat64(at, ids[i], true);
    at += 8;
    for (const field of infos[i]) {
      view.setUint32(at, field.byteLength, true);
      at += 4;
      out.set(field, at);
      at += field.byteLength;
    }
  }
  return out;
}

/**
 * Decodes {@linkcode encodeMembership}'s bytes (format versions 1 and 2; a
 * version 1 configuration has `nodes = {}`); throws `RangeError` on
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
  const version = view.getUint8(0);
  if (version !== MEMBERSHIP_V1 && version !== MEMBERSHIP_V2) {
    throw new RangeError(`membership: unknown version ${version}`);
  }
  const flags = view.getUint8(1);
  if (flags > 1) throw new RangeError(`membership: unknown flags ${flags}`);
  const autoLeave = flags === 1;
  const counts = [
    view.getUint32(2, true),
    view.getUint32(6, true),
    view.getUint32(10, true),
  ];
  const idsEnd = HEADER + (counts[0] + counts[1] + counts[2]) * 8;
  if (
    version === MEMBERSHIP_V1
      ? bytes.byteLength !== idsEnd
      : bytes.byteLength < idsEnd + 4
  ) {
    throw new RangeError("membership: length does not match the counts");
  }
  let at = HEADER;
  const lists: number[][] = [];
  for (const count of counts) {
    const list: number[] = [];
    for (let i = 0; i < count; i++) {
      list.push(readId(view, at));
      at += 8;
    }
    lists.push(list);
  }
  const m: Membership = {
    voters: lists[0],
    outgoing: lists[1],
    learners: lists[2],
    autoLeave,
    nodes: {},
  };
  if (version === MEMBERSHIP_V1) return m;
  const n = view.getUint32(at, true);
  at += 4;
  // Each node takes at least 16 bytes: refuse a count the bytes cannot hold.
  if (n > (bytes.byteLength - at) / 16) {
    throw new RangeError("membership: node count exceeds the bytes present");
  }
  let prev = 0;
  for (let i = 0; i < n; i++) {
    if (at + 8 > bytes.byteLength) {
      throw new RangeError("membership: truncated node info");
    }
    const id = readId(view, at);
    at += 8;
    if (id <= prev) {
      throw new RangeError("membership: node ids are not strictly ascending");
    }
    prev = id;
    if (!isMember(m, id)) {
      throw new RangeError(`membership: info for non-member ${id}`);
    }
    const address = readText(bytes, view, at, MAX_ADDRESS_BYTES, "address");
    at += 4 + address.length;
    const metadata = readText(bytes, view, at, MAX_METADATA_BYTES, "metadata");
    at += 4 + metadata.length;
    m.nodes[id] = { address: address.text, metadata: metadata.text };
  }
  if (at !== bytes.byteLength) {
    throw new RangeError("membership: trailing bytes");
  }
  return m;
}

function readId(view: DataView, at: number): number {
  const id = view.getFloat64(at, true);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new RangeError(`membership: invalid id ${id}`);
  }
  return id;
}

function readText(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  max: number,
  field: string,
): { text: string; length: number } {
  if (at + 4 > bytes.byteLength) {
    throw new RangeError(`membership: truncated ${field} length`);
  }
  const length = view.getUint32(at, true);
  if (length > max) {
    throw new RangeError(
      `membership: ${field} of ${length} bytes (max ${max})`,
    );
  }
  if (at + 4 + length > bytes.byteLength) {
    throw new RangeError(`membership: truncated ${field}`);
  }
  try {
    const text = decoder.decode(bytes.subarray(at + 4, at + 4 + length));
    return { text, length };
  } catch {
    throw new RangeError(`membership: ${field} is not valid UTF-8`);
  }
}

/** Throws `InvalidMembershipChangeError` when `info` is too large. */
export function checkMemberInfo(id: number, info: MemberInfo): void {
  if (typeof info.address !== "string" || typeof info.metadata !== "string") {
    throw new InvalidMembershipChangeError(
      `node ${id}: address and metadata must be strings`,
    );
  }
  const a = encoder.encode(info.address).byteLength;
  if (a > MAX_ADDRESS_BYTES) {
    throw new InvalidMembershipChangeError(
      `node ${id}: address is ${a} UTF-8 bytes, above the limit of ${MAX_ADDRESS_BYTES}`,
    );
  }
  const d = encoder.encode(info.metadata).byteLength;
  if (d > MAX_METADATA_BYTES) {
    throw new InvalidMembershipChangeError(
      `node ${id}: metadata is ${d} UTF-8 bytes, above the limit of ${MAX_METADATA_BYTES}`,
    );
  }
}

/** Ids of `nodes`, ascending. */
function nodeIds(nodes: Readonly<Record<number, MemberInfo>>): number[] {
  return Object.keys(nodes).map(Number).sort((a, b) => a - b);
}

function copyNodes(
  nodes: Readonly<Record<number, MemberInfo>>,
): Record<number, MemberInfo> {
  const out: Record<number, MemberInfo> = {};
  for (const id of nodeIds(nodes)) {
    out[id] = { address: nodes[id].address, metadata: nodes[id].metadata };
  }
  return out;
}

/** Copies of the infos in `nodes` of the members of `m` only. */
function memberNodes(
  m: Membership,
  nodes: Readonly<Record<number, MemberInfo>>,
): Record<number, MemberInfo> {
  const out: Record<number, MemberInfo> = {};
  for (const id of nodeIds(nodes)) {
    if (!isMember(m, id)) continue;
    const info = nodes[id];
    checkMemberInfo(id, info);
    out[id] = { address: info.address, metadata: info.metadata };
  }
  return out;
}

/** `known` with the given fields replaced (omitted: kept; unknown: ""). */
function mergeInfo(
  known: MemberInfo | undefined,
  address: string | undefined,
  metadata: string | undefined,
): MemberInfo {
  return {
    address: address ?? known?.address ?? "",
    metadata: metadata ?? known?.metadata ?? "",
  };
}

/** A copy of `nodes` where `id` carries the given fields (if any is given). */
function withInfo(
  nodes: Readonly<Record<number, MemberInfo>>,
  id: number,
  address: string | undefined,
  metadata: string | undefined,
): Record<number, MemberInfo> {
  const out = copyNodes(nodes);
  if (address !== undefined || metadata !== undefined) {
    out[id] = mergeInfo(nodes[id], address, metadata);
  }
  return out;
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
