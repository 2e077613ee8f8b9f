/**
 * Virtual time for the simulator: one {@linkcode VirtualLoop} (a timer queue
 * on simulated milliseconds) and, per node, a {@linkcode NodeScheduler} —
 * the `Scheduler` a `RaftServer` runs on, with its own clock rate and
 * offset (clock skew) — that a crash kills with every timer it set.
 *
 * Determinism with async code: the loop runs one due timer at a time in
 * (time, creation) order and, after each, lets the microtask queue drain
 * completely before the next. It drains with one real macrotask turn,
 * `setImmediate` (from `node:timers`, a few µs under Deno and Node): the
 * host runs every pending microtask, and every one they queue, before it
 * runs the next task, so however deep the Promise chains of the servers,
 * logs and clients are, they all settle at the virtual instant their cause
 * happened. (A `MessageChannel` message is no such turn under Deno: its
 * delivery is itself a short chain of microtasks; `setTimeout(0)` is one
 * but costs about 2 ms.) Nothing in the simulated code uses real time or
 * real I/O, so no other task can interleave: the same seed gives the same
 * order of everything.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { CancelTimer, Scheduler } from "../../runtime/scheduler.ts";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Timers one virtual instant may run before the loop reports a livelock. */
const MAX_EVENTS_PER_INSTANT = 100_000;

/** A binary min-heap of timers by (at, seq). */
class TimerHeap {
  #a: Timer[] = [];

  get size(): number {
    return this.#a.length;
  }

  peek(): Timer | undefined {
    return this.#a[0];
  }

  push(t: Timer): void {
    const a = this.#a;
    a.push(t);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): Timer | undefined {
    const a = this.#a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Timer, y: Timer): boolean {
  return x.at < y.at || (x.at === y.at && x.seq < y.seq);
}

/**
 * The simulation's event loop on virtual milliseconds.
 *
 * @example
 * ```ts
 * import { VirtualLoop } from "@raft-io/raft/testing";
 * const loop = new VirtualLoop();
 * const seen: number[] = [];
 * loop.at(5, () => seen.push(loop.now));
 * await loop.runUntil(10);
 * loop.close();
 * seen; // [5]
 * ```
 */
export class VirtualLoop {
  /** Virtual time, ms. */
  now = 0;
  /** Timer callbacks run so far. */
  events = 0;
  readonly #heap = new TimerHeap();
  #seq = 0;
  #sameInstant = 0;
  /** Set by a callback that threw: the run stops with it. */
  #error: unknown = undefined;

  /** Runs `fn` at virtual time `at` (not before now); returns its canceller. */
  at(at: number, fn: () => void): CancelTimer {
    const t: Timer = {
      at: Math.max(at, this.now),
      seq: this.#seq++,
      fn,
      cancelled: false,
    };
    this.#heap.push(t);
    return () => {
      t.cancelled = true;
    };
  }

  /** Runs `fn` after `ms` of virtual time. */
  after(ms: number, fn: () => void): CancelTimer {
    return this.at(this.now + Math.max(0, ms), fn);
  }

  /** Time of the next live timer, Infinity when none. */
  nextAt(): number {
    let t = this.#heap.peek();
    while (t !== undefined && t.cancelled) {
      this.#heap.pop();
      t = this.#heap.peek();
    }
    return t?.at ?? Infinity;
  }

  /**
   * Lets every pending microtask (and every one they queue) run: one real
   * macrotask turn.
   */
  drain(): Promise<void> {
    return new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * Runs the timers due up to `until` one by one in (time, creation) order,
   * draining the microtasks after each; leaves `now` at `until`. A callback
   * that throws ends the run with its error.
   */
  async runUntil(until: number): Promise<void> {
    await this.drain();
    while (true) {
      const at = this.nextAt();
      if (at > until) break;
      const t = this.#heap.pop()!;
      if (t.at === this.now) {
        if (++this.#sameInstant > MAX_EVENTS_PER_INSTANT) {
          throw new Error(
            `livelock: more than ${MAX_EVENTS_PER_INSTANT} timers at ${this.now} virtual ms`,
          );
        }
      } else this.#sameInstant = 0;
      this.now = t.at;
      this.events++;
      try {
        t.fn();
      } catch (e) {
        this.#error ??= e;
      }
      await this.drain();
      if (this.#error !== undefined) {
        const e = this.#error;
        this.#error = undefined;
        throw e;
      }
    }
    if (until > this.now && Number.isFinite(until)) this.now = until;
  }

  /** Drops every timer left (the run is over). */
  close(): void {
    while (this.#heap.pop() !== undefined) { /* drop */ }
  }
}

/**
 * One node's clock and timers on a {@linkcode VirtualLoop}: local time runs
 * at `rate` times virtual time from `offset` (clock skew), and
 * {@linkcode NodeScheduler.kill} cancels every timer it set (a crashed
 * process runs nothing more).
 */
export class NodeScheduler implements Scheduler {
  readonly #loop: VirtualLoop;
  /** Local milliseconds per virtual millisecond. */
  readonly rate: number;
  /** Local time at virtual time 0. */
  readonly offset: number;
  readonly #timers = new Set<CancelTimer>();
  #dead = false;

  /**
   * A clock and timers on `loop`.
   *
   * @param loop the simulation's loop
   * @param rate local ms per virtual ms (1: no skew)
   * @param offset local time at virtual 0
   */
  constructor(loop: VirtualLoop, rate = 1, offset = 0) {
    this.#loop = loop;
    this.rate = rate;
    this.offset = offset;
  }

  /** Whether {@linkcode NodeScheduler.kill} was called. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Local monotonic ms. */
  now(): number {
    return this.offset + this.#loop.now * this.rate;
  }

  /** Runs `fn` once after `ms` local ms. */
  after(ms: number, fn: () => void): CancelTimer {
    if (this.#dead) return () => {};
    let cancel: CancelTimer = () => {};
    const wrapped = () => {
      this.#timers.delete(cancel);
      if (!this.#dead) fn();
    };
    const inner = this.#loop.after(Math.max(0, ms) / this.rate, wrapped);
    cancel = () => {
      inner();
      this.#timers.delete(cancel);
    };
    this.#timers.add(cancel);
    return cancel;
  }

  /** Runs `fn` every `ms` local ms until cancelled. */
  every(ms: number, fn: () => void): CancelTimer {
    if (this.#dead) return () => {};
    let inner: CancelTimer = () => {};
    let stopped = false;
    const period = Math.max(ms, 1e-3) / this.rate;
    const arm = () => {
      inner = this.#loop.after(period, () => {
        if (stopped || this.#dead) return;
        arm();
        fn();
      });
    };
    arm();
    const cancel = () => {
      stopped = true;
      inner();
      this.#timers.delete(cancel);
    };
    this.#timers.add(cancel);
    return cancel;
  }

  /** The process died: cancels every timer and ignores new ones. */
  kill(): void {
    this.#dead = true;
    for (const cancel of [...this.#timers]) cancel();
    this.#timers.clear();
  }
}
