/**
 * Typed errors thrown by the consensus core. Each extends
 * {@linkcode RaftIoError} directly and has a stable `code` for programmatic
 * handling; messages say what happened and what to do.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";

/**
 * The node is not the leader and cannot forward the request.
 *
 * @example
 * ```ts
 * import { NotLeaderError } from "@raft-io/raft";
 * const e = new NotLeaderError(3);
 * e.leaderId; // 3 (0 when no leader is known)
 * ```
 */
export class NotLeaderError extends RaftIoError {
  /** The leader this node knows of, or 0 when none is known. */
  readonly leaderId: number;
  /**
   * Creates the error.
   *
   * @param leaderId Known leader id, or 0.
   */
  constructor(leaderId: number) {
    super(
      "NOT_LEADER",
      leaderId === 0
        ? "this node is not the leader and no leader is known; retry after an election"
        : `this node is not the leader; send the request to node ${leaderId}`,
    );
    this.leaderId = leaderId;
    this.name = "NotLeaderError";
  }
}

/** A proposal was dropped (e.g. empty batch, or the node was removed from the cluster). */
export class ProposalDroppedError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param reason Why it was dropped.
   */
  constructor(reason: string) {
    super("PROPOSAL_DROPPED", `proposal dropped: ${reason}`);
    this.name = "ProposalDroppedError";
  }
}

/**
 * The leader holds too many uncommitted bytes (`maxUncommittedBytes`); the
 * proposal was rejected instead of growing the log without bound. Retry
 * after earlier proposals commit.
 */
export class OverloadedError extends RaftIoError {
  /** Uncommitted bytes currently held by the leader. */
  readonly uncommittedBytes: number;
  /** The configured cap. */
  readonly limit: number;
  /**
   * Creates the error.
   *
   * @param uncommittedBytes Current uncommitted bytes.
   * @param limit The configured cap.
   */
  constructor(uncommittedBytes: number, limit: number) {
    super(
      "OVERLOADED",
      `leader overloaded: ${uncommittedBytes} uncommitted bytes would exceed the cap of ${limit}; retry after earlier proposals commit`,
    );
    this.uncommittedBytes = uncommittedBytes;
    this.limit = limit;
    this.name = "OverloadedError";
  }
}

/** A leadership transfer is in flight: proposals and other changes are refused until it ends. */
export class TransferInProgressError extends RaftIoError {
  /** The transfer target. */
  readonly transferee: number;
  /**
   * Creates the error.
   *
   * @param transferee The transfer target.
   */
  constructor(transferee: number) {
    super(
      "TRANSFER_IN_PROGRESS",
      `leadership is being transferred to node ${transferee}; retry after the transfer completes or times out`,
    );
    this.transferee = transferee;
    this.name = "TransferInProgressError";
  }
}

/** A membership change is already in flight (or the leader is not ready for one). */
export class ConfigChangeInProgressError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param detail What is in the way.
   */
  constructor(detail: string) {
    super("CONFIG_CHANGE_IN_PROGRESS", `membership change refused: ${detail}`);
    this.name = "ConfigChangeInProgressError";
  }
}

/** A requested membership change is not valid for the current configuration. */
export class InvalidMembershipChangeError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param detail What is wrong.
   */
  constructor(detail: string) {
    super("INVALID_MEMBERSHIP_CHANGE", `invalid membership change: ${detail}`);
    this.name = "InvalidMembershipChangeError";
  }
}

/** The configuration passed to `new RaftNode` is invalid. */
export class InvalidConfigError extends RaftIoError {
  /** The offending field. */
  readonly field: string;
  /**
   * Creates the error.
   *
   * @param field The offending field.
   * @param detail What is wrong and how to fix it.
   */
  constructor(field: string, detail: string) {
    super("INVALID_CONFIG", `invalid raft config: ${field}: ${detail}`);
    this.field = field;
    this.name = "InvalidConfigError";
  }
}

/** The driver broke the Ready protocol (e.g. `ready()` twice without `advance`). */
export class ReadyProtocolError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param detail What was wrong.
   */
  constructor(detail: string) {
    super("READY_PROTOCOL", detail);
    this.name = "ReadyProtocolError";
  }
}

/** A leadership transfer names a node that cannot become leader. */
export class InvalidTransferTargetError extends RaftIoError {
  /** The requested target. */
  readonly target: number;
  /**
   * Creates the error.
   *
   * @param target The requested target.
   * @param detail Why it cannot lead.
   */
  constructor(target: number, detail: string) {
    super(
      "INVALID_TRANSFER_TARGET",
      `cannot transfer leadership to node ${target}: ${detail}`,
    );
    this.target = target;
    this.name = "InvalidTransferTargetError";
  }
}

/**
 * This node was removed from the cluster (a committed configuration no
 * longer contains it, or the leader told it so): it no longer campaigns and
 * refuses proposals and reads. Stop the node, or add it back (as a learner)
 * from the leader.
 *
 * @example
 * ```ts
 * import { RemovedFromClusterError } from "@raft-io/raft";
 * const e = new RemovedFromClusterError(4, [1, 2, 3]);
 * e.code; // "REMOVED"
 * e.members; // [1, 2, 3]
 * ```
 */
export class RemovedFromClusterError extends RaftIoError {
  /** The members of the configuration this node knows (without itself). */
  readonly members: number[];
  /**
   * Creates the error.
   *
   * @param id This node's id.
   * @param members Members of the configuration it knows.
   */
  constructor(id: number, members: number[]) {
    super(
      "REMOVED",
      `node ${id} was removed from the cluster (members: ${
        members.join(", ") || "unknown"
      }); stop it, or add it back from the leader`,
    );
    this.members = members;
    this.name = "RemovedFromClusterError";
  }
}

/** Any error the core throws at its caller. */
export type CoreError =
  | NotLeaderError
  | ProposalDroppedError
  | OverloadedError
  | TransferInProgressError
  | ConfigChangeInProgressError
  | InvalidMembershipChangeError
  | InvalidConfigError
  | ReadyProtocolError
  | InvalidTransferTargetError
  | RemovedFromClusterError;

/**
 * Whether `error` is one of the core's own refusals (as opposed to a bug or
 * a storage failure surfacing through the core).
 *
 * @example
 * ```ts
 * import { isCoreError, NotLeaderError } from "@raft-io/raft/core";
 * isCoreError(new NotLeaderError(2)); // true
 * isCoreError(new RangeError("no")); // false
 * ```
 *
 * @param error anything caught
 * @returns true for an instance of one of the core's error classes
 */
export function isCoreError(error: unknown): error is CoreError {
  return error instanceof NotLeaderError ||
    error instanceof ProposalDroppedError ||
    error instanceof OverloadedError ||
    error instanceof TransferInProgressError ||
    error instanceof ConfigChangeInProgressError ||
    error instanceof InvalidMembershipChangeError ||
    error instanceof InvalidConfigError ||
    error instanceof ReadyProtocolError ||
    error instanceof InvalidTransferTargetError ||
    error instanceof RemovedFromClusterError;
}
