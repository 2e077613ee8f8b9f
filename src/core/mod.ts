/**
 * The consensus core: a pure, synchronous, deterministic Raft node. No
 * clock (time is `tick()`), no Promise, no I/O: events in, batches of work
 * out. All randomness comes from the `random` function given to the
 * constructor (default: a PRNG seeded from the node id).
 *
 * - {@linkcode RaftNode}: `tick`, `step(message)`, `propose`, `proposeBatch`,
 *   `readIndex`, `changeMembership`, `transferLeadership`, `snapshotTaken`,
 *   `reportUnreachable`, `campaign`, `status`, the getters `removed` and
 *   `leaderReady`, and the Ready hand-off
 *   `hasReady` / `ready` / `advance` (the driver protocol is documented on
 *   node.ts: send `messages`, sync if `mustSync`, send `persistedMessages`,
 *   restore/apply/serve reads, `advance`).
 * - {@linkcode Message}: the plain-data union of every message (messages.ts).
 * - Typed errors with stable codes (errors.ts), config validation
 *   (config.ts), quorum arithmetic (quorum.ts), membership and its encoding
 *   (membership.ts), flow control (progress.ts).
 *
 * @example
 * ```ts
 * import { MemoryLog } from "@raft-io/raft";
 * import { RaftNode } from "@raft-io/raft/core";
 * const log = new MemoryLog();
 * const node = new RaftNode({ id: 1, voters: [1] }, log);
 * node.campaign();
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   if (rd.mustSync) log.syncNow();
 *   node.advance(rd);
 * }
 * node.status().role; // "leader"
 * ```
 *
 * @module
 */

export type {
  Entry,
  EntryKind,
  HardState,
  SnapshotMeta,
} from "../log/raft_log.ts";
export * from "./messages.ts";
export * from "./errors.ts";
export {
  type RaftConfig,
  resolveConfig,
  type ResolvedConfig,
} from "./config.ts";
export {
  type AckedIndexer,
  jointCommitted,
  jointVoteResult,
  majorityCommitted,
  majorityVoteResult,
  type VoteLookup,
  type VoteResult,
} from "./quorum.ts";
export {
  Inflights,
  Progress,
  type ProgressState,
  type SnapshotTransfer,
} from "./progress.ts";
export {
  applyMembershipChange,
  copyMembership,
  decodeMembership,
  encodeMembership,
  formatMembership,
  isJoint,
  isLearner,
  isMember,
  isVoter,
  MAX_ADDRESS_BYTES,
  MAX_METADATA_BYTES,
  type MemberInfo,
  members,
  type Membership,
  type MembershipChange,
  simpleMembership,
} from "./membership.ts";
export type { RaftLog } from "../log/raft_log.ts";
export { LEASE_MARGIN_TICKS, type ReadState } from "./read_index.ts";
export { mulberry32 } from "./random.ts";
export {
  type NodeRole,
  type NodeStatus,
  type PeerStatus,
  RaftNode,
  type RaftNodeOptions,
  type Ready,
  seededRandom,
  type SnapshotToRestore,
  type SoftState,
} from "./node.ts";
