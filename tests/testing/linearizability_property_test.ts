import assert from "node:assert/strict";
import fc from "fast-check";
import { checkHistory, formatOperation } from "../../src/testing/mod.ts";
import {
  generateHistory,
  type GeneratorOptions,
  injectPhantomRead,
  injectStaleRead,
} from "./lin_generator.ts";

const historyShape: fc.Arbitrary<GeneratorOptions> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  operations: fc.integer({ min: 1, max: 400 }),
  keys: fc.integer({ min: 1, max: 6 }),
  processes: fc.integer({ min: 1, max: 8 }),
  maxLatency: fc.integer({ min: 1, max: 200 }),
  maxGap: fc.integer({ min: 1, max: 100 }),
  indefiniteRate: fc.constantFrom(0, 0.05, 0.15),
  failRate: fc.constantFrom(0, 0.05),
});

Deno.test("random histories produced by a sequential model with random concurrency are linearizable", () => {
  fc.assert(
    fc.property(historyShape, (shape) => {
      const result = checkHistory(generateHistory(shape));
      assert.equal(
        result.verdict,
        "ok",
        result.illegal?.message ?? JSON.stringify(result.unknown),
      );
    }),
    { numRuns: 150 },
  );
});

Deno.test("a read of a value nobody wrote, injected into a linearizable history, is caught", () => {
  fc.assert(
    fc.property(historyShape, fc.integer(), (shape, seed) => {
      const injected = injectPhantomRead(generateHistory(shape), seed);
      fc.pre(injected !== undefined);
      const result = checkHistory(injected!.ops);
      assert.equal(result.verdict, "illegal");
      assert.equal(result.illegal?.key, injected!.target.key);
      assert.ok(
        result.illegal?.operations.some((op) => op.id === injected!.target.id),
        `the explanation names ${formatOperation(injected!.target)}`,
      );
    }),
    { numRuns: 100 },
  );
});

Deno.test("a stale read outside every concurrency window, injected into a linearizable history, is caught", () => {
  let injectedRuns = 0;
  fc.assert(
    fc.property(historyShape, fc.integer(), (shape, seed) => {
      const injected = injectStaleRead(generateHistory(shape), seed);
      fc.pre(injected !== undefined);
      injectedRuns++;
      const result = checkHistory(injected!.ops);
      assert.equal(result.verdict, "illegal");
      assert.equal(result.illegal?.key, injected!.target.key);
    }),
    { numRuns: 100 },
  );
  assert.ok(
    injectedRuns >= 50,
    `only ${injectedRuns} runs had a stale read to inject`,
  );
});
