import assert from "node:assert/strict";
import { checkHistory, type KvOperation } from "../../src/testing/mod.ts";
import { generateHistory, injectStaleRead } from "./lin_generator.ts";
import { put } from "./lin_ops.ts";

Deno.test("a 100,000-operation history across 1,000 keys is checked and found linearizable", () => {
  const ops = generateHistory({
    seed: 2026,
    operations: 100_000,
    keys: 1_000,
    processes: 200,
    maxLatency: 400,
    maxGap: 100,
    indefiniteRate: 0.02,
    failRate: 0.02,
  });
  const result = checkHistory(ops, { timeBudgetMs: 120_000 });
  console.log(
    `100k ops / 1k keys: ${
      result.elapsedMs.toFixed(0)
    } ms, ${result.memoEntries} memo entries`,
  );
  assert.equal(result.verdict, "ok", result.illegal?.message);
  assert.equal(result.keys, 1_000);
  assert.equal(result.keysChecked, 1_000);
});

Deno.test("a 20,000-operation history on one key with high concurrency is checked both ways", () => {
  const shape = {
    seed: 99,
    operations: 20_000,
    keys: 1,
    processes: 12,
    maxLatency: 100,
    maxGap: 30,
  };
  const withTimeouts = generateHistory({ ...shape, indefiniteRate: 0.01 });
  const result = checkHistory(withTimeouts, { timeBudgetMs: 60_000 });
  console.log(
    `20k ops / 1 key: ${
      result.elapsedMs.toFixed(0)
    } ms, ${result.memoEntries} memo entries`,
  );
  assert.equal(result.verdict, "ok", result.illegal?.message);
  // Refuting needs every configuration up to the anomaly: without indefinite operations here.
  const broken = injectStaleRead(generateHistory(shape), 5);
  assert.ok(broken);
  const refuted = checkHistory(broken.ops, {
    timeBudgetMs: 60_000,
  });
  console.log(
    `20k ops / 1 key, stale read: ${
      refuted.elapsedMs.toFixed(0)
    } ms, ${refuted.memoEntries} memo entries`,
  );
  assert.equal(refuted.verdict, "illegal");
  assert.equal(refuted.illegal?.failing.id, broken.target.id);
});

Deno.test("an injected stale read in a 5,000-operation one-key history with timeouts is found", () => {
  const ops = generateHistory({
    seed: 99,
    operations: 5_000,
    keys: 1,
    processes: 12,
    maxLatency: 100,
    maxGap: 30,
    indefiniteRate: 0.01,
  });
  const broken = injectStaleRead(ops, 5);
  assert.ok(broken);
  const result = checkHistory(broken.ops, { timeBudgetMs: 60_000 });
  assert.equal(result.verdict, "illegal");
  assert.ok(
    result.illegal?.operations.some((op) => op.id === broken.target.id),
  );
});

/** Many mutually concurrent writes and a read nobody can explain: exponential without a budget. */
function hardHistory(key: string, writers: number): KvOperation[] {
  const ops: KvOperation[] = [];
  for (let i = 0; i < writers; i++) ops.push(put(key, "w" + i, [i, 1000 + i]));
  ops.push({
    id: "hard-read-" + key,
    process: "reader",
    f: "get",
    key,
    value: "w0",
    status: "ok",
    invokeTime: 500,
    returnTime: 2000,
  });
  ops.push({
    id: "hard-read2-" + key,
    process: "reader",
    f: "get",
    key,
    value: "nobody",
    status: "ok",
    invokeTime: 3000,
    returnTime: 3001,
  });
  return ops;
}

Deno.test("a search that exceeds its memory budget answers unknown", () => {
  const result = checkHistory(hardHistory("x", 22), { maxMemoEntries: 10_000 });
  assert.equal(result.verdict, "unknown");
  assert.deepEqual(result.unknown, { key: "x", reason: "memory" });
  assert.ok(result.memoEntries <= 10_001);
});

Deno.test("a search that exceeds its time budget answers unknown promptly", () => {
  const started = performance.now();
  const result = checkHistory(hardHistory("x", 40), { timeBudgetMs: 200 });
  const elapsed = performance.now() - started;
  assert.equal(result.verdict, "unknown");
  assert.deepEqual(result.unknown, { key: "x", reason: "time" });
  assert.ok(elapsed < 5_000, `gave up after ${elapsed.toFixed(0)} ms`);
});

Deno.test("an undecided key does not hide an illegal one", () => {
  const ops = [
    ...hardHistory("x", 40),
    put("y", "a", [0, 1]),
    put("y", "b", [2, 3]),
    { ...put("y", "a", [4, 5]), f: "get" as const },
  ];
  const result = checkHistory(ops, { timeBudgetMs: 300 });
  assert.equal(result.verdict, "illegal");
  assert.equal(result.illegal?.key, "y");
});
