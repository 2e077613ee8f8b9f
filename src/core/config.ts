/**
 * Configuration of a {@linkcode RaftNode}, with defaults and validation.
 *
 * Time in the core is counted in ticks: the driver calls `tick()` at a fixed
 * interval (e.g. every 100 ms), and every timeout below is a number of ticks.
 *
 * @module
 */

import { InvalidConfigError, InvalidMembershipChangeError } from "./errors.ts";
import { checkMemberInfo, type MemberInfo } from "./membership.ts";

/** Options for a {@linkcode RaftNode}. Only `id` is required. */
export interface RaftConfig {
  /** This node's id: a positive safe integer, unique in the cluster. */
  id: number;
  /**
   * Voters of the initial configuration, used while neither the log nor a
   * snapshot holds a configuration (i.e. at bootstrap). Every founding member
   * must be given the same list. Default: `[id]` (a single-node cluster).
   */
  voters?: number[];
  /** Learners of the initial configuration (see `voters`). Default: none. */
  learners?: number[];
  /**
   * Address and metadata of the founding members (keys must be ids in
   * `voters` or `learners`), recorded in the bootstrap configuration.
   * Default: none.
   */
  nodes?: Record<number, MemberInfo>;
  /**
   * Election timeout in ticks (§5.2). A follower campaigns after a random
   * timeout in `[electionTick, 2 * electionTick)`. Default 10.
   */
  electionTick?: number;
  /** Heartbeat interval in ticks; must be less than `electionTick`. Default 1. */
  heartbeatTick?: number;
  /** Run a pre-vote round before campaigning (thesis §9.6). Default true. */
  preVote?: boolean;
  /**
   * A leader steps down when it has not heard from a quorum within an
   * election timeout; with it, followers that heard from a live leader ignore
   * votes (leader stickiness, thesis §4.2.3). Default true.
   */
  checkQuorum?: boolean;
  /**
   * Serve reads under a leader lease instead of a heartbeat round. Requires
   * `checkQuorum`. Safe only if tick rates of the nodes differ by less than
   * the margin between one election timeout and the randomized minimum (see
   * the README of the core). Default false.
   */
  leaseReads?: boolean;
  /** Followers forward proposals to the leader instead of throwing. Default true. */
  forwardProposals?: boolean;
  /** Maximum bytes of entries in one AppendEntries (at least one entry is always sent). Default 1 MiB. */
  maxBytesPerMessage?: number;
  /** Maximum AppendEntries in flight per follower (pipelining window). Default 256. */
  maxInflightMessages?: number;
  /** Maximum entry bytes in flight per follower; 0 = unlimited. Default 32 MiB. */
  maxInflightBytes?: number;
  /**
   * Maximum bytes of proposed-but-uncommitted entry data on a leader;
   * proposals beyond it throw `OverloadedError`. 0 = unlimited. Default 64 MiB.
   */
  maxUncommittedBytes?: number;
  /** Maximum bytes of committed entries handed out in one Ready. Default 64 MiB. */
  maxApplyBytesPerReady?: number;
  /** Snapshot bytes per InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /**
   * Entries kept in the log below a snapshot the application took, so
   * slightly lagging followers can still be served from the log. Default 1000.
   */
  compactionLag?: number;
  /**
   * Hint the application to take a snapshot (`Ready.snapshotHint`) once this
   * many entries were applied since the latest snapshot; 0 = never. Default 10000.
   */
  snapshotThreshold?: number;
  /**
   * Hint the application to take a snapshot once this many bytes of applied
   * command data (normal entries) accumulated since the latest snapshot or
   * the last hint; 0 = never by bytes. Default 64 MiB.
   */
  snapshotThresholdBytes?: number;
  /**
   * Spread of the snapshot thresholds, a fraction in `[0, 0.5]`: each hint
   * waits for a random extra `[0, jitter)` of both thresholds, drawn from the
   * node's seeded randomness. Nodes that apply the same log then snapshot at
   * different indexes instead of all at once (the CPU and disk of a large
   * snapshot are not taken from every replica together, and one short disk
   * fault cannot fail them all). Default 0.
   */
  snapshotJitter?: number;
  /**
   * A learner may become a voter (`addVoter`, or an incoming voter of
   * `enterJoint`) only while it is recently active and its match index is at
   * least the leader's last index minus this many entries (unless the change
   * has `force: true`). Default 1000.
   */
  learnerCatchUpEntries?: number;
  /**
   * Automatically leave a joint configuration once it commits (§6).
   * Default true.
   */
  autoLeaveJoint?: boolean;
}

/** A {@linkcode RaftConfig} with every default filled in and validated. */
export interface ResolvedConfig {
  /** See {@linkcode RaftConfig.id}. */
  id: number;
  /** See {@linkcode RaftConfig.voters}. */
  voters: number[];
  /** See {@linkcode RaftConfig.learners}. */
  learners: number[];
  /** See {@linkcode RaftConfig.nodes}. */
  nodes: Record<number, MemberInfo>;
  /** See {@linkcode RaftConfig.electionTick}. */
  electionTick: number;
  /** See {@linkcode RaftConfig.heartbeatTick}. */
  heartbeatTick: number;
  /** See {@linkcode RaftConfig.preVote}. */
  preVote: boolean;
  /** See {@linkcode RaftConfig.checkQuorum}. */
  checkQuorum: boolean;
  /** See {@linkcode RaftConfig.leaseReads}. */
  leaseReads: boolean;
  /** See {@linkcode RaftConfig.forwardProposals}. */
  forwardProposals: boolean;
  /** See {@linkcode RaftConfig.maxBytesPerMessage}. */
  maxBytesPerMessage: number;
  /** See {@linkcode RaftConfig.maxInflightMessages}. */
  maxInflightMessages: number;
  /** See {@linkcode RaftConfig.maxInflightBytes}. */
  maxInflightBytes: number;
  /** See {@linkcode RaftConfig.maxUncommittedBytes}. */
  maxUncommittedBytes: number;
  /** See {@linkcode RaftConfig.maxApplyBytesPerReady}. */
  maxApplyBytesPerReady: number;
  /** See {@linkcode RaftConfig.snapshotChunkBytes}. */
  snapshotChunkBytes: number;
  /** See {@linkcode RaftConfig.compactionLag}. */
  compactionLag: number;
  /** See {@linkcode RaftConfig.snapshotThreshold}. */
  snapshotThreshold: number;
  /** See {@linkcode RaftConfig.snapshotThresholdBytes}. */
  snapshotThresholdBytes: number;
  /** See {@linkcode RaftConfig.snapshotJitter}. */
  snapshotJitter: number;
  /** See {@linkcode RaftConfig.learnerCatchUpEntries}. */
  learnerCatchUpEntries: number;
  /** See {@linkcode RaftConfig.autoLeaveJoint}. */
  autoLeaveJoint: boolean;
}

const MIB = 1024 * 1024;

/**
 * Fills in defaults and validates a config; throws `InvalidConfigError`
 * naming the field and the fix.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@raft-io/raft/core";
 * resolveConfig({ id: 1, voters: [1, 2, 3] }).electionTick; // 10
 * ```
 */
export function resolveConfig(config: RaftConfig): ResolvedConfig {
  const c: ResolvedConfig = {
    id: config.id,
    voters: config.voters ? config.voters.slice() : [config.id],
    learners: config.learners ? config.learners.slice() : [],
    nodes: {},
    electionTick: config.electionTick ?? 10,
    heartbeatTick: config.heartbeatTick ?? 1,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    leaseReads: config.leaseReads ?? false,
    forwardProposals: config.forwardProposals ?? true,
    maxBytesPerMessage: config.maxBytesPerMessage ?? MIB,
    maxInflightMessages: config.maxInflightMessages ?? 256,
    maxInflightBytes: config.maxInflightBytes ?? 32 * MIB,
    maxUncommittedBytes: config.maxUncommittedBytes ?? 64 * MIB,
    maxApplyBytesPerReady: config.maxApplyBytesPerReady ?? 64 * MIB,
    snapshotChunkBytes: config.snapshotChunkBytes ?? MIB,
    compactionLag: config.compactionLag ?? 1000,
    snapshotThreshold: config.snapshotThreshold ?? 10000,
    snapshotThresholdBytes: config.snapshotThresholdBytes ?? 64 * MIB,
    snapshotJitter: config.snapshotJitter ?? 0,
    learnerCatchUpEntries: config.learnerCatchUpEntries ?? 1000,
    autoLeaveJoint: config.autoLeaveJoint ?? true,
  };
  positive("id", c.id);
  positive("electionTick", c.electionTick);
  positive("heartbeatTick", c.heartbeatTick);
  if (c.heartbeatTick >= c.electionTick) {
    throw new InvalidConfigError(
      "heartbeatTick",
      `must be less than electionTick (got heartbeatTick ${c.heartbeatTick} >= electionTick ${c.electionTick}); ` +
        "a leader must heartbeat several times per election timeout",
    );
  }
  positive("maxBytesPerMessage", c.maxBytesPerMessage);
  positive("maxInflightMessages", c.maxInflightMessages);
  nonNegative("maxInflightBytes", c.maxInflightBytes);
  nonNegative("maxUncommittedBytes", c.maxUncommittedBytes);
  positive("maxApplyBytesPerReady", c.maxApplyBytesPerReady);
  positive("snapshotChunkBytes", c.snapshotChunkBytes);
  nonNegative("compactionLag", c.compactionLag);
  nonNegative("snapshotThreshold", c.snapshotThreshold);
  nonNegative("snapshotThresholdBytes", c.snapshotThresholdBytes);
  if (
    typeof c.snapshotJitter !== "number" || !(c.snapshotJitter >= 0) ||
    c.snapshotJitter > 0.5
  ) {
    throw new InvalidConfigError(
      "snapshotJitter",
      `must be a fraction in [0, 0.5] (got ${String(c.snapshotJitter)})`,
    );
  }
  nonNegative("learnerCatchUpEntries", c.learnerCatchUpEntries);
  if (c.leaseReads && !c.checkQuorum) {
    throw new InvalidConfigError(
      "leaseReads",
      "lease reads need checkQuorum (a leader must step down when it loses its quorum); enable checkQuorum",
    );
  }
  const seen = new Set<number>();
  for (const v of c.voters) {
    positive("voters", v);
    if (seen.has(v)) {
      throw new InvalidConfigError("voters", `node ${v} is listed twice`);
    }
    seen.add(v);
  }
  for (const l of c.learners) {
    positive("learners", l);
    if (seen.has(l)) {
      throw new InvalidConfigError(
        "learners",
        `node ${l} is listed twice or is also a voter`,
      );
    }
    seen.add(l);
  }
  if (c.voters.length === 0) {
    throw new InvalidConfigError(
      "voters",
      "the initial configuration needs at least one voter",
    );
  }
  if (config.nodes !== undefined) {
    for (const key of Object.keys(config.nodes)) {
      const id = Number(key);
      if (!seen.has(id)) {
        throw new InvalidConfigError(
          "nodes",
          `node ${key} is not a founding member; list it in voters or learners, or drop its entry`,
        );
      }
      const info = config.nodes[id];
      try {
        checkMemberInfo(id, info);
      } catch (e) {
        if (e instanceof InvalidMembershipChangeError) {
          throw new InvalidConfigError("nodes", e.message);
        }
        throw e;
      }
      c.nodes[id] = { address: info.address, metadata: info.metadata };
    }
  }
  return c;
}

function positive(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidConfigError(
      field,
      `must be a positive safe integer (got ${value})`,
    );
  }
}

function nonNegative(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidConfigError(
      field,
      `must be a non-negative safe integer (got ${value})`,
    );
  }
}
