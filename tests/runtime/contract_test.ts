/**
 * The application contract of RaftServer: a state machine may reject a
 * command, only an explicit fatal error stops a node, every call settles,
 * bad input is refused before it reaches the log, snapshots run off the
 * apply loop.
 */

import assert from "node:assert/strict";
import {
  InvalidConfigError,
  ProposalDroppedError,
} from "../../src/core/errors.ts";
import type { Message } from "../../src/core/messages.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { RaftServer } from "../../src/runtime/raft_server.ts";
import {
  ApplyError,
  InvalidProposalError,
  SnapshotFailedError,
  StartFailedError,
  StateMachineFatalError,
  StoppedError,
  TransferAbandonedError,
} from "../../src/runtime/errors.ts";
import type { SnapshotView } from "../../src/runtime/state_machine.ts";
import {
  enc,
  ListMachine,
  silent,
  startCluster,
  startNode,
  waitFor,
  waitForLeader,
} from "./helpers.ts";

/** A ListMachine that refuses commands starting with "!". */
class PickyMachine extends ListMachine {
  override apply(entry: Entry): number {
    const text = new TextDecoder().decode(entry.data);
    if (text.startsWith("!")) throw new RangeError(`refused ${text}`);
    return super.apply(entry);
  }
}

async function singleNode(
  sm: ListMachine,
  log = new MemoryLog(),
  extra: Record<string, unknown> = {},
) {
  const net = new MemoryNetwork<Message>();
  const server = await RaftServer.start<number>({
    config: { id: 1 },
    log,
    transport: net.endpoint(1),
    stateMachine: sm,
    tickMs: 5,
    logger: silent,
    ...extra,
  });
  return {
    server,
    log,
    stop: async () => {
      await server.stop();
      await net.close();
    },
  };
}

Deno.test("a command the state machine rejects rejects its proposal with ApplyError, and the cluster keeps serving", async () => {
  const c = await startCluster(3);
  for (const n of c.nodes) {
    // Every replica runs the same deterministic machine.
    const picky = new PickyMachine();
    n.sm.apply = picky.apply.bind(n.sm);
  }
  try {
    const leader = await waitForLeader(c.nodes);
    assert.equal(await leader.server.propose(enc("a")), 1);
    const error = await leader.server.propose(enc("!bad")).catch((e) => e);
    assert.ok(error instanceof ApplyError, String(error));
    assert.equal(error.code, "APPLY_REJECTED");
    assert.ok(error.cause instanceof RangeError);
    assert.match(error.message, /refused !bad/);
    assert.equal(await leader.server.propose(enc("b")), 2);
    await waitFor(
      () =>
        c.nodes.every((n) =>
          n.sm.items.join() === "a,b" && n.server.applied === error.index + 1
        ),
      "every replica to skip the rejected entry and apply the next",
    );
    for (const n of c.nodes) {
      assert.equal(n.server.isStopped, false);
      assert.equal(n.server.metrics().applyRejected, 1);
    }
  } finally {
    await c.stop();
  }
});

Deno.test("a state machine that throws StateMachineFatalError stops only its own node", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    const broken = c.nodes.find((n) => n !== leader)!;
    let fatal: Error | undefined;
    broken.server.on("fatal", (e) => (fatal = e.error));
    broken.sm.apply = () => {
      throw new StateMachineFatalError("its disk is gone");
    };
    await leader.server.propose(enc("x"));
    await waitFor(() => broken.server.isStopped, "the broken node to stop");
    assert.ok(fatal instanceof StateMachineFatalError);
    await assert.rejects(
      () => broken.server.propose(enc("y")),
      (e: unknown) =>
        e instanceof StoppedError && /disk is gone/.test(String(e)),
    );
    assert.equal(await leader.server.propose(enc("y")), 2);
    for (const n of c.nodes) {
      if (n !== broken) assert.equal(n.server.isStopped, false);
    }
  } finally {
    await c.stop();
  }
});

Deno.test("start() rejects when replaying the log hits a fatal state machine error, and closes the log", async () => {
  const first = await singleNode(new ListMachine());
  await first.server.waitForLeader(2000);
  await first.server.propose(enc("one"));
  await first.server.propose(enc("two"));
  await first.server.stop();
  const log = first.log.crash();
  const broken = new ListMachine();
  broken.apply = () => {
    throw new StateMachineFatalError("cannot open the index");
  };
  await assert.rejects(
    () => singleNode(broken, log),
    (e: unknown) =>
      e instanceof StartFailedError && e.phase === "replay" &&
      e.cause instanceof StateMachineFatalError &&
      /cannot open/.test(e.message),
  );
  assert.throws(() => log.append([]), /closed/);
});

Deno.test("start() rejects when restoring the snapshot fails", async () => {
  const first = await singleNode(new ListMachine(), new MemoryLog(), {
    config: { id: 1, snapshotThreshold: 3, compactionLag: 0 },
  });
  await first.server.waitForLeader(2000);
  for (let i = 0; i < 5; i++) await first.server.propose(enc(`s${i}`));
  await waitFor(
    () => first.log.snapshotMeta().index >= 3,
    "a snapshot to be taken",
  );
  await first.server.stop();
  const broken = new ListMachine();
  broken.restore = () => {
    throw new Error("corrupt snapshot");
  };
  const log = first.log.crash();
  await assert.rejects(
    () => singleNode(broken, log),
    (e: unknown) =>
      e instanceof StartFailedError && e.phase === "restore" &&
      /corrupt snapshot/.test(e.message),
  );
  assert.throws(() => log.append([]), /closed/);
});

Deno.test("proposals that are not non-empty Uint8Arrays within the size limit are refused before they reach the log", async () => {
  const n = await singleNode(new ListMachine(), new MemoryLog(), {
    maxProposalBytes: 100,
  });
  try {
    await n.server.waitForLeader(2000);
    await n.server.propose(enc("ok"));
    const last = n.log.lastIndex();
    const bad: unknown[] = [
      "text",
      null,
      undefined,
      42,
      new Uint16Array(4),
      [1, 2, 3],
      new Uint8Array(0),
      new Uint8Array(101),
    ];
    for (const data of bad) {
      await assert.rejects(
        () => n.server.propose(data as Uint8Array),
        InvalidProposalError,
        `propose(${String(data)})`,
      );
    }
    assert.equal(n.log.lastIndex(), last, "nothing was appended");
    assert.equal(await n.server.propose(new Uint8Array(100).fill(65)), 2);
  } finally {
    await n.stop();
  }
});

Deno.test("bad options are refused with InvalidConfigError naming the option", async () => {
  const bad: [string, Record<string, unknown>][] = [
    ["tickMs", { tickMs: 0 }],
    ["tickMs", { tickMs: -5 }],
    ["tickMs", { tickMs: NaN }],
    ["proposalTimeoutMs", { proposalTimeoutMs: NaN }],
    ["proposalTimeoutMs", { proposalTimeoutMs: -1 }],
    ["readTimeoutMs", { readTimeoutMs: Infinity }],
    ["maxProposalBytes", { maxProposalBytes: 1.5 }],
    ["snapshotThreshold", { config: { id: 1, snapshotThreshold: -5 } }],
    ["heartbeatTick", { config: { id: 1, electionTick: 3, heartbeatTick: 3 } }],
  ];
  for (const [field, extra] of bad) {
    const net = new MemoryNetwork<Message>();
    await assert.rejects(
      () =>
        RaftServer.start({
          config: { id: 1 },
          log: new MemoryLog(),
          transport: net.endpoint(1),
          stateMachine: new ListMachine(),
          logger: silent,
          ...extra,
        }),
      (e: unknown) =>
        e instanceof InvalidConfigError && e.message.includes(field),
      field,
    );
    await net.close();
  }
});

Deno.test("a request deadline must be a finite positive number", async () => {
  const n = await singleNode(new ListMachine());
  try {
    await n.server.waitForLeader(2000);
    for (const timeoutMs of [NaN, 0, -1, Infinity]) {
      await assert.rejects(
        () => n.server.propose(enc("p"), { timeoutMs }),
        InvalidConfigError,
      );
      await assert.rejects(
        () => n.server.read({ timeoutMs }),
        InvalidConfigError,
      );
    }
    assert.equal(n.log.lastIndex(), 1, "only the leader's no-op is in the log");
  } finally {
    await n.stop();
  }
});

Deno.test("after stop() every call rejects at once with STOPPED", async () => {
  const c = await startCluster(3);
  const leader = await waitForLeader(c.nodes);
  await leader.server.stop();
  const calls: [string, () => Promise<unknown>][] = [
    ["propose", () => leader.server.propose(enc("x"))],
    ["read", () => leader.server.read()],
    ["stale read", () => leader.server.read({ consistency: "stale" })],
    ["waitApplied", () => leader.server.waitApplied(1)],
    ["waitForLeader", () => leader.server.waitForLeader()],
    ["changeMembership", () => leader.server.removeNode(3)],
    ["addVoter", () => leader.server.addVoter(4)],
    ["transferLeadership", () => leader.server.transferLeadership(2)],
    ["takeSnapshot", () => leader.server.takeSnapshot()],
  ];
  for (const [name, call] of calls) {
    await assert.rejects(call, StoppedError, name);
  }
  assert.throws(() => leader.server.campaign(), StoppedError);
  await c.stop();
});

Deno.test("transferLeadership without a target picks another caught-up voter and resolves once it leads", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("t"));
    const auto = await leader.server.transferLeadership();
    assert.notEqual(auto, leader.id);
    assert.equal(
      c.nodes.find((n) => n.id === auto)!.server.role,
      "leader",
      "the default target is another caught-up voter",
    );
  } finally {
    await c.stop();
  }
});

Deno.test("a transfer to a node that cannot be reached is abandoned with a typed error", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("t"));
    const target = c.nodes.find((n) => n !== leader)!;
    c.net.isolate(target.id);
    const error = await leader.server.transferLeadership(target.id).catch((
      e,
    ) => e);
    assert.ok(error instanceof TransferAbandonedError, String(error));
    assert.equal(error.target, target.id);
    assert.equal(leader.server.role, "leader");
    assert.equal(await leader.server.propose(enc("u")), 2, "it serves again");
  } finally {
    await c.stop();
  }
});

Deno.test("waitForLeader({ ready: true }) resolves once the leader committed an entry of its term", async () => {
  const c = await startCluster(3);
  try {
    const id = await c.nodes[0].server.waitForLeader({ ready: true });
    const leader = c.nodes.find((n) => n.id === id)!;
    const st = leader.server.status();
    assert.equal(st.role, "leader");
    assert.equal(st.leaderReady, true);
    assert.equal(leader.log.termAt(st.commit), st.term);
  } finally {
    await c.stop();
  }
});

Deno.test("a membership change issued the moment a node becomes leader waits for its first commit instead of failing", async () => {
  const c = await startCluster(3);
  try {
    const changes: Promise<number>[] = [];
    for (const n of c.nodes) {
      n.server.on("role", ({ role }) => {
        if (role === "leader") {
          changes.push(n.server.addLearner(9, { timeoutMs: 5000 }));
        }
      });
    }
    await waitForLeader(c.nodes);
    await waitFor(() => changes.length > 0, "the first leader's change");
    const index = await changes[0];
    assert.ok(index > 1);
    const leader = await waitForLeader(c.nodes);
    assert.deepEqual(leader.server.status().membership.learners, [9]);
  } finally {
    await c.stop();
  }
});

Deno.test("a failing snapshot() is reported and retried, and the node keeps serving", async () => {
  const sm = new ListMachine();
  let failures = 1;
  const realSnapshot = sm.snapshot.bind(sm);
  sm.snapshot = () => {
    if (failures-- > 0) throw new Error("ENOSPC: no space left on device");
    return realSnapshot();
  };
  const n = await singleNode(sm, new MemoryLog(), {
    config: { id: 1, snapshotThreshold: 5, compactionLag: 0 },
    snapshotRetryMs: 20,
  });
  const failed: Error[] = [];
  n.server.on("snapshotFailed", (e) => failed.push(e.error));
  try {
    await n.server.waitForLeader(2000);
    for (let i = 0; i < 6; i++) await n.server.propose(enc(`w${i}`));
    await waitFor(() => failed.length === 1, "the failure to be reported");
    assert.ok(failed[0] instanceof SnapshotFailedError);
    assert.match(failed[0].message, /ENOSPC/);
    assert.equal(n.server.metrics().snapshotsFailed, 1);
    assert.equal(await n.server.propose(enc("still")), 7);
    await waitFor(
      () => n.server.metrics().snapshotsTaken === 1,
      "the retry to succeed",
    );
    assert.ok(n.log.snapshotMeta().index >= 6);
  } finally {
    await n.stop();
  }
});

Deno.test("takeSnapshot() takes a snapshot on demand and resolves with the index it covers", async () => {
  const n = await singleNode(new ListMachine(), new MemoryLog(), {
    config: { id: 1, snapshotThreshold: 0 },
  });
  const events: number[] = [];
  n.server.on("snapshot", (e) => events.push(e.index));
  try {
    await n.server.waitForLeader(2000);
    for (let i = 0; i < 4; i++) await n.server.propose(enc(`d${i}`));
    const index = await n.server.takeSnapshot();
    assert.equal(index, n.server.applied);
    assert.equal(n.log.snapshotMeta().index, index);
    assert.deepEqual(events, [index]);
    assert.equal(
      await n.server.takeSnapshot(),
      index,
      "nothing new: same index",
    );
  } finally {
    await n.stop();
  }
});

Deno.test("a snapshot view is read off the apply loop: writes commit while it is serialized", async () => {
  const sm = new ListMachine();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let viewTaken = 0;
  sm.snapshot = () => {
    const frozen = sm.items.slice();
    viewTaken = frozen.length;
    const view: SnapshotView = {
      async *chunks() {
        await gate; // held until the test has seen writes commit meanwhile
        yield new TextEncoder().encode(JSON.stringify(frozen));
      },
    };
    return view;
  };
  const n = await singleNode(sm, new MemoryLog(), {
    config: { id: 1, snapshotThreshold: 0, compactionLag: 0 },
  });
  try {
    await n.server.waitForLeader(2000);
    await n.server.propose(enc("before"));
    const snap = n.server.takeSnapshot();
    await waitFor(() => n.server.status().snapshotInProgress, "the view");
    for (let i = 0; i < 5; i++) await n.server.propose(enc(`during${i}`));
    assert.equal(n.server.status().snapshotInProgress, true);
    release();
    const index = await snap;
    assert.equal(index, 2, "the snapshot covers what was applied when taken");
    assert.equal(viewTaken, 1);
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(n.log.snapshotData())),
      ["before"],
    );
  } finally {
    await n.stop();
  }
});

Deno.test("lifecycle events report role changes, leader readiness and the applied index", async () => {
  const c = await startCluster(3);
  try {
    const seen: string[] = [];
    for (const n of c.nodes) {
      n.server.on("role", (e) => seen.push(`role ${n.id} ${e.role}`));
      n.server.on("leaderReady", () => seen.push(`ready ${n.id}`));
    }
    const leader = await waitForLeader(c.nodes);
    await waitFor(() => seen.includes(`ready ${leader.id}`), "leaderReady");
    const applied: number[] = [];
    leader.server.on("applied", (e) => applied.push(e.index));
    await leader.server.propose(enc("e"));
    assert.ok(applied.includes(leader.server.applied));
    assert.ok(seen.includes(`role ${leader.id} leader`));
  } finally {
    await c.stop();
  }
});

Deno.test("a restarted node re-applies every committed entry before start() resolves", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    for (let i = 0; i < 10; i++) await leader.server.propose(enc(`r${i}`));
    const victim = c.nodes.find((n) => n !== leader)!;
    await waitFor(() => victim.sm.items.length === 10, "the victim to apply");
    await victim.server.stop();
    const restarted = await startNode(
      c.net,
      victim.id,
      [1, 2, 3],
      victim.log.crash(),
    );
    c.nodes[c.nodes.indexOf(victim)] = restarted;
    assert.ok(
      restarted.sm.items.length >= restarted.log.hardState().commit - 1,
      `applied ${restarted.sm.items.length} at start, commit ${restarted.log.hardState().commit}`,
    );
  } finally {
    await c.stop();
  }
});

Deno.test("a proposal whose index this node reuses in a later term is settled as dropped, never left pending", async () => {
  const c = await startCluster(3);
  try {
    const a = await waitForLeader(c.nodes);
    await a.server.propose(enc("base"));
    c.net.isolate(a.id);
    // Appended only in a's log; the next leader will not have them.
    const stale = ["s1", "s2", "s3"].map((s) =>
      a.server.propose(enc(s), { timeoutMs: 60_000 }).catch((e) => e)
    );
    const b = await waitForLeader(c.nodes.filter((n) => n !== a));
    c.net.heal();
    await waitFor(() => a.server.leaderId === b.id, "the old leader to follow");
    assert.equal(await b.server.transferLeadership(a.id), a.id);
    // a leads again and its new entries take the indexes of the stale ones.
    for (const s of ["n1", "n2", "n3"]) await a.server.propose(enc(s));
    const outcomes = await Promise.race([
      Promise.all(stale),
      new Promise((r) => setTimeout(() => r("still pending"), 3000)),
    ]);
    assert.ok(Array.isArray(outcomes), String(outcomes));
    for (const o of outcomes) {
      assert.ok(o instanceof ProposalDroppedError, String(o));
    }
  } finally {
    await c.stop();
  }
});
