/**
 * Catch-up after a repair (src/core/catch_up.ts): a node whose log lost
 * acknowledged records grants no vote and never campaigns until it has
 * caught up from a leader, and the leader stops counting what it lost.
 */

import assert from "node:assert/strict";
import { ReadyProtocolError } from "../../src/core/errors.ts";
import type { Message, RequestVoteResponse } from "../../src/core/messages.ts";
import { Cluster } from "./harness.ts";

const enc = new TextEncoder();

function elect(c: Cluster, id = 1): void {
  c.get(id).node.campaign();
  c.stabilize();
  assert.equal(c.get(id).node.status().role, "leader");
}

/** Proposes and commits `n` entries through the whole cluster. */
function commitEntries(c: Cluster, leader: number, n: number): void {
  for (let i = 0; i < n; i++) {
    c.get(leader).node.propose(enc.encode(`v${i}`));
  }
  c.stabilize();
}

/** Steps a (pre-)vote request into `to` from an up-to-date candidate and returns its answer. */
function askVote(
  c: Cluster,
  to: number,
  from: number,
  preVote: boolean,
): RequestVoteResponse {
  const st = c.get(to).node.status();
  const candidateLast = c.get(from).log;
  c.get(to).node.step({
    type: "RequestVote",
    from,
    to,
    term: st.term + 1,
    preVote,
    lastLogIndex: candidateLast.lastIndex() + 10,
    lastLogTerm: candidateLast.lastTerm() + 10,
    // Past leader stickiness: only the catch-up rule can refuse it.
    transfer: true,
  });
  c.processReady(to);
  const i = c.queue.findIndex((m) =>
    m.type === "RequestVoteResponse" && m.from === to && m.to === from
  );
  assert.ok(i >= 0, "no vote response");
  const [resp] = c.queue.splice(i, 1) as RequestVoteResponse[];
  return resp;
}

function sent(c: Cluster, from: number, type: Message["type"]): boolean {
  return c.queue.some((m) => m.from === from && m.type === type);
}

Deno.test("a repaired node refuses every vote and pre-vote, whatever the candidate's log", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 3);
  c.repair(3, 3);
  c.restart(3);
  c.crash(1);
  assert.equal(c.get(3).node.status().catchingUp, true);
  assert.equal(askVote(c, 3, 2, true).granted, false);
  assert.equal(askVote(c, 3, 2, false).granted, false);
});

Deno.test("a repaired node never campaigns: not on ticks, not on campaign(), not on TimeoutNow", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 3);
  c.repair(3, 3);
  c.restart(3);
  c.crash(1);
  const n3 = c.get(3).node;
  c.tick([3], 100);
  n3.campaign();
  n3.step({ type: "TimeoutNow", from: 1, to: 3, term: n3.status().term });
  c.processReady(3);
  assert.equal(n3.status().role, "follower");
  assert.equal(sent(c, 3, "RequestVote"), false);
});

Deno.test("a repaired node starts at least in the marker's term, so a deposed leader's appends are refused", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 2);
  const marker = c.repair(3, 2);
  c.get(3).log.simulateRepair({ index: marker.index, term: marker.term + 2 });
  c.restart(3);
  assert.equal(c.get(3).node.status().term, marker.term + 2);
  assert.equal(c.get(3).node.status().vote, 0);
  // The leader of the older term is turned away (and told the newer term).
  const n3 = c.get(3).node;
  n3.step({
    type: "AppendEntries",
    from: 1,
    to: 3,
    term: marker.term,
    prevLogIndex: 1,
    prevLogTerm: marker.term,
    entries: [],
    leaderCommit: 1,
  });
  c.processReady(3);
  const resp = c.queue.find((m) =>
    m.type === "AppendEntriesResponse" && m.from === 3
  );
  assert.ok(resp !== undefined && resp.type === "AppendEntriesResponse");
  assert.equal(resp.success, false);
  assert.equal(resp.term, marker.term + 2);
});

Deno.test("a repaired node catches up from the leader, clears the marker and votes again", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 3);
  const marker = c.repair(3, 3);
  c.restart(3);
  assert.equal(c.get(3).log.lastIndex(), 2);
  // An idle leader: only heartbeats. The repaired node answers the first one
  // so that the leader re-sends what it lost.
  c.tick([1], 1);
  c.stabilize();
  const n3 = c.get(3);
  assert.equal(n3.caughtUpSeen, true);
  assert.equal(n3.node.status().catchingUp, false);
  assert.equal(n3.log.needsCatchUp, undefined);
  assert.equal(n3.log.lastIndex(), marker.index);
  // Its vote in the marker's term is spent on that term's leader.
  assert.equal(n3.node.status().term, marker.term);
  assert.equal(n3.node.status().vote, 1);
  c.crash(1);
  assert.equal(askVote(c, 3, 2, true).granted, true);
  assert.equal(askVote(c, 3, 2, false).granted, true);
});

Deno.test("a repaired node is not caught up by a leader whose log does not reach the marker's index", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 2);
  c.repair(3, 2);
  // It may have acknowledged up to index 9 (an old leader's lost tail).
  c.get(3).log.simulateRepair({ index: 9, term: 1 });
  c.restart(3);
  c.tick([1], 1);
  c.stabilize();
  assert.equal(c.get(3).node.status().catchingUp, true);
  assert.equal(c.get(3).log.lastIndex(), 3);
  commitEntries(c, 1, 6); // the leader's log reaches 9
  assert.equal(c.get(3).node.status().catchingUp, false);
});

Deno.test("a crash after caughtUp but before markCaughtUp resolves restarts the node still catching up", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 3);
  c.repair(3, 3);
  c.restart(3);
  c.get(3).holdCaughtUp = true;
  c.tick([1], 1);
  c.stabilize();
  assert.equal(c.get(3).caughtUpSeen, true);
  // Not yet durable: still refusing.
  assert.equal(c.get(3).node.status().catchingUp, true);
  assert.equal(askVote(c, 3, 2, false).granted, false);
  c.crash(3);
  c.restart(3);
  c.get(3).holdCaughtUp = false;
  c.get(3).caughtUpSeen = false;
  assert.equal(c.get(3).node.status().catchingUp, true);
  assert.notEqual(c.get(3).log.needsCatchUp, undefined);
  // (The vote request above raised its term: nodes 1 and 2 elect a leader
  // of a newer term, from which it catches up again.)
  for (let i = 0; i < 100 && c.get(3).node.status().catchingUp; i++) {
    c.tick(undefined, 1);
    c.stabilize();
  }
  assert.equal(c.get(3).node.status().catchingUp, false);
  assert.notEqual(c.leader(), 3);
});

Deno.test("caughtUpDurable before the node reported caughtUp throws", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 1);
  c.repair(3, 2);
  c.restart(3);
  assert.throws(() => c.get(3).node.caughtUpDurable(), ReadyProtocolError);
  assert.equal(c.get(3).node.status().catchingUp, true);
});

/**
 * 3 nodes: leader 1, followers 2 (A) and 3 (B, down). Entry k reaches A,
 * which acknowledges it, while the leader's own fsync of k is slow. A's
 * tail is then cut by a repair and A restarts. When the leader's fsync
 * finishes, A's old acknowledgement must not make k committed: only the
 * leader holds it.
 */
function lostAckScenario(delayOldAck: boolean) {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 2);
  c.crash(3);
  const L = c.get(1);
  c.tick([1], 1); // a heartbeat round goes out with the entry
  const k = L.node.propose(enc.encode("x"));
  const rd = L.node.ready(); // the leader's own sync of k is "slow"
  const heartbeat = rd.messages.filter((m) =>
    m.type === "Heartbeat" && m.to === 2
  );
  assert.equal(heartbeat.length, 1);
  c.queue.push(...rd.messages.filter((m) => !heartbeat.includes(m)));
  c.deliver({ to: 2 });
  c.processReady(2); // A syncs k and acknowledges it
  const ack = c.queue.filter((m) =>
    m.type === "AppendEntriesResponse" && m.from === 2
  );
  assert.equal(ack.length, 1);
  c.queue = c.queue.filter((m) => !ack.includes(m));
  if (!delayOldAck) L.node.step(ack[0]);
  assert.equal(L.node.status().commit < k, true);
  c.repair(2, k);
  c.restart(2);
  // The leader's heartbeat, sent before, reaches the restarted A.
  for (const m of heartbeat) c.get(2).node.step(m);
  c.processReady(2);
  c.deliver({ to: 1 });
  if (delayOldAck) L.node.step(ack[0]); // the pre-repair ack arrives late
  L.log.syncNow();
  L.node.advance(rd);
  return { c, k };
}

Deno.test("the leader forgets a repaired follower's stale match: an entry it lost is not committed", () => {
  const { c, k } = lostAckScenario(false);
  const L = c.get(1).node.status();
  assert.equal(L.commit < k, true, `commit ${L.commit} counts the lost ack`);
  const pr = L.progress.find((p) => p.id === 2)!;
  assert.equal(pr.match < k, true, `match ${pr.match} still counts it`);
  // A catches up; then k is committed for real, held by both.
  c.stabilize([1, 2]);
  assert.equal(c.get(2).log.termAt(k), c.get(1).log.termAt(k));
  assert.equal(c.get(1).node.status().commit >= k, true);
  assert.equal(c.get(2).node.status().catchingUp, false);
});

Deno.test("an acknowledgement sent before the repair, delivered late, does not restore the stale match", () => {
  const { c, k } = lostAckScenario(true);
  const L = c.get(1).node.status();
  assert.equal(L.commit < k, true, `commit ${L.commit} counts the lost ack`);
  const pr = L.progress.find((p) => p.id === 2)!;
  assert.equal(pr.match < k, true, `match ${pr.match}`);
  c.stabilize([1, 2]);
  assert.equal(c.get(1).node.status().commit >= k, true);
});

Deno.test("a repaired follower's append responses carry catchUpIndex until it has caught up", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 2);
  c.repair(3, 2);
  c.get(3).log.simulateRepair({ index: 6, term: 1 }); // beyond the leader's log
  c.restart(3);
  c.tick([1], 1);
  c.stabilize();
  const answer = () => {
    c.get(1).node.propose(enc.encode("y"));
    c.processReady(1);
    c.deliver({ to: 3 });
    c.processReady(3);
    const resp = c.queue.find((m) =>
      m.type === "AppendEntriesResponse" && m.from === 3
    );
    assert.ok(resp !== undefined && resp.type === "AppendEntriesResponse");
    c.stabilize();
    return resp;
  };
  assert.equal(answer().catchUpIndex, 6); // log at 4
  assert.equal(answer().catchUpIndex, 6); // log at 5
  assert.equal(answer().catchUpIndex, 6); // log at 6: this one proves it
  assert.equal(c.get(3).node.status().catchingUp, false);
  assert.equal(answer().catchUpIndex, undefined);
});

Deno.test("after catching up in the marker's term, its forgotten vote in that term stays spent", () => {
  const c = Cluster.of(3);
  elect(c);
  commitEntries(c, 1, 2);
  const marker = c.repair(3, 2);
  // The repair also lost the hard state that recorded its vote in this term.
  const log = c.get(3).log;
  log.setHardState({ term: marker.term - 1, vote: 0, commit: 1 });
  log.syncNow();
  c.restart(3);
  assert.equal(c.get(3).node.status().vote, 0);
  c.tick([1], 1);
  c.stabilize();
  assert.equal(c.get(3).node.status().catchingUp, false);
  assert.equal(c.get(3).node.status().vote, 1);
  // A vote request of that term (say, delayed) from another candidate.
  c.get(3).node.step({
    type: "RequestVote",
    from: 2,
    to: 3,
    term: marker.term,
    preVote: false,
    lastLogIndex: 100,
    lastLogTerm: marker.term,
    transfer: true,
  });
  c.processReady(3);
  const resp = c.queue.find((m) =>
    m.type === "RequestVoteResponse" && m.from === 3
  );
  assert.ok(resp !== undefined && resp.type === "RequestVoteResponse");
  assert.equal(resp.granted, false);
});
