import assert from "node:assert/strict";
import {
  checkHistory,
  checkJsonLines,
  formatOperation,
  HistoryError,
  type HistoryErrorCode,
  type KvOperation,
  parseJsonLines,
  toJsonLines,
  validateOperations,
} from "../../src/testing/mod.ts";
import { generateHistory } from "./lin_generator.ts";

function lines(...events: object[]): string {
  return events.map((e) => JSON.stringify(e)).join("\n") + "\n";
}

function assertHistoryError(
  fn: () => unknown,
  code: HistoryErrorCode,
  where: { line?: number; index?: number },
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(
      error instanceof HistoryError,
      `expected a HistoryError, got ${error}`,
    );
    assert.equal(error.code, code);
    if (where.line !== undefined) assert.equal(error.line, where.line);
    if (where.index !== undefined) assert.equal(error.index, where.index);
    return true;
  });
}

Deno.test("a JSON Lines history parses into operations with their outcomes", () => {
  const ops = parseJsonLines(lines(
    {
      type: "invoke",
      process: 1,
      id: "a",
      f: "put",
      key: "x",
      value: "v",
      time: 10,
    },
    {
      type: "invoke",
      process: 2,
      id: "b",
      f: "cas",
      key: "x",
      expect: "v",
      value: "w",
      time: 11,
    },
    { type: "ok", process: 1, id: "a", time: 20 },
    { type: "ok", process: 2, id: "b", outcome: "failed", time: 21 },
    { type: "invoke", process: 1, id: "c", f: "get", key: "x", time: 30 },
    { type: "ok", process: 1, id: "c", value: null, time: 31 },
    { type: "invoke", process: 3, id: "d", f: "delete", key: "x", time: 40 },
    { type: "fail", process: 3, id: "d", time: 41 },
    {
      type: "invoke",
      process: 4,
      id: "e",
      f: "put",
      key: "y",
      value: 7,
      time: 50,
    },
    { type: "info", process: 4, id: "e", time: 60 },
    {
      type: "invoke",
      process: 5,
      id: "f",
      f: "put",
      key: "y",
      value: true,
      time: 70,
    },
  ));
  assert.deepEqual(ops, [
    {
      id: "a",
      process: 1,
      f: "put",
      key: "x",
      value: "v",
      status: "ok",
      invokeTime: 10,
      returnTime: 20,
    },
    {
      id: "b",
      process: 2,
      f: "cas",
      key: "x",
      expect: "v",
      value: "w",
      status: "ok",
      outcome: "failed",
      invokeTime: 11,
      returnTime: 21,
    },
    {
      id: "c",
      process: 1,
      f: "get",
      key: "x",
      value: null,
      status: "ok",
      invokeTime: 30,
      returnTime: 31,
    },
    {
      id: "d",
      process: 3,
      f: "delete",
      key: "x",
      status: "fail",
      invokeTime: 40,
      returnTime: 41,
    },
    {
      id: "e",
      process: 4,
      f: "put",
      key: "y",
      value: 7,
      status: "info",
      invokeTime: 50,
    },
    {
      id: "f",
      process: 5,
      f: "put",
      key: "y",
      value: true,
      status: "info",
      invokeTime: 70,
    },
  ]);
});

Deno.test("without timestamps the line order is the time order", () => {
  const text = lines(
    { type: "invoke", process: 1, id: 1, f: "put", key: "x", value: "a" },
    { type: "ok", process: 1, id: 1 },
    { type: "invoke", process: 1, id: 2, f: "put", key: "x", value: "b" },
    { type: "ok", process: 1, id: 2 },
    { type: "invoke", process: 2, id: 3, f: "get", key: "x" },
    { type: "ok", process: 2, id: 3, value: "a" },
  );
  const ops = parseJsonLines(text);
  assert.deepEqual(ops.map((op) => [op.invokeTime, op.returnTime]), [[1, 2], [
    3,
    4,
  ], [5, 6]]);
  assert.equal(checkJsonLines(text).verdict, "illegal");
});

Deno.test("blank lines and unknown fields are ignored", () => {
  const text = "\n" + lines(
    {
      type: "invoke",
      process: 1,
      id: 1,
      f: "get",
      key: "x",
      time: 1,
      node: "n1",
    },
    { type: "ok", process: 1, id: 1, value: null, time: 2, latencyMs: 1 },
  ) + "\n\n";
  assert.equal(parseJsonLines(text).length, 1);
});

Deno.test("an id may be reused once its operation has completed", () => {
  const ops = parseJsonLines(lines(
    {
      type: "invoke",
      process: 1,
      id: 1,
      f: "put",
      key: "x",
      value: "a",
      time: 1,
    },
    { type: "ok", process: 1, id: 1, time: 2 },
    { type: "invoke", process: 1, id: 1, f: "get", key: "x", time: 3 },
    { type: "ok", process: 1, id: 1, value: "a", time: 4 },
  ));
  assert.equal(ops.length, 2);
  assert.equal(checkHistory(ops).verdict, "ok");
});

Deno.test("malformed lines are reported with a stable code and the line number", () => {
  const invoke = {
    type: "invoke",
    process: 1,
    id: 1,
    f: "put",
    key: "x",
    value: "a",
    time: 1,
  };
  assertHistoryError(
    () => parseJsonLines(lines(invoke) + "{not json"),
    "invalid_json",
    { line: 2 },
  );
  assertHistoryError(() => parseJsonLines("[1,2]"), "invalid_json", {
    line: 1,
  });
  assertHistoryError(
    () => parseJsonLines(lines({ ...invoke, type: "begin" })),
    "unknown_type",
    { line: 1 },
  );
  assertHistoryError(
    () => parseJsonLines(lines({ ...invoke, f: "incr" })),
    "unknown_function",
    { line: 1 },
  );
  assertHistoryError(
    () => parseJsonLines(lines({ ...invoke, key: 5 })),
    "invalid_field",
    { line: 1 },
  );
  assertHistoryError(
    () => parseJsonLines(lines({ ...invoke, value: { a: 1 } })),
    "invalid_field",
    { line: 1 },
  );
  assertHistoryError(
    () => parseJsonLines(lines({ ...invoke, id: undefined })),
    "invalid_field",
    { line: 1 },
  );
  assertHistoryError(
    () => parseJsonLines(lines(invoke, invoke)),
    "duplicate_id",
    { line: 2 },
  );
  assertHistoryError(
    () => parseJsonLines(lines(invoke, { type: "ok", id: 2, time: 2 })),
    "unmatched_completion",
    { line: 2 },
  );
  assertHistoryError(
    () =>
      parseJsonLines(lines(invoke, { type: "ok", id: 1, process: 9, time: 2 })),
    "mismatched_completion",
    { line: 2 },
  );
  assertHistoryError(
    () => parseJsonLines(lines(invoke, { type: "ok", id: 1, time: 0 })),
    "time_order",
    { line: 2 },
  );
  assertHistoryError(
    () => parseJsonLines(lines(invoke, { type: "ok", id: 1 })),
    "mixed_timestamps",
    { line: 2 },
  );
  assertHistoryError(
    () =>
      parseJsonLines(lines(
        { type: "invoke", process: 1, id: 1, f: "get", key: "x", time: 1 },
        { type: "ok", process: 1, id: 1, time: 2 },
      )),
    "invalid_field",
    { line: 2 },
  );
  assertHistoryError(
    () =>
      parseJsonLines(lines(
        {
          type: "invoke",
          process: 1,
          id: 1,
          f: "cas",
          key: "x",
          expect: null,
          value: 1,
          time: 1,
        },
        { type: "ok", process: 1, id: 1, time: 2 },
      )),
    "invalid_field",
    { line: 2 },
  );
});

Deno.test("operations passed directly are validated with the offending index", () => {
  const good: KvOperation = {
    id: 1,
    process: 1,
    f: "get",
    key: "x",
    value: null,
    status: "ok",
    invokeTime: 1,
    returnTime: 2,
  };
  validateOperations([good]);
  assertHistoryError(
    () => checkHistory([good, { ...good, returnTime: 0 }]),
    "time_order",
    { index: 1 },
  );
  assertHistoryError(
    () => checkHistory([{ ...good, returnTime: undefined }]),
    "invalid_field",
    { index: 0 },
  );
  assertHistoryError(
    () => checkHistory([{ ...good, f: "put", value: undefined }]),
    "invalid_field",
    { index: 0 },
  );
  assertHistoryError(
    () => checkHistory([{ ...good, f: "cas", value: 1 }]),
    "invalid_field",
    { index: 0 },
  );
});

Deno.test("writing a history as JSON Lines and parsing it back gives the same operations", () => {
  const ops = generateHistory({
    seed: 7,
    operations: 300,
    keys: 5,
    processes: 6,
    indefiniteRate: 0.1,
    failRate: 0.05,
  });
  const back = parseJsonLines(toJsonLines(ops));
  const byId = new Map(back.map((op) => [op.id, op]));
  assert.equal(back.length, ops.length);
  for (const op of ops) assert.deepEqual(byId.get(op.id), op);
});

Deno.test("operations render as one readable line", () => {
  assert.equal(
    formatOperation({
      id: 7,
      process: 2,
      f: "cas",
      key: "x",
      expect: null,
      value: "b",
      outcome: "failed",
      status: "ok",
      invokeTime: 10,
      returnTime: 20,
    }),
    'p2#7 cas(x, absent→"b") = failed [10, 20]',
  );
  assert.equal(
    formatOperation({
      id: 8,
      process: 3,
      f: "put",
      key: "y",
      value: 1,
      status: "info",
      invokeTime: 5,
    }),
    "p3#8 put(y, 1) = ? (indefinite) [5, ∞]",
  );
});
