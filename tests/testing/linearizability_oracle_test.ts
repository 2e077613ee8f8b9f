import assert from "node:assert/strict";
import fc from "fast-check";
import {
  checkHistory,
  formatOperation,
  type KvOperation,
  type KvValue,
} from "../../src/testing/mod.ts";

/**
 * The definition, executed: tries every order of the operations that
 * respects real time, with each indefinite operation placed anywhere after
 * its invocation or left out. Exponential; for a handful of operations.
 */
function bruteForce(
  ops: readonly KvOperation[],
  initial: KvValue | null = null,
): boolean {
  const live = ops.filter((op) => op.status !== "fail");
  const end = (op: KvOperation) =>
    op.status === "info" ? Infinity : op.returnTime as number;
  const definite = live.filter((op) => op.status === "ok").length;
  const used = new Array<boolean>(live.length).fill(false);
  const search = (state: KvValue | null, done: number): boolean => {
    if (done === definite) return true;
    for (let i = 0; i < live.length; i++) {
      if (used[i]) continue;
      const op = live[i];
      // Every unused definite operation that finished before this one began must go first.
      if (
        live.some((o, j) =>
          !used[j] && o.status === "ok" && end(o) < op.invokeTime
        )
      ) continue;
      let next: KvValue | null;
      switch (op.f) {
        case "put":
          next = op.value ?? null;
          break;
        case "delete":
          next = null;
          break;
        case "get":
          if (op.status === "ok" && op.value !== state) continue;
          next = state;
          break;
        case "cas":
          if (op.status === "info") {
            next = state === op.expect ? op.value ?? null : state;
          } else if (op.outcome === "ok") {
            if (state !== op.expect) continue;
            next = op.value ?? null;
          } else {
            if (state === op.expect) continue;
            next = state;
          }
          break;
      }
      used[i] = true;
      const ok = search(next, done + (op.status === "ok" ? 1 : 0));
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return search(initial, 0);
}

const value = fc.constantFrom<KvValue | null>("a", "b", "c", null);
const written = fc.constantFrom<KvValue>("a", "b", "c");

const operation: fc.Arbitrary<Omit<KvOperation, "id" | "process">> = fc.record({
  f: fc.constantFrom("put", "get", "delete", "cas"),
  value: written,
  read: value,
  expect: value,
  outcome: fc.constantFrom("ok", "failed"),
  status: fc.constantFrom("ok", "ok", "ok", "info", "fail"),
  invokeTime: fc.integer({ min: 0, max: 20 }),
  length: fc.integer({ min: 0, max: 12 }),
}).map((r) => {
  const op: Omit<KvOperation, "id" | "process"> = {
    f: r.f as KvOperation["f"],
    key: "x",
    status: r.status as KvOperation["status"],
    invokeTime: r.invokeTime,
  };
  if (r.status !== "info") op.returnTime = r.invokeTime + r.length;
  if (op.f === "put" || op.f === "cas") op.value = r.value;
  if (op.f === "cas") op.expect = r.expect;
  if (op.f === "cas" && op.status === "ok") {
    op.outcome = r.outcome as "ok" | "failed";
  }
  if (op.f === "get" && op.status === "ok") op.value = r.read;
  return op;
});

const history = fc.array(operation, { minLength: 1, maxLength: 7 }).map((
  list,
) => list.map((op, i) => ({ ...op, id: i, process: i }) as KvOperation));

Deno.test("the checker agrees with an exhaustive search on small random histories", () => {
  let illegal = 0;
  let ok = 0;
  fc.assert(
    fc.property(history, (ops) => {
      const expected = bruteForce(ops);
      const got = checkHistory(ops).verdict;
      assert.equal(
        got,
        expected ? "ok" : "illegal",
        ops.map(formatOperation).join("\n"),
      );
      if (expected) ok++;
      else illegal++;
    }),
    { numRuns: 4_000 },
  );
  assert.ok(ok > 500 && illegal > 500, `ok ${ok}, illegal ${illegal}`);
});

Deno.test("the checker agrees with an exhaustive search when the key starts with a value", () => {
  fc.assert(
    fc.property(history, written, (ops, initial) => {
      const got = checkHistory(ops, { initialValues: { x: initial } }).verdict;
      assert.equal(
        got,
        bruteForce(ops, initial) ? "ok" : "illegal",
        ops.map(formatOperation).join("\n"),
      );
    }),
    { numRuns: 1_000 },
  );
});

Deno.test("an explanation is itself impossible, and its prefix is the shortest that is", () => {
  fc.assert(
    fc.property(history, (ops) => {
      const result = checkHistory(ops);
      if (result.verdict !== "illegal") return;
      const explanation = result.illegal!;
      assert.ok(explanation.minimal);
      assert.ok(
        explanation.operations.some((op) => op.id === explanation.failing.id),
      );
      assert.equal(
        bruteForce(explanation.operations),
        false,
        explanation.message,
      );
      // Just before the failing operation returns, the history was still possible.
      const cut = explanation.failing.returnTime as number;
      const before = ops.filter((op) => op.invokeTime < cut).map((op) => {
        if (op.status === "ok" && (op.returnTime as number) < cut) return op;
        if (op.status === "fail") return op;
        const pending: KvOperation = { ...op, status: "info" };
        delete pending.returnTime;
        delete pending.outcome;
        if (pending.f === "get") delete pending.value;
        return pending;
      });
      assert.equal(bruteForce(before), true, explanation.message);
    }),
    { numRuns: 2_000 },
  );
});
