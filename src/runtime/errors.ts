/**
 * Typed errors of the runtime. Proposals and reads also reject with the
 * core's errors: `NotLeaderError` (with `leaderId`), `OverloadedError`,
 * `TransferInProgressError`, `ConfigChangeInProgressError`,
 * `RemovedFromClusterError`. Every one extends `RaftIoError` and has a
 * stable `code`.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";

/**
 * A proposal, read or membership change did not complete in time. For a
 * proposal the outcome is unknown: it may still commit later.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@raft-io/raft";
 * new TimeoutError("proposal", 5000).code; // "TIMEOUT"
 * ```
 */
export class TimeoutError extends RaftIoError {
  /** The deadline that passed, ms. */
  readonly timeoutMs: number;

  /**
   * Creates the error.
   *
   * @param what what timed out ("proposal", "read", ...)
   * @param timeoutMs the deadline
   * @param detail optional extra explanation
   */
  constructor(what: string, timeoutMs: number, detail?: string) {
    super(
      "TIMEOUT",
      `${what} did not complete within ${timeoutMs} ms${
        detail ? ` (${detail})` : ""
      }; ` +
        "its outcome is unknown: check before retrying a non-idempotent write",
    );
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The server was stopped (or failed) before the request completed. For a
 * proposal already handed to the log the outcome is unknown.
 *
 * @example
 * ```ts
 * import { StoppedError } from "@raft-io/raft";
 * new StoppedError().code; // "STOPPED"
 * ```
 */
export class StoppedError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param detail why the server stopped
   * @param options `cause`: the failure that stopped it
   */
  constructor(detail?: string, options?: ErrorOptions) {
    super(
      "STOPPED",
      `the raft server is stopped${detail ? `: ${detail}` : ""}`,
      options,
    );
  }
}

/**
 * The state machine rejected a committed command: `apply` threw for it. The
 * entry counts as applied on every replica (each rejects it alike) and the
 * cluster keeps serving. A definite failure: the command changed nothing.
 * `cause` is what `apply` threw.
 *
 * @example
 * ```ts
 * import { ApplyError } from "@raft-io/raft";
 * const e = new ApplyError(7, new RangeError("bad command"));
 * e.code; // "APPLY_REJECTED"
 * e.index; // 7
 * ```
 */
export class ApplyError extends RaftIoError {
  /** Log index of the rejected entry. */
  readonly index: number;

  /**
   * Creates the error.
   *
   * @param index the entry's index
   * @param cause what the state machine threw
   */
  constructor(index: number, cause: unknown) {
    super(
      "APPLY_REJECTED",
      `the state machine rejected the command at log index ${index}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
    this.index = index;
  }
}

/**
 * Thrown by a state machine (from `apply`, `snapshot` or `restore`) that is
 * genuinely broken — its own storage failed, an invariant no longer holds —
 * to stop this node. Other errors thrown by `apply` only reject that
 * command.
 *
 * @example
 * ```ts
 * import { StateMachineFatalError } from "@raft-io/raft";
 * const e = new StateMachineFatalError("the index file is unreadable");
 * e.code; // "STATE_MACHINE_FATAL"
 * ```
 */
export class StateMachineFatalError extends RaftIoError {
  /**
   * Creates the error.
   *
   * @param message what broke
   * @param options `cause`: the underlying error
   */
  constructor(message: string, options?: ErrorOptions) {
    super("STATE_MACHINE_FATAL", message, options);
  }
}

/** Why a proposal was refused: not a `Uint8Array`, empty, or over `maxProposalBytes`. */
export type InvalidProposalReason = "not_bytes" | "empty" | "too_large";

/**
 * A proposal was refused before it reached the log: not a `Uint8Array`,
 * empty, or larger than `maxProposalBytes`. A definite failure.
 *
 * @example
 * ```ts
 * import { InvalidProposalError } from "@raft-io/raft";
 * const e = new InvalidProposalError("too_large", "2000 bytes exceed 1000");
 * e.code; // "INVALID_PROPOSAL"
 * e.reason; // "too_large"
 * ```
 */
export class InvalidProposalError extends RaftIoError {
  /** Which rule the proposal broke. */
  readonly reason: InvalidProposalReason;

  /**
   * Creates the error.
   *
   * @param reason which rule the proposal broke
   * @param detail what is wrong with the proposal
   */
  constructor(reason: InvalidProposalReason, detail: string) {
    super("INVALID_PROPOSAL", `proposal refused: ${detail}`);
    this.reason = reason;
  }
}

/**
 * `RaftServer.start` failed while restoring the state machine from the
 * log's snapshot or while re-applying the log; `cause` is the failure. The
 * log and the transport were closed.
 *
 * @example
 * ```ts
 * import { StartFailedError } from "@raft-io/raft";
 * const e = new StartFailedError("restore", new Error("bad bytes"));
 * e.code; // "START_FAILED"
 * e.phase; // "restore"
 * ```
 */
export class StartFailedError extends RaftIoError {
  /** What was running: restoring the snapshot or re-applying the log. */
  readonly phase: "restore" | "replay";

  /**
   * Creates the error.
   *
   * @param phase what was running
   * @param cause what failed
   */
  constructor(phase: "restore" | "replay", cause: unknown) {
    super(
      "START_FAILED",
      `the server could not start: ${
        phase === "restore"
          ? "restoring the state machine from the snapshot"
          : "re-applying the committed log"
      } failed: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
    this.phase = phase;
  }
}

/**
 * A leadership transfer ended without the target becoming leader (the
 * target did not catch up or win in time, or another node won).
 *
 * @example
 * ```ts
 * import { TransferAbandonedError } from "@raft-io/raft";
 * new TransferAbandonedError(3, 1, "timed out").code; // "TRANSFER_ABANDONED"
 * ```
 */
export class TransferAbandonedError extends RaftIoError {
  /** The intended new leader. */
  readonly target: number;
  /** The leader known when the transfer was abandoned (0: none). */
  readonly leaderId: number;

  /**
   * Creates the error.
   *
   * @param target the intended new leader
   * @param leaderId the leader afterwards (0: none known)
   * @param reason why it was abandoned
   */
  constructor(target: number, leaderId: number, reason: string) {
    super(
      "TRANSFER_ABANDONED",
      `leadership transfer to node ${target} was abandoned: ${reason}` +
        (leaderId === 0 ? "" : `; the leader is node ${leaderId}`),
    );
    this.target = target;
    this.leaderId = leaderId;
  }
}

/**
 * A learner did not catch up with the leader in time, so it was not
 * promoted to voter; it stays a learner (remove it, or call `addVoter`
 * again).
 *
 * @example
 * ```ts
 * import { CatchUpTimeoutError } from "@raft-io/raft";
 * new CatchUpTimeoutError(4, 10, 5000, 30_000).code; // "CATCH_UP_TIMEOUT"
 * ```
 */
export class CatchUpTimeoutError extends RaftIoError {
  /** The learner. */
  readonly nodeId: number;
  /** Its match index when the wait ended. */
  readonly match: number;
  /** The leader's last index then. */
  readonly lastIndex: number;

  /**
   * Creates the error.
   *
   * @param nodeId the learner
   * @param match its match index
   * @param lastIndex the leader's last index
   * @param timeoutMs how long the server waited
   */
  constructor(
    nodeId: number,
    match: number,
    lastIndex: number,
    timeoutMs: number,
  ) {
    super(
      "CATCH_UP_TIMEOUT",
      `node ${nodeId} did not catch up within ${timeoutMs} ms (it has ${match} of ${lastIndex} entries` +
        (match === 0 ? "; is it running and reachable at its address?" : "") +
        "); it stays a learner: remove it or retry addVoter",
    );
    this.nodeId = nodeId;
    this.match = match;
    this.lastIndex = lastIndex;
  }
}

/**
 * Taking a snapshot failed (the state machine's `snapshot()` or reading its
 * view threw). The node keeps serving from its log and retries later.
 *
 * @example
 * ```ts
 * import { SnapshotFailedError } from "@raft-io/raft";
 * new SnapshotFailedError(100, new Error("ENOSPC")).code; // "SNAPSHOT_FAILED"
 * ```
 */
export class SnapshotFailedError extends RaftIoError {
  /** The applied index the snapshot was to cover. */
  readonly index: number;

  /**
   * Creates the error.
   *
   * @param index the index it was to cover
   * @param cause what failed
   */
  constructor(index: number, cause: unknown) {
    super(
      "SNAPSHOT_FAILED",
      `the snapshot at index ${index} failed: ${
        cause instanceof Error ? cause.message : String(cause)
      }; the node keeps serving from its log and retries later`,
      { cause },
    );
    this.index = index;
  }
}
