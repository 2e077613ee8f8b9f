/**
 * A tiny in-memory cluster for the core's tests: RaftNodes over MemoryLogs,
 * a message queue with drop/partition controls, and a driver that follows
 * the Ready protocol of node.ts exactly. Every operation returns the lines it
 * would print, so transcripts and unit tests share one harness.
 */

import { MemoryLog } from "../../src/log/memory_log.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import type { RaftConfig } from "../../src/core/config.ts";
import { isCoreError } from "../../src/core/errors.ts";
import {
  decodeMembership,
  formatMembership,
  type MembershipChange,
} from "../../src/core/membership.ts";
import type { Message } from "../../src/core/messages.ts";
import { RaftNode, type Ready } from "../../src/core/node.ts";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** One simulated process. */
export interface SimNode {
  id: number;
  node: RaftNode;
  log: MemoryLog;
  config: RaftConfig;
  /** Data of applied normal entries, in order (empty no-ops skipped). */
  applied: string[];
  /** Index of the last applied entry. */
  appliedIndex: number;
  /** Read contexts served, as `ctx@index`. */
  reads: string[];
  /** Snapshot bytes the "state machine" was restored from. */
  restoredFrom: string | undefined;
  /** False after `crash` (until `restart`). */
  up: boolean;
  /**
   * When true, a Ready's `caughtUp` is not acted on (the driver "crashes"
   * before `log.markCaughtUp()` resolves); `caughtUpSeen` records it.
   */
  holdCaughtUp?: boolean;
  /** A Ready reported `caughtUp` (whether or not it was acted on). */
  caughtUpSeen?: boolean;
}

/** Formats bytes as a quoted string for output. */
export function text(data: Uint8Array): string {
  return JSON.stringify(decoder.decode(data));
}

/** `term/index kind data`, like etcd's transcripts. */
export function formatEntry(e: Entry): string {
  if (e.kind === "config") {
    return `${e.term}/${e.index} conf ${
      formatMembership(decodeMembership(e.data))
    }`;
  }
  return `${e.term}/${e.index} ${text(e.data)}`;
}

function formatEntries(es: readonly Entry[]): string {
  return `[${es.map(formatEntry).join(", ")}]`;
}

/** One line per message. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} term=${m.term}`;
  switch (m.type) {
    case "RequestVote":
      return `${head}${
        m.preVote ? " pre" : ""
      } last=${m.lastLogTerm}/${m.lastLogIndex}${
        m.transfer ? " transfer" : ""
      }`;
    case "RequestVoteResponse":
      return `${head}${m.preVote ? " pre" : ""} ${
        m.granted ? "granted" : "rejected"
      }`;
    case "AppendEntries":
      return `${head} prev=${m.prevLogTerm}/${m.prevLogIndex} commit=${m.leaderCommit} entries=${
        formatEntries(m.entries)
      }`;
    case "AppendEntriesResponse":
      return (m.success
        ? `${head} ok match=${m.matchIndex}`
        : `${head} reject idx=${m.rejectIndex} hint=${m.hintTerm}/${m.hintIndex}`) +
        (m.catchUpIndex === undefined ? "" : ` catchup=${m.catchUpIndex}`);
    case "Heartbeat":
      return `${head} commit=${m.commit} ctx=${m.context}`;
    case "HeartbeatResponse":
      return `${head} ctx=${m.context}`;
    case "InstallSnapshot":
      return `${head} snap=${m.meta.term}/${m.meta.index} off=${m.offset} len=${m.data.byteLength}${
        m.done ? " done" : ""
      }`;
    case "InstallSnapshotResponse":
      return `${head} snap=${m.snapshotIndex} next=${m.nextOffset} ${
        m.success ? "ok" : "fail"
      }${m.done ? " done" : ""}`;
    case "TimeoutNow":
      return head;
    case "ReadIndexRequest":
      return `${head} ctx=${text(m.context)}`;
    case "ReadIndexResponse":
      return `${head} ctx=${text(m.context)} index=${m.index} ${
        m.success ? "ok" : "fail"
      }`;
    case "Propose":
      return `${head} cmds=[${m.commands.map(text).join(", ")}]`;
    case "Removed":
      return `${head}${
        m.configIndex === undefined ? "" : ` config=${m.configIndex}`
      }`;
    default: {
      const never: never = m;
      return JSON.stringify(never);
    }
  }
}

/** Describes an error for output. */
export function formatError(e: unknown): string {
  if (isCoreError(e)) return `error: ${e.code}: ${e.message}`;
  if (e instanceof Error) return `error: ${e.name}: ${e.message}`;
  return `error: ${String(e)}`;
}

/** A cluster of RaftNodes connected by an in-order, lossy-on-demand queue. */
export class Cluster {
  readonly nodes = new Map<number, SimNode>();
  /** Messages in flight, in send order. */
  queue: Message[] = [];
  /** Messages held back by `stash`, to be re-queued (reordered) by `unstash`. */
  stashed: Message[] = [];
  /** Blocked links as `from->to`. */
  readonly blocked = new Set<string>();

  /** Adds a node with `config` (and a fresh MemoryLog). */
  add(config: RaftConfig): SimNode {
    const log = new MemoryLog();
    const sim: SimNode = {
      id: config.id,
      node: new RaftNode(config, log),
      log,
      config,
      applied: [],
      appliedIndex: 0,
      reads: [],
      restoredFrom: undefined,
      up: true,
    };
    this.nodes.set(config.id, sim);
    return sim;
  }

  /** Adds nodes `1..n` (or the given ids) sharing `voters` (default: all of them). */
  static of(n: number, base: Partial<RaftConfig> = {}): Cluster {
    const c = new Cluster();
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of ids) c.add({ voters: ids, ...base, id });
    return c;
  }

  /** The node with `id` (throws when unknown). */
  get(id: number): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Runs the driver protocol for one Ready of node `id`; returns the printed lines. */
  processReady(id: number): string[] {
    const sim = this.get(id);
    if (!sim.up || !sim.node.hasReady()) return [];
    const rd = sim.node.ready();
    const out = [
      `> ${id} handling Ready`,
      ...formatReady(rd).map((l) => "  " + l),
    ];
    // 2. messages that may leave before the sync.
    for (const m of rd.messages) this.queue.push(m);
    // 3. sync.
    if (rd.mustSync) sim.log.syncNow();
    // 4. messages that need durability.
    for (const m of rd.persistedMessages) this.queue.push(m);
    // 5. apply.
    if (rd.snapshot) {
      sim.restoredFrom = decoder.decode(rd.snapshot.data);
      sim.applied = sim.restoredFrom === "" ? [] : sim.restoredFrom.split(",");
      sim.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index !== sim.appliedIndex + 1) {
        throw new Error(
          `node ${id} applies ${e.index} after ${sim.appliedIndex}`,
        );
      }
      sim.appliedIndex = e.index;
      if (e.kind === "normal" && e.data.byteLength > 0) {
        sim.applied.push(decoder.decode(e.data));
      }
    }
    for (const rs of rd.readStates) {
      if (rs.index > sim.appliedIndex) {
        throw new Error(`read ${text(rs.context)} released early`);
      }
      sim.reads.push(`${decoder.decode(rs.context)}@${rs.index}`);
    }
    // After the sync: clear the repair marker durably, then tell the core.
    if (rd.caughtUp) {
      sim.caughtUpSeen = true;
      if (!sim.holdCaughtUp) {
        void sim.log.markCaughtUp(); // MemoryLog: durable when it returns
        sim.node.caughtUpDurable();
      }
    }
    // 6. advance.
    sim.node.advance(rd);
    return out;
  }

  /** Delivers queued messages (optionally only those matching); blocked links drop them. */
  deliver(
    filter?: { from?: number; to?: number; among?: number[] },
    max = Infinity,
  ): string[] {
    const out: string[] = [];
    const now = this.queue;
    this.queue = [];
    let delivered = 0;
    for (const m of now) {
      if (this.blocked.has(`${m.from}->${m.to}`)) {
        // A partition loses messages whichever node is being driven.
        out.push(`dropped: ${formatMessage(m)}`);
        continue;
      }
      const match = (filter?.from === undefined || filter.from === m.from) &&
        (filter?.to === undefined || filter.to === m.to) &&
        (filter?.among === undefined ||
          (filter.among.includes(m.from) && filter.among.includes(m.to)));
      if (!match || delivered >= max) {
        this.queue.push(m);
        continue;
      }
      delivered++;
      const target = this.nodes.get(m.to);
      if (
        this.blocked.has(`${m.from}->${m.to}`) || target === undefined ||
        !target.up
      ) {
        out.push(`dropped: ${formatMessage(m)}`);
        continue;
      }
      target.node.step(m);
    }
    return out;
  }

  /** Removes queued messages matching the filter; returns them as lines. */
  drop(filter: { from?: number; to?: number; type?: string }): string[] {
    const out: string[] = [];
    this.queue = this.queue.filter((m) => {
      const match = (filter.from === undefined || filter.from === m.from) &&
        (filter.to === undefined || filter.to === m.to) &&
        (filter.type === undefined || filter.type === m.type);
      if (match) out.push(`dropped: ${formatMessage(m)}`);
      return !match;
    });
    return out;
  }

  /**
   * Moves matching queued messages aside (or copies them, to duplicate);
   * `unstash` queues them again behind everything sent meanwhile.
   */
  stash(filter: { from?: number; to?: number }, copy: boolean): string[] {
    const out: string[] = [];
    const keep: Message[] = [];
    for (const m of this.queue) {
      const match = (filter.from === undefined || filter.from === m.from) &&
        (filter.to === undefined || filter.to === m.to);
      if (match) {
        this.stashed.push(m);
        out.push(`stashed: ${formatMessage(m)}`);
      }
      if (!match || copy) keep.push(m);
    }
    this.queue = keep;
    return out;
  }

  /** Queues the stashed messages again. */
  unstash(): string[] {
    const out = this.stashed.map((m) => `queued: ${formatMessage(m)}`);
    this.queue.push(...this.stashed);
    this.stashed = [];
    return out;
  }

  /** Processes Readies and delivers messages until nothing is left to do. */
  stabilize(ids?: number[]): string[] {
    const out: string[] = [];
    const which = ids ?? [...this.nodes.keys()];
    for (let round = 0; round < 1000; round++) {
      let progress = false;
      for (const id of which) {
        const lines = this.processReady(id);
        if (lines.length > 0) progress = true;
        out.push(...lines);
      }
      if (
        this.queue.some((m) =>
          (which.includes(m.to) && which.includes(m.from)) ||
          this.blocked.has(`${m.from}->${m.to}`)
        )
      ) {
        progress = true;
        out.push(
          ...this.deliver(ids === undefined ? undefined : { among: ids }),
        );
      }
      if (!progress) return out;
    }
    throw new Error("stabilize did not converge in 1000 rounds");
  }

  /** Blocks every link between the groups. */
  partition(groups: number[][]): void {
    for (const a of groups) {
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.blocked.add(`${x}->${y}`);
      }
    }
  }

  /** Unblocks every link. */
  heal(): void {
    this.blocked.clear();
  }

  /** Simulates a crash: unsynced state is lost, messages to it are dropped. */
  crash(id: number): void {
    const sim = this.get(id);
    sim.up = false;
    sim.log = sim.log.crash();
  }

  /** Restarts a crashed node from its durable log; its state machine is rebuilt by re-applying. */
  restart(id: number): void {
    const sim = this.get(id);
    sim.up = true;
    const snap = sim.log.snapshotMeta();
    sim.node = new RaftNode(sim.config, sim.log, undefined, {
      catchUp: sim.log.needsCatchUp,
    });
    const data = decoder.decode(sim.log.snapshotData());
    sim.applied = snap.index > 0 && data !== "" ? data.split(",") : [];
    sim.appliedIndex = snap.index;
    sim.restoredFrom = snap.index > 0 ? data : undefined;
  }

  /**
   * Crashes node `id` and repairs its log as `WalLog.repair` would: the
   * durable log is cut from index `cutFrom` and a catch-up marker records
   * what it held before (the highest index and term). Restart it with
   * `restart`.
   */
  repair(id: number, cutFrom: number): { index: number; term: number } {
    const sim = this.get(id);
    this.crash(id);
    const log = sim.log;
    const marker = {
      index: Math.max(log.lastIndex(), log.hardState().commit),
      term: Math.max(log.hardState().term, log.lastTerm()),
    };
    if (cutFrom <= log.lastIndex()) log.truncate(cutFrom);
    log.syncNow();
    log.simulateRepair(marker);
    return marker;
  }

  /** Runs `n` ticks on the given nodes (all up nodes by default). */
  tick(ids: number[] | undefined, n: number): void {
    for (let i = 0; i < n; i++) {
      for (const sim of this.nodes.values()) {
        if (!sim.up || (ids !== undefined && !ids.includes(sim.id))) continue;
        sim.node.tick();
      }
    }
  }

  /** The current leader (the up node reporting role leader with the highest term), or 0. */
  leader(): number {
    let best = 0;
    let term = -1;
    for (const sim of this.nodes.values()) {
      const s = sim.node.status();
      if (sim.up && s.role === "leader" && s.term > term) {
        best = sim.id;
        term = s.term;
      }
    }
    return best;
  }

  /** A membership change on node `id`, printed. */
  changeMembership(id: number, change: MembershipChange): string[] {
    try {
      return [`index ${this.get(id).node.changeMembership(change)}`];
    } catch (e) {
      return [formatError(e)];
    }
  }

  /** Proposes `data` on node `id` and returns the printed result. */
  propose(id: number, data: string): string[] {
    try {
      return [`index ${this.get(id).node.propose(encoder.encode(data))}`];
    } catch (e) {
      return [formatError(e)];
    }
  }
}

/** The printed form of a Ready. */
export function formatReady(rd: Ready): string[] {
  const out: string[] = [];
  if (rd.softState) {
    out.push(
      `role=${rd.softState.role} leader=${rd.softState.leader}${
        rd.softState.removed ? " removed" : ""
      }`,
    );
  }
  if (rd.hardState) {
    const h = rd.hardState;
    out.push(`hardState term=${h.term} vote=${h.vote} commit=${h.commit}`);
  }
  if (rd.entries.length > 0) {
    out.push(`entries: ${rd.entries.map(formatEntry).join(", ")}`);
  }
  if (rd.snapshot) {
    out.push(
      `snapshot: ${rd.snapshot.meta.term}/${rd.snapshot.meta.index} data=${
        text(rd.snapshot.data)
      }`,
    );
  }
  if (rd.mustSync) out.push("sync");
  if (rd.messages.length > 0) {
    out.push("messages:");
    for (const m of rd.messages) out.push("  " + formatMessage(m));
  }
  if (rd.persistedMessages.length > 0) {
    out.push("after sync:");
    for (const m of rd.persistedMessages) out.push("  " + formatMessage(m));
  }
  if (rd.committedEntries.length > 0) {
    out.push(`committed: ${rd.committedEntries.map(formatEntry).join(", ")}`);
  }
  for (const rs of rd.readStates) {
    out.push(`read ${text(rs.context)} at index ${rs.index}`);
  }
  if (rd.membership) out.push(`membership: ${formatMembership(rd.membership)}`);
  if (rd.snapshotHint !== undefined) {
    out.push(`snapshot hint at ${rd.snapshotHint}`);
  }
  if (rd.caughtUp) out.push("caught up");
  return out;
}
