/**
 * Membership rules of the core beyond joint consensus: member infos in the
 * replicated configuration, voters added through caught-up learners, a
 * removed node that learns it and stops, and leader readiness.
 */

import assert from "node:assert/strict";
import {
  InvalidMembershipChangeError,
  RemovedFromClusterError,
} from "../../src/core/errors.ts";
import type { Message } from "../../src/core/messages.ts";
import { RaftNode, type Ready } from "../../src/core/node.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { Cluster } from "./harness.ts";

const enc = new TextEncoder();

function elect(c: Cluster, id = 1): void {
  c.get(id).node.campaign();
  c.stabilize();
  assert.equal(c.get(id).node.status().role, "leader");
}

/** Runs the driver loop of one node, collecting its Readies. */
function drain(c: Cluster, id: number): Ready[] {
  const out: Ready[] = [];
  const sim = c.get(id);
  while (sim.node.hasReady()) {
    const rd = sim.node.ready();
    out.push(rd);
    for (const m of rd.messages) c.queue.push(m);
    if (rd.mustSync) sim.log.syncNow();
    for (const m of rd.persistedMessages) c.queue.push(m);
    sim.node.advance(rd);
  }
  return out;
}

// ---- member infos ----

Deno.test("member addresses and metadata replicate with the configuration to every member", () => {
  const c = Cluster.of(3, {
    nodes: { 1: { address: "10.0.0.1:7001", metadata: "http://one" } },
  });
  c.add({ id: 4, voters: [1, 2, 3] });
  elect(c);
  c.get(1).node.changeMembership({
    type: "addLearner",
    id: 4,
    address: "10.0.0.4:7001",
    metadata: "http://four",
  });
  c.stabilize();
  for (const id of [1, 2, 3, 4]) {
    assert.deepEqual(c.get(id).node.status().membership.nodes, {
      1: { address: "10.0.0.1:7001", metadata: "http://one" },
      4: { address: "10.0.0.4:7001", metadata: "http://four" },
    }, `node ${id}`);
  }
  // updateNode: one config entry, roles unchanged.
  const before = c.get(1).node.status().lastIndex;
  const index = c.get(1).node.changeMembership({
    type: "updateNode",
    id: 4,
    address: "10.0.0.44:7001",
  });
  assert.equal(index, before + 1);
  c.stabilize();
  const m = c.get(2).node.status().membership;
  assert.deepEqual([m.voters, m.learners], [[1, 2, 3], [4]]);
  assert.deepEqual(m.nodes[4], {
    address: "10.0.0.44:7001",
    metadata: "http://four",
  });
  // removeNode drops the info.
  c.get(1).node.changeMembership({ type: "removeNode", id: 4 });
  c.stabilize();
  assert.equal(c.get(1).node.status().membership.nodes[4], undefined);
});

Deno.test("Ready.membership and status carry copies of the node infos", () => {
  const c = Cluster.of(1, {
    nodes: { 1: { address: "a", metadata: "m" } },
  });
  c.get(1).node.campaign();
  const rds = drain(c, 1);
  const first = rds.find((rd) => rd.membership !== undefined);
  // The bootstrap configuration is in effect from the start; a change shows it.
  c.get(1).node.changeMembership({
    type: "updateNode",
    id: 1,
    metadata: "m2",
  });
  const rd = drain(c, 1).find((r) => r.membership !== undefined);
  assert.ok(rd?.membership);
  assert.deepEqual(rd.membership.nodes, {
    1: { address: "a", metadata: "m2" },
  });
  rd.membership.nodes[1].address = "mutated";
  const status = c.get(1).node.status();
  assert.equal(status.membership.nodes[1].address, "a");
  status.membership.nodes[1].address = "mutated";
  assert.equal(c.get(1).node.status().membership.nodes[1].address, "a");
  assert.equal(first, undefined);
});

// ---- voters through caught-up learners ----

Deno.test("adding a voter that is not a learner is refused with the way forward", () => {
  const c = Cluster.of(3);
  c.add({ id: 4, voters: [1, 2, 3] });
  elect(c);
  assert.throws(
    () => c.get(1).node.changeMembership({ type: "addVoter", id: 4 }),
    (e) =>
      e instanceof InvalidMembershipChangeError &&
      /add it as a learner first, wait until it catches up, or pass force/
        .test(e.message),
  );
  assert.throws(
    () =>
      c.get(1).node.changeMembership({
        type: "enterJoint",
        voters: [1, 2, 4],
      }),
    InvalidMembershipChangeError,
  );
  // force skips the check.
  c.get(1).node.changeMembership({ type: "addVoter", id: 4, force: true });
  c.stabilize();
  assert.deepEqual(c.get(1).node.status().membership.voters, [1, 2, 3, 4]);
});

Deno.test("a learner that never answered is not promoted, however short the log", () => {
  const c = Cluster.of(3); // default learnerCatchUpEntries 1000 > the log's length
  c.add({ id: 4, voters: [1, 2, 3] });
  elect(c);
  c.crash(4);
  c.get(1).node.changeMembership({ type: "addLearner", id: 4 });
  c.stabilize();
  assert.throws(
    () => c.get(1).node.changeMembership({ type: "addVoter", id: 4 }),
    /has not acknowledged any entry yet/,
  );
  assert.deepEqual(c.get(1).node.status().membership.voters, [1, 2, 3]);
});

Deno.test("a learner becomes a voter only once it caught up and is active", () => {
  const c = Cluster.of(3, { learnerCatchUpEntries: 2 });
  c.add({ id: 4, voters: [1, 2, 3], learnerCatchUpEntries: 2 });
  elect(c);
  // Node 4 is down while it is added and while entries are written.
  c.crash(4);
  c.get(1).node.changeMembership({ type: "addLearner", id: 4 });
  c.stabilize();
  for (let i = 0; i < 5; i++) c.get(1).node.propose(enc.encode(`e${i}`));
  c.stabilize();
  const lagging = () =>
    c.get(1).node.changeMembership({ type: "addVoter", id: 4 });
  assert.throws(lagging, /has not acknowledged any entry/);
  // An election timeout without an answer: no longer recently active.
  for (let i = 0; i < 10; i++) {
    c.tick([1, 2, 3], 1);
    c.stabilize();
  }
  assert.throws(lagging, /not heard from recently/);
  c.restart(4);
  c.tick([1], 1);
  c.stabilize();
  const pr = c.get(1).node.status().progress.find((p) => p.id === 4)!;
  assert.equal(pr.match, c.get(1).node.status().lastIndex);
  c.get(1).node.changeMembership({ type: "addVoter", id: 4 });
  c.stabilize();
  assert.deepEqual(c.get(4).node.status().membership.voters, [1, 2, 3, 4]);
});

Deno.test("a learner within learnerCatchUpEntries of the leader's last index may be promoted", () => {
  const c = Cluster.of(2, { learners: [2], voters: [1] });
  elect(c);
  // 2 holds everything; then 3 entries it has not acknowledged yet.
  for (let i = 0; i < 3; i++) c.get(1).node.propose(enc.encode(`e${i}`));
  const leader = c.get(1).node;
  assert.equal(leader.status().progress[0].match, 1);
  assert.equal(leader.status().lastIndex, 4);
  // Default slack 1000: within it.
  leader.changeMembership({ type: "addVoter", id: 2 });
  const strict = Cluster.of(2, {
    learners: [2],
    voters: [1],
    learnerCatchUpEntries: 0,
  });
  elect(strict);
  strict.get(1).node.propose(enc.encode("e"));
  assert.throws(
    () => strict.get(1).node.changeMembership({ type: "addVoter", id: 2 }),
    /holds the log up to 1, the leader up to 2/,
  );
});

// ---- removed nodes ----

Deno.test("a removed node that contacts the leader is told, stops campaigning and refuses work", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 3 });
  c.stabilize();
  // The leader no longer replicates to 3: it never learns the commit by itself.
  assert.equal(c.get(3).node.removed, false);
  for (let i = 0; i < 30 && !c.get(3).node.removed; i++) {
    c.tick([3], 1);
    c.stabilize();
  }
  assert.equal(c.get(3).node.removed, true);
  assert.equal(c.get(3).node.status().removed, true);
  assert.equal(c.get(1).node.status().role, "leader");
  const term = c.get(3).node.status().term;
  // Never campaigns again: no pre-vote or vote leaves node 3.
  for (let i = 0; i < 50; i++) {
    c.get(3).node.tick();
    c.get(3).node.campaign();
    for (const rd of drain(c, 3)) {
      assert.ok(
        !rd.messages.concat(rd.persistedMessages).some((m) =>
          m.type === "RequestVote"
        ),
      );
    }
  }
  assert.equal(c.get(3).node.status().term, term);
  assert.throws(
    () => c.get(3).node.propose(enc.encode("x")),
    (e) =>
      e instanceof RemovedFromClusterError && e.code === "REMOVED" &&
      e.members.join() === "1,2",
  );
  assert.throws(
    () => c.get(3).node.proposeBatch([enc.encode("x")]),
    RemovedFromClusterError,
  );
  assert.throws(() => c.get(3).node.readIndex("r"), RemovedFromClusterError);
});

Deno.test("the Ready after a node becomes removed carries softState with removed", () => {
  const c = Cluster.of(3);
  elect(c);
  const n3 = c.get(3).node;
  drain(c, 3);
  n3.step({ type: "Removed", from: 1, to: 3, term: 1, configIndex: 2 });
  assert.equal(n3.removed, true);
  assert.ok(n3.hasReady());
  const rd = n3.ready();
  assert.deepEqual(rd.softState, {
    role: "follower",
    leader: 1,
    removed: true,
  });
  n3.advance(rd);
  assert.equal(n3.hasReady(), false);
});

Deno.test("Removed from a node of an older term that is not the leader is ignored", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(2).node.campaign(); // pre-vote only: term unchanged
  c.stabilize();
  const n3 = c.get(3).node;
  const term = n3.status().term;
  n3.step({ type: "Removed", from: 2, to: 3, term: term - 1 });
  assert.equal(n3.removed, false);
  n3.step({ type: "Removed", from: 2, to: 3, term });
  assert.equal(n3.removed, true);
});

Deno.test("a leader answers a non-member at most once per election timeout", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 3 });
  c.stabilize();
  const leader = c.get(1).node;
  const pre: Message = {
    type: "RequestVote",
    from: 3,
    to: 1,
    term: 5,
    preVote: true,
    lastLogIndex: 1,
    lastLogTerm: 1,
    transfer: false,
  };
  const removedSent = () =>
    drain(c, 1).flatMap((rd) => rd.messages).filter((m) =>
      m.type === "Removed" && m.to === 3
    );
  leader.step(pre);
  leader.step({ ...pre, preVote: false });
  leader.step({
    type: "HeartbeatResponse",
    from: 3,
    to: 1,
    term: 1,
    context: 0,
  });
  const first = removedSent();
  assert.deepEqual(first, [{
    type: "Removed",
    from: 1,
    to: 3,
    term: 1,
    configIndex: 2,
  }]);
  // A vote request of a higher term from a non-member does not disturb the leader.
  assert.equal(leader.status().role, "leader");
  assert.equal(leader.status().term, 1);
  for (let i = 0; i < 9; i++) {
    c.tick([1], 1);
    leader.step(pre);
  }
  assert.equal(removedSent().length, 0);
  c.tick([1], 1);
  leader.step(pre);
  assert.equal(removedSent().length, 1);
});

Deno.test("a node removed by a committed configuration is removed; one not yet added is not", () => {
  const c = Cluster.of(3);
  c.add({ id: 4, voters: [1, 2, 3] });
  elect(c);
  // The joining node is not removed, and may propose (forwarded) meanwhile.
  assert.equal(c.get(4).node.removed, false);
  c.get(1).node.changeMembership({ type: "addLearner", id: 4 });
  c.stabilize();
  assert.equal(c.get(4).node.removed, false);
  c.get(1).node.changeMembership({ type: "removeNode", id: 4 });
  c.stabilize();
  // Node 4 restarted on (a durable copy of) the leader's log: its committed
  // configuration no longer holds it, and an earlier committed one did.
  c.get(1).log.syncNow();
  const log = c.get(1).log.crash();
  const node4 = new RaftNode({ id: 4, voters: [1, 2, 3] }, log);
  assert.equal(node4.removed, true);
  assert.equal(node4.ready().softState?.removed, true);
});

Deno.test("a removed leader reports removed and never campaigns again", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 1 });
  c.stabilize();
  assert.equal(c.get(1).node.removed, true);
  c.crash(1);
  c.restart(1);
  // Its commit index of the removal was not durable: restarted, it does not
  // know yet, and may even pre-vote; the new leader tells it.
  for (let i = 0; i < 60; i++) {
    c.tick(undefined, 1);
    c.stabilize();
    assert.notEqual(c.get(1).node.status().role, "leader");
  }
  assert.ok([2, 3].includes(c.leader()));
  assert.equal(c.get(1).node.removed, true);
});

Deno.test("a node added back after removal is a member again", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.changeMembership({ type: "removeNode", id: 3 });
  c.stabilize();
  c.get(3).node.step({
    type: "Removed",
    from: 1,
    to: 3,
    term: 1,
    configIndex: 2,
  });
  assert.equal(c.get(3).node.removed, true);
  c.get(1).node.changeMembership({ type: "addLearner", id: 3 });
  c.stabilize();
  c.tick([1], 1);
  c.stabilize();
  assert.equal(c.get(3).node.removed, false);
  assert.equal(c.get(3).node.status().role, "learner");
  // A stale notice (older configuration) does not remove it again.
  c.get(3).node.step({
    type: "Removed",
    from: 1,
    to: 3,
    term: 1,
    configIndex: 2,
  });
  assert.equal(c.get(3).node.removed, false);
});

// ---- leader readiness ----

Deno.test("leaderReady is true only on a leader that committed an entry of its term", () => {
  const log = new MemoryLog();
  const node = new RaftNode({ id: 1 }, log);
  assert.equal(node.leaderReady, false);
  node.campaign();
  // Leader at once, but its no-op is neither durable nor committed.
  assert.equal(node.status().role, "leader");
  assert.equal(node.leaderReady, false);
  assert.equal(node.status().leaderReady, false);
  const rd = node.ready();
  log.syncNow();
  node.advance(rd);
  assert.equal(node.leaderReady, true);
  assert.equal(node.status().leaderReady, true);

  const c = Cluster.of(3);
  elect(c);
  assert.equal(c.get(1).node.leaderReady, true);
  assert.equal(c.get(2).node.leaderReady, false);
  assert.equal(c.get(2).node.status().leaderReady, false);
});
