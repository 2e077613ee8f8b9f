/**
 * Smaller rules of the core: the one snapshot policy (entries or bytes),
 * and rules other Raft libraries test for (added members count as active,
 * no snapshot to a dead follower, a probing follower is moved back to
 * replicate by a heartbeat, empty proposals pass the uncommitted cap).
 */

import assert from "node:assert/strict";
import { OverloadedError } from "../../src/core/errors.ts";
import { RaftNode } from "../../src/core/node.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { Cluster } from "./harness.ts";

const enc = new TextEncoder();

function elect(c: Cluster, id = 1): void {
  c.get(id).node.campaign();
  c.stabilize();
  assert.equal(c.get(id).node.status().role, "leader");
}

/** A single-node leader and a driver that records the snapshot hints. */
function hinted(
  config: { snapshotThreshold?: number; snapshotThresholdBytes?: number },
) {
  const log = new MemoryLog();
  const node = new RaftNode({ id: 1, compactionLag: 0, ...config }, log);
  const hints: number[] = [];
  const drive = () => {
    while (node.hasReady()) {
      const rd = node.ready();
      if (rd.mustSync) log.syncNow();
      if (rd.snapshotHint !== undefined) hints.push(rd.snapshotHint);
      node.advance(rd);
    }
  };
  node.campaign();
  drive();
  const propose = (bytes: number) => {
    node.propose(new Uint8Array(bytes));
    drive();
  };
  return { node, hints, propose };
}

Deno.test("the snapshot hint is given once applied command bytes reach snapshotThresholdBytes", () => {
  const { hints, propose } = hinted({
    snapshotThreshold: 0,
    snapshotThresholdBytes: 10,
  });
  // Index 1 is the no-op; 4-byte entries at 2, 3, 4 reach 12 bytes at 4.
  propose(4);
  propose(4);
  assert.deepEqual(hints, []);
  propose(4);
  assert.deepEqual(hints, [4]);
});

Deno.test("a hint the application did not act on is given again a threshold later", () => {
  const { node, hints, propose } = hinted({
    snapshotThreshold: 0,
    snapshotThresholdBytes: 10,
  });
  for (let i = 0; i < 3; i++) propose(4); // hint at 4 (12 bytes)
  for (let i = 0; i < 3; i++) propose(4); // no snapshot taken: again at 7
  assert.deepEqual(hints, [4, 7]);
  // A snapshot taken counts bytes from its index: 8 bytes applied after 5.
  node.snapshotTaken(5, enc.encode("s"));
  propose(1);
  assert.deepEqual(hints, [4, 7]);
  propose(1);
  assert.deepEqual(hints, [4, 7, 9]);
});

Deno.test("the entry threshold and the byte threshold are one policy: whichever comes first", () => {
  const { hints, propose } = hinted({
    snapshotThreshold: 3,
    snapshotThresholdBytes: 100,
  });
  propose(1);
  propose(1); // 3 entries applied (no-op included)
  assert.deepEqual(hints, [3]);
  propose(200); // bytes first
  assert.deepEqual(hints, [3, 4]);
  // 0 = never by bytes.
  const never = hinted({ snapshotThreshold: 0, snapshotThresholdBytes: 0 });
  never.propose(1 << 20);
  assert.deepEqual(never.hints, []);
});

Deno.test("a member just added counts as active: check-quorum does not depose the leader that added it", () => {
  const c = Cluster.of(1, { electionTick: 10 });
  elect(c);
  c.tick([1], 9);
  c.stabilize();
  // Node 2 does not exist yet (it will be started later): it cannot answer.
  c.get(1).node.changeMembership({ type: "addVoter", id: 2, force: true });
  c.stabilize();
  c.tick([1], 1); // the check-quorum tick
  c.stabilize();
  assert.equal(c.get(1).node.status().role, "leader");
  // Still check-quorum: a whole election timeout without an answer deposes it.
  c.tick([1], 10);
  c.stabilize();
  assert.equal(c.get(1).node.status().role, "follower");
});

Deno.test("no snapshot is streamed to a follower that is not recently active; it is once it answers", () => {
  const c = Cluster.of(3, { compactionLag: 0 });
  elect(c);
  c.crash(3);
  for (let i = 0; i < 5; i++) c.get(1).node.propose(enc.encode(`e${i}`));
  c.stabilize();
  // Two election timeouts without an answer from 3.
  for (let i = 0; i < 20; i++) {
    c.tick([1, 2], 1);
    c.stabilize();
  }
  c.get(1).node.snapshotTaken(c.get(1).appliedIndex, enc.encode("s"));
  // From probe, 3's next entries are compacted: only a snapshot could help.
  c.get(1).node.reportUnreachable(3);
  const snapshotsTo3 = () =>
    c.queue.filter((m) => m.type === "InstallSnapshot" && m.to === 3).length;
  let sent = 0;
  for (let i = 0; i < 30; i++) {
    c.get(1).node.propose(enc.encode(`f${i}`));
    c.tick([1, 2], 1);
    for (const id of [1, 2]) c.processReady(id);
    sent += snapshotsTo3();
    c.drop({ to: 3 });
    c.stabilize([1, 2]);
  }
  assert.equal(sent, 0);
  c.restart(3);
  for (let i = 0; i < 3; i++) {
    c.tick([1], 1);
    c.stabilize();
  }
  assert.equal(c.get(3).restoredFrom, "s");
  assert.equal(c.get(3).appliedIndex, c.get(1).appliedIndex);
});

Deno.test("a heartbeat answer from a caught-up follower in probe moves it back to replicate", () => {
  const c = Cluster.of(3);
  elect(c);
  c.get(1).node.reportUnreachable(2);
  const state = () =>
    c.get(1).node.status().progress.find((p) => p.id === 2)?.state;
  assert.equal(state(), "probe");
  c.tick([1], 1); // heartbeat
  c.stabilize();
  assert.equal(state(), "replicate");
});

Deno.test("an empty proposal is never refused by the uncommitted-bytes cap", () => {
  const c = Cluster.of(3, { maxUncommittedBytes: 4 });
  elect(c);
  c.crash(2);
  c.crash(3);
  const leader = c.get(1).node;
  // Over the cap on its own (let through: nothing was pending).
  leader.propose(enc.encode("abcdef"));
  assert.throws(() => leader.propose(enc.encode("x")), OverloadedError);
  const index = leader.propose(new Uint8Array(0));
  assert.ok(index > 0);
  leader.proposeBatch([new Uint8Array(0), new Uint8Array(0)]);
});
