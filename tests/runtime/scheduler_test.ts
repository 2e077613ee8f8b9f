import assert from "node:assert/strict";
import {
  type Scheduler,
  skewedScheduler,
} from "../../src/runtime/scheduler.ts";

/** A base scheduler on manual time that records the delays it was asked for. */
function manualBase() {
  let t = 1000;
  const delays: number[] = [];
  const base: Scheduler = {
    now: () => t,
    after: (ms) => {
      delays.push(ms);
      return () => {};
    },
    every: (ms) => {
      delays.push(ms);
      return () => {};
    },
  };
  return { base, delays, advance: (ms: number) => (t += ms) };
}

Deno.test("a skewed clock runs at its rate from its offset, and its timers wait ms / rate of base time", () => {
  const m = manualBase();
  const fast = skewedScheduler(m.base, { rate: 1.25, offsetMs: 50 });
  assert.equal(fast.now(), 1050);
  m.advance(400);
  assert.equal(fast.now(), 1000 + 400 * 1.25 + 50);
  fast.after(100, () => {});
  fast.every(10, () => {});
  assert.deepEqual(m.delays, [80, 8]);
});

Deno.test("a clock rate that is not a finite positive number is refused", () => {
  const m = manualBase();
  for (const rate of [0, -1, NaN, Infinity]) {
    assert.throws(() => skewedScheduler(m.base, { rate }), RangeError);
  }
});
