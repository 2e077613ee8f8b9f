/**
 * Typed errors of the runtime. Proposals and reads also reject with the
 * core's errors: `NotLeaderError` (with `leaderId`), `OverloadedError`,
 * `TransferInProgressError`, `ConfigChangeInProgressError`.
 *
 * @module
 */

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
export class TimeoutError extends Error {
  /** Stable code. */
  readonly code = "TIMEOUT" as const;
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
      `${what} did not complete within ${timeoutMs} ms${
        detail ? ` (${detail})` : ""
      }; ` +
        "its outcome is unknown: check before retrying a non-idempotent write",
    );
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The server was stopped (or failed) before the request completed.
 *
 * @example
 * ```ts
 * import { StoppedError } from "@raft-io/raft";
 * new StoppedError().code; // "STOPPED"
 * ```
 */
export class StoppedError extends Error {
  /** Stable code. */
  readonly code = "STOPPED" as const;

  /**
   * Creates the error.
   *
   * @param detail why the server stopped
   */
  constructor(detail?: string) {
    super(`the raft server is stopped${detail ? `: ${detail}` : ""}`);
    this.name = "StoppedError";
  }
}
