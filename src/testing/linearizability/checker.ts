/**
 * The linearizability checker for key-value histories: partitions by key,
 * searches each partition within a budget, and explains a failure by the
 * smallest failing prefix and a 1-minimal set of operations in it.
 *
 * @module
 */

import {
  formatOperation,
  type KvOperation,
  type KvValue,
  parseJsonLines,
  validateOperations,
} from "./history.ts";
import { encodePartition, partitionByKey } from "./partition.ts";
import { type SearchOutcome, searchPartition } from "./search.ts";

/** The checker's answer. `unknown` means a budget ran out before a decision. */
export type Verdict = "ok" | "illegal" | "unknown";

/** Limits and inputs of {@linkcode checkHistory}. */
export interface CheckOptions {
  /** Wall-clock budget for the whole history, in milliseconds. Default 10 000. */
  timeBudgetMs?: number;
  /**
   * Memo budget per key: the number of (linearized set, state) entries the
   * search may remember. An entry costs some 30 bytes plus the operations
   * in flight at once and the indefinite operations, one bit each.
   * Default 2 000 000.
   */
  maxMemoEntries?: number;
  /** Values keys hold before the history starts; absent keys start absent. */
  initialValues?: Readonly<Record<string, KvValue>>;
  /** Whether to minimize the explanation of an illegal history. Default true. */
  explain?: boolean;
  /**
   * Wall-clock budget for minimizing the explanation, in milliseconds,
   * counted apart from `timeBudgetMs`. Default: `timeBudgetMs`.
   */
  explainBudgetMs?: number;
}

/** Why a history is not linearizable. */
export interface IllegalExplanation {
  /** The key whose history cannot be linearized. */
  key: string;
  /**
   * The operation whose completion makes the history impossible: the key's
   * history up to its return is the shortest prefix that is not linearizable.
   */
  failing: KvOperation;
  /**
   * A 1-minimal set of operations from that prefix that cannot be ordered:
   * dropping any one of them (other than writes whose values are read in the
   * set) makes the rest linearizable. Operations still in flight at the
   * failing operation's return appear as indefinite (`status: "info"`).
   */
  operations: KvOperation[];
  /** How many of the key's operations the failing prefix holds. */
  prefixOperations: number;
  /**
   * Whether `failing` is certainly the shortest failing prefix and
   * `operations` 1-minimal. False when the explanation's budget ran out or
   * the prefix was too long to minimize; `operations` then shows the
   * operations around the failure.
   */
  minimal: boolean;
  /** A readable account, one operation per line. */
  message: string;
}

/** Which budget stopped the check. */
export interface UnknownReason {
  /** The key being searched when the budget ran out. */
  key: string;
  /** `time`: the time budget; `memory`: the memo budget. */
  reason: "time" | "memory";
}

/** The result of {@linkcode checkHistory}. */
export interface CheckResult {
  /** `ok`, `illegal` or `unknown`. */
  verdict: Verdict;
  /** Operations in the history (including failed and indefinite ones). */
  operations: number;
  /** Distinct keys. */
  keys: number;
  /** Keys whose partition was decided linearizable. */
  keysChecked: number;
  /** Memo entries summed over all searches. */
  memoEntries: number;
  /** Wall-clock time spent, in milliseconds. */
  elapsedMs: number;
  /** Set when the verdict is `illegal`. */
  illegal?: IllegalExplanation;
  /** Set when the verdict is `unknown`. */
  unknown?: UnknownReason;
}

const DEFAULT_TIME_BUDGET_MS = 10_000;
const DEFAULT_MAX_MEMO = 2_000_000;
/** Explanations are minimized operation by operation only up to this many operations. */
const MAX_MINIMIZE = 400;
/** Completed writes before the failure shown when an explanation is not minimized. */
const AROUND_WRITES = 5;

/**
 * Checks that a key-value history is linearizable: that every completed
 * operation can be placed at one instant between its invocation and its
 * completion so that the results agree with a single register per key.
 * Failed operations never happened; indefinite ones may have happened at any
 * instant after their invocation, or never.
 *
 * Throws a {@linkcode HistoryError} when the history is malformed; never
 * throws or hangs because it is hard: past a budget the verdict is `unknown`.
 *
 * @example
 * ```ts
 * import { checkHistory } from "@raft-io/raft/testing";
 * const result = checkHistory([
 *   { id: 1, process: 0, f: "put", key: "x", value: "a", status: "ok", invokeTime: 0, returnTime: 10 },
 *   { id: 2, process: 1, f: "put", key: "x", value: "b", status: "ok", invokeTime: 20, returnTime: 30 },
 *   { id: 3, process: 2, f: "get", key: "x", value: "a", status: "ok", invokeTime: 40, returnTime: 50 },
 * ]);
 * result.verdict; // "illegal": a stale read
 * ```
 */
export function checkHistory(
  ops: readonly KvOperation[],
  options: CheckOptions = {},
): CheckResult {
  validateOperations(ops);
  const started = performance.now();
  const timeBudget = options.timeBudgetMs ?? DEFAULT_TIME_BUDGET_MS;
  const maxMemoEntries = options.maxMemoEntries ?? DEFAULT_MAX_MEMO;
  const deadline = started + timeBudget;
  const byKey = partitionByKey(ops);
  const result: CheckResult = {
    verdict: "ok",
    operations: ops.length,
    keys: byKey.size,
    keysChecked: 0,
    memoEntries: 0,
    elapsedMs: 0,
  };
  for (const [key, keyOps] of byKey) {
    const initial = options.initialValues?.[key] ?? null;
    const search = searchPartition(encodePartition(key, keyOps, initial), {
      deadline,
      maxMemoEntries,
    });
    result.memoEntries += search.memoEntries;
    if (search.outcome === "ok") {
      result.keysChecked++;
      continue;
    }
    if (search.outcome === "illegal") {
      result.verdict = "illegal";
      result.illegal = explain(key, keyOps, initial, options.explain ?? true, {
        deadline: performance.now() + (options.explainBudgetMs ?? timeBudget),
        maxMemoEntries,
      });
      break;
    }
    if (result.unknown === undefined) {
      result.verdict = "unknown";
      result.unknown = { key, reason: search.outcome };
    }
    // Keep going: another key may still be decidably illegal.
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/**
 * Parses a JSON Lines history (see {@linkcode parseJsonLines}) and checks it.
 *
 * @example
 * ```ts
 * import { checkJsonLines } from "@raft-io/raft/testing";
 * const text = [
 *   '{"type":"invoke","process":1,"id":1,"f":"put","key":"x","value":1,"time":0}',
 *   '{"type":"invoke","process":2,"id":2,"f":"get","key":"x","time":1}',
 *   '{"type":"ok","process":2,"id":2,"value":1,"time":2}',
 *   '{"type":"ok","process":1,"id":1,"time":3}',
 * ].join("\n");
 * checkJsonLines(text).verdict; // "ok": the read overlaps the write
 * ```
 */
export function checkJsonLines(
  text: string,
  options: CheckOptions = {},
): CheckResult {
  return checkHistory(parseJsonLines(text), options);
}

interface Budget {
  deadline: number;
  maxMemoEntries: number;
}

/** Timestamped events of one key, for cutting prefixes. */
interface TimedEvent {
  op: KvOperation;
  time: number;
  isReturn: boolean;
}

function timeline(ops: readonly KvOperation[]): TimedEvent[] {
  const events: TimedEvent[] = [];
  for (const op of ops) {
    if (op.status === "fail") continue;
    events.push({ op, time: op.invokeTime, isReturn: false });
    if (op.status === "ok") {
      events.push({ op, time: op.returnTime as number, isReturn: true });
    }
  }
  // Same order as the search: calls before returns on ties; stable otherwise.
  events.sort((a, b) =>
    a.time - b.time || Number(a.isReturn) - Number(b.isReturn)
  );
  return events;
}

/** The history up to and including event `end`: operations still in flight become indefinite. */
function prefix(events: readonly TimedEvent[], end: number): KvOperation[] {
  const returned = new Set<KvOperation>();
  for (let i = 0; i <= end; i++) {
    if (events[i].isReturn) returned.add(events[i].op);
  }
  const out: KvOperation[] = [];
  for (let i = 0; i <= end; i++) {
    const e = events[i];
    if (e.isReturn) continue;
    if (e.op.status === "ok" && !returned.has(e.op)) {
      const pending: KvOperation = { ...e.op, status: "info" };
      delete pending.returnTime;
      delete pending.outcome;
      if (pending.f === "get") delete pending.value;
      out.push(pending);
    } else out.push(e.op);
  }
  return out;
}

function decide(
  key: string,
  ops: readonly KvOperation[],
  initial: KvValue | null,
  budget: Budget,
): SearchOutcome {
  return searchPartition(encodePartition(key, ops, initial), budget).outcome;
}

function explain(
  key: string,
  keyOps: readonly KvOperation[],
  initial: KvValue | null,
  minimize: boolean,
  budget: Budget,
): IllegalExplanation {
  const events = timeline(keyOps);
  const returns: number[] = [];
  for (let i = 0; i < events.length; i++) {
    if (events[i].isReturn) returns.push(i);
  }
  // Smallest illegal prefix, by binary search: illegality is monotone in the
  // prefix. The full search's frontier is a lower bound and usually the answer.
  let lo = 0;
  let hi = returns.length - 1;
  let minimal = minimize;
  if (minimize) {
    const full = searchPartition(encodePartition(key, keyOps, initial), budget);
    if (full.outcome !== "illegal") minimal = false;
    else if (full.frontier !== undefined) {
      const blocked = encodePartition(key, keyOps, initial).ops[full.frontier];
      const at = returns.findIndex((r) => events[r].op === blocked);
      if (at >= 0) lo = at;
    }
  }
  let tryBound = lo > 0;
  while (minimal && lo < hi) {
    // Try the lower bound first: the frontier is usually exactly the answer.
    const mid = tryBound ? lo : (lo + hi) >>> 1;
    tryBound = false;
    const outcome = decide(key, prefix(events, returns[mid]), initial, budget);
    if (outcome === "illegal") hi = mid;
    else if (outcome === "ok") lo = mid + 1;
    else minimal = false;
  }
  const end = returns[hi];
  const failing = events[end].op;
  let set = prefix(events, end);
  const prefixOperations = set.length;
  if (minimal && set.length <= MAX_MINIMIZE) {
    const reduced = minimizeSet(key, set, failing, initial, budget);
    set = reduced.ops;
    minimal = reduced.complete;
  } else {
    set = around(set, failing);
    minimal = false;
  }
  set.sort((a, b) => a.invokeTime - b.invokeTime);
  const lines = set.map((op) =>
    "  " + formatOperation(op) + (op === failing ? "  <- fails" : "")
  );
  const head = minimal
    ? `key ${JSON.stringify(key)}: ${set.length} operations cannot be ordered`
    : `key ${
      JSON.stringify(key)
    }: not linearizable; ${set.length} operations around the failure`;
  const where = `the history of the key first becomes impossible when ` +
    `${formatOperation(failing)} returns, ${prefixOperations} operations in`;
  const message = `${head} (${where}):\n${lines.join("\n")}`;
  return { key, failing, operations: set, prefixOperations, minimal, message };
}

/**
 * The operations near a failure, for prefixes too long to minimize: those
 * overlapping the failing operation, the writers of the values it observes,
 * and the last few writes that completed before it began.
 */
function around(
  set: readonly KvOperation[],
  failing: KvOperation,
): KvOperation[] {
  const out = new Set<KvOperation>();
  const observed = failing.f === "get"
    ? failing.value
    : failing.f === "cas"
    ? failing.expect
    : undefined;
  const before: KvOperation[] = [];
  for (const op of set) {
    const end = op.status === "info" ? Infinity : op.returnTime as number;
    if (
      op === failing ||
      (end >= failing.invokeTime &&
        op.invokeTime <= (failing.returnTime as number))
    ) {
      out.add(op);
    } else if (
      observed !== undefined && op.f !== "get" &&
      (op.f === "delete" ? null : op.value) === observed
    ) {
      out.add(op);
    } else if (op.f !== "get" && end < failing.invokeTime) before.push(op);
  }
  before.sort((a, b) => (b.returnTime as number) - (a.returnTime as number));
  for (const op of before.slice(0, AROUND_WRITES)) out.add(op);
  return [...out];
}

/**
 * Drops operations one at a time, latest first, while the rest stays
 * illegal. Writes whose value a remaining operation reads or expects are
 * kept so that the explanation shows where a value came from.
 */
function minimizeSet(
  key: string,
  ops: KvOperation[],
  failing: KvOperation,
  initial: KvValue | null,
  budget: Budget,
): { ops: KvOperation[]; complete: boolean } {
  let current = ops.slice();
  for (let i = current.length - 1; i >= 0; i--) {
    const candidate = current[i];
    if (candidate === failing) continue;
    if (isObservedWrite(candidate, current)) continue;
    const without = current.slice(0, i).concat(current.slice(i + 1));
    const outcome = decide(key, without, initial, budget);
    if (outcome === "illegal") current = without;
    else if (outcome !== "ok") return { ops: current, complete: false };
  }
  return { ops: current, complete: true };
}

function isObservedWrite(
  op: KvOperation,
  set: readonly KvOperation[],
): boolean {
  if (op.f !== "put" && op.f !== "cas" && op.f !== "delete") return false;
  const written = op.f === "delete" ? null : op.value;
  for (const other of set) {
    if (other === op) continue;
    if (other.f === "get" && other.status === "ok" && other.value === written) {
      return true;
    }
    if (other.f === "cas" && other.expect === written) return true;
  }
  return false;
}
