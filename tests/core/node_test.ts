/**
 * One test per protocol rule of the core, driven through the small cluster
 * harness (the transcripts under testdata/ tell the same stories at length).
 */

import assert from "node:assert/strict";
import {
  NotLeaderError,
  OverloadedError,
  ReadyProtocolError,
  TransferInProgressError,
} from "../../src/core/errors.ts";
import type { Message } from "../../src/core/messages.ts";
import { RaftNode, seededRandom } from "../../src/core/node.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { Cluster } from "./harness.ts";
import { runCommand } from "./transcript.ts";

const enc = new TextEncoder();

function elect(c: Cluster, id = 1): void {
  c.get(id).node.campaign();
  c.stabilize();
  assert.equal(c.get(id).node.status().role, "leader");
}

function ticksUntilCampaign(id: number, seed?: number): number {
  const node = new RaftNode(
    { id, voters: [1, 2, 3], preVote: false },
    new MemoryLog(),
    seed === undefined ? undefined : seededRandom(seed),
  );
  for (let t = 1; t <= 100; t++) {
    node.tick();
    if (node.status().role === "candidate") return t;
  }
  return -1;
}

Deno.test("election timeouts are randomized in [electionTick, 2*electionTick) and reproducible per seed", () => {
  const seen = new Set<number>();
  for (let seed = 1; seed <= 40; seed++) {
    const t = ticksUntilCampaign(1, seed);
    assert.ok(t >= 10 && t < 20, `timeout ${t}`);
    assert.equal(ticksUntilCampaign(1, seed), t);
    seen.add(t);
  }
  assert.ok(seen.size >= 5, `only ${seen.size} distinct timeouts`);
  // The default PRNG is seeded from the id: reproducible, and differs by node.
  assert.equal(ticksUntilCampaign(2), ticksUntilCampaign(2));
});

Deno.test("with pre-vote a partitioned node does not raise its term", () => {
  const c = Cluster.of(3);
  elect(c);
  c.partition([[3], [1, 2]]);
  for (let i = 0; i < 60; i++) {
    c.tick([3], 1);
    c.stabilize();
  }
  assert.equal(c.get(3).node.status().term, 1);
  assert.equal(c.get(3).node.status().role, "precandidate");
});

Deno.test("without pre-vote a partitioned node raises its term (the behaviour pre-vote prevents)", () => {
  const c = Cluster.of(3, { preVote: false });
  elect(c);
  c.partition([[3], [1, 2]]);
  for (let i = 0; i < 60; i++) {
    c.tick([3], 1);
    c.stabilize();
  }
  assert.ok(c.get(3).node.status().term > 1);
});

Deno.test("check-quorum: an isolated leader steps down within two election timeouts", () => {
  const c = Cluster.of(3);
  elect(c);
  c.partition([[1], [2, 3]]);
  for (let i = 0; i < 20; i++) {
    c.tick([1], 1);
    c.stabilize();
  }
  assert.equal(c.get(1).node.status().role, "follower");
});

Deno.test("without check-quorum an isolated leader stays leader", () => {
  const c = Cluster.of(3, { checkQuorum: false });
  elect(c);
  c.partition([[1], [2, 3]]);
  for (let i = 0; i < 40; i++) {
    c.tick([1], 1);
    c.stabilize();
  }
  assert.equal(c.get(1).node.status().role, "leader");
});

Deno.test("leader stickiness: a follower that hears from its leader ignores a higher-term vote request", () => {
  const c = Cluster.of(3, { preVote: false });
  elect(c);
  const vote: Message = {
    type: "RequestVote",
    from: 3,
    to: 2,
    term: 5,
    preVote: false,
    lastLogIndex: 99,
    lastLogTerm: 9,
    transfer: false,
  };
  c.get(2).node.step(vote);
  assert.equal(c.get(2).node.status().term, 1);
  assert.equal(c.get(2).node.hasReady(), false);
  // A transfer election overrides stickiness: the leader asked for it.
  c.get(2).node.step({ ...vote, transfer: true });
  assert.equal(c.get(2).node.status().term, 5);
  assert.equal(c.get(2).node.status().vote, 3);
});

Deno.test("seed bug: a new leader appends an empty entry of its term at once, committing earlier entries", () => {
  const c = Cluster.of(3);
  elect(c);
  const leader = c.get(1).node;
  leader.propose(enc.encode("x"));
  c.processReady(1);
  c.drop({ to: 3 });
  c.deliver({ to: 2 });
  c.processReady(2);
  c.crash(1);
  c.queue = [];
  c.tick([3], 10);
  c.get(2).node.campaign();
  c.stabilize([2, 3]);
  const e = c.get(2).log.entry(3);
  assert.deepEqual([e?.term, e?.data.byteLength], [2, 0]);
  assert.deepEqual(c.get(3).applied, ["x"]);
});

Deno.test("the leader sends appends before its own sync and counts itself only for persisted entries", () => {
  const c = Cluster.of(3);
  elect(c);
  const leader = c.get(1);
  leader.node.propose(enc.encode("x"));
  const rd = leader.node.ready();
  assert.equal(rd.mustSync, true);
  // AppendEntries may leave before the sync.
  assert.ok(
    rd.messages.some((m) =>
      m.type === "AppendEntries" && m.entries.length === 1
    ),
  );
  for (const m of rd.messages) c.get(m.to).node.step(m);
  // One follower acknowledges; the leader has not advanced its own Ready.
  c.processReady(2);
  c.deliver({ to: 1, from: 2 });
  assert.equal(
    leader.node.status().commit,
    1,
    "must not count its own unpersisted entry",
  );
  leader.log.syncNow();
  leader.node.advance(rd);
  assert.equal(leader.node.status().commit, 2);
});

Deno.test("votes and append acknowledgements leave only after the sync", () => {
  const c = Cluster.of(3, { preVote: false });
  c.get(1).node.campaign();
  const rd = c.get(1).node.ready();
  // The candidate's own vote must be durable before it asks for votes.
  assert.ok(rd.persistedMessages.every((m) => m.type === "RequestVote"));
  assert.equal(rd.messages.length, 0);
  for (const m of rd.persistedMessages) c.get(m.to).node.step(m);
  const rd2 = c.get(2).node.ready();
  assert.equal(rd2.mustSync, true);
  assert.deepEqual(rd2.persistedMessages.map((m) => m.type), [
    "RequestVoteResponse",
  ]);
  assert.equal(rd2.messages.length, 0);
});

Deno.test("seed bug: a follower's commit index never regresses on reordered or duplicated appends", () => {
  const c = Cluster.of(2);
  elect(c);
  for (const d of ["a", "b", "c"]) {
    c.get(1).node.propose(enc.encode(d));
    c.processReady(1);
  }
  const old = c.queue.filter((m) => m.to === 2 && m.type === "AppendEntries");
  c.stabilize();
  assert.equal(c.get(2).node.status().commit, 4);
  // The oldest appends arrive again, in reverse order.
  for (const m of old.reverse()) c.get(2).node.step(m);
  assert.equal(c.get(2).node.status().commit, 4);
  // An append that passes the commit index but carries an older leaderCommit.
  c.get(2).node.step({
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 1,
    prevLogIndex: 4,
    prevLogTerm: 1,
    entries: [{ index: 5, term: 1, kind: "normal", data: enc.encode("d") }],
    leaderCommit: 2,
  });
  assert.equal(c.get(2).node.status().commit, 4);
});

Deno.test("seed bug: a snapshot is streamed once, not re-sent with every heartbeat", () => {
  const c = Cluster.of(3, { compactionLag: 0, snapshotChunkBytes: 1 << 20 });
  elect(c);
  c.partition([[3], [1, 2]]);
  for (const d of ["a", "b", "c"]) c.get(1).node.propose(enc.encode(d));
  c.stabilize([1, 2]);
  c.get(1).node.snapshotTaken(c.get(1).appliedIndex, enc.encode("a,b,c"));
  c.heal();
  // Hold back node 3's answers so the snapshot stays "in flight".
  c.partition([[3], []]);
  c.blocked.delete("1->3");
  let snapshots = 0;
  for (let i = 0; i < 9; i++) {
    c.tick([1], 1);
    c.processReady(1);
    snapshots += c.queue.filter((m) => m.type === "InstallSnapshot").length;
    c.deliver();
    c.processReady(3);
    c.processReady(2);
    c.deliver();
  }
  assert.equal(
    snapshots,
    1,
    `snapshot sent ${snapshots} times in 9 heartbeats`,
  );
  c.heal();
  for (let i = 0; i < 12; i++) {
    c.tick([1], 1);
    c.stabilize();
  }
  assert.deepEqual(c.get(3).applied, ["a", "b", "c"]);
  assert.equal(
    c.get(1).node.status().progress.find((p) => p.id === 3)?.state,
    "replicate",
  );
});

Deno.test("seed bug: a transfer to a dead target is abandoned after an election timeout", () => {
  const c = Cluster.of(3);
  elect(c);
  c.crash(3);
  const leader = c.get(1).node;
  leader.transferLeadership(3);
  assert.throws(() => leader.propose(enc.encode("x")), TransferInProgressError);
  for (let i = 0; i < 10; i++) {
    c.tick([1, 2], 1);
    c.stabilize([1, 2]);
  }
  assert.equal(leader.status().leadTransferee, 0);
  const index = leader.propose(enc.encode("x"));
  c.stabilize([1, 2]);
  assert.ok(leader.status().commit >= index);
});

Deno.test("a transfer target is caught up before TimeoutNow and then wins at once", () => {
  const c = Cluster.of(3);
  elect(c);
  c.partition([[3], [1, 2]]);
  c.get(1).node.propose(enc.encode("x"));
  c.stabilize([1, 2]);
  c.heal();
  c.get(1).node.transferLeadership(3);
  // No TimeoutNow while node 3 lacks entries.
  c.processReady(1);
  assert.ok(!c.queue.some((m) => m.type === "TimeoutNow"));
  c.stabilize();
  assert.equal(c.leader(), 3);
  assert.deepEqual(c.get(3).applied, ["x"]);
});

Deno.test("a read is released only after the node applied its read index", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.propose(enc.encode("x"));
  // Node 3 has not received "x" when it asks the leader for a read index.
  c.processReady(1);
  c.drop({ to: 3 });
  c.stabilize([1, 2]);
  c.get(3).node.readIndex("r");
  c.processReady(3);
  c.deliver({ to: 1 });
  c.stabilize([1, 2]);
  c.deliver({ to: 3, from: 1 });
  c.processReady(3);
  assert.deepEqual(c.get(3).reads, [], "released before applying index 2");
  for (let i = 0; i < 3; i++) {
    c.tick([1], 1);
    c.stabilize();
  }
  assert.deepEqual(c.get(3).reads, ["r@2"]);
  assert.ok(c.get(3).appliedIndex >= 2);
});

Deno.test("a read on a leader that has not committed an entry of its term waits for it", () => {
  const c = Cluster.of(3, { preVote: false });
  c.get(1).node.campaign();
  c.processReady(1);
  c.deliver();
  c.processReady(2);
  c.processReady(3);
  c.deliver();
  assert.equal(c.get(1).node.status().role, "leader");
  c.get(1).node.readIndex("early");
  c.processReady(1);
  assert.deepEqual(c.get(1).reads, []);
  c.stabilize();
  assert.deepEqual(c.get(1).reads, ["early@1"]);
});

Deno.test("lease reads are served without a round only while the lease holds", () => {
  const c = Cluster.of(3, { leaseReads: true });
  elect(c);
  c.get(1).node.readIndex("a");
  c.stabilize();
  c.partition([[1], [2, 3]]);
  c.get(1).node.readIndex("b");
  c.processReady(1);
  assert.deepEqual(c.get(1).reads, ["a@1", "b@1"]);
  c.tick([1], 8);
  c.get(1).node.readIndex("c");
  c.stabilize();
  assert.deepEqual(
    c.get(1).reads,
    ["a@1", "b@1"],
    "served after the lease ran out",
  );
});

Deno.test("proposals beyond the uncommitted-bytes cap throw OverloadedError", () => {
  const c = Cluster.of(3, { maxUncommittedBytes: 10 });
  elect(c);
  c.partition([[1], [2, 3]]);
  const leader = c.get(1).node;
  leader.propose(new Uint8Array(6));
  assert.throws(() => leader.propose(new Uint8Array(6)), OverloadedError);
  assert.throws(
    () => leader.proposeBatch([new Uint8Array(2), new Uint8Array(3)]),
    OverloadedError,
  );
  c.heal();
  c.tick([1], 1);
  c.stabilize();
  leader.propose(new Uint8Array(6));
});

Deno.test("proposals on a follower throw NotLeaderError with the leader's id when forwarding is off", () => {
  const c = Cluster.of(3, { forwardProposals: false });
  elect(c);
  assert.throws(
    () => c.get(2).node.propose(enc.encode("x")),
    (e) => e instanceof NotLeaderError && e.leaderId === 1,
  );
});

Deno.test("proposals on a follower are forwarded to the leader by default", () => {
  const c = Cluster.of(3);
  elect(c);
  assert.equal(c.get(2).node.propose(enc.encode("x")), 0);
  c.stabilize();
  assert.deepEqual(c.get(1).applied, ["x"]);
});

Deno.test("many proposals leave in one append message (batching)", () => {
  const c = Cluster.of(3);
  elect(c);
  for (let i = 0; i < 50; i++) c.get(1).node.propose(enc.encode(`p${i}`));
  c.get(1).node.proposeBatch([enc.encode("q1"), enc.encode("q2")]);
  const rd = c.get(1).node.ready();
  const appends = rd.messages.filter((m) =>
    m.type === "AppendEntries" && m.to === 2
  );
  assert.equal(appends.length, 1);
  assert.equal(
    appends[0].type === "AppendEntries" ? appends[0].entries.length : 0,
    52,
  );
});

Deno.test("ready() before advance() of the previous Ready throws", () => {
  const node = new RaftNode({ id: 1 }, new MemoryLog());
  node.campaign();
  node.ready();
  assert.throws(() => node.ready(), ReadyProtocolError);
});

Deno.test("a restarted node recovers term, vote, commit, log and membership from its durable log", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.propose(enc.encode("x"));
  c.stabilize();
  c.get(1).node.changeMembership({ type: "addLearner", id: 4 });
  c.stabilize();
  const before = c.get(2).node.status();
  c.crash(2);
  c.restart(2);
  const after = c.get(2).node.status();
  assert.deepEqual(
    [after.term, after.vote, after.lastIndex, after.membership],
    [before.term, before.vote, before.lastIndex, before.membership],
  );
  // The commit index is persisted lazily (a commit-only change does not force a sync).
  assert.ok(after.commit >= 2 && after.commit <= before.commit);
  // It re-applies the committed log.
  c.stabilize();
  assert.deepEqual(c.get(2).applied, ["x"]);
});

Deno.test("a learner receives the log but never campaigns", () => {
  const c = Cluster.of(3, { voters: [1, 2], learners: [3] });
  elect(c);
  c.get(1).node.propose(enc.encode("x"));
  c.stabilize();
  assert.deepEqual(c.get(3).applied, ["x"]);
  c.partition([[3], [1, 2]]);
  for (let i = 0; i < 50; i++) c.tick([3], 1);
  assert.equal(c.get(3).node.status().role, "learner");
  assert.equal(c.get(3).node.hasReady(), false);
});

Deno.test("only one membership change may be in flight", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "addLearner", id: 4 });
  assert.throws(
    () => c.get(1).node.changeMembership({ type: "addLearner", id: 5 }),
    /not committed yet/,
  );
});

Deno.test("a configuration takes effect when appended, before it commits", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 3 });
  assert.deepEqual(c.get(1).node.status().membership.voters, [1, 2]);
  assert.equal(c.get(1).node.status().commit, 1);
});

Deno.test("a leader removed from the configuration steps down once it commits", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 1 });
  c.stabilize();
  assert.equal(c.get(1).node.status().role, "follower");
  for (let i = 0; i < 30; i++) {
    c.tick(undefined, 1);
    c.stabilize();
  }
  assert.ok([2, 3].includes(c.leader()));
});

Deno.test("the same inputs produce the same outputs (determinism)", () => {
  const script = [
    "add-nodes 3",
    "campaign 1",
    "stabilize",
    "propose 1 a",
    "isolate 3",
    "tick all 25",
    "stabilize",
    "heal",
    "elapse all 30",
    "raft-state",
  ];
  const run = () => {
    const c = new Cluster();
    return script.flatMap((cmd) => runCommand(c, cmd)).join("\n");
  };
  assert.equal(run(), run());
});

Deno.test("a joint configuration is left automatically once it commits, even with entries after it", () => {
  const c = Cluster.of(4, { voters: [1, 2, 3] });
  elect(c);
  const leader = c.get(1).node;
  // (force: this story is about leaving the joint configuration.)
  leader.changeMembership({
    type: "enterJoint",
    voters: [1, 2, 4],
    force: true,
  });
  leader.propose(enc.encode("after-joint"));
  c.stabilize();
  const m = leader.status().membership;
  assert.deepEqual([m.voters, m.outgoing], [[1, 2, 4], []]);
  assert.ok(leader.status().commit >= leader.status().lastIndex);
});

Deno.test("a joint change that removes the leader ends with the leader stepping down", () => {
  const c = Cluster.of(4, { voters: [1, 2, 3] });
  elect(c);
  c.get(1).node.changeMembership({
    type: "enterJoint",
    voters: [2, 3, 4],
    force: true,
  });
  c.stabilize();
  assert.equal(c.get(1).node.status().role, "follower");
  assert.deepEqual(c.get(2).node.status().membership.voters, [2, 3, 4]);
  for (let i = 0; i < 30; i++) {
    c.tick(undefined, 1);
    c.stabilize();
  }
  assert.ok([2, 3, 4].includes(c.leader()));
});

Deno.test("the application is hinted to snapshot once per threshold of applied entries", () => {
  const c = Cluster.of(1, { snapshotThreshold: 5, compactionLag: 0 });
  const hints: number[] = [];
  const drive = () => {
    while (c.get(1).node.hasReady()) {
      const rd = c.get(1).node.ready();
      if (rd.mustSync) c.get(1).log.syncNow();
      if (rd.snapshotHint !== undefined) hints.push(rd.snapshotHint);
      c.get(1).node.advance(rd);
    }
  };
  c.get(1).node.campaign();
  drive();
  for (let i = 0; i < 12; i++) {
    c.get(1).node.propose(enc.encode(`${i}`));
    drive();
  }
  assert.deepEqual(hints, [5, 10]);
  c.get(1).node.snapshotTaken(13, enc.encode("s"));
  assert.equal(c.get(1).log.firstIndex(), 14);
  for (let i = 0; i < 5; i++) {
    c.get(1).node.propose(enc.encode(`${i}`));
    drive();
  }
  assert.deepEqual(hints, [5, 10, 18]);
});

Deno.test("a node restarted with options.applied hands out only entries after it", () => {
  const c = Cluster.of(1);
  c.get(1).node.campaign();
  c.stabilize();
  for (const d of ["a", "b", "c"]) c.get(1).node.propose(enc.encode(d));
  c.stabilize();
  // The next append's sync also makes the commit index 4 durable.
  c.get(1).node.propose(enc.encode("d"));
  c.stabilize();
  const log = c.get(1).log.crash();
  const durableCommit = log.hardState().commit;
  assert.ok(durableCommit >= 3);
  const node = new RaftNode({ id: 1 }, log, undefined, { applied: 2 });
  const rd = node.ready();
  assert.deepEqual(
    rd.committedEntries.map((e) => e.index),
    Array.from({ length: durableCommit - 2 }, (_, i) => i + 3),
  );
  node.advance(rd);
  assert.equal(node.status().applied, durableCommit);
});

Deno.test("a joint change can demote a voter to a learner that keeps replicating", () => {
  const c = Cluster.of(3);
  elect(c);
  const leader = c.get(1).node;
  leader.changeMembership({
    type: "enterJoint",
    voters: [1, 2],
    learners: [3],
  });
  c.stabilize();
  const m = leader.status().membership;
  assert.deepEqual([m.voters, m.outgoing, m.learners], [[1, 2], [], [3]]);
  assert.equal(c.get(3).node.status().role, "learner");
  leader.propose(enc.encode("x"));
  c.stabilize();
  assert.deepEqual(c.get(3).applied, ["x"]);
  assert.equal(
    leader.status().progress.find((p) => p.id === 3)?.isLearner,
    true,
  );
});
