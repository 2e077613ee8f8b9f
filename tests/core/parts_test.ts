/** Unit tests of the core's small parts: config validation, membership, flow-control window. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { resolveConfig } from "../../src/core/config.ts";
import {
  InvalidConfigError,
  InvalidMembershipChangeError,
} from "../../src/core/errors.ts";
import {
  applyMembershipChange,
  decodeMembership,
  encodeMembership,
  type Membership,
  simpleMembership,
} from "../../src/core/membership.ts";
import { needsDurability } from "../../src/core/messages.ts";
import { Inflights, Progress } from "../../src/core/progress.ts";

Deno.test("a config with heartbeatTick >= electionTick is rejected naming the field", () => {
  assert.throws(
    () => resolveConfig({ id: 1, electionTick: 5, heartbeatTick: 5 }),
    (e) =>
      e instanceof InvalidConfigError && e.field === "heartbeatTick" &&
      e.code === "INVALID_CONFIG",
  );
});

Deno.test("invalid ids, duplicate members and lease reads without check-quorum are rejected", () => {
  assert.throws(() => resolveConfig({ id: 0 }), InvalidConfigError);
  assert.throws(() => resolveConfig({ id: 1.5 }), InvalidConfigError);
  assert.throws(() => resolveConfig({ id: 1, voters: [1, 1] }), /listed twice/);
  assert.throws(
    () => resolveConfig({ id: 1, voters: [1], learners: [1] }),
    /also a voter/,
  );
  assert.throws(
    () => resolveConfig({ id: 1, leaseReads: true, checkQuorum: false }),
    /checkQuorum/,
  );
  assert.throws(
    () => resolveConfig({ id: 1, maxInflightMessages: 0 }),
    InvalidConfigError,
  );
});

Deno.test("defaults: pre-vote, check-quorum and forwarding on, lease reads off, single-node voters", () => {
  const c = resolveConfig({ id: 7 });
  assert.deepEqual(
    [
      c.preVote,
      c.checkQuorum,
      c.forwardProposals,
      c.leaseReads,
      c.voters,
      c.electionTick,
      c.heartbeatTick,
    ],
    [true, true, true, false, [7], 10, 1],
  );
});

const membershipArb: fc.Arbitrary<Membership> = fc.record({
  voters: fc.uniqueArray(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), {
    maxLength: 9,
  }),
  outgoing: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { maxLength: 9 }),
  learners: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { maxLength: 9 }),
  autoLeave: fc.boolean(),
});

Deno.test("membership encoding round-trips every configuration", () => {
  fc.assert(fc.property(membershipArb, (m) => {
    assert.deepEqual(decodeMembership(encodeMembership(m)), { ...m });
  }));
});

Deno.test("decoding malformed membership bytes throws RangeError, never garbage", () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    try {
      const m = decodeMembership(bytes);
      for (const id of [...m.voters, ...m.outgoing, ...m.learners]) {
        assert.ok(Number.isSafeInteger(id) && id > 0);
      }
    } catch (e) {
      assert.ok(e instanceof RangeError);
    }
  }));
});

Deno.test("single-server changes alter the voter set by at most one node", () => {
  const m = simpleMembership([1, 2, 3], [4]);
  assert.deepEqual(
    applyMembershipChange(m, { type: "addVoter", id: 4 }).voters,
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    applyMembershipChange(m, { type: "addVoter", id: 4 }).learners,
    [],
  );
  assert.deepEqual(
    applyMembershipChange(m, { type: "addLearner", id: 3 }).voters,
    [1, 2],
  );
  assert.deepEqual(
    applyMembershipChange(m, { type: "removeNode", id: 4 }).learners,
    [],
  );
  assert.throws(
    () => applyMembershipChange(m, { type: "addVoter", id: 2 }),
    InvalidMembershipChangeError,
  );
  assert.throws(
    () =>
      applyMembershipChange(simpleMembership([1]), {
        type: "removeNode",
        id: 1,
      }),
    /last voter/,
  );
});

Deno.test("enterJoint keeps the old voters as the outgoing half; leaveJoint drops them", () => {
  const joint = applyMembershipChange(simpleMembership([1, 2, 3]), {
    type: "enterJoint",
    voters: [1, 2, 4],
    learners: [3],
  });
  assert.deepEqual([
    joint.voters,
    joint.outgoing,
    joint.learners,
    joint.autoLeave,
  ], [[1, 2, 4], [1, 2, 3], [3], true]);
  assert.throws(
    () => applyMembershipChange(joint, { type: "addVoter", id: 5 }),
    /joint/,
  );
  const left = applyMembershipChange(joint, { type: "leaveJoint" });
  assert.deepEqual([left.voters, left.outgoing, left.learners], [
    [1, 2, 4],
    [],
    [3],
  ]);
});

Deno.test("the in-flight window is bounded by message count and by bytes", () => {
  const byCount = new Inflights(3, 0);
  for (let i = 1; i <= 3; i++) byCount.add(i, 1000);
  assert.equal(byCount.full(), true);
  byCount.freeLE(1);
  assert.equal(byCount.full(), false);
  const byBytes = new Inflights(100, 250);
  byBytes.add(1, 100);
  byBytes.add(2, 100);
  assert.equal(byBytes.full(), false);
  byBytes.add(3, 100);
  assert.equal(byBytes.full(), true);
  byBytes.freeLE(2);
  assert.equal(byBytes.bytes, 100);
  assert.equal(byBytes.count, 1);
});

Deno.test("the in-flight ring keeps order across growth and wrap-around", () => {
  const w = new Inflights(1000, 0);
  let next = 1;
  let freed = 0;
  for (let round = 0; round < 50; round++) {
    for (let i = 0; i < 37; i++) w.add(next++, 1);
    freed += 30;
    w.freeLE(freed);
    assert.equal(w.count, next - 1 - freed);
  }
});

Deno.test("progress: stale rejections are ignored; a probe rejection backs off to the hint", () => {
  const p = new Progress(11, false, 10, 0);
  p.probeSent = true;
  assert.equal(p.maybeDecrTo(5, 3), false, "not the outstanding probe");
  assert.equal(p.maybeDecrTo(10, 3), true);
  assert.equal(p.next, 4);
  p.maybeUpdate(6);
  p.becomeReplicate();
  assert.equal(p.maybeDecrTo(5, 0), false, "below match: stale");
});

Deno.test("only messages that promise durability wait for the sync", () => {
  const base = { from: 1, to: 2, term: 1 };
  assert.equal(
    needsDurability({
      ...base,
      type: "RequestVote",
      preVote: false,
      lastLogIndex: 0,
      lastLogTerm: 0,
      transfer: false,
    }),
    true,
  );
  assert.equal(
    needsDurability({
      ...base,
      type: "RequestVote",
      preVote: true,
      lastLogIndex: 0,
      lastLogTerm: 0,
      transfer: false,
    }),
    false,
  );
  assert.equal(
    needsDurability({
      ...base,
      type: "AppendEntries",
      prevLogIndex: 0,
      prevLogTerm: 0,
      entries: [],
      leaderCommit: 0,
    }),
    false,
  );
  assert.equal(
    needsDurability({
      ...base,
      type: "AppendEntriesResponse",
      success: true,
      matchIndex: 1,
      rejectIndex: 0,
      hintIndex: 0,
      hintTerm: 0,
    }),
    true,
  );
});
