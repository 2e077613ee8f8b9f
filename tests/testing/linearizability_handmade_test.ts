import assert from "node:assert/strict";
import { checkHistory, type KvOperation } from "../../src/testing/mod.ts";
import { cas, del, failed, get, indefinite, put } from "./lin_ops.ts";

function verdict(ops: KvOperation[]): string {
  return checkHistory(ops).verdict;
}

Deno.test("an empty history is linearizable", () => {
  const result = checkHistory([]);
  assert.equal(result.verdict, "ok");
  assert.equal(result.keys, 0);
});

Deno.test("sequential writes and reads that agree are linearizable", () => {
  assert.equal(
    verdict([
      get("x", null, [0, 1]),
      put("x", "a", [2, 3]),
      get("x", "a", [4, 5]),
      put("x", "b", [6, 7]),
      get("x", "b", [8, 9]),
    ]),
    "ok",
  );
});

Deno.test("a read of a value overwritten before it began is a stale read", () => {
  const stale = get("x", "a", [40, 50]);
  const result = checkHistory([
    put("x", "a", [0, 10]),
    put("x", "b", [20, 30]),
    stale,
  ]);
  assert.equal(result.verdict, "illegal");
  assert.equal(result.illegal?.key, "x");
  assert.equal(result.illegal?.failing.id, stale.id);
  assert.equal(result.illegal?.operations.length, 3);
  assert.match(result.illegal?.message ?? "", /get\(x\) = "a"/);
});

Deno.test("a read overlapping a write may see the old or the new value", () => {
  for (const seen of ["a", "b"]) {
    assert.equal(
      verdict([
        put("x", "a", [0, 10]),
        put("x", "b", [20, 40]),
        get("x", seen, [25, 35]),
      ]),
      "ok",
    );
  }
});

Deno.test("once a later read saw a concurrent write, a read after it cannot see the old value", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 10]),
      put("x", "b", [20, 100]),
      get("x", "b", [30, 40]),
      get("x", "a", [50, 60]),
    ]),
    "illegal",
  );
});

Deno.test("two concurrent writes may land in either order", () => {
  const a = put("x", "a", [0, 50]);
  const b = put("x", "b", [10, 40]);
  assert.equal(verdict([a, b, get("x", "a", [60, 70])]), "ok");
  assert.equal(verdict([a, b, get("x", "b", [60, 70])]), "ok");
  assert.equal(
    verdict([a, b, get("x", "b", [60, 70]), get("x", "a", [80, 90])]),
    "illegal",
  );
});

Deno.test("a read of a value nobody wrote is illegal", () => {
  assert.equal(
    verdict([put("x", "a", [0, 10]), get("x", "z", [20, 30])]),
    "illegal",
  );
});

Deno.test("a key that was never written reads as absent, and a read of absent after a write is illegal", () => {
  assert.equal(verdict([get("x", null, [0, 1])]), "ok");
  assert.equal(
    verdict([put("x", "a", [0, 1]), get("x", null, [2, 3])]),
    "illegal",
  );
});

Deno.test("a delete makes the key absent", () => {
  assert.equal(
    verdict([put("x", "a", [0, 1]), del("x", [2, 3]), get("x", null, [4, 5])]),
    "ok",
  );
  assert.equal(
    verdict([put("x", "a", [0, 1]), del("x", [2, 3]), get("x", "a", [4, 5])]),
    "illegal",
  );
});

Deno.test("two compare-and-sets from the same expected value cannot both succeed (lost update)", () => {
  const result = checkHistory([
    put("x", 0, [0, 1]),
    cas("x", 0, 1, "ok", [10, 30]),
    cas("x", 0, 2, "ok", [15, 25]),
  ]);
  assert.equal(result.verdict, "illegal");
  assert.equal(result.illegal?.operations.length, 3);
});

Deno.test("a read-modify-write by plain puts that loses an update is caught by a later read", () => {
  // Two clients read 0 and both write their increment: the final read shows one lost.
  assert.equal(
    verdict([
      put("n", 0, [0, 1]),
      get("n", 0, [10, 12]),
      get("n", 0, [11, 13]),
      put("n", 1, [20, 22]),
      put("n", 1, [21, 23]),
      get("n", 2, [30, 31]),
    ]),
    "illegal",
  );
});

Deno.test("a compare-and-set that reports failure while the key holds the expected value is illegal", () => {
  assert.equal(
    verdict([put("x", "a", [0, 1]), cas("x", "a", "b", "failed", [2, 3])]),
    "illegal",
  );
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      cas("x", "z", "b", "failed", [2, 3]),
      get("x", "a", [4, 5]),
    ]),
    "ok",
  );
});

Deno.test("a compare-and-set that succeeds against a different value is illegal", () => {
  assert.equal(
    verdict([put("x", "a", [0, 1]), cas("x", "z", "b", "ok", [2, 3])]),
    "illegal",
  );
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      cas("x", "a", "b", "ok", [2, 3]),
      get("x", "b", [4, 5]),
    ]),
    "ok",
  );
});

Deno.test("a compare-and-set expecting absent succeeds only on an absent key", () => {
  assert.equal(
    verdict([cas("x", null, "a", "ok", [0, 1]), get("x", "a", [2, 3])]),
    "ok",
  );
  assert.equal(
    verdict([put("x", "a", [0, 1]), cas("x", null, "b", "ok", [2, 3])]),
    "illegal",
  );
});

Deno.test("a compare-and-set whose failure needs a concurrent write is linearizable", () => {
  // The cas overlaps the put of "b", so it may run after it and miss "a".
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      put("x", "b", [10, 30]),
      cas("x", "a", "c", "failed", [20, 40]),
      get("x", "b", [50, 60]),
    ]),
    "ok",
  );
});

Deno.test("an indefinite write that a later read observes took effect", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      indefinite(put("x", "b", [2, 3])),
      get("x", "b", [100, 101]),
    ]),
    "ok",
  );
});

Deno.test("an indefinite write that nobody observes may never have happened", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      indefinite(put("x", "b", [2, 3])),
      get("x", "a", [100, 101]),
    ]),
    "ok",
  );
});

Deno.test("an indefinite write cannot be observed before its invocation", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      get("x", "b", [2, 3]),
      indefinite(put("x", "b", [10, 11])),
    ]),
    "illegal",
  );
});

Deno.test("an indefinite write takes effect at one instant: reads cannot flip back", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      indefinite(put("x", "b", [2, 3])),
      get("x", "b", [10, 11]),
      get("x", "a", [20, 21]),
    ]),
    "illegal",
  );
});

Deno.test("an indefinite compare-and-set may have swapped or not", () => {
  const base = [
    put("x", "a", [0, 1]),
    indefinite(cas("x", "a", "b", "ok", [2, 3])),
  ];
  assert.equal(verdict([...base, get("x", "b", [10, 11])]), "ok");
  assert.equal(verdict([...base, get("x", "a", [10, 11])]), "ok");
  assert.equal(
    verdict([...base, get("x", "b", [10, 11]), get("x", "a", [20, 21])]),
    "illegal",
  );
});

Deno.test("an indefinite write matters to a failed compare-and-set", () => {
  // Only the indefinite put of "b" can explain why cas(a→c) missed.
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      indefinite(put("x", "b", [2, 3])),
      cas("x", "a", "c", "failed", [10, 11]),
    ]),
    "ok",
  );
  assert.equal(
    verdict([put("x", "a", [0, 1]), cas("x", "a", "c", "failed", [10, 11])]),
    "illegal",
  );
});

Deno.test("a failed write never happened", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      failed(put("x", "b", [2, 3])),
      get("x", "b", [10, 11]),
    ]),
    "illegal",
  );
  assert.equal(
    verdict([
      put("x", "a", [0, 1]),
      failed(put("x", "b", [2, 3])),
      get("x", "a", [10, 11]),
    ]),
    "ok",
  );
});

Deno.test("operations that share a timestamp at the boundary count as concurrent", () => {
  assert.equal(
    verdict([
      put("x", "a", [0, 10]),
      put("x", "b", [10, 20]),
      get("x", "a", [20, 30]),
    ]),
    "ok",
  );
});

Deno.test("keys are checked independently and the explanation names the bad key", () => {
  const result = checkHistory([
    put("x", "a", [0, 1]),
    put("y", "a", [0, 1]),
    put("y", "b", [2, 3]),
    get("x", "a", [4, 5]),
    get("y", "a", [4, 5]),
  ]);
  assert.equal(result.verdict, "illegal");
  assert.equal(result.illegal?.key, "y");
  assert.ok(result.illegal?.operations.every((op) => op.key === "y"));
});

Deno.test("the explanation is the shortest failing prefix reduced to the operations involved", () => {
  const noise: KvOperation[] = [];
  for (let i = 0; i < 20; i++) {
    noise.push(put("x", "n" + i, [i * 10, i * 10 + 5]));
  }
  const last = noise[noise.length - 1];
  const stale = get("x", "n3", [300, 301]);
  const later = get("x", "n19", [400, 401]);
  const result = checkHistory([
    ...noise,
    stale,
    later,
    put("x", "z", [500, 501]),
  ]);
  assert.equal(result.verdict, "illegal");
  assert.equal(result.illegal?.failing.id, stale.id);
  assert.equal(result.illegal?.prefixOperations, 21);
  const ids = new Set(result.illegal?.operations.map((op) => op.id));
  assert.ok(
    ids.has(stale.id) && ids.has(noise[3].id),
    "the stale read and its writer",
  );
  assert.ok(
    ids.size <= 3,
    `at most the writer, one overwrite and the read, got ${ids.size}`,
  );
  assert.ok(!ids.has(later.id));
  assert.equal(last.key, "x");
});

Deno.test("initial values are the state before the history", () => {
  const ops = [get("x", "seed", [0, 1])];
  assert.equal(checkHistory(ops).verdict, "illegal");
  assert.equal(
    checkHistory(ops, { initialValues: { x: "seed" } }).verdict,
    "ok",
  );
});
