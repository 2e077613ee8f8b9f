/**
 * The types a {@linkcode RaftNode} hands to its driver: {@linkcode Ready}
 * batches and {@linkcode NodeStatus} snapshots.
 *
 * @module
 */

import type { Entry, HardState, SnapshotMeta } from "../log/raft_log.ts";
import type { Membership } from "./membership.ts";
import type { Message } from "./messages.ts";
import type { ProgressState } from "./progress.ts";
import type { ReadState } from "./read_index.ts";

/** Role as reported to the application. */
export type NodeRole =
  | "leader"
  | "follower"
  | "candidate"
  | "precandidate"
  | "learner";

/** Volatile state reported in a Ready when it changed. */
export interface SoftState {
  /** The node's role. */
  role: NodeRole;
  /** Known leader, 0 when none. */
  leader: number;
  /**
   * True once this node was removed from the cluster (see
   * `RaftNode.removed`): a Ready with `softState` is emitted when it turns
   * true, so a driver sees it beside role changes.
   */
  removed: boolean;
}

/** A snapshot to restore the state machine from. */
export interface SnapshotToRestore {
  /** What it stands for. */
  meta: SnapshotMeta;
  /** The application's snapshot bytes. */
  data: Uint8Array;
}

/** A batch of work for the driver; see the module documentation for the protocol. */
export interface Ready {
  /** Role/leader, when they changed since the last Ready. */
  softState: SoftState | undefined;
  /** The hard state, when it changed (already written to the log; durable after the sync). */
  hardState: HardState | undefined;
  /** Entries appended since the last Ready (already in the log; durable after the sync). */
  entries: Entry[];
  /** A snapshot received from the leader (already in the log): restore the state machine from it. */
  snapshot: SnapshotToRestore | undefined;
  /** True when `log.sync()` must complete before `persistedMessages` leave. */
  mustSync: boolean;
  /** Messages that may be sent at once. */
  messages: Message[];
  /** Messages to send only after the sync. */
  persistedMessages: Message[];
  /** Committed entries to apply, in order. */
  committedEntries: Entry[];
  /** Reads that may be served once `committedEntries` are applied. */
  readStates: ReadState[];
  /** The configuration in effect, when it changed (§6: on append, not on commit). */
  membership: Membership | undefined;
  /**
   * When set, the application should take a snapshot of its state machine
   * at (or after) this applied index and report it with `snapshotTaken`.
   * Set when, since the latest snapshot or the last hint (whichever is
   * later), `snapshotThreshold` entries were applied or
   * `snapshotThresholdBytes` bytes of normal entries' data were applied.
   *
   * Given once per threshold crossing. If the application does not take the
   * snapshot (e.g. taking it failed), nothing needs to be reported: the hint
   * is given again after another threshold's worth of entries or bytes.
   */
  snapshotHint: number | undefined;
  /**
   * True (once) when a node started with `catchUp` has caught up from a
   * leader (see `RaftNodeOptions.catchUp`): after this Ready is handled,
   * the driver clears the log's marker durably (`await
   * log.markCaughtUp()`), then calls `node.caughtUpDurable()`. Until then
   * the node still refuses every vote.
   */
  caughtUp: boolean;
}

/** Replication progress of one peer, as seen by the leader. */
export interface PeerStatus {
  /** Peer id. */
  id: number;
  /** Highest index known replicated on it. */
  match: number;
  /** Next index to send. */
  next: number;
  /** Flow-control state. */
  state: ProgressState;
  /** Messages in flight. */
  inflight: number;
  /** Whether it is a learner. */
  isLearner: boolean;
  /** Heard from during the current election timeout. */
  recentActive: boolean;
}

/** A snapshot of a node's state for monitoring and tests. */
export interface NodeStatus {
  /** This node's id. */
  id: number;
  /** Role (a follower that is a learner reports `learner`). */
  role: NodeRole;
  /** Current term. */
  term: number;
  /** Vote cast in `term`, 0 when none. */
  vote: number;
  /** Known leader, 0 when none. */
  leader: number;
  /** Commit index. */
  commit: number;
  /** Applied index (as advanced by the driver). */
  applied: number;
  /** Last log index. */
  lastIndex: number;
  /** Highest index known durable locally. */
  stableIndex: number;
  /** The configuration in effect. */
  membership: Membership;
  /** Leadership transfer target, 0 when none. */
  leadTransferee: number;
  /** Removed from the cluster (see `RaftNode.removed`). */
  removed: boolean;
  /** Leader that committed an entry of its term (see `RaftNode.leaderReady`). */
  leaderReady: boolean;
  /**
   * True while a repaired node catches up (see `RaftNodeOptions.catchUp`):
   * it grants no vote and does not campaign.
   */
  catchingUp: boolean;
  /** Leader only: per-peer progress, sorted by id (empty otherwise). */
  progress: PeerStatus[];
}
