/**
 * Randomized safety check of the core alone (the full simulator lives in
 * src/testing): clusters under message loss, reordering, duplication,
 * partitions, crashes that lose unsynced writes (also between sending a
 * Ready's messages and its sync), proposals, reads, snapshots, membership
 * changes and transfers. After every step it checks Raft's safety
 * properties (§5.4.3, Figure 3):
 *
 * - election safety: at most one leader per term;
 * - state machine safety: no two nodes apply different entries at an index;
 * - leader completeness: a leader's log holds every applied entry;
 * - commit never regresses while a node is up;
 * - reads are released only once applied >= their index.
 */

import assert from "node:assert/strict";
import { seededRandom } from "../../src/core/node.ts";
import type { MembershipChange } from "../../src/core/membership.ts";
import { Cluster, formatMessage } from "./harness.ts";

const encoder = new TextEncoder();

export function runSeed(
  seed: number,
  steps: number,
  trace?: (line: string) => void,
): { commits: number; leaders: number } {
  const log = trace ?? (() => {});
  const rnd = seededRandom(seed * 7919 + 13);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const n = rnd() < 0.5 ? 3 : 5;
  const checkQuorum = rnd() < 0.8;
  const c = Cluster.of(n, {
    electionTick: 10,
    heartbeatTick: 2,
    compactionLag: Math.floor(rnd() * 4),
    snapshotChunkBytes: 8,
    maxBytesPerMessage: 64,
    maxInflightMessages: 4,
    checkQuorum,
    leaseReads: checkQuorum && rnd() < 0.3,
    preVote: rnd() < 0.8,
  });

  // Spare nodes that membership changes can add.
  for (let id = n + 1; id <= n + 2; id++) {
    c.add({ id, voters: [1], electionTick: 10, heartbeatTick: 2 });
  }
  const ids = [...c.nodes.keys()];
  const leaderOfTerm = new Map<number, number>();
  const appliedAt = new Map<number, string>();
  const committedInTerm = new Map<number, number>();
  const lastCommit = new Map<number, number>();
  let proposals = 0;
  let leaders = 0;
  let faults = true;

  const check = () => {
    for (const sim of c.nodes.values()) {
      if (!sim.up) continue;
      const s = sim.node.status();
      if (s.role === "leader") {
        const prev = leaderOfTerm.get(s.term);
        if (prev === undefined) {
          leaderOfTerm.set(s.term, s.id);
          leaders++;
        } else {assert.equal(
            prev,
            s.id,
            `seed ${seed}: two leaders in term ${s.term}`,
          );}
        // Leader completeness.
        const snapIndex = sim.log.snapshotMeta().index;
        for (const [index, what] of appliedAt) {
          // Only leaders of later terms than the commit must hold it (§5.4).
          if (
            index <= snapIndex ||
            s.term <= (committedInTerm.get(index) ?? Infinity)
          ) continue;
          const e = sim.log.entry(index);
          assert.ok(
            e !== undefined,
            `seed ${seed}: leader ${s.id} lacks committed ${index}`,
          );
          assert.equal(
            `${e.term}`,
            what.split(":")[0],
            `seed ${seed}: leader ${s.id} entry ${index}`,
          );
        }
      }
      const prevCommit = lastCommit.get(s.id) ?? 0;
      assert.ok(
        s.commit >= prevCommit,
        `seed ${seed}: node ${s.id} commit ${prevCommit} -> ${s.commit}`,
      );
      lastCommit.set(s.id, s.commit);
    }
  };

  // Drives one Ready, possibly crashing between sending and syncing.
  const ready = (id: number) => {
    const sim = c.get(id);
    if (!sim.up || !sim.node.hasReady()) return;
    const rd = sim.node.ready();
    c.queue.push(...rd.messages);
    log(
      `ready ${id}: ${rd.softState ? rd.softState.role : ""} hs=${
        JSON.stringify(rd.hardState)
      } entries=${rd.entries.map((e) => `${e.term}/${e.index}`)} committed=${
        rd.committedEntries.map((e) => `${e.term}/${e.index}`)
      } snap=${rd.snapshot?.meta.index}`,
    );
    if (rd.mustSync && faults && rnd() < 0.02) {
      log(`crash ${id} before sync`);
      c.crash(id);
      lastCommit.delete(id);
      return;
    }
    if (rd.mustSync) sim.log.syncNow();
    c.queue.push(...rd.persistedMessages);
    if (rd.snapshot) sim.appliedIndex = rd.snapshot.meta.index;
    for (const e of rd.committedEntries) {
      assert.equal(
        e.index,
        sim.appliedIndex + 1,
        `seed ${seed}: node ${id} applies out of order`,
      );
      sim.appliedIndex = e.index;
      const what = `${e.term}:${e.kind}:${new TextDecoder().decode(e.data)}`;
      // The term of any node applying the entry is at least the term in which
      // it committed: leaders of later terms than the smallest must hold it.
      const t = sim.node.status().term;
      if (t < (committedInTerm.get(e.index) ?? Infinity)) {
        committedInTerm.set(e.index, t);
      }
      const prev = appliedAt.get(e.index);
      if (prev === undefined) appliedAt.set(e.index, what);
      else {assert.equal(
          what,
          prev,
          `seed ${seed}: node ${id} applied a different entry at ${e.index}`,
        );}
    }
    for (const rs of rd.readStates) {
      assert.ok(
        rs.index <= sim.appliedIndex,
        `seed ${seed}: read released before apply`,
      );
    }
    sim.node.advance(rd);
  };

  for (let step = 0; step < steps; step++) {
    const r = rnd();
    const id = pick(ids);
    const sim = c.get(id);
    if (r < 0.25) {
      if (sim.up) sim.node.tick();
      log(`tick ${id}`);
    } else if (r < 0.55) {
      ready(id);
    } else if (r < 0.8) {
      // Deliver a random queued message (reordering), sometimes duplicating it.
      if (c.queue.length > 0) {
        const i = Math.floor(rnd() * c.queue.length);
        const m = c.queue[i];
        if (rnd() < 0.9) c.queue.splice(i, 1);
        const target = c.nodes.get(m.to);
        if (
          target?.up && !c.blocked.has(`${m.from}->${m.to}`) && rnd() > 0.05
        ) {
          log(`deliver ${formatMessage(m)}`);
          target.node.step(m);
        }
      }
    } else if (r < 0.88) {
      const leader = c.leader();
      if (leader !== 0) {
        try {
          c.get(leader).node.propose(encoder.encode(`p${proposals++}`));
        } catch {
          // Refused (transfer, overload): fine.
        }
      }
    } else if (r < 0.9) {
      if (sim.up) {
        try {
          sim.node.readIndex(`r${step}`);
        } catch {
          // No leader known.
        }
      }
    } else if (r < 0.92) {
      if (sim.up && sim.appliedIndex > 0) {
        log(`snapshot ${id} at ${sim.appliedIndex}`);
        sim.node.snapshotTaken(
          sim.appliedIndex,
          encoder.encode(`s${sim.appliedIndex}`),
        );
      }
    } else if (r < 0.935) {
      if (sim.up && sim.node.status().role === "leader") {
        const target = pick(ids);
        const voters = sim.node.status().membership.voters;
        // Half the promotions skip the caught-up-learner check, so that
        // voters that hold nothing yet are exercised too.
        const force = rnd() < 0.5;
        const change: MembershipChange = rnd() < 0.2
          ? {
            type: "enterJoint",
            voters: voters.includes(target) ? voters : [...voters, target],
            force,
          }
          : voters.includes(target)
          ? (voters.length > 1
            ? { type: "removeNode", id: target }
            : { type: "addLearner", id: pick(ids) })
          : rnd() < 0.5
          ? { type: "addVoter", id: target, force }
          : { type: "addLearner", id: target };
        try {
          sim.node.changeMembership(change);
          log(`change ${id} ${JSON.stringify(change)}`);
        } catch {
          // Refused or invalid: fine.
        }
      }
    } else if (r < 0.945) {
      if (sim.up && sim.node.status().role === "leader") {
        try {
          const to = pick(ids);
          sim.node.transferLeadership(to);
          log(`transfer ${id} -> ${to}`);
        } catch {
          // Refused: fine.
        }
      }
    } else if (r < 0.95) {
      if (sim.up) {
        log(`crash ${id}`);
        c.crash(id);
        lastCommit.delete(id);
      } else {
        log(`restart ${id}`);
        c.restart(id);
      }
    } else if (r < 0.96) {
      c.heal();
      if (rnd() < 0.3) {
        const cut = ids.filter(() => rnd() < 0.4);
        c.partition([cut, ids.filter((x) => !cut.includes(x))]);
      }
    } else {
      for (const s of c.nodes.values()) {
        if (!s.up && rnd() < 0.5) c.restart(s.id);
      }
    }
    check();
  }
  // Liveness: once every fault heals, a leader emerges and commits.
  faults = false;
  c.heal();
  for (const s of c.nodes.values()) if (!s.up) c.restart(s.id);
  lastCommit.clear();
  let committedAfterHeal = false;
  for (let round = 0; round < 300 && !committedAfterHeal; round++) {
    c.tick(undefined, 1);
    for (let k = 0; k < 50; k++) {
      for (const x of ids) ready(x);
      if (c.queue.length === 0) break;
      const q = c.queue;
      c.queue = [];
      for (const m of q) c.nodes.get(m.to)?.node.step(m);
    }
    check();
    const leader = c.leader();
    if (leader !== 0 && round % 5 === 0) {
      try {
        const index = c.get(leader).node.propose(
          encoder.encode(`final${round}`),
        );
        if (index > 0) {
          for (let k = 0; k < 50; k++) {
            for (const x of ids) ready(x);
            const q = c.queue;
            c.queue = [];
            for (const m of q) c.nodes.get(m.to)?.node.step(m);
          }
          committedAfterHeal = c.get(leader).node.status().commit >= index;
        }
      } catch {
        // e.g. a transfer in progress
      }
    }
  }
  assert.ok(
    committedAfterHeal,
    `seed ${seed}: no progress after healing: ${
      [...c.nodes.values()].map((x) =>
        JSON.stringify({
          ...x.node.status(),
          up: x.up,
          hasReady: x.node.hasReady(),
        })
      ).join("\n")
    }`,
  );
  return { commits: appliedAt.size, leaders };
}

Deno.test("random faults never break election safety, state machine safety or leader completeness", () => {
  let commits = 0;
  let leaders = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const r = runSeed(seed, 3000);
    commits += r.commits;
    leaders += r.leaders;
  }
  // The runs must make progress to mean anything.
  console.log(`${commits} entries committed, ${leaders} leaders`);
  assert.ok(commits > 1000, `only ${commits} entries committed`);
  assert.ok(leaders > 120, `only ${leaders} leaders elected`);
});
