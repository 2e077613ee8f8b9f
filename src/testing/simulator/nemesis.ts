/**
 * The nemesis: decides, step by step and from the run's random source,
 * which faults strike the cluster — partitions (symmetric, one-way, an
 * isolated leader, a bridge), crashes and restarts, membership churn and
 * leadership transfers. Message-level faults live in the network.
 *
 * @module
 */

import { isCoreError } from "../../core/errors.ts";
import type { MembershipChange } from "../../core/membership.ts";
import type { SimCluster } from "./cluster.ts";

/** Injects the switched-on faults into a {@linkcode SimCluster}. */
export class Nemesis {
  readonly #c: SimCluster;
  #partitionUntil = -1;

  /** A nemesis for `cluster`. */
  constructor(cluster: SimCluster) {
    this.#c = cluster;
  }

  /** Ends every fault: partitions, drops; restarts crashed nodes. */
  heal(): void {
    const c = this.#c;
    c.healed = true;
    c.net.heal();
    c.net.faults = { drop: 0, duplicate: 0, maxExtraDelay: 0 };
    for (const n of c.nodes) if (!n.alive) c.restart(n);
    c.log(
      0,
      "heal: partitions removed, crashed nodes restarted, drops stopped",
    );
  }

  /** One step's worth of faults. */
  step(): void {
    const c = this.#c;
    const f = c.faults;
    if (f.has("partition")) {
      if (this.#partitionUntil >= 0 && c.now >= this.#partitionUntil) {
        c.net.heal();
        this.#partitionUntil = -1;
        c.log(0, "partition healed");
      } else if (this.#partitionUntil < 0 && c.rand() < 0.02) {
        this.#partition();
      }
    }
    if (f.has("crash")) {
      for (const n of c.nodes) {
        if (!n.alive && c.now >= n.restartAt) c.restart(n);
      }
      // Never more down at once than a majority can spare.
      const down = c.nodes.filter((n) => !n.alive).length;
      const targeted = c.nodes.find((n) => n.alive && n.crashAt === c.now);
      if (targeted) {
        targeted.crashAt = -1;
        if (down < Math.floor((c.o.nodes - 1) / 2)) {
          c.crash(targeted);
          return;
        }
      }
      if (down < Math.floor((c.o.nodes - 1) / 2) && c.rand() < 0.01) {
        const alive = c.nodes.filter((n) => n.alive);
        c.crash(alive[c.int(alive.length)]);
      }
    }
    if (f.has("churn") && c.rand() < 0.01) this.#churn();
    if (f.has("transfer") && c.rand() < 0.01) this.#transfer();
  }

  #transfer(): void {
    const c = this.#c;
    const leader = c.leader();
    if (!leader) return;
    const voters = leader.node.status().membership.voters.filter((v) =>
      v !== leader.id
    );
    if (voters.length === 0) return;
    const to = voters[c.int(voters.length)];
    try {
      leader.node.transferLeadership(to);
      c.stats.transfers++;
      c.log(leader.id, `transfer leadership to n${to}`);
    } catch (error) {
      if (!isCoreError(error)) throw error;
    }
  }

  #partition(): void {
    const c = this.#c;
    const ids = c.nodes.map((n) => n.id);
    const kind = c.int(4);
    const leader = c.leader();
    const block = (a: number, b: number) => c.net.setLink(a, b, true);
    let text: string;
    if (kind === 0 || (kind === 2 && !leader)) {
      // Symmetric split into two groups.
      const shuffled = ids.slice().sort(() => c.rand() - 0.5);
      const cut = 1 + c.int(ids.length - 1);
      const left = shuffled.slice(0, cut);
      const right = shuffled.slice(cut);
      for (const a of left) for (const b of right) (block(a, b), block(b, a));
      text = `partition {${left.join(",")}} | {${right.join(",")}}`;
    } else if (kind === 1) {
      const a = ids[c.int(ids.length)];
      const others = ids.filter((x) => x !== a);
      const b = others[c.int(others.length)];
      block(a, b);
      text = `one-way partition n${a} -> n${b} blocked`;
    } else if (kind === 2 && leader) {
      for (const b of ids) {
        if (b !== leader.id) (block(leader.id, b), block(b, leader.id));
      }
      text = `leader n${leader.id} isolated`;
      // A reader on the wrong side: client 1 keeps reading from the old
      // leader while the others move on (stale reads show up here).
      c.pinned = { client: 1, node: leader.id, until: c.now + 20 + c.int(60) };
    } else {
      // Bridge: two groups that only hear each other through one node.
      const bridge = ids[c.int(ids.length)];
      const rest = ids.filter((x) => x !== bridge);
      const left = rest.filter((_, i) => i % 2 === 0);
      const right = rest.filter((_, i) => i % 2 === 1);
      for (const a of left) for (const b of right) (block(a, b), block(b, a));
      text = `bridge through n${bridge}: {${left.join(",")}} | {${
        right.join(",")
      }}`;
    }
    this.#partitionUntil = Math.max(
      c.now + 20 + c.int(60),
      c.pinned?.until ?? 0,
    );
    c.stats.partitions++;
    c.log(0, text);
  }

  #churn(again = false): void {
    const c = this.#c;
    const leader = c.leader();
    if (!leader) return;
    const m = leader.node.status().membership;
    const all = c.nodes.map((n) => n.id);
    const missing = all.filter((id) => !m.voters.includes(id));
    let change: MembershipChange;
    if (c.rand() < 0.25) {
      // A joint change (§6): several voters swapped at once; the core
      // leaves the joint configuration by itself once it commits.
      const voters = all.filter(() => c.rand() < 0.7);
      if (voters.length < 2) return;
      const learners = all.filter((id) =>
        !voters.includes(id) && c.rand() < 0.5
      );
      change = { type: "enterJoint", voters, learners };
    } else if (missing.length > 0) {
      const id = missing[c.int(missing.length)];
      change = m.learners.includes(id) || c.rand() < 0.5
        ? { type: "addVoter", id }
        : { type: "addLearner", id };
    } else if (m.voters.length > 2) {
      change = { type: "removeNode", id: m.voters[c.int(m.voters.length)] };
    } else return;
    try {
      leader.node.changeMembership(change);
      c.stats.membershipChanges++;
      c.log(leader.id, `membership change ${describe(change)}`);
    } catch (error) {
      if (!isCoreError(error)) throw error;
      return;
    }
    // Impatient operators: sometimes a second change right away (the core
    // must refuse it while the first is in flight).
    if (!again && c.rand() < 0.5) this.#churn(true);
  }
}

function describe(change: MembershipChange): string {
  switch (change.type) {
    case "addVoter":
    case "addLearner":
    case "removeNode":
    case "updateNode":
      return `${change.type} n${change.id}`;
    case "enterJoint":
      return `enterJoint voters ${change.voters.join(",")} learners ${
        (change.learners ?? []).join(",")
      }`;
    case "leaveJoint":
      return "leaveJoint";
    default: {
      const never: never = change;
      return String(never);
    }
  }
}
