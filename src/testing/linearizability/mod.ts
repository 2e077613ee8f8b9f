/**
 * A linearizability checker for key-value histories (Wing–Gong search with
 * Lowe's memoization, partitioned per key), with a JSON Lines history format.
 *
 * @example
 * ```ts
 * import { checkJsonLines } from "@raft-io/raft/testing";
 * const result = checkJsonLines(await Deno.readTextFile("history.jsonl"));
 * if (result.verdict === "illegal") console.log(result.illegal?.message);
 * ```
 *
 * @module
 */

export {
  type CasOutcome,
  formatOperation,
  HistoryError,
  type HistoryErrorCode,
  type KvFunction,
  type KvOperation,
  type KvValue,
  type OperationId,
  type OperationStatus,
  parseJsonLines,
  type ProcessId,
  toJsonLines,
  validateOperations,
} from "./history.ts";
export {
  checkHistory,
  checkJsonLines,
  type CheckOptions,
  type CheckResult,
  type IllegalExplanation,
  type UnknownReason,
  type Verdict,
} from "./checker.ts";
