/**
 * The simulator's in-process network: every message waits in one queue
 * with a delivery time in virtual ticks; faults decide at send time whether
 * a message is dropped, duplicated or delayed (and so reordered), and
 * partitions decide at delivery time whether it gets through.
 *
 * @module
 */

import type { Message } from "../../core/messages.ts";

/** Fault rates of a {@linkcode SimNetwork}. */
export interface NetworkFaultRates {
  /** Probability that a message is lost. */
  drop: number;
  /** Probability that a message is delivered twice. */
  duplicate: number;
  /** Extra random delay, in ticks, added to each message (reorders them). */
  maxExtraDelay: number;
}

interface InFlight {
  at: number;
  seq: number;
  message: Message;
}

/**
 * A deterministic faulty network over a seeded random source.
 *
 * @example
 * ```ts
 * import { SimNetwork, simRandom } from "./network.ts";
 * const net = new SimNetwork(simRandom(1));
 * net.send({ type: "TimeoutNow", from: 1, to: 2, term: 1 }, 0);
 * net.deliverDue(1).length; // 1
 * ```
 */
export class SimNetwork {
  readonly #random: () => number;
  #queue: InFlight[] = [];
  #seq = 0;
  #blocked = new Set<string>();
  /** Current fault rates; the simulator changes them as faults start and heal. */
  faults: NetworkFaultRates = { drop: 0, duplicate: 0, maxExtraDelay: 0 };
  /** Messages sent, dropped and duplicated so far. */
  readonly stats = { sent: 0, dropped: 0, duplicated: 0, blocked: 0 };

  /** Creates a network drawing its faults from `random`. */
  constructor(random: () => number) {
    this.#random = random;
  }

  /** Queues `message` for delivery at `now + 1` plus any fault delay. */
  send(message: Message, now: number): void {
    this.stats.sent++;
    if (this.faults.drop > 0 && this.#random() < this.faults.drop) {
      this.stats.dropped++;
      return;
    }
    const copies =
      this.faults.duplicate > 0 && this.#random() < this.faults.duplicate
        ? 2
        : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let c = 0; c < copies; c++) {
      const extra = this.faults.maxExtraDelay > 0
        ? Math.floor(this.#random() * (this.faults.maxExtraDelay + 1))
        : 0;
      this.#queue.push({ at: now + 1 + extra, seq: this.#seq++, message });
    }
  }

  /** Blocks (or unblocks) the directed link `from → to`. */
  setLink(from: number, to: number, blocked: boolean): void {
    const k = `${from}>${to}`;
    if (blocked) this.#blocked.add(k);
    else this.#blocked.delete(k);
  }

  /** Whether `from → to` is blocked. */
  isBlocked(from: number, to: number): boolean {
    return this.#blocked.has(`${from}>${to}`);
  }

  /** Removes every partition. */
  heal(): void {
    this.#blocked.clear();
  }

  /** The blocked links, as `from>to` strings (for traces). */
  blockedLinks(): string[] {
    return [...this.#blocked].sort();
  }

  /** Removes and returns the messages due at `now`, in delivery order, minus those a partition blocks. */
  deliverDue(now: number): Message[] {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const m of this.#queue) (m.at <= now ? due : rest).push(m);
    this.#queue = rest;
    due.sort((a, b) => a.at - b.at || a.seq - b.seq);
    const out: Message[] = [];
    for (const m of due) {
      if (this.#blocked.has(`${m.message.from}>${m.message.to}`)) {
        this.stats.blocked++;
        continue;
      }
      out.push(m.message);
    }
    return out;
  }

  /** Messages still in flight. */
  get inFlight(): number {
    return this.#queue.length;
  }
}

/**
 * A seeded PRNG (mulberry32) for simulations: the same seed gives the same
 * sequence on every platform.
 *
 * @example
 * ```ts
 * import { simRandom } from "./network.ts";
 * simRandom(3)() === simRandom(3)(); // true
 * ```
 */
export function simRandom(seed: number): () => number {
  let s = (seed * 0x9e3779b1 + 0x7f4a7c15) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
