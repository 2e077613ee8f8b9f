/**
 * The consensus core: a pure, synchronous, deterministic Raft node.
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
  decodeMembership,
  encodeMembership,
  formatMembership,
  isJoint,
  isLearner,
  isVoter,
  members,
  type Membership,
  type MembershipChange,
  simpleMembership,
} from "./membership.ts";
export { LEASE_MARGIN_TICKS, type ReadState } from "./read_index.ts";
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
