/**
 * The nemesis: decides, tick by tick and from the run's random source,
 * which faults strike the cluster — partitions (symmetric, one-way, an
 * isolated leader, a bridge), crashes, membership churn through
 * `addVoter`/`addLearner`/`removeNode`, leadership transfers and snapshots
 * through the servers' own API. Message faults (drop, duplicate, reorder,
 * delay) are the `MemoryNetwork`'s; disk faults are each `SimDisk`'s.
 *
 * @module
 */

import type { SimCluster } from "./cluster.ts";
import { errorText, TICK_MS } from "./cluster.ts";

/** A client pinned to one node for a while (a reader on the wrong side of a partition). */
export interface Pin {
  /** Client id. */
  client: number;
  /** Node it must use. */
  node: number;
  /** Virtual time it is free again. */
  until: number;
  /** The key it reads (a lease probe), if any. */
  key?: string;
  /** How it reads (default: `lease` when leases are on). */
  consistency?: "lease" | "linearizable";
  /** A client that meanwhile writes `key` through the newest leader. */
  writer?: number;
}

/** Injects the switched-on faults into a {@linkcode SimCluster}. */
export class Nemesis {
  readonly #c: SimCluster;
  #partitionUntil = -1;
  #lagUntil = -1;
  #busy = false;
  /** A client pinned to a node, if any. */
  pinned: Pin | undefined;

  /** A nemesis for `cluster`; sets the network's message faults. */
  constructor(cluster: SimCluster) {
    this.#c = cluster;
    const f = cluster.faults;
    cluster.net.setFaults({
      dropRate: f.has("drop") ? 0.03 : 0,
      duplicateRate: f.has("duplicate") ? 0.03 : 0,
      reorderRate: f.has("reorder") ? 0.1 : 0,
      reorderWindowMs: 2 * TICK_MS,
      delayMs: f.has("delay") ? [0.5, 1.5 * TICK_MS] : [0.5, 3],
    });
  }

  /** Ends every fault: partitions, message and disk faults. (Down nodes restart as usual.) */
  heal(): void {
    const c = this.#c;
    c.healed = true;
    this.pinned = undefined;
    c.lagging = 0;
    c.deafAfterTimeoutNow = 0;
    c.net.heal();
    c.net.setFaults({
      dropRate: 0,
      duplicateRate: 0,
      reorderRate: 0,
      delayMs: [0.5, 3],
    });
    for (const n of c.nodes) {
      n.disk.faults = {
        ...n.disk.faults,
        syncEio: 0,
        writeEnospc: 0,
        syncEnospc: 0,
      };
      if (n.state === "down") n.restartAt = c.now;
    }
    c.log(0, "heal: partitions removed, message and disk faults stopped", true);
  }

  /** One tick's worth of faults. */
  tick(): void {
    const c = this.#c;
    const f = c.faults;
    if (f.has("partition")) {
      if (this.#partitionUntil >= 0 && c.now >= this.#partitionUntil) {
        c.net.heal();
        c.deafAfterTimeoutNow = 0;
        this.#partitionUntil = -1;
        c.log(0, "partition healed", true);
      } else if (this.#partitionUntil < 0 && c.chance(0.02)) {
        this.#partition();
      }
    }
    if (f.has("crash")) {
      const down = c.nodes.filter((n) => n.state !== "up").length;
      if (down < Math.floor((c.o.nodes - 1) / 2) && c.chance(0.01)) {
        const up = c.up();
        if (up.length > 0) c.crash(up[c.int(up.length)]);
      }
    }
    if (f.has("churn") && c.chance(0.01)) this.#churn();
    if (f.has("transfer") && c.chance(0.01)) this.#transfer();
    if (f.has("snapshot") && c.chance(0.01)) this.#snapshot();
    if (c.o.leaseReads) this.#leaseProbe();
  }

  /**
   * Lease mode: a probe at a time. A lease read must never see a value older
   * than a write another leader acknowledged: the leader is cut off (fully,
   * or from hearing anyone while it hands leadership over) with a reader
   * pinned to it reading one key under its lease, while a writer writes that
   * key through the newest leader; or a follower's appends are held back
   * while a reader pinned to it reads what a writer just wrote.
   */
  #leaseProbe(): void {
    const c = this.#c;
    if (this.#lagUntil >= 0 && c.now >= this.#lagUntil) {
      c.lagging = 0;
      this.#lagUntil = -1;
      c.log(0, "follower appends on time again", true);
    }
    if (this.pinned !== undefined && c.now >= this.pinned.until) {
      this.pinned = undefined;
    }
    if (this.pinned !== undefined || !c.chance(0.06)) return;
    const leader = c.leader();
    if (leader === undefined || !leader.server!.status().leaderReady) return;
    const key = `k${c.int(c.o.keys)}`;
    const roll = c.rand();
    if (
      roll < 0.4 && this.#partitionUntil < 0 && c.faults.has("partition") &&
      leader.id !== c.eager
    ) {
      c.net.isolate(leader.id);
      const until = c.now + 40 * TICK_MS;
      this.pinned = { client: 1, node: leader.id, until, key, writer: 2 };
      this.#partitionUntil = until;
      c.stats.partitions++;
      c.log(
        0,
        `lease probe: leader n${leader.id} isolated, reads ${key}`,
        true,
      );
    } else if (
      roll < 0.7 && this.#partitionUntil < 0 && c.faults.has("partition") &&
      c.faults.has("transfer")
    ) {
      const voters = c.membership().voters.filter((v) => v !== leader.id);
      if (voters.length === 0) return;
      const until = c.now + 40 * TICK_MS;
      c.deafAfterTimeoutNow = leader.id;
      this.#partitionUntil = until;
      this.pinned = { client: 1, node: leader.id, until, key, writer: 2 };
      c.log(
        0,
        `lease probe: n${leader.id} hears no one, hands over, reads ${key}`,
        true,
      );
      this.#transfer(voters[c.int(voters.length)], false);
    } else if (roll >= 0.7 && this.#lagUntil < 0) {
      const followers = c.up().filter((n) =>
        n.id !== leader.id && n.server!.role === "follower"
      );
      if (followers.length === 0) return;
      const f = followers[c.int(followers.length)];
      const until = c.now + 30 * TICK_MS;
      c.lagging = f.id;
      c.lagMs = (3 + c.int(6)) * TICK_MS;
      this.#lagUntil = until;
      this.pinned = {
        client: 1,
        node: f.id,
        until,
        key,
        writer: 2,
        consistency: c.chance(0.5) ? "lease" : "linearizable",
      };
      c.log(
        0,
        `lease probe: n${f.id}'s appends held back ${c.lagMs} ms, reads ${key}`,
        true,
      );
    }
  }

  #snapshot(): void {
    const c = this.#c;
    const up = c.up();
    if (up.length === 0) return;
    const n = up[c.int(up.length)];
    c.log(n.id, "takeSnapshot()");
    void c.settle(n, "takeSnapshot", n.server!.takeSnapshot(), 60_000).then(
      (r) => {
        if (!r.ok) c.log(n.id, `takeSnapshot failed: ${errorText(r.error)}`);
      },
    );
  }

  #transfer(target?: number, pin = true): void {
    const c = this.#c;
    const leader = c.leader();
    if (!leader) return;
    const voters = c.membership().voters.filter((v) => v !== leader.id);
    const to = target ??
      (voters.length > 0 && c.chance(0.7)
        ? voters[c.int(voters.length)]
        : undefined);
    c.stats.transfers++;
    c.log(leader.id, `transferLeadership(${to ?? ""})`, true);
    const timeoutMs = 30 * TICK_MS;
    void c.settle(
      leader,
      "transferLeadership",
      leader.server!.transferLeadership(to, { timeoutMs }),
      timeoutMs,
    ).then((r) =>
      c.log(
        leader.id,
        r.ok
          ? `transfer done: n${r.value} leads`
          : `transfer failed: ${errorText(r.error)}`,
      )
    );
    // A reader left on the old leader sees whether its lease survived the
    // transfer; sometimes the old leader stops hearing the others (so it
    // does not learn the new term) while it can still send TimeoutNow.
    if (pin && c.o.leaseReads && c.chance(0.5)) {
      const until = c.now + 40 * TICK_MS;
      this.pinned = { client: 1, node: leader.id, until };
      if (this.#partitionUntil < 0 && c.faults.has("partition")) {
        for (const n of c.nodes) {
          if (n.id !== leader.id) c.net.blockLink(n.id, leader.id);
        }
        this.#partitionUntil = until;
        c.log(0, `n${leader.id} hears no one (one-way)`, true);
      }
    }
  }

  #partition(): void {
    const c = this.#c;
    const ids = c.nodes.map((n) => n.id);
    // With leases, isolate the leader half the time: a lease must not outlive it.
    const kind = c.o.leaseReads && c.chance(0.5) ? 2 : c.int(4);
    const leader = c.leader();
    let text: string;
    if (kind === 0 || (kind === 2 && !leader)) {
      const shuffled = ids.slice();
      for (let i = shuffled.length - 1; i > 0; i--) {
        const j = c.int(i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      const cut = 1 + c.int(ids.length - 1);
      const left = shuffled.slice(0, cut);
      const right = shuffled.slice(cut);
      c.net.partition(left, right);
      text = `partition {${left.join(",")}} | {${right.join(",")}}`;
    } else if (kind === 1) {
      const a = ids[c.int(ids.length)];
      const others = ids.filter((x) => x !== a);
      const b = others[c.int(others.length)];
      c.net.blockLink(a, b);
      text = `one-way partition n${a} -> n${b} blocked`;
    } else if (kind === 2 && leader) {
      c.net.isolate(leader.id);
      text = `leader n${leader.id} isolated`;
      // A reader on the wrong side keeps reading from the old leader.
      this.pinned = {
        client: 1,
        node: leader.id,
        until: c.now + (20 + c.int(60)) * TICK_MS,
      };
    } else {
      const bridge = ids[c.int(ids.length)];
      const rest = ids.filter((x) => x !== bridge);
      const left = rest.filter((_, i) => i % 2 === 0);
      const right = rest.filter((_, i) => i % 2 === 1);
      c.net.partition(left, right);
      text = `bridge through n${bridge}: {${left.join(",")}} | {${
        right.join(",")
      }}`;
    }
    this.#partitionUntil = Math.max(
      c.now + (20 + c.int(60)) * TICK_MS,
      this.pinned?.until ?? 0,
    );
    c.stats.partitions++;
    c.log(0, text, true);
  }

  /** One membership change through the leader's API (one at a time). */
  #churn(): void {
    const c = this.#c;
    const leader = c.leader();
    if (!leader || this.#busy) return;
    const m = c.membership();
    const all = c.nodes.map((n) => n.id);
    const missing = all.filter((id) => !m.voters.includes(id));
    const timeoutMs = 40 * TICK_MS;
    let what: string;
    let p: Promise<number>;
    const s = leader.server!;
    if (missing.length > 0 && (m.voters.length < 3 || c.chance(0.7))) {
      const id = missing[c.int(missing.length)];
      if (!m.learners.includes(id) && c.chance(0.3)) {
        what = `addLearner(${id})`;
        p = s.addLearner(id, { timeoutMs });
      } else {
        what = `addVoter(${id})`;
        p = s.addVoter(id, { timeoutMs });
      }
    } else if (m.voters.length > 2) {
      const id = m.voters[c.int(m.voters.length)];
      what = `removeNode(${id})`;
      p = s.removeNode(id, { timeoutMs });
    } else return;
    this.#busy = true;
    c.stats.membershipChanges++;
    c.log(leader.id, what, true);
    void c.settle(leader, what, p, timeoutMs).then((r) => {
      this.#busy = false;
      c.log(
        leader.id,
        r.ok
          ? `${what} committed at ${r.value}`
          : `${what} failed: ${errorText(r.error)}`,
      );
    });
  }
}
