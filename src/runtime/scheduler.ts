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
