/**
 * An in-process network of {@linkcode RaftTransport} endpoints with fault
 * controls: drop, duplicate, reorder, delay and partitions. Meant for runtime
 * tests and demos that run several nodes in one process (the deterministic
 * simulator in `./testing` has its own, step-driven network).
 *
 * Randomness comes from a supplied `random()` (seed it for reproducible
 * runs), time from a supplied clock. By default messages are delivered by a
 * timer (so sends never re-enter the receiver synchronously); with
 * `manual: true` nothing moves until {@linkcode MemoryNetwork.deliverDue} is
 * called, which suits a virtual clock.
 *
 * @module
 */

import type {
  MessageCodec,
  MessageHandler,
  PeerStats,
  RaftTransport,
  TransportStats,
} from "./raft_transport.ts";

/** Where the network reads the time (milliseconds). */
export interface NetworkClock {
  /** Current time in milliseconds (any origin; only differences matter). */
  now(): number;
}

/** Fault settings; every rate is a probability in `[0, 1]`. */
export interface NetworkFaults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message is delivered twice. */
  duplicateRate: number;
  /** Probability that a message gets an extra delay of up to `reorderWindowMs` (so later ones overtake it). */
  reorderRate: number;
  /** Extra delay for reordered messages, maximum, in ms. */
  reorderWindowMs: number;
  /** Base one-way delay range `[min, max]` in ms, drawn uniformly per message. */
  delayMs: [number, number];
}

/** Options of {@linkcode MemoryNetwork}. */
export interface MemoryNetworkOptions<M> {
  /** Uniform random numbers in `[0, 1)`; default `Math.random`. */
  random?: () => number;
  /** Time source; default `performance.now()`. */
  clock?: NetworkClock;
  /** When true, no timers: call `deliverDue()` to deliver what is due. */
  manual?: boolean;
  /** When set, every message is encoded and decoded (copies, and exercises the codec). */
  codec?: MessageCodec<M>;
  /** Initial faults (default none). */
  faults?: Partial<NetworkFaults>;
  /** Most messages in flight at once; further sends are dropped (default 100,000). */
  maxInFlight?: number;
}

interface InFlight<M> {
  from: number;
  to: number;
  at: number;
  seq: number;
  message: M;
}

const NO_FAULTS: NetworkFaults = {
  dropRate: 0,
  duplicateRate: 0,
  reorderRate: 0,
  reorderWindowMs: 5,
  delayMs: [0, 0],
};

/**
 * A simulated network. Create one endpoint per node with
 * {@linkcode MemoryNetwork.endpoint}.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "@raft-io/raft";
 * const net = new MemoryNetwork<string>({ faults: { delayMs: [1, 3] } });
 * const a = net.endpoint(1);
 * const b = net.endpoint(2);
 * const got: string[] = [];
 * b.onMessage((m) => got.push(m));
 * net.partition([1], [2]);
 * a.send(2, "lost");
 * net.heal();
 * a.send(2, "delivered");
 * await net.settle();
 * console.log(got); // ["delivered"]
 * await net.close();
 * ```
 */
export class MemoryNetwork<M> {
  private readonly random: () => number;
  private readonly clock: NetworkClock;
  private readonly manual: boolean;
  private readonly codec: MessageCodec<M> | undefined;
  private readonly maxInFlight: number;
  private faults: NetworkFaults;
  private readonly endpoints = new Map<number, MemoryTransport<M>>();
  /** Blocked directed links as "from>to". */
  private readonly blocked = new Set<string>();
  private inFlight: InFlight<M>[] = [];
  private seq = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private timerAt = Infinity;
  private closed = false;
  private settleWaiters: (() => void)[] = [];

  /**
   * Creates an empty network.
   *
   * @param options randomness, clock, delivery mode, codec and faults
   */
  constructor(options: MemoryNetworkOptions<M> = {}) {
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? { now: () => performance.now() };
    this.manual = options.manual ?? false;
    this.codec = options.codec;
    this.maxInFlight = options.maxInFlight ?? 100_000;
    this.faults = { ...NO_FAULTS, ...options.faults };
  }

  /** Returns the endpoint of node `id`, creating it on first use. */
  endpoint(id: number): MemoryTransport<M> {
    let ep = this.endpoints.get(id);
    if (ep === undefined || ep.isClosed) {
      ep = new MemoryTransport<M>(this, id);
      this.endpoints.set(id, ep);
    }
    return ep;
  }

  /** Replaces some fault settings (the others keep their values). */
  setFaults(faults: Partial<NetworkFaults>): void {
    this.faults = { ...this.faults, ...faults };
  }

  /** Cuts every link between nodes of different groups (both directions). Nodes in no group keep their links. */
  partition(...groups: number[][]): void {
    for (let i = 0; i < groups.length; i++) {
      for (let j = 0; j < groups.length; j++) {
        if (i === j) continue;
        for (const a of groups[i]) {
          for (const b of groups[j]) this.blocked.add(`${a}>${b}`);
        }
      }
    }
  }

  /** Cuts one direction of one link (`from` can no longer reach `to`). */
  blockLink(from: number, to: number): void {
    this.blocked.add(`${from}>${to}`);
  }

  /** Cuts node `id` off from every other endpoint, both directions. */
  isolate(id: number): void {
    for (const other of this.endpoints.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  /** Restores every link (faults set with `setFaults` stay). */
  heal(): void {
    this.blocked.clear();
  }

  /** Messages in flight (sent, not yet delivered or dropped). */
  get pending(): number {
    return this.inFlight.length;
  }

  /**
   * Delivers every message whose delivery time has come, in time order, and
   * returns how many were handed to handlers. Messages sent by handlers
   * during this call are delivered by a later call (no unbounded recursion).
   */
  deliverDue(): number {
    const now = this.clock.now();
    let due = 0;
    while (due < this.inFlight.length && this.inFlight[due].at <= now) due++;
    if (due === 0) return 0;
    const batch = this.inFlight.slice(0, due);
    this.inFlight = this.inFlight.slice(due);
    let delivered = 0;
    for (const m of batch) {
      const target = this.endpoints.get(m.to);
      const source = this.endpoints.get(m.from);
      if (
        target === undefined || target.isClosed ||
        this.blocked.has(`${m.from}>${m.to}`)
      ) {
        source?.countDrop(m.to);
        continue;
      }
      if (target.deliver(m.message, m.from)) delivered++;
    }
    return delivered;
  }

  /**
   * Resolves once nothing is in flight (delivering as time passes). In manual
   * mode it delivers everything at once, ignoring delays. Bounded: gives up
   * after `maxRounds` rounds.
   */
  async settle(maxRounds = 10_000): Promise<void> {
    for (
      let round = 0;
      round < maxRounds && this.inFlight.length > 0 && !this.closed;
      round++
    ) {
      if (this.manual) {
        for (const m of this.inFlight) m.at = -Infinity;
        this.deliverDue();
      } else {
        await new Promise<void>((resolve) => this.settleWaiters.push(resolve));
      }
    }
  }

  /** Closes every endpoint, drops what is in flight and clears the timer. */
  close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const m of this.inFlight) this.endpoints.get(m.from)?.countDrop(m.to);
    this.inFlight = [];
    for (const ep of this.endpoints.values()) ep.markClosed();
    this.wakeSettlers();
    return Promise.resolve();
  }

  /** @internal called by endpoints */
  submit(from: number, to: number, message: M): boolean {
    if (this.closed || this.inFlight.length >= this.maxInFlight) return false;
    if (this.blocked.has(`${from}>${to}`)) return false;
    const f = this.faults;
    if (f.dropRate > 0 && this.random() < f.dropRate) return false;
    const copies = f.duplicateRate > 0 && this.random() < f.duplicateRate
      ? 2
      : 1;
    for (let c = 0; c < copies; c++) {
      let delay = f.delayMs[0] + (f.delayMs[1] - f.delayMs[0]) * this.random();
      if (f.reorderRate > 0 && this.random() < f.reorderRate) {
        delay += f.reorderWindowMs * this.random();
      }
      const payload = this.codec === undefined
        ? message
        : this.codec.decodeBatch(this.codec.encodeBatch([message]))[0];
      this.insert({
        from,
        to,
        at: this.clock.now() + delay,
        seq: this.seq++,
        message: payload,
      });
    }
    this.schedule();
    return true;
  }

  /** Inserts into the time-ordered in-flight list. */
  private insert(m: InFlight<M>): void {
    // Keep `inFlight` sorted by (at, seq); most sends go at the end.
    let i = this.inFlight.length;
    while (i > 0 && this.inFlight[i - 1].at > m.at) i--;
    this.inFlight.splice(i, 0, m);
  }

  /** Arms the delivery timer for the earliest message. */
  private schedule(): void {
    if (this.manual || this.closed || this.inFlight.length === 0) return;
    const at = this.inFlight[0].at;
    if (this.timer !== undefined && this.timerAt <= at) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.deliverDue();
      this.schedule();
      if (this.inFlight.length === 0) this.wakeSettlers();
    }, Math.max(0, at - this.clock.now()));
  }

  /** Resolves every pending `settle()`. */
  private wakeSettlers(): void {
    const waiters = this.settleWaiters;
    this.settleWaiters = [];
    for (const w of waiters) w();
  }
}

/** One node's endpoint on a {@linkcode MemoryNetwork}. */
export class MemoryTransport<M> implements RaftTransport<M> {
  /** The local node id. */
  readonly id: number;
  private readonly network: MemoryNetwork<M>;
  private handler: MessageHandler<M> | undefined;
  private closed = false;
  private readonly counters = { sent: 0, received: 0, dropped: 0 };
  private readonly peers = new Map<number, PeerStats>();

  /**
   * Use {@linkcode MemoryNetwork.endpoint} instead.
   *
   * @param network the network this endpoint belongs to
   * @param id the local node id
   */
  constructor(network: MemoryNetwork<M>, id: number) {
    this.network = network;
    this.id = id;
  }

  /** Whether {@linkcode MemoryTransport.close} was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Hands `message` to the network; dropped (and counted) on a fault, partition or closed endpoint. */
  send(to: number, message: M): void {
    if (!this.closed && this.network.submit(this.id, to, message)) {
      this.counters.sent++;
      this.peer(to).sent++;
    } else {
      this.countDrop(to);
    }
  }

  /** Sets the inbound handler. */
  onMessage(handler: MessageHandler<M>): void {
    this.handler = handler;
  }

  /** Counters of this endpoint. */
  stats(): TransportStats {
    const peers: Record<number, PeerStats> = {};
    for (const [id, p] of this.peers) peers[id] = { ...p };
    return {
      messagesSent: this.counters.sent,
      messagesReceived: this.counters.received,
      messagesDropped: this.counters.dropped,
      peers,
    };
  }

  /** Detaches this endpoint: later sends to or from it are dropped. */
  close(): Promise<void> {
    this.markClosed();
    return Promise.resolve();
  }

  /** @internal */
  markClosed(): void {
    this.closed = true;
    this.handler = undefined;
  }

  /** @internal */
  countDrop(to: number): void {
    this.counters.dropped++;
    this.peer(to).dropped++;
  }

  /** @internal returns whether a handler took the message */
  deliver(message: M, from: number): boolean {
    const h = this.handler;
    if (h === undefined || this.closed) return false;
    this.counters.received++;
    this.peer(from).received++;
    h(message, from);
    return true;
  }

  /** The counters of one peer, created on first use. */
  private peer(id: number): PeerStats {
    let p = this.peers.get(id);
    if (p === undefined) {
      p = { sent: 0, dropped: 0, received: 0, queued: 0, connected: true };
      this.peers.set(id, p);
    }
    return p;
  }
}
