/**
 * The public types of `RaftServer`: its options, status, metrics and
 * events.
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
import type { Logger } from "../logger.ts";
import type { RaftTransport } from "../transport/raft_transport.ts";
import type { Histogram } from "./metrics.ts";
import type { Scheduler } from "./scheduler.ts";
import type { StateMachine } from "./state_machine.ts";

/** Read consistency levels of `RaftServer.read`. */
export type ReadConsistency = "linearizable" | "lease" | "stale";

/** Options of `RaftServer.start`. Every number is validated (`InvalidConfigError` naming the option). */
export interface RaftServerOptions<R> {
  /**
   * The node's Raft configuration, including the snapshot policy
   * (`snapshotThreshold`, `snapshotThresholdBytes`) and the founding
   * members' addresses (`nodes`). `forwardProposals` is forced off: the
   * server answers `NotLeaderError` with the leader's id.
   */
  config: RaftConfig;
  /** The node's log (opened). The server closes it on `stop()` and when `start()` fails. */
  log: RaftLog;
  /** The transport (started). The server closes it on `stop()` and when `start()` fails. */
  transport: RaftTransport<Message>;
  /** The application's state machine. */
  stateMachine: StateMachine<R>;
  /**
   * Milliseconds per tick: with `electionTick` 10 an election timeout is
   * 10-20 ticks.
   * @default {100}
   */
  tickMs?: number;
  /**
   * Default deadline of a proposal or membership change, ms.
   * @default {10000}
   */
  proposalTimeoutMs?: number;
  /**
   * Default deadline of a read, ms.
   * @default {10000}
   */
  readTimeoutMs?: number;
  /**
   * Largest proposal accepted, bytes; larger ones are refused with
   * `InvalidProposalError` before they reach the log. Keep it below the
   * transport's frame limit.
   * @default {8388608}
   */
  maxProposalBytes?: number;
  /**
   * Wait after a failed snapshot before the next attempt, ms.
   * @default {5000}
   */
  snapshotRetryMs?: number;
  /** Randomness for election timeouts (default: seeded from the node id). */
  random?: () => number;
  /** Where the server reports what happens (default: console at `info`, prefixed with the node id). Give the transport the same one. */
  logger?: Logger;
  /**
   * Time and timers: ticks, deadlines and the lease clock (default: the
   * host's, {@linkcode realScheduler}). A simulator injects virtual time.
   */
  scheduler?: Scheduler;
}

/** Options of a proposal, read or other request. */
export interface RequestOptions {
  /** Deadline, ms (finite, positive); default: the server's `proposalTimeoutMs` or `readTimeoutMs`. */
  timeoutMs?: number;
}

/** Options of `RaftServer.read`. */
export interface ReadOptions extends RequestOptions {
  /**
   * How strong the read is (see `RaftServer.read`).
   * @default {"linearizable"}
   */
  consistency?: ReadConsistency;
}

/** Options of `RaftServer.waitForLeader`. */
export interface WaitForLeaderOptions extends RequestOptions {
  /**
   * Wait until the leader is ready: it has committed an entry of its term,
   * so it serves linearizable reads and accepts membership changes.
   * @default {false}
   */
  ready?: boolean;
}

/** Address and metadata of a member, for membership changes. */
export interface MemberOptions extends RequestOptions {
  /** The transport address other nodes dial, e.g. `"10.0.0.4:7004"`. */
  address?: string;
  /** Opaque application text replicated with the member (e.g. its client URL). */
  metadata?: string;
}

/** Options of `RaftServer.addVoter`. */
export interface AddVoterOptions extends MemberOptions {
  /**
   * Skip the learner phase and add the voter at once, even if it never
   * started. Unsafe for availability: the quorum grows before the node can
   * vote.
   * @default {false}
   */
  force?: boolean;
}

/** What the server emits; subscribe with `RaftServer.on`. */
export interface ServerEventMap {
  /** The role or the known leader changed. */
  role: { role: NodeRole; leaderId: number; term: number };
  /** This node became a leader that has committed an entry of its term. */
  leaderReady: { term: number };
  /** The configuration changed (in effect once appended, §6); on every node, removed ones included. */
  membership: { membership: Membership };
  /** Entries were applied up to `index` (once per batch). */
  applied: { index: number };
  /** A snapshot was taken locally or restored from a leader. */
  snapshot: {
    kind: "taken" | "restored";
    index: number;
    bytes: number;
    durationMs: number;
  };
  /** A snapshot attempt failed; the server retries after `snapshotRetryMs`. */
  snapshotFailed: { index: number; error: Error };
  /** This node learned it is no longer a member (`members`: the others it knows of); it stops campaigning. */
  removed: { members: number[] };
  /** The server stopped itself: storage or the state machine failed. */
  fatal: { error: Error };
  /**
   * A node started from a repaired log (`log.needsCatchUp`) caught up from
   * a leader and cleared the marker durably: it votes and campaigns again.
   * `index`/`term`: the marker; `lastIndex`: its log's last index now.
   */
  caughtUp: { index: number; term: number; lastIndex: number };
}

/** A listener of event `K`. */
export type ServerEventListener<K extends keyof ServerEventMap> = (
  event: ServerEventMap[K],
) => void;

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
  /** Entries applied to the state machine (rejected ones included). */
  entriesApplied: number;
  /** Entries the state machine rejected (`apply` threw). */
  applyRejected: number;
  /** Times this node started an election (became candidate). */
  elections: number;
  /** Times this node became leader. */
  leaderships: number;
  /** Snapshots taken by this node. */
  snapshotsTaken: number;
  /** Snapshot attempts that failed. */
  snapshotsFailed: number;
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
  /** Whether a snapshot is being taken now. */
  snapshotInProgress: boolean;
  /** Proposals waiting to be applied. */
  pendingProposals: number;
  /** Reads waiting for their read index. */
  pendingReads: number;
}
