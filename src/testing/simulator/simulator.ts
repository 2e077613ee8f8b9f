/**
 * The deterministic simulator: N unmodified `RaftServer`s, each over a
 * `WalLog` on its own {@linkcode SimDisk}, over a `MemoryNetwork` in manual
 * mode, on virtual time (see `virtual_time.ts` for how async code stays
 * deterministic), with one seeded PRNG deciding every fault, delay, client
 * request and election timeout. The same seed replays the same run.
 *
 * A run: the servers start; clients issue requests; every tick the nemesis
 * strikes and the oracles look (Raft's properties over every serving
 * node's log and status, and whether a node whose log failed kept
 * counting successful syncs); every entry applied is checked against the
 * commit index and against what other nodes applied. After `steps` ticks
 * the faults heal and the cluster must, within `livenessSteps`, serve a
 * write and a linearizable read, hand leadership over, and serve again.
 * Then clients stop, every request must have settled, the replicas must
 * converge to equal state machines, and the client history must be
 * linearizable (KV) or consistent with every acknowledgement (list).
 *
 * @module
 */

import { encodeKvCommand } from "../../kv/kv_state_machine.ts";
import { checkHistory, type CheckResult } from "../linearizability/checker.ts";
import type { NodeView } from "../invariants.ts";
import { errorText, SimCluster, type SimNode, TICK_MS } from "./cluster.ts";
import { Nemesis } from "./nemesis.ts";
import {
  ALL_FAULTS,
  replayCommand,
  type SimOptions,
  type SimResult,
} from "./options.ts";
import type { Applied } from "./state_machines.ts";
import { Workload } from "./workload.ts";

export {
  ALL_FAULTS,
  type FaultKind,
  replayCommand,
  type SimEvent,
  type SimOptions,
  type SimResult,
  type SimStateMachineKind,
  type SimViolation,
} from "./options.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/**
 * Runs one seeded simulation and reports the first violation.
 *
 * @example
 * ```ts
 * import { simulate } from "@raft-io/raft/testing";
 * const result = await simulate({ seed: 1, nodes: 3, steps: 100 });
 * result.violation; // undefined when every oracle held
 * ```
 */
export async function simulate(options: SimOptions): Promise<SimResult> {
  return await new Simulation(options).run();
}

class Simulation {
  readonly #c: SimCluster;
  readonly #nemesis: Nemesis;
  readonly #workload: Workload;
  #done = false;
  #linearizability: CheckResult | undefined;

  constructor(options: SimOptions) {
    this.#c = new SimCluster({
      seed: options.seed,
      nodes: options.nodes ?? 3,
      steps: options.steps ?? 300,
      faults: options.faults ?? ALL_FAULTS,
      clients: options.clients ?? 3,
      keys: options.keys ?? 3,
      opTimeout: options.opTimeout ?? 30,
      livenessSteps: options.livenessSteps ?? 200,
      traceLines: options.traceLines ?? 40,
      leaseReads: options.leaseReads ?? false,
      stateMachine: options.stateMachine ??
        (options.seed % 3 === 0 ? "list" : "kv"),
    });
    this.#nemesis = new Nemesis(this.#c);
    this.#workload = new Workload(this.#c, this.#nemesis);
  }

  async run(): Promise<SimResult> {
    const c = this.#c;
    const o = c.o;
    const healAt = o.steps * TICK_MS;
    const end = healAt +
      (o.livenessSteps + 4 * o.opTimeout + 200) * TICK_MS;
    try {
      for (const n of c.nodes) void c.start(n);
      this.#workload.start();
      this.#repeat(1, () => {
        if (c.net.pending > 0) c.net.deliverDue();
      });
      this.#repeat(TICK_MS, () => this.#tick(healAt));
      let t = 0;
      while (!this.#done && c.violation === undefined && t < end) {
        t += 10 * TICK_MS;
        try {
          await c.loop.runUntil(t);
        } catch (e) {
          c.violate({ invariant: "liveness", detail: errorText(e) });
        }
      }
      if (!this.#done && c.violation === undefined) {
        c.violate({
          invariant: "liveness",
          detail: `the run did not finish within ${end} virtual ms`,
        });
      }
    } finally {
      c.loop.close();
    }
    const stats: Record<string, number> = {
      ...c.stats,
      events: c.loop.events,
      virtualMs: c.loop.now,
      operations: this.#workload.history.length +
        this.#workload.appends.length + this.#workload.listReads.length,
    };
    for (const n of c.nodes) {
      for (const [k, v] of Object.entries(n.disk.stats)) {
        stats[`disk.${k}`] = (stats[`disk.${k}`] ?? 0) + v;
      }
    }
    return {
      seed: o.seed,
      stateMachine: c.kind,
      virtualMs: c.loop.now,
      violation: c.violation,
      history: this.#workload.history,
      linearizability: this.#linearizability,
      trace: c.trace(),
      timeline: c.timeline,
      stats,
      replay: replayCommand(o),
    };
  }

  /** Runs `fn` every `ms` of virtual time. */
  #repeat(ms: number, fn: () => void): void {
    const loop = this.#c.loop;
    const arm = () =>
      loop.after(ms, () => {
        arm();
        fn();
      });
    arm();
  }

  #tick(healAt: number): void {
    const c = this.#c;
    for (const n of c.nodes) {
      if (n.state === "down" && c.now >= n.restartAt) void c.start(n);
    }
    if (!c.healed) {
      if (c.now >= healAt) {
        this.#nemesis.heal();
        void this.#finish(healAt).catch((e) =>
          c.violate({ invariant: "liveness", detail: errorText(e) })
        );
      } else this.#nemesis.tick();
    }
    this.#observe();
  }

  /** Raft's properties over the serving nodes, and failed logs that keep syncing. */
  #observe(): void {
    const c = this.#c;
    const views: NodeView[] = [];
    for (const n of c.up()) {
      const s = n.server!.status();
      views.push({
        id: n.id,
        alive: true,
        role: s.role,
        term: s.term,
        commit: s.commit,
        log: n.log!,
        isVoter: s.membership.voters.includes(n.id) ||
          s.membership.outgoing.includes(n.id),
      });
      if (n.logFailedAt >= 0) {
        const syncs = n.server!.metrics().syncs;
        if (n.syncsAtFailure === undefined) n.syncsAtFailure = syncs;
        else if (syncs > n.syncsAtFailure && !n.server!.isStopped) {
          c.violate({
            invariant: "sync-failure-ignored",
            detail:
              `node ${n.id}'s log failed at ${n.logFailedAt} ms, yet the server counted ${
                syncs - n.syncsAtFailure
              } more successful syncs and keeps running`,
          });
        }
      }
    }
    const v = c.inv.observe(views);
    if (v) c.violate(v);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#c.loop.after(ms, resolve));
  }

  /** After the heal: liveness, then drain the clients, converge and check the history. */
  async #finish(healAt: number): Promise<void> {
    const c = this.#c;
    const deadline = healAt + c.o.livenessSteps * TICK_MS;
    if (!await this.#serve(deadline, "after the heal")) return;
    if (!await this.#transfer(deadline)) return;
    if (!await this.#serve(deadline, "after a leadership transfer")) return;
    this.#workload.stopped = true;
    const drainBy = c.now + 4 * c.o.opTimeout * TICK_MS;
    while (this.#workload.running > 0 && c.now < drainBy) {
      await this.#sleep(TICK_MS);
    }
    if (this.#workload.running > 0) {
      c.violate({
        invariant: "promise-hang",
        detail: `${this.#workload.running} clients still waiting after the run`,
      });
      return;
    }
    if (!await this.#converge()) return;
    this.#checkHistory();
    this.#done = true;
  }

  #marker = 0;

  /** A write and a linearizable read on a ready leader, before `deadline`. */
  async #serve(deadline: number, when: string): Promise<boolean> {
    const c = this.#c;
    while (c.now < deadline && c.violation === undefined) {
      const leader = c.leader();
      if (leader === undefined || !leader.server!.status().leaderReady) {
        await this.#sleep(TICK_MS);
        continue;
      }
      const value = `live-${++this.#marker}`;
      const data = c.kind === "kv"
        ? encodeKvCommand({ op: "put", key: "live", value: te.encode(value) })
        : te.encode(value);
      const timeoutMs = 20 * TICK_MS;
      const w = await c.settle(
        leader,
        "liveness write",
        leader.server!.propose(data, { timeoutMs }),
        timeoutMs,
      );
      if (!w.ok) {
        await this.#sleep(TICK_MS);
        continue;
      }
      const applied = w.value as Applied<unknown>;
      c.inv.acknowledged(applied.index, applied.term, `liveness ${value}`);
      const r = await c.settle(
        leader,
        "liveness read",
        leader.server!.read({ timeoutMs }),
        timeoutMs,
      );
      if (r.ok) {
        c.log(leader.id, `liveness: served a write and a read ${when}`);
        return true;
      }
      await this.#sleep(TICK_MS);
    }
    if (c.violation === undefined) {
      const leaders = c.up().filter((n) => n.server!.role === "leader").map((
        n,
      ) => `n${n.id}`).join(",") || "none";
      c.violate({
        invariant: "liveness",
        detail:
          `no write and read served ${when} within ${c.o.livenessSteps} ticks of the heal (leaders: ${leaders})`,
      });
    }
    return false;
  }

  async #transfer(deadline: number): Promise<boolean> {
    const c = this.#c;
    while (c.now < deadline && c.violation === undefined) {
      const leader = c.leader();
      if (leader === undefined) {
        await this.#sleep(TICK_MS);
        continue;
      }
      const voters = c.membership().voters.filter((v) => v !== leader.id);
      if (voters.length === 0) return true;
      const timeoutMs = 30 * TICK_MS;
      const r = await c.settle(
        leader,
        "liveness transfer",
        leader.server!.transferLeadership(undefined, { timeoutMs }),
        timeoutMs,
      );
      if (r.ok) {
        c.log(0, `liveness: leadership moved n${leader.id} -> n${r.value}`);
        return true;
      }
      await this.#sleep(TICK_MS);
    }
    if (c.violation === undefined) {
      c.violate({
        invariant: "liveness",
        detail:
          `leadership could not be transferred within ${c.o.livenessSteps} ticks of the heal`,
      });
    }
    return false;
  }

  /** Every serving member applies up to the leader's commit index; then their state machines must be equal. */
  async #converge(): Promise<boolean> {
    const c = this.#c;
    const by = c.now + 100 * TICK_MS;
    let members: SimNode[] = [];
    while (c.now < by) {
      const leader = c.leader();
      const m = c.membership();
      const ids = new Set([...m.voters, ...m.learners]);
      members = c.nodes.filter((n) => ids.has(n.id));
      if (
        leader !== undefined && members.every((n) => n.state === "up") &&
        members.every((n) =>
          n.server!.applied >= leader.server!.status().commit
        )
      ) break;
      await this.#sleep(TICK_MS);
    }
    if (!members.every((n) => n.state === "up")) {
      c.violate({
        invariant: "liveness",
        detail: `members ${
          members.filter((n) => n.state !== "up").map((n) => n.id).join(",")
        } did not come back after the heal`,
      });
      return false;
    }
    const contents = members.map((n) => describeState(c, n));
    for (let i = 1; i < contents.length; i++) {
      if (contents[i] !== contents[0]) {
        c.violate({
          invariant: "replicas-disagree",
          detail: `after the heal node ${members[0].id} holds ${
            contents[0].slice(0, 300)
          } but node ${members[i].id} holds ${contents[i].slice(0, 300)}`,
        });
        return false;
      }
    }
    return true;
  }

  #checkHistory(): void {
    const c = this.#c;
    if (c.kind === "kv") {
      this.#linearizability = checkHistory(this.#workload.history, {
        timeBudgetMs: 5_000,
      });
      if (this.#linearizability.verdict === "illegal") {
        c.violate({
          invariant: "linearizability",
          detail: this.#linearizability.illegal?.message ??
            "not linearizable",
        });
      }
      return;
    }
    const leader = c.leader() ?? c.up()[0];
    const final = leader?.list?.items() ?? [];
    const where = new Map<string, number>();
    for (let i = 0; i < final.length; i++) {
      if (where.has(final[i])) {
        c.violate({
          invariant: "duplicate-apply",
          detail: `${final[i]} is in the list twice`,
        });
        return;
      }
      where.set(final[i], i + 1);
    }
    for (const a of this.#workload.appends) {
      if (a.status === "ok" && where.get(a.value) !== a.position) {
        c.violate({
          invariant: "acknowledged-write-lost",
          detail:
            `append ${a.value} was acknowledged at position ${a.position}, the list has it at ${
              where.get(a.value) ?? "none"
            }`,
        });
        return;
      }
      if (a.status === "fail" && where.has(a.value)) {
        c.violate({
          invariant: "definite-failure-applied",
          detail:
            `append ${a.value} failed definitely, yet the list holds it at ${
              where.get(a.value)
            }`,
        });
        return;
      }
    }
    const acked = this.#workload.appends.filter((a) => a.status === "ok");
    for (const r of this.#workload.listReads) {
      for (let i = 0; i < r.items.length; i++) {
        if (r.items[i] !== final[i]) {
          c.violate({
            invariant: "state-machine-safety",
            detail: `a read saw ${r.items[i]} at ${i + 1}, the list has ${
              final[i]
            }`,
          });
          return;
        }
      }
      let need = 0;
      for (const a of acked) {
        if (a.returnTime! < r.invokeTime) need = Math.max(need, a.position!);
      }
      if (r.items.length < need) {
        c.violate({
          invariant: "stale-read",
          detail:
            `a read invoked after position ${need} was acknowledged saw only ${r.items.length} items`,
        });
        return;
      }
    }
  }
}

/** The state machine's contents as one string. */
function describeState(c: SimCluster, n: SimNode): string {
  if (n.list) return JSON.stringify(n.list.items());
  const kv = n.kv!;
  const keys = ["live", ...Array.from({ length: c.o.keys }, (_, i) => `k${i}`)];
  return JSON.stringify(
    keys.map((k) => {
      const v = kv.get(k);
      return [k, v === undefined ? null : td.decode(v)];
    }).concat([["size", String(kv.size)]]),
  );
}
