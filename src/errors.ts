/**
 * {@linkcode RaftIoError}: the one base class of every typed error raft-io
 * throws or rejects with. Callers branch on the stable `code` (a table, not
 * an `instanceof` chain); the message says what happened and what to do.
 *
 * This module imports nothing, so every layer (core, seams, runtime) can
 * extend it without an import going up the layers.
 *
 * @module
 */

/**
 * The base of raft-io's typed errors. `code` is stable across releases;
 * `message` is for people.
 *
 * @example
 * ```ts
 * import { RaftIoError } from "@raft-io/raft";
 * try {
 *   throw new RaftIoError("EXAMPLE", "something went wrong");
 * } catch (e) {
 *   if (e instanceof RaftIoError) console.log(e.code); // "EXAMPLE"
 * }
 * ```
 */
export class RaftIoError extends Error {
  /** Stable, machine-readable code (e.g. `"NOT_LEADER"`, `"TIMEOUT"`). */
  readonly code: string;

  /**
   * Creates the error.
   *
   * @param code stable code
   * @param message what happened and what to do
   * @param options standard error options (`cause`)
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}
