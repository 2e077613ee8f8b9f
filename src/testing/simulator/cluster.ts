/**
 * The simulated cluster: N processes, each an unmodified `RaftServer` over
 * a `WalLog` on its own {@linkcode SimDisk}, with its state machine, its
 * {@linkcode NodeScheduler} (its own clock rate) and its `MemoryNetwork`
 * endpoint; the virtual loop, the seeded random source, the invariants,
 * counters and the per-node timelines. Crash, restart and fatal stops live
 * here; the nemesis, the clients and the driver act through it.
 *
 * @module
 */

import { mulberry32 } from "../../core/random.ts";
import type { Message } from "../../core/messages.ts";
import { KvStateMachine } from "../../kv/kv_state_machine.ts";
import type { Logger } from "../../logger.ts";
import { WalCorruptionError, WalFormatError } from "../../log/wal/errors.ts";
import { WalLog } from "../../log/wal/wal_log.ts";
import type { Entry } from "../../log/raft_log.ts";
import { RaftServer } from "../../runtime/raft_server.ts";
import { MemoryNetwork } from "../../transport/memory_network.ts";
import type { RaftTransport } from "../../transport/raft_transport.ts";
import { InvariantChecker, type Violation } from "../invariants.ts";
import { SimDisk } from "../sim_disk.ts";
import type {
  FaultKind,
  SimEvent,
  SimOptions,
  SimStateMachineKind,
  SimViolation,
} from "./options.ts";
import {
  type Applied,
  ListStateMachine,
  RecordingStateMachine,
} from "./state_machines.ts";
import { NodeScheduler, VirtualLoop } from "./virtual_time.ts";

/** Virtual milliseconds per Raft tick. */
export const TICK_MS = 10;
/** Segment size of every node's WAL: small, so logs span closed segments. */
const SEGMENT_BYTES = 4096;

/** A seeded PRNG (the core's mulberry32): uniform numbers in `[0, 1)`. */
export const simRandom: (seed: number) => () => number = mulberry32;

/** One simulated process and what survives it (its disk). */
export interface SimNode {
  /** Node id (1-based, also its index + 1 in `SimCluster.nodes`). */
  id: number;
  /** Directory of its WAL on its disk. */
  dir: string;
  /** The disk; replaced by what survives a crash. */
  disk: SimDisk;
  /** Local ms per virtual ms (clock skew). */
  rate: number;
  /** `up`: serving; `starting`: opening its log or replaying; `down`: crashed. */
  state: "up" | "starting" | "down";
  /** Counts process starts; a request belongs to one incarnation. */
  incarnation: number;
  /** The current incarnation's scheduler. */
  sched: NodeScheduler;
  /** The current incarnation's server (undefined while down or starting). */
  server: RaftServer<Applied<unknown>> | undefined;
  /** The current incarnation's log. */
  log: WalLog | undefined;
  /** The current incarnation's state machine (inner). */
  kv: KvStateMachine | undefined;
  /** The current incarnation's list (list runs). */
  list: ListStateMachine | undefined;
  /** Virtual time at which a down node restarts. */
  restartAt: number;
  /** Virtual time the disk failed the log (an I/O error on a log file), -1: never in this incarnation. */
  logFailedAt: number;
  /** Successful syncs the server had counted when the failure was noticed. */
  syncsAtFailure: number | undefined;
  /** The node's recent events. */
  events: SimEvent[];
}

/** Counters reported in `SimResult.stats`. */
export interface SimStats {
  [name: string]: number;
}

/** Options with defaults filled in. */
export type ResolvedSimOptions = Required<SimOptions>;

/** Shared state of one simulated run. */
export class SimCluster {
  /** Options with defaults filled in. */
  readonly o: ResolvedSimOptions;
  /** Faults switched on. */
  readonly faults: Set<FaultKind>;
  /** The run's random source: every random choice comes from it (or from streams seeded by it). */
  readonly rand: () => number;
  /** Virtual time. */
  readonly loop = new VirtualLoop();
  /** The network. */
  readonly net: MemoryNetwork<Message>;
  /** The nodes, by id - 1. */
  readonly nodes: SimNode[] = [];
  /** Raft's properties. */
  readonly inv = new InvariantChecker();
  /** Counters. */
  readonly stats: SimStats = {
    crashes: 0,
    restarts: 0,
    fatalStops: 0,
    partitions: 0,
    membershipChanges: 0,
    transfers: 0,
    snapshotsTaken: 0,
    snapshotsRestored: 0,
    bitFlips: 0,
    corruptionDetected: 0,
    elections: 0,
  };
  /** Role changes, crashes, restarts and faults of the whole run. */
  readonly timeline: SimEvent[] = [];
  /** The first violation. */
  violation: SimViolation | undefined;
  /** True once the faults are healed. */
  healed = false;
  /** A follower whose inbound appends are held back (0: none). */
  lagging = 0;
  /** How long they are held back, ms. */
  lagMs = 0;
  /**
   * Lease mode: a node whose election timeout is always the shortest the
   * config allows (`electionTick`), so that after a leader is cut off a
   * successor is elected as early as leader stickiness permits.
   */
  readonly eager: number;
  /** A leader that stops hearing anyone once it sends TimeoutNow (0: none). */
  deafAfterTimeoutNow = 0;
  /** The state machine replicated. */
  readonly kind: SimStateMachineKind;
  readonly #clusterEvents: SimEvent[] = [];
  readonly #voters: number[];
  readonly #checkQuorum: boolean;
  readonly #maxBytesPerMessage: number;
  readonly #snapshotThreshold: number;
  #bitFlipped = false;

  /** Builds the nodes; the random draws happen in a fixed order. */
  constructor(o: ResolvedSimOptions) {
    this.o = o;
    this.kind = o.stateMachine;
    this.faults = new Set(o.faults);
    this.rand = simRandom(o.seed);
    this.net = new MemoryNetwork<Message>({
      manual: true,
      clock: { now: () => this.loop.now },
      // A bounded network: a message storm (e.g. a bug that doubles every
      // acknowledgement) drops messages instead of stalling the run.
      maxInFlight: 2000,
      random: simRandom(this.#seed()),
    });
    this.#voters = Array.from({ length: o.nodes }, (_, i) => i + 1);
    this.#checkQuorum = o.leaseReads || this.rand() < 0.5;
    this.#maxBytesPerMessage = this.rand() < 0.5 ? 256 : 1 << 20;
    this.#snapshotThreshold = this.faults.has("snapshot")
      ? 8 + this.int(40)
      : 100_000;
    this.eager = o.leaseReads ? 1 + this.int(o.nodes) : 0;
    const spread = o.leaseReads ? 0.08 : 0.4;
    for (const id of this.#voters) {
      const rate = this.faults.has("skew")
        ? 1 - spread / 2 + this.rand() * spread
        : 1;
      const diskFaults = this.faults.has("disk")
        ? {
          syncEio: 0.002,
          writeEnospc: 0.001,
          syncEnospc: 0.001,
          slowSync: 0.05,
          slowSyncMs: [10, 60] as [number, number],
          syncMs: [0.2, 3] as [number, number],
        }
        : { syncMs: [0.2, 3] as [number, number] };
      const node: SimNode = {
        id,
        dir: `n${id}`,
        disk: new SimDisk({
          random: simRandom(this.#seed()),
          faults: diskFaults,
        }),
        rate,
        state: "down",
        incarnation: 0,
        sched: new NodeScheduler(this.loop, rate, 0),
        server: undefined,
        log: undefined,
        kv: undefined,
        list: undefined,
        restartAt: 0,
        logFailedAt: -1,
        syncsAtFailure: undefined,
        events: [],
      };
      node.disk.onFault = (code, op, path) =>
        this.#onDiskFault(node, code, op, path);
      this.nodes.push(node);
    }
  }

  #seed(): number {
    return Math.floor(this.rand() * 0x1_0000_0000);
  }

  /** A random integer in `[0, n)`. */
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.rand() < p;
  }

  /** Virtual time, ms. */
  get now(): number {
    return this.loop.now;
  }

  /**
   * Records an event for `node` (0: the cluster). `important` events (role
   * changes, crashes, restarts, faults) also go to the run's timeline.
   */
  log(node: number, text: string, important = false): void {
    const e: SimEvent = { at: this.loop.now, node, text };
    const ring = node > 0 ? this.nodes[node - 1].events : this.#clusterEvents;
    ring.push(e);
    if (ring.length > this.o.traceLines) ring.shift();
    if (important) this.timeline.push(e);
  }

  /** The last events of every node and of the cluster, in time order. */
  trace(): SimEvent[] {
    const all = [
      ...this.#clusterEvents,
      ...this.nodes.flatMap((n) => n.events),
    ];
    return all.sort((a, b) => a.at - b.at);
  }

  /** Records the first violation (later ones are ignored). */
  violate(v: Violation): void {
    if (this.violation !== undefined) return;
    this.violation = { ...v, at: this.loop.now };
    this.log(0, `VIOLATION ${v.invariant}: ${v.detail}`, true);
  }

  /** Nodes whose server is serving. */
  up(): SimNode[] {
    return this.nodes.filter((n) => n.state === "up");
  }

  /** The serving node that leads the highest term, if any. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.up()) {
      if (n.server!.role !== "leader") continue;
      if (!best || n.server!.term > best.server!.term) best = n;
    }
    return best;
  }

  /** The configuration as the leader (or else any serving node) sees it. */
  membership(): { voters: number[]; learners: number[] } {
    const n = this.leader() ?? this.up()[0];
    if (n === undefined) return { voters: this.#voters, learners: [] };
    const m = n.server!.status().membership;
    return {
      voters: [...new Set([...m.voters, ...m.outgoing])],
      learners: m.learners,
    };
  }

  /** Starts (or restarts) `n` on its disk: opens the WAL, then `RaftServer.start`. */
  async start(n: SimNode): Promise<void> {
    n.incarnation++;
    const inc = n.incarnation;
    const first = inc === 1;
    n.state = "starting";
    n.logFailedAt = -1;
    n.syncsAtFailure = undefined;
    // A restarted process's monotonic clock has a new origin.
    n.sched = new NodeScheduler(
      this.loop,
      n.rate,
      first ? 0 : this.int(100_000),
    );
    n.disk.timer = n.sched;
    if (!first) {
      this.inv.restarted(n.id);
      this.stats.restarts++;
    }
    const log = await this.#openLog(n, inc);
    if (log === undefined || n.incarnation !== inc) return;
    const kv = this.kind === "kv" ? new KvStateMachine() : undefined;
    const list = this.kind === "list" ? new ListStateMachine() : undefined;
    const inner = (kv ?? list)!;
    const sm = new RecordingStateMachine<unknown>(
      inner,
      (entry) => this.#onApply(n, inc, log, entry),
      (bytes) => {
        if (n.incarnation === inc) {
          this.log(n.id, `restore snapshot (${bytes.byteLength} bytes)`);
        }
      },
    );
    n.log = log;
    n.kv = kv;
    n.list = list;
    let server: RaftServer<Applied<unknown>>;
    try {
      server = await RaftServer.start<Applied<unknown>>({
        config: {
          id: n.id,
          voters: this.#voters,
          electionTick: 10,
          heartbeatTick: 1,
          checkQuorum: this.#checkQuorum,
          leaseReads: this.o.leaseReads,
          maxInflightMessages: 16,
          maxBytesPerMessage: this.#maxBytesPerMessage,
          snapshotThreshold: this.#snapshotThreshold,
          compactionLag: this.faults.has("snapshot") ? 3 : 1000,
        },
        log,
        transport: this.#transport(n, inc),
        stateMachine: sm,
        tickMs: TICK_MS,
        proposalTimeoutMs: this.o.opTimeout * TICK_MS,
        readTimeoutMs: this.o.opTimeout * TICK_MS,
        snapshotRetryMs: 20 * TICK_MS,
        random: n.id === this.eager ? () => 0 : simRandom(this.#seed()),
        logger: this.#logger(n, inc),
        scheduler: n.sched,
      });
    } catch (e) {
      if (n.incarnation !== inc) return;
      this.log(n.id, `start failed: ${errorText(e)}`, true);
      this.#exit(n);
      return;
    }
    if (n.incarnation !== inc) return;
    n.server = server;
    n.state = "up";
    this.log(
      n.id,
      `${
        first ? "start" : "restart"
      } (term ${log.hardState().term}, last index ${log.lastIndex()}, snapshot ${log.snapshotMeta().index})`,
      true,
    );
    server.on("role", ({ role, leaderId, term }) => {
      if (role === "leader") this.stats.elections++;
      this.log(n.id, `${role} (term ${term}, leader n${leaderId})`, true);
    });
    server.on("fatal", ({ error }) => {
      this.stats.fatalStops++;
      this.log(n.id, `fatal: ${error.message}`, true);
      // The process exits; the disk keeps what it kept.
      this.loop.after(0, () => {
        if (n.incarnation === inc && n.state === "up") this.crash(n, "exit");
      });
    });
    server.on("snapshot", ({ kind, index }) => {
      if (kind === "taken") this.stats.snapshotsTaken++;
      else this.stats.snapshotsRestored++;
      this.log(n.id, `snapshot ${kind} at ${index}`);
    });
    server.on(
      "removed",
      () => this.log(n.id, "removed from the cluster", true),
    );
  }

  /**
   * The node's `MemoryNetwork` endpoint, watched: right after it grants a
   * vote the nemesis may crash it (when a vote not yet durable would let it
   * vote twice in one term).
   */
  #transport(n: SimNode, inc: number): RaftTransport<Message> {
    const ep = this.net.endpoint(n.id);
    return {
      id: n.id,
      send: (to, m) => {
        if (
          to === this.lagging &&
          (m.type === "AppendEntries" || m.type === "InstallSnapshot")
        ) {
          // A slow path to one follower: its entries arrive late, while
          // heartbeats and read answers do not.
          this.loop.after(this.lagMs, () => {
            if (n.incarnation === inc && n.state === "up") ep.send(to, m);
          });
          return;
        }
        ep.send(to, m);
        if (m.type === "TimeoutNow" && n.id === this.deafAfterTimeoutNow) {
          // The old leader has handed over; it does not hear the new term.
          this.deafAfterTimeoutNow = 0;
          for (const other of this.nodes) {
            if (other.id !== n.id) this.net.blockLink(other.id, n.id);
          }
          this.log(0, `n${n.id} sent TimeoutNow and hears no one`, true);
        }
        if (
          m.type === "RequestVoteResponse" && m.granted && !m.preVote &&
          this.faults.has("crash") && !this.healed && this.chance(0.3)
        ) {
          this.loop.after(0.5, () => {
            const down = this.nodes.filter((x) => x.state !== "up").length;
            if (
              n.incarnation === inc && n.state === "up" &&
              down < Math.floor((this.o.nodes - 1) / 2)
            ) this.crash(n);
          });
        }
      },
      onMessage: (h) => ep.onMessage(h),
      stats: () => ep.stats(),
      close: () => ep.close(),
    };
  }

  /** Opens the WAL; a bit flipped in a closed segment must be refused (then the disk is repaired from a copy). */
  async #openLog(n: SimNode, inc: number): Promise<WalLog | undefined> {
    const open = (disk: SimDisk) =>
      WalLog.open(n.dir, {
        backend: disk,
        segmentBytes: SEGMENT_BYTES,
        scheduler: n.sched,
      });
    let pristine: SimDisk | undefined;
    if (
      this.faults.has("disk") && !this.#bitFlipped && n.incarnation > 1 &&
      this.chance(0.3)
    ) {
      const copy = n.disk.clone();
      const flipped = n.disk.flipBit(n.dir);
      if (flipped !== undefined) {
        this.#bitFlipped = true;
        this.stats.bitFlips++;
        pristine = copy;
        this.log(
          n.id,
          `bit flip in ${flipped.file} at byte ${flipped.offset}`,
          true,
        );
      }
    }
    try {
      const log = await open(n.disk);
      if (pristine !== undefined && n.incarnation === inc) {
        // Recovery accepted a flipped segment: it must at least serve exactly what was written.
        const clean = await open(pristine.clone());
        const a = describeLog(log);
        const b = describeLog(clean);
        await clean.close();
        if (a !== b) {
          this.violate({
            invariant: "corruption-served",
            detail:
              `node ${n.id} opened its WAL with a flipped bit and serves different contents`,
          });
        }
      }
      return log;
    } catch (e) {
      if (n.incarnation !== inc) return undefined;
      // Refused, not served: a checksum failure, or (a flip in the magic
      // bytes) a file that no longer looks like a segment at all.
      if (
        pristine !== undefined &&
        (e instanceof WalCorruptionError || e instanceof WalFormatError)
      ) {
        this.stats.corruptionDetected++;
        this.log(
          n.id,
          `corruption detected: ${e.message}; disk repaired`,
          true,
        );
        n.disk = pristine;
        n.disk.timer = n.sched;
        return await this.#openLog(n, inc);
      }
      this.log(n.id, `cannot open the log: ${errorText(e)}`, true);
      this.#exit(n);
      return undefined;
    }
  }

  /** The process of `n` dies: timers stop, unsynced data is lost (torn with disk faults), its endpoint closes. */
  crash(n: SimNode, why = "crash"): void {
    if (n.state === "down") return;
    n.sched.kill();
    const old = n.disk;
    n.disk = old.crash(this.faults.has("disk") ? "torn" : false);
    old.halt();
    this.net.endpoint(n.id).markClosed();
    n.server = undefined;
    n.log = undefined;
    n.kv = undefined;
    n.list = undefined;
    if (why === "crash") this.stats.crashes++;
    this.log(n.id, `${why} (process gone; unsynced writes lost)`, true);
    this.#down(n, 5 + this.int(40));
  }

  /** A failed start: the process exits (its written data stays in the page cache) and is retried later. */
  #exit(n: SimNode): void {
    n.sched.kill();
    const old = n.disk;
    n.disk = old.crash(true);
    old.halt();
    this.net.endpoint(n.id).markClosed();
    this.#down(n, 5 + this.int(20));
  }

  #down(n: SimNode, ticks: number): void {
    n.state = "down";
    n.incarnation++;
    n.restartAt = this.loop.now + ticks * TICK_MS;
  }

  /**
   * Watches a Promise a server returned for a request with `timeoutMs`
   * (local ms): it must settle by its deadline plus slack unless the
   * process died meanwhile. Resolves with the outcome.
   */
  settle<T>(
    n: SimNode,
    what: string,
    p: Promise<T>,
    timeoutMs: number,
  ): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
    const inc = n.incarnation;
    let settled = false;
    const slack = (timeoutMs + 3 * TICK_MS) / n.rate + 2 * TICK_MS;
    return new Promise((resolve) => {
      const cancel = this.loop.after(slack, () => {
        if (settled) return;
        settled = true;
        if (n.incarnation === inc && n.state === "up") {
          this.violate({
            invariant: "promise-hang",
            detail:
              `node ${n.id}: ${what} (timeout ${timeoutMs} ms) still pending ${
                slack.toFixed(0)
              } ms later`,
          });
        }
        resolve({ ok: false, error: new Error("process gone") });
      });
      p.then(
        (value) => {
          if (settled) return;
          settled = true;
          cancel();
          resolve({ ok: true, value });
        },
        (error) => {
          if (settled) return;
          settled = true;
          cancel();
          resolve({ ok: false, error });
        },
      );
    });
  }

  #onDiskFault(n: SimNode, code: string, op: string, path: string): void {
    this.log(n.id, `disk: ${op} ${path} fails with ${code}`, true);
    if (!path.includes("snapshot-") && n.logFailedAt < 0) {
      n.logFailedAt = this.loop.now;
    }
  }

  #onApply(n: SimNode, inc: number, log: WalLog, entry: Entry): void {
    if (n.incarnation !== inc) return;
    const commit = log.hardState().commit;
    if (entry.index > commit) {
      this.violate({
        invariant: "apply-beyond-commit",
        detail:
          `node ${n.id} applied entry ${entry.index} (term ${entry.term}) with commit index ${commit}`,
      });
    }
    const v = this.inv.applied(n.id, entry);
    if (v) this.violate(v);
  }

  #logger(n: SimNode, inc: number): Logger {
    const put = (level: string) => (message: string) => {
      if (n.incarnation === inc) this.log(n.id, `${level}: ${message}`);
    };
    return {
      debug: () => {},
      info: put("info"),
      warn: put("warn"),
      error: put("error"),
    };
  }
}

/** The observable contents of a log, as one string. */
export function describeLog(log: WalLog): string {
  const first = log.firstIndex();
  const last = log.lastIndex();
  return JSON.stringify({
    first,
    last,
    hs: log.hardState(),
    snap: log.snapshotMeta().index,
    snapData: [...log.snapshotData()].join(","),
    entries: log.entries(first, last + 1).map((e) =>
      `${e.index}/${e.term}/${e.kind}/${[...e.data].join(",")}`
    ),
  });
}

/** A short description of an error. */
export function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
