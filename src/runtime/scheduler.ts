/**
 * {@linkcode Scheduler}: the one source of time and timers of a
 * `RaftServer` — ticks, request deadlines, waits, lease clock. The real one
 * ({@linkcode realScheduler}) uses `performance.now`, `setTimeout` and
 * `setInterval` (Deno, Node, browsers); a simulator injects a virtual one
 * so that the shipped server runs on simulated time.
 *
 * @module
 */

/** Cancels a timer; calling it again does nothing. */
export type CancelTimer = () => void;

/**
 * Time and timers. `now()` is monotonic milliseconds; callbacks run later,
 * never synchronously inside `after`/`every`.
 *
 * @example
 * ```ts
 * import type { Scheduler } from "@raft-io/raft";
 * // A scheduler whose clock runs 10 s ahead (e.g. to test clock skew).
 * const ahead: Scheduler = {
 *   now: () => performance.now() + 10_000,
 *   after: (ms, fn) => {
 *     const t = setTimeout(fn, ms);
 *     return () => clearTimeout(t);
 *   },
 *   every: (ms, fn) => {
 *     const t = setInterval(fn, ms);
 *     return () => clearInterval(t);
 *   },
 * };
 * ```
 */
export interface Scheduler {
  /** Monotonic milliseconds. */
  now(): number;
  /** Runs `fn` once after `ms`. */
  after(ms: number, fn: () => void): CancelTimer;
  /** Runs `fn` every `ms` until cancelled. */
  every(ms: number, fn: () => void): CancelTimer;
}

/**
 * The scheduler of the host runtime.
 *
 * @example
 * ```ts
 * import { realScheduler } from "@raft-io/raft";
 * const cancel = realScheduler.after(10, () => console.log("later"));
 * cancel();
 * ```
 */
export const realScheduler: Scheduler = Object.freeze({
  now: () => performance.now(),
  after: (ms: number, fn: () => void): CancelTimer => {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  every: (ms: number, fn: () => void): CancelTimer => {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
});

/** Options of {@linkcode skewedScheduler}. */
export interface ClockSkew {
  /**
   * How fast this clock runs against `base` (1: the same; 1.05: 5 % fast).
   * Must be finite and > 0.
   */
  rate: number;
  /**
   * A constant offset of `now()`, ms.
   * @default {0}
   */
  offsetMs?: number;
}

/**
 * A scheduler whose clock runs at `rate` times `base` (and is offset by
 * `offsetMs`): its timers fire after `ms / rate` of base time. For tests of
 * clock skew between nodes (ticks, deadlines and the lease all follow it);
 * the lease assumes tick rates differ by less than `LEASE_MARGIN_TICKS /
 * electionTick`.
 *
 * @example
 * ```ts
 * import { realScheduler, skewedScheduler } from "@raft-io/raft";
 * const fast = skewedScheduler(realScheduler, { rate: 1.05 });
 * const cancel = fast.every(100, () => {}); // every ~95 ms of real time
 * cancel();
 * ```
 */
export function skewedScheduler(base: Scheduler, skew: ClockSkew): Scheduler {
  const rate = skew.rate;
  if (typeof rate !== "number" || !Number.isFinite(rate) || rate <= 0) {
    throw new RangeError(
      `clock rate must be a finite number > 0 (got ${String(rate)})`,
    );
  }
  const offset = skew.offsetMs ?? 0;
  const origin = base.now();
  return {
    now: () => origin + (base.now() - origin) * rate + offset,
    after: (ms, fn) => base.after(ms / rate, fn),
    every: (ms, fn) => base.every(ms / rate, fn),
  };
}
