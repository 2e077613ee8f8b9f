/**
 * Client histories of a key-value store: the operation type the checker
 * consumes, validation, and the JSON Lines format described in
 * `docs/history_format.md`.
 *
 * @module
 */

import { RaftIoError } from "../../errors.ts";

/** A value stored under a key. `null` stands for "absent" wherever a value is read or expected. */
export type KvValue = string | number | boolean;

/** Identifies an operation; unique among operations in flight. */
export type OperationId = string | number;

/** Identifies the client (process, thread, connection) that issued an operation. */
export type ProcessId = string | number;

/** The functions of the key-value register model. */
export type KvFunction = "put" | "get" | "delete" | "cas";

/**
 * How an operation ended:
 * - `"ok"`: it completed and took effect (for `cas`, see {@linkcode KvOperation.outcome});
 * - `"fail"`: it definitely did not take effect;
 * - `"info"`: indefinite (timed out, connection lost): it may have taken
 *   effect at any moment after its invocation, or never.
 */
export type OperationStatus = "ok" | "fail" | "info";

/** The result of a compare-and-set that completed: it swapped, or the comparison failed. */
export type CasOutcome = "ok" | "failed";

/**
 * One client operation on one key, from invocation to completion.
 *
 * @example
 * ```ts
 * import type { KvOperation } from "@raft-io/raft/testing";
 * const write: KvOperation = {
 *   id: 1, process: 0, f: "put", key: "x", value: "a",
 *   status: "ok", invokeTime: 10, returnTime: 20,
 * };
 * const read: KvOperation = {
 *   id: 2, process: 1, f: "get", key: "x", value: "a",
 *   status: "ok", invokeTime: 25, returnTime: 30,
 * };
 * ```
 */
export interface KvOperation {
  /** Identifies the operation (used in explanations). */
  id: OperationId;
  /** The client that issued it (used in explanations). */
  process: ProcessId;
  /** What the operation does. */
  f: KvFunction;
  /** The key it acts on. Operations on different keys are checked independently. */
  key: string;
  /**
   * `put`: the value written. `cas`: the new value written when the
   * comparison holds. `get` with status `"ok"`: the value read, `null` when
   * the key was absent. Unused for `delete`.
   */
  value?: KvValue | null;
  /** `cas` only: the value the key must hold for the swap, `null` for "absent". */
  expect?: KvValue | null;
  /** `cas` with status `"ok"` only: whether it swapped (`"ok"`) or the comparison failed. */
  outcome?: CasOutcome;
  /** How the operation ended. */
  status: OperationStatus;
  /** When the client invoked it (any monotonic unit, e.g. nanoseconds). */
  invokeTime: number;
  /**
   * When the client saw it complete; required for `"ok"` and `"fail"`,
   * ignored for `"info"` (an indefinite operation's window never closes).
   */
  returnTime?: number;
}

/** Stable codes of {@linkcode HistoryError}. */
export type HistoryErrorCode =
  | "invalid_json"
  | "invalid_field"
  | "unknown_type"
  | "unknown_function"
  | "duplicate_id"
  | "unmatched_completion"
  | "mismatched_completion"
  | "time_order"
  | "mixed_timestamps";

/**
 * A history that cannot be checked because it is malformed. `line` is the
 * 1-based line of a JSON Lines input, `index` the position in an operation
 * array; one of them is set.
 *
 * @example
 * ```ts
 * import { HistoryError, parseJsonLines } from "@raft-io/raft/testing";
 * try {
 *   parseJsonLines('{"type":"ok","process":1,"id":9,"time":5}');
 * } catch (error) {
 *   if (error instanceof HistoryError) console.log(error.code, error.line); // unmatched_completion 1
 * }
 * ```
 */
export class HistoryError extends RaftIoError {
  /** Stable machine-readable reason. */
  declare readonly code: HistoryErrorCode;
  /** 1-based line number in JSON Lines input, when parsing text. */
  readonly line?: number;
  /** Index in the operation array, when validating operations. */
  readonly index?: number;

  /** Creates the error; `where` names the offending line or operation index. */
  constructor(
    code: HistoryErrorCode,
    message: string,
    where: { line?: number; index?: number } = {},
  ) {
    const prefix = where.line !== undefined
      ? `line ${where.line}: `
      : where.index !== undefined
      ? `operation ${where.index}: `
      : "";
    super(code, prefix + message);
    this.name = "HistoryError";
    this.line = where.line;
    this.index = where.index;
  }
}

const FUNCTIONS: ReadonlySet<string> = new Set(["put", "get", "delete", "cas"]);
const STATUSES: ReadonlySet<string> = new Set(["ok", "fail", "info"]);

function isKvValue(v: unknown): v is KvValue {
  return typeof v === "string" || typeof v === "boolean" ||
    (typeof v === "number" && Number.isFinite(v));
}

function isOptionalValue(v: unknown): v is KvValue | null {
  return v === null || isKvValue(v);
}

function isId(v: unknown): v is string | number {
  return typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

/**
 * Checks that every operation is well formed; throws a {@linkcode HistoryError}
 * naming the first bad one.
 *
 * @example
 * ```ts
 * import { validateOperations } from "@raft-io/raft/testing";
 * validateOperations([{ id: 1, process: 0, f: "delete", key: "x", status: "ok", invokeTime: 1, returnTime: 2 }]);
 * ```
 */
export function validateOperations(ops: readonly KvOperation[]): void {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const bad = (code: HistoryErrorCode, message: string) =>
      new HistoryError(code, message, { index: i });
    if (!isId(op.id)) {
      throw bad("invalid_field", "`id` must be a string or a number");
    }
    if (!isId(op.process)) {
      throw bad("invalid_field", "`process` must be a string or a number");
    }
    if (!FUNCTIONS.has(op.f)) {
      throw bad("unknown_function", `unknown function ${JSON.stringify(op.f)}`);
    }
    if (typeof op.key !== "string") {
      throw bad("invalid_field", "`key` must be a string");
    }
    if (!STATUSES.has(op.status)) {
      throw bad("unknown_type", `unknown status ${JSON.stringify(op.status)}`);
    }
    if (typeof op.invokeTime !== "number" || Number.isNaN(op.invokeTime)) {
      throw bad("invalid_field", "`invokeTime` must be a number");
    }
    if (op.status !== "info") {
      if (typeof op.returnTime !== "number" || Number.isNaN(op.returnTime)) {
        throw bad(
          "invalid_field",
          "`returnTime` must be a number for a completed operation",
        );
      }
      if (op.returnTime < op.invokeTime) {
        throw bad("time_order", "`returnTime` is before `invokeTime`");
      }
    }
    switch (op.f) {
      case "put":
        if (!isKvValue(op.value)) {
          throw bad(
            "invalid_field",
            "a put needs a `value` (string, number or boolean)",
          );
        }
        break;
      case "cas":
        if (!isKvValue(op.value)) {
          throw bad(
            "invalid_field",
            "a cas needs a new `value` (string, number or boolean)",
          );
        }
        if (!isOptionalValue(op.expect)) {
          throw bad(
            "invalid_field",
            "a cas needs `expect` (a value, or null for absent)",
          );
        }
        if (
          op.status === "ok" && op.outcome !== "ok" && op.outcome !== "failed"
        ) {
          throw bad(
            "invalid_field",
            'a completed cas needs `outcome` "ok" or "failed"',
          );
        }
        break;
      case "get":
        if (op.status === "ok" && !isOptionalValue(op.value)) {
          throw bad(
            "invalid_field",
            "a completed get needs the `value` read (null for absent)",
          );
        }
        break;
      case "delete":
        break;
    }
  }
}

interface Pending {
  op: KvOperation;
  line: number;
}

type JsonObject = Record<string, unknown>;

/**
 * Parses a history in the JSON Lines format of `docs/history_format.md`:
 * one event per line (`invoke`, then `ok`, `fail` or `info` with the same
 * `id`). Invocations that never complete are indefinite. Throws a
 * {@linkcode HistoryError} with the line number on malformed input.
 *
 * @example
 * ```ts
 * import { parseJsonLines } from "@raft-io/raft/testing";
 * const ops = parseJsonLines([
 *   '{"type":"invoke","process":1,"id":1,"f":"put","key":"x","value":"a","time":1}',
 *   '{"type":"ok","process":1,"id":1,"time":2}',
 * ].join("\n"));
 * ops[0].status; // "ok"
 * ```
 */
export function parseJsonLines(text: string): KvOperation[] {
  const ops: KvOperation[] = [];
  const pending = new Map<OperationId, Pending>();
  let timed: boolean | undefined;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i].trim();
    if (raw === "") continue;
    const bad = (code: HistoryErrorCode, message: string) =>
      new HistoryError(code, message, { line: lineNo });
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      throw bad("invalid_json", `not valid JSON (${(error as Error).message})`);
    }
    if (
      typeof parsed !== "object" || parsed === null || Array.isArray(parsed)
    ) {
      throw bad("invalid_json", "each line must be a JSON object");
    }
    const event = parsed as JsonObject;
    const type = event.type;
    if (
      type !== "invoke" && type !== "ok" && type !== "fail" && type !== "info"
    ) {
      throw bad(
        "unknown_type",
        `\`type\` must be invoke, ok, fail or info, not ${
          JSON.stringify(type)
        }`,
      );
    }
    const hasTime = event.time !== undefined;
    if (timed === undefined) timed = hasTime;
    else if (timed !== hasTime) {
      throw bad(
        "mixed_timestamps",
        "`time` must be given on every line or on none",
      );
    }
    let time = lineNo;
    if (hasTime) {
      if (typeof event.time !== "number" || !Number.isFinite(event.time)) {
        throw bad("invalid_field", "`time` must be a finite number");
      }
      time = event.time;
    }
    const id = event.id;
    if (!isId(id)) {
      throw bad("invalid_field", "`id` must be a string or a number");
    }
    if (type === "invoke") {
      ops.push(parseInvoke(event, id, time, pending, bad, lineNo));
      continue;
    }
    const entry = pending.get(id);
    if (entry === undefined) {
      throw bad(
        "unmatched_completion",
        `completion of ${JSON.stringify(id)}, which is not in flight`,
      );
    }
    pending.delete(id);
    const op = entry.op;
    for (const field of ["process", "f", "key"] as const) {
      if (event[field] !== undefined && event[field] !== op[field]) {
        throw bad(
          "mismatched_completion",
          `\`${field}\` ${
            JSON.stringify(event[field])
          } differs from the invocation on line ${entry.line}`,
        );
      }
    }
    if (time < op.invokeTime) {
      throw bad(
        "time_order",
        `completes at ${time}, before its invocation at ${op.invokeTime}`,
      );
    }
    op.status = type;
    if (type === "info") continue;
    op.returnTime = time;
    if (type === "fail") continue;
    if (op.f === "get") {
      if (!isOptionalValue(event.value)) {
        throw bad(
          "invalid_field",
          "an ok get needs the `value` read (null for absent)",
        );
      }
      op.value = event.value;
    } else if (op.f === "cas") {
      if (event.outcome !== "ok" && event.outcome !== "failed") {
        throw bad(
          "invalid_field",
          'an ok cas needs `outcome` "ok" or "failed"',
        );
      }
      op.outcome = event.outcome;
    }
  }
  return ops;
}

function parseInvoke(
  event: JsonObject,
  id: OperationId,
  time: number,
  pending: Map<OperationId, Pending>,
  bad: (code: HistoryErrorCode, message: string) => HistoryError,
  line: number,
): KvOperation {
  if (pending.has(id)) {
    throw bad(
      "duplicate_id",
      `id ${JSON.stringify(id)} is already in flight (line ${
        pending.get(id)?.line
      })`,
    );
  }
  const process = event.process;
  if (!isId(process)) {
    throw bad("invalid_field", "`process` must be a string or a number");
  }
  const f = event.f;
  if (typeof f !== "string" || !FUNCTIONS.has(f)) {
    throw bad(
      "unknown_function",
      `\`f\` must be put, get, delete or cas, not ${JSON.stringify(f)}`,
    );
  }
  if (typeof event.key !== "string") {
    throw bad("invalid_field", "`key` must be a string");
  }
  const op: KvOperation = {
    id,
    process,
    f: f as KvFunction,
    key: event.key,
    status: "info",
    invokeTime: time,
  };
  if (f === "put" || f === "cas") {
    if (!isKvValue(event.value)) {
      throw bad(
        "invalid_field",
        `a ${f} needs a \`value\` (string, number or boolean)`,
      );
    }
    op.value = event.value;
  }
  if (f === "cas") {
    if (!isOptionalValue(event.expect)) {
      throw bad(
        "invalid_field",
        "a cas needs `expect` (a value, or null for absent)",
      );
    }
    op.expect = event.expect;
  }
  pending.set(id, { op, line });
  return op;
}

/**
 * Writes operations as JSON Lines (the inverse of {@linkcode parseJsonLines}),
 * events ordered by time with invocations first on ties. Indefinite
 * operations get an `info` line at the end.
 *
 * @example
 * ```ts
 * import { toJsonLines } from "@raft-io/raft/testing";
 * toJsonLines([{ id: 1, process: 0, f: "delete", key: "x", status: "ok", invokeTime: 1, returnTime: 2 }]);
 * ```
 */
export function toJsonLines(ops: readonly KvOperation[]): string {
  interface Line {
    time: number;
    order: number;
    text: string;
  }
  const lines: Line[] = [];
  let maxTime = -Infinity;
  for (const op of ops) {
    maxTime = Math.max(maxTime, op.invokeTime, op.returnTime ?? -Infinity);
  }
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i];
    const invoke: JsonObject = {
      type: "invoke",
      process: op.process,
      id: op.id,
      f: op.f,
      key: op.key,
    };
    if (op.f === "put" || op.f === "cas") invoke.value = op.value;
    if (op.f === "cas") invoke.expect = op.expect;
    invoke.time = op.invokeTime;
    lines.push({ time: op.invokeTime, order: 0, text: JSON.stringify(invoke) });
    const end = op.status === "info" ? maxTime : op.returnTime ?? maxTime;
    const done: JsonObject = {
      type: op.status,
      process: op.process,
      id: op.id,
    };
    if (op.status === "ok" && op.f === "get") done.value = op.value ?? null;
    if (op.status === "ok" && op.f === "cas") done.outcome = op.outcome;
    done.time = end;
    lines.push({ time: end, order: 1, text: JSON.stringify(done) });
  }
  lines.sort((a, b) => a.time - b.time || a.order - b.order);
  return lines.map((l) => l.text).join("\n") + (lines.length > 0 ? "\n" : "");
}

/**
 * Renders one operation for humans, e.g. `p1#7 cas(x, a→b) = failed [10, 20]`.
 *
 * @example
 * ```ts
 * import { formatOperation } from "@raft-io/raft/testing";
 * formatOperation({ id: 7, process: 1, f: "get", key: "x", value: null, status: "ok", invokeTime: 1, returnTime: 2 });
 * // "p1#7 get(x) = absent [1, 2]"
 * ```
 */
export function formatOperation(op: KvOperation): string {
  const show = (v: KvValue | null | undefined) =>
    v === null || v === undefined ? "absent" : JSON.stringify(v);
  let call: string;
  switch (op.f) {
    case "put":
      call = `put(${op.key}, ${show(op.value)})`;
      break;
    case "get":
      call = `get(${op.key})`;
      break;
    case "delete":
      call = `delete(${op.key})`;
      break;
    case "cas":
      call = `cas(${op.key}, ${show(op.expect)}→${show(op.value)})`;
      break;
  }
  let result = "";
  if (op.status === "info") result = " = ? (indefinite)";
  else if (op.status === "fail") result = " = fail";
  else if (op.f === "get") result = ` = ${show(op.value)}`;
  else if (op.f === "cas") result = ` = ${op.outcome}`;
  else result = " = ok";
  const end = op.status === "info" ? "∞" : String(op.returnTime);
  return `p${op.process}#${op.id} ${call}${result} [${op.invokeTime}, ${end}]`;
}
