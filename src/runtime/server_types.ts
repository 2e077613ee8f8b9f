/**
 * The public types of `RaftServer`: its options, status, metrics
 * and logger.
 *
 * @module
 */

import type {
  Membership,
  Message,
  NodeRole,
  NodeStatus,
  RaftConfig,
} from "../core/mod.ts";
import type { RaftLog } from "../log/raft_log.ts";
import type { RaftTransport } from "../transport/raft_transport.ts";
import type { Histogram } from "./metrics.ts";
import type { StateMachine } from "./state_machine.ts";

/** Read consistency levels of `RaftServer.read`. */
export type ReadConsistency = "linearizable" | "lease" | "stale";

/** Where the server reports what happens. */
export interface ServerLogger {
  /** Notable events (elections, snapshots). */
  info(message: string): void;
  /** Problems the server survives. */
  warn(message: string): void;
}

/** Options of `RaftServer.start`. */
export interface RaftServerOptions<R> {
  /** The node's Raft configuration (`forwardProposals` is forced off: the server answers `NotLeaderError`). */
  config: RaftConfig;
  /** The node's log (opened). The server closes it on `stop()`. */
  log: RaftLog;
  /** The transport (started). The server closes it on `stop()`. */
  transport: RaftTransport<Message>;
  /** The application's state machine. */
  stateMachine: StateMachine<R>;
  /** Milliseconds per tick (default 100: with electionTick 10 an election timeout is 1-2 s). */
  tickMs?: number;
  /** Default deadline of a proposal, ms (default 10,000). */
  proposalTimeoutMs?: number;
  /** Default deadline of a read, ms (default 10,000). */
  readTimeoutMs?: number;
  /** Take a snapshot after this many applied entries (default 100,000, as etcd; 0 = never by count). */
  snapshotEntries?: number;
  /** Take a snapshot after this many applied command bytes (default 64 MiB; 0 = never by size). */
  snapshotBytes?: number;
  /** Randomness for election timeouts (default: seeded from the node id). */
  random?: () => number;
  /** Where events go (default: console, prefixed with the node id). */
  logger?: ServerLogger;
  /** Called after a configuration change was appended (it is in effect from then on, §6). */
  onMembershipChange?: (membership: Membership) => void;
  /** Called when this node's role or known leader changes. */
  onRoleChange?: (role: NodeRole, leaderId: number) => void;
  /**
   * Monotonic milliseconds used to time leader leases (default
   * `performance.now`). Tests inject their own to step over a lease.
   */
  clock?: () => number;
  /**
   * Called once when the server stops itself because storage or the state
   * machine failed (continuing could break safety). Call `stop()` to release
   * the log and the transport; a process usually exits after that.
   */
  onFatal?: (error: Error) => void;
}

/** Counters and histograms of a `RaftServer`. */
export interface ServerMetrics {
  /** Proposals accepted by the leader. */
  proposals: number;
  /** Proposals applied and resolved. */
  proposalsCommitted: number;
  /** Proposals rejected or failed (any error). */
  proposalsFailed: number;
  /** Propose → applied latency, ms. */
  commitLatency: Histogram;
  /** Duration of each `log.sync()`, ms. */
  fsyncLatency: Histogram;
  /** Number of `log.sync()` calls. */
  syncs: number;
  /** Entry bytes (data plus fixed overhead) made durable. */
  bytesWritten: number;
  /** Entries applied to the state machine. */
  entriesApplied: number;
  /** Times this node started an election (became candidate). */
  elections: number;
  /** Times this node became leader. */
  leaderships: number;
  /** Snapshots taken by this node. */
  snapshotsTaken: number;
  /** Snapshots received from a leader and restored. */
  snapshotsRestored: number;
  /** Reads served, by consistency. */
  reads: Record<ReadConsistency, number>;
  /** Messages from a peer whose `from` did not match the authenticated sender (dropped). */
  spoofedMessages: number;
}

/** `RaftNode.status` plus runtime facts. */
export interface ServerStatus extends NodeStatus {
  /** Milliseconds per tick. */
  tickMs: number;
  /** Index of the latest snapshot. */
  snapshotIndex: number;
  /** Proposals waiting to be applied. */
  pendingProposals: number;
  /** Reads waiting for their read index. */
  pendingReads: number;
}
