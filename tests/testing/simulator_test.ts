import assert from "node:assert/strict";
import {
  ALL_FAULTS,
  encodeKvModelCommand,
  InvariantChecker,
  KvModel,
  simulate,
} from "../../src/testing/mod.ts";
import { SimNetwork, simRandom } from "../../src/testing/simulator/network.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";

Deno.test("the same seed replays the same run exactly", () => {
  const a = simulate({ seed: 42, nodes: 5, steps: 250, traceLines: 10_000 });
  const b = simulate({ seed: 42, nodes: 5, steps: 250, traceLines: 10_000 });
  assert.deepEqual(a.trace, b.trace);
  assert.deepEqual(a.history, b.history);
  assert.deepEqual(a.stats, b.stats);
  const c = simulate({ seed: 43, nodes: 5, steps: 250, traceLines: 10_000 });
  assert.notDeepEqual(a.trace, c.trace);
});

Deno.test("a run with every fault exercises crashes, partitions, churn, snapshots and transfers", () => {
  const totals: Record<string, number> = {};
  for (let seed = 1; seed <= 20; seed++) {
    const r = simulate({ seed, nodes: 5 });
    for (const [k, v] of Object.entries(r.stats)) {
      totals[k] = (totals[k] ?? 0) + v;
    }
  }
  for (
    const k of [
      "crashes",
      "partitions",
      "membershipChanges",
      "transfers",
      "snapshots",
      "dropped",
      "duplicated",
    ]
  ) {
    assert.ok(totals[k] > 0, `${k}: ${totals[k]}`);
  }
  assert.ok(totals.operations > 1000, `operations: ${totals.operations}`);
});

Deno.test("a bounded slice of seeds with the full fault mix finds no violation", () => {
  const started = performance.now();
  let checked = 0;
  let runs = 0;
  const slices = [
    { nodes: 3, seeds: 1_500, steps: 300 },
    { nodes: 5, seeds: 800, steps: 300 },
    { nodes: 3, seeds: 150, steps: 2_000 },
    { nodes: 5, seeds: 100, steps: 2_000 },
  ];
  for (const { nodes, seeds, steps } of slices) {
    for (let seed = 1; seed <= seeds; seed++) {
      const r = simulate({ seed, nodes, steps, faults: ALL_FAULTS });
      runs++;
      assert.equal(
        r.violation,
        undefined,
        `seed ${seed}, ${nodes} nodes: ${r.violation?.invariant}: ${r.violation?.detail}\n${r.replay}`,
      );
      if (r.linearizability?.verdict === "ok") checked++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${runs} seeds in ${
      seconds.toFixed(1)
    } s, ${checked} histories lin-checked`,
  );
  assert.ok(checked >= runs - 5, `${runs - checked} histories undecided`);
});

Deno.test("reads served under leader leases stay linearizable with bounded clock skew", () => {
  for (const nodes of [3, 5]) {
    for (let seed = 1; seed <= 150; seed++) {
      const r = simulate({ seed, nodes, leaseReads: true });
      assert.equal(
        r.violation,
        undefined,
        `${r.violation?.detail}\n${r.replay}`,
      );
      assert.equal(r.linearizability?.verdict, "ok");
    }
  }
});

Deno.test("a failure report names the seed and a replay command that reproduces the run", () => {
  const r = simulate({
    seed: 11,
    nodes: 5,
    steps: 120,
    faults: ["partition", "crash"],
    leaseReads: true,
  });
  assert.equal(
    r.replay,
    "deno task sim --seeds 1 --from 11 --nodes 5 --faults partition,crash --steps 120 --leases",
  );
  const again = simulate({
    seed: 11,
    nodes: 5,
    steps: 120,
    faults: ["partition", "crash"],
    leaseReads: true,
  });
  assert.deepEqual(again.trace, r.trace);
});

Deno.test("a log store whose sync does not persist is caught by the simulator", () => {
  /** Acknowledges syncs without making anything durable: a crash loses it all. */
  class LyingLog extends MemoryLog {
    override syncNow(): void {}
  }
  let caught: string | undefined;
  for (let seed = 1; seed <= 50 && caught === undefined; seed++) {
    const r = simulate({ seed, nodes: 3, createLog: () => new LyingLog() });
    caught = r.violation?.invariant;
  }
  assert.ok(caught !== undefined, "no violation in 50 seeds");
  const honest = simulate({
    seed: 1,
    nodes: 3,
    createLog: () => new MemoryLog(),
  });
  assert.equal(honest.violation, undefined);
});

Deno.test("clients complete operations and some writes are acknowledged in every run", () => {
  const r = simulate({ seed: 7, nodes: 3 });
  const ok = r.history.filter((op) => op.status === "ok");
  assert.ok(ok.some((op) => op.f === "put"), "an acknowledged put");
  assert.ok(ok.some((op) => op.f === "get"), "a completed read");
  assert.equal(r.linearizability?.verdict, "ok");
});

Deno.test("the invariant checker reports two leaders in one term", () => {
  const checker = new InvariantChecker();
  const log = new MemoryLog();
  const view = (id: number) => ({
    id,
    alive: true,
    role: "leader",
    term: 3,
    commit: 0,
    log,
  });
  assert.equal(checker.observe([view(1)]), undefined);
  assert.equal(
    checker.observe([view(1), view(2)])?.invariant,
    "election-safety",
  );
});

Deno.test("the invariant checker reports a commit index that goes backwards", () => {
  const checker = new InvariantChecker();
  const log = new MemoryLog();
  const view = (commit: number) => ({
    id: 1,
    alive: true,
    role: "follower",
    term: 1,
    commit,
    log,
  });
  assert.equal(checker.observe([view(5)]), undefined);
  assert.equal(checker.observe([view(4)])?.invariant, "commit-monotonic");
});

Deno.test("the invariant checker reports two different entries applied at one index", () => {
  const checker = new InvariantChecker();
  const entry = {
    index: 4,
    term: 2,
    kind: "normal" as const,
    data: new Uint8Array([1]),
  };
  assert.equal(checker.applied(1, entry), undefined);
  assert.equal(checker.applied(2, { ...entry }), undefined);
  assert.equal(
    checker.applied(3, { ...entry, term: 3 })?.invariant,
    "state-machine-safety",
  );
});

Deno.test("the invariant checker reports logs that agree on a term but not on the entry", () => {
  const checker = new InvariantChecker();
  const a = new MemoryLog();
  const b = new MemoryLog();
  a.append([{ index: 1, term: 1, kind: "normal", data: new Uint8Array([1]) }]);
  b.append([{ index: 1, term: 1, kind: "normal", data: new Uint8Array([2]) }]);
  const view = (id: number, log: MemoryLog) => ({
    id,
    alive: true,
    role: "follower",
    term: 1,
    commit: 0,
    log,
  });
  assert.equal(
    checker.observe([view(1, a), view(2, b)])?.invariant,
    "log-matching",
  );
});

Deno.test("the invariant checker reports a leader without an acknowledged write", () => {
  const checker = new InvariantChecker();
  checker.acknowledged(1, 1, "put c1-1");
  const log = new MemoryLog();
  log.append([{ index: 1, term: 2, kind: "normal", data: new Uint8Array() }]);
  const v = checker.observe([{
    id: 1,
    alive: true,
    role: "leader",
    term: 2,
    commit: 0,
    log,
  }]);
  assert.equal(v?.invariant, "acknowledged-write-lost");
});

Deno.test("the simulated network drops, duplicates, delays and partitions deterministically", () => {
  const run = () => {
    const net = new SimNetwork(simRandom(9));
    net.faults = { drop: 0.2, duplicate: 0.2, maxExtraDelay: 4 };
    for (let i = 0; i < 200; i++) {
      net.send({ type: "TimeoutNow", from: 1 + (i % 2), to: 3, term: i }, 0);
    }
    net.setLink(2, 3, true);
    const got: number[] = [];
    for (let t = 1; t <= 6; t++) {
      for (const m of net.deliverDue(t)) got.push(m.term);
    }
    return { got, stats: { ...net.stats } };
  };
  const a = run();
  assert.deepEqual(run(), a);
  assert.ok(
    a.stats.dropped > 10 && a.stats.duplicated > 10 && a.stats.blocked > 10,
  );
  const sorted = a.got.slice().sort((x, y) => x - y);
  assert.notDeepEqual(a.got, sorted, "delays reorder messages");
});

Deno.test("the key-value state machine applies a duplicated command once and round-trips snapshots", () => {
  const sm = new KvModel();
  sm.apply(encodeKvModelCommand({ op: "put", req: "a", key: "x", value: "1" }));
  sm.apply(
    encodeKvModelCommand({
      op: "cas",
      req: "b",
      key: "x",
      expect: "1",
      value: "2",
    }),
  );
  sm.apply(encodeKvModelCommand({ op: "put", req: "a", key: "x", value: "1" }));
  assert.equal(sm.get("x"), "2");
  assert.deepEqual(
    sm.apply(
      encodeKvModelCommand({
        op: "cas",
        req: "c",
        key: "x",
        expect: "1",
        value: "3",
      }),
    ),
    {
      req: "c",
      ok: false,
    },
  );
  const copy = new KvModel();
  copy.restore(sm.snapshot());
  assert.equal(copy.get("x"), "2");
  assert.deepEqual(
    copy.apply(
      encodeKvModelCommand({ op: "put", req: "b", key: "x", value: "9" }),
    ),
    { req: "b", ok: true },
  );
  assert.equal(copy.get("x"), "2");
});
