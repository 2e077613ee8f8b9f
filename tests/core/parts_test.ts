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
  type MemberInfo,
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

const idLists = fc.record({
  voters: fc.uniqueArray(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), {
    maxLength: 9,
  }),
  outgoing: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { maxLength: 9 }),
  learners: fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { maxLength: 9 }),
  autoLeave: fc.boolean(),
});

const text = fc.string({ unit: "binary", maxLength: 24 });

/** Configurations whose members carry random (any Unicode) infos. */
const membershipArb: fc.Arbitrary<Membership> = idLists.chain((lists) => {
  const ids = [
    ...new Set([...lists.voters, ...lists.outgoing, ...lists.learners]),
  ];
  return fc.subarray(ids).chain((withInfo) =>
    fc.tuple(
      ...withInfo.map((id) =>
        fc.record({ address: text, metadata: text }, { noNullPrototype: true })
          .map((info) => [id, info] as const)
      ),
    ).map((pairs) => {
      const nodes: Record<number, MemberInfo> = {};
      for (const [id, info] of pairs) nodes[id] = info;
      return { ...lists, nodes };
    })
  );
});

Deno.test("membership encoding round-trips every configuration", () => {
  fc.assert(fc.property(membershipArb, (m) => {
    assert.deepEqual(decodeMembership(encodeMembership(m)), { ...m });
  }));
});

Deno.test("membership version 1 bytes decode with no node infos", () => {
  fc.assert(fc.property(idLists, (lists) => {
    // Version 1 is version 2 without the node-info section.
    const v2 = encodeMembership({ ...lists, nodes: {} });
    const v1 = v2.slice(0, v2.byteLength - 4);
    v1[0] = 1;
    assert.deepEqual(decodeMembership(v1), { ...lists, nodes: {} });
  }));
});

Deno.test("membership is written in format version 2 with the node infos after the ids", () => {
  const bytes = encodeMembership(
    simpleMembership([1], [], { 1: { address: "ab", metadata: "c" } }),
  );
  assert.deepEqual(
    [...bytes],
    [
      2,
      0,
      1,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0, // version, flags, counts
      0,
      0,
      0,
      0,
      0,
      0,
      0xf0,
      0x3f, // voter 1 (f64)
      1,
      0,
      0,
      0, // one node info
      0,
      0,
      0,
      0,
      0,
      0,
      0xf0,
      0x3f, // id 1
      2,
      0,
      0,
      0,
      0x61,
      0x62, // address "ab"
      1,
      0,
      0,
      0,
      0x63, // metadata "c"
    ],
  );
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

Deno.test("mutated, truncated or extended membership encodings decode to a valid configuration or throw RangeError", () => {
  fc.assert(
    fc.property(
      membershipArb,
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 255 }),
      fc.constantFrom("flip", "truncate", "extend"),
      (m, where, value, how) => {
        const good = encodeMembership(m);
        let bytes: Uint8Array;
        const at = where % good.byteLength;
        if (how === "flip") {
          bytes = good.slice();
          bytes[at] = value;
        } else if (how === "truncate") bytes = good.slice(0, at);
        else {
          bytes = new Uint8Array(good.byteLength + 1);
          bytes.set(good);
          bytes[good.byteLength] = value;
        }
        try {
          const back = decodeMembership(bytes);
          for (const key of Object.keys(back.nodes)) {
            const id = Number(key);
            assert.ok(
              back.voters.includes(id) || back.outgoing.includes(id) ||
                back.learners.includes(id),
            );
          }
          // Whatever decodes re-encodes to the same bytes (canonical), unless
          // it was a version 1 encoding.
          if (bytes[0] === 2) assert.deepEqual(encodeMembership(back), bytes);
        } catch (e) {
          assert.ok(e instanceof RangeError, String(e));
        }
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("member infos ride along a change and are dropped with the member", () => {
  let m = simpleMembership([1, 2, 3], [], {
    1: { address: "a1", metadata: "m1" },
    9: { address: "not a member", metadata: "" },
  });
  assert.deepEqual(m.nodes, { 1: { address: "a1", metadata: "m1" } });
  m = applyMembershipChange(m, {
    type: "addLearner",
    id: 4,
    address: "a4",
  });
  assert.deepEqual(m.nodes[4], { address: "a4", metadata: "" });
  // Promotion without info keeps what is known; a given field replaces it.
  m = applyMembershipChange(m, { type: "addVoter", id: 4, metadata: "m4" });
  assert.deepEqual(m.nodes[4], { address: "a4", metadata: "m4" });
  m = applyMembershipChange(m, {
    type: "updateNode",
    id: 1,
    address: "a1'",
  });
  assert.deepEqual(m.nodes[1], { address: "a1'", metadata: "m1" });
  assert.deepEqual([m.voters, m.learners], [[1, 2, 3, 4], []]);
  m = applyMembershipChange(m, { type: "removeNode", id: 4 });
  assert.equal(m.nodes[4], undefined);
  const joint = applyMembershipChange(m, {
    type: "enterJoint",
    voters: [2, 3, 5],
    nodes: { 5: { address: "a5", metadata: "" } },
  });
  assert.deepEqual(Object.keys(joint.nodes), ["1", "5"]);
  const left = applyMembershipChange(joint, { type: "leaveJoint" });
  assert.deepEqual(Object.keys(left.nodes), ["5"]);
  assert.throws(
    () => applyMembershipChange(m, { type: "updateNode", id: 7, address: "x" }),
    InvalidMembershipChangeError,
  );
});

Deno.test("an address over 1024 bytes or metadata over 16 KiB is refused", () => {
  const m = simpleMembership([1, 2, 3]);
  // 513 two-byte characters: 513 code units but 1026 UTF-8 bytes.
  const wide = "é".repeat(513);
  assert.throws(
    () =>
      applyMembershipChange(m, { type: "addLearner", id: 4, address: wide }),
    (e) =>
      e instanceof InvalidMembershipChangeError && /address/.test(e.message),
  );
  applyMembershipChange(m, {
    type: "addLearner",
    id: 4,
    address: "x".repeat(1024),
    metadata: "y".repeat(16 * 1024),
  });
  assert.throws(
    () =>
      applyMembershipChange(m, {
        type: "updateNode",
        id: 1,
        metadata: "y".repeat(16 * 1024 + 1),
      }),
    /metadata/,
  );
  assert.throws(
    () =>
      resolveConfig({
        id: 1,
        voters: [1],
        nodes: { 2: { address: "", metadata: "" } },
      }),
    (e) => e instanceof InvalidConfigError && e.field === "nodes",
  );
  assert.throws(
    () =>
      resolveConfig({
        id: 1,
        voters: [1],
        nodes: { 1: { address: wide, metadata: "" } },
      }),
    (e) => e instanceof InvalidConfigError && e.field === "nodes",
  );
});

Deno.test("learnerCatchUpEntries and snapshotThresholdBytes default and are validated", () => {
  const c = resolveConfig({ id: 1 });
  assert.deepEqual(
    [c.learnerCatchUpEntries, c.snapshotThresholdBytes],
    [1000, 64 * 1024 * 1024],
  );
  assert.throws(
    () => resolveConfig({ id: 1, learnerCatchUpEntries: -1 }),
    (e) =>
      e instanceof InvalidConfigError && e.field === "learnerCatchUpEntries",
  );
  assert.throws(
    () => resolveConfig({ id: 1, snapshotThresholdBytes: 1.5 }),
    (e) =>
      e instanceof InvalidConfigError && e.field === "snapshotThresholdBytes",
  );
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
