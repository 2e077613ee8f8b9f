import assert from "node:assert/strict";
import {
  ALL_FAULTS,
  InvariantChecker,
  type SimResult,
  simulate,
} from "../../src/testing/mod.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";

function violationText(r: SimResult): string {
  const v = r.violation;
  return v === undefined
    ? ""
    : `seed ${r.seed}: ${v.invariant}: ${v.detail}\n${r.replay}\n` +
      r.trace.slice(-30).map((e) =>
        `  [${e.at.toFixed(1)}] n${e.node} ${e.text}`
      )
        .join("\n");
}

Deno.test("the same seed replays the same run exactly: per-node timelines, history and counters", async () => {
  const a = await simulate({ seed: 42, nodes: 5, steps: 250 });
  const b = await simulate({ seed: 42, nodes: 5, steps: 250 });
  assert.ok(a.timeline.length > 20, `timeline of ${a.timeline.length} events`);
  assert.deepEqual(a.timeline, b.timeline);
  assert.deepEqual(a.trace, b.trace);
  assert.deepEqual(a.history, b.history);
  assert.deepEqual(a.stats, b.stats);
  const c = await simulate({ seed: 43, nodes: 5, steps: 250 });
  assert.notDeepEqual(a.timeline, c.timeline);
});

Deno.test("a list run replays exactly too", async () => {
  const a = await simulate({ seed: 7, stateMachine: "list" });
  const b = await simulate({ seed: 7, stateMachine: "list" });
  assert.equal(a.stateMachine, "list");
  assert.deepEqual(a.timeline, b.timeline);
  assert.deepEqual(a.stats, b.stats);
});

Deno.test("runs with every fault exercise crashes, partitions, churn, snapshots, transfers and disk faults", async () => {
  const totals: Record<string, number> = {};
  for (let seed = 1; seed <= 24; seed++) {
    const r = await simulate({ seed, nodes: seed % 2 === 0 ? 5 : 3 });
    assert.equal(r.violation, undefined, violationText(r));
    for (const [k, v] of Object.entries(r.stats)) {
      totals[k] = (totals[k] ?? 0) + v;
    }
  }
  for (
    const k of [
      "crashes",
      "restarts",
      "fatalStops",
      "partitions",
      "membershipChanges",
      "transfers",
      "snapshotsTaken",
      "snapshotsRestored",
      "bitFlips",
      "corruptionDetected",
      "disk.syncEio",
      "disk.slowSyncs",
      "disk.tornFiles",
    ]
  ) {
    assert.ok(totals[k] > 0, `${k}: ${totals[k]} (${JSON.stringify(totals)})`);
  }
  assert.equal(totals.bitFlips, totals.corruptionDetected);
  assert.ok(totals.operations > 2000, `operations: ${totals.operations}`);
});

Deno.test("a bounded slice of seeds with the full fault mix finds no violation", async () => {
  const started = performance.now();
  let checked = 0;
  let kvRuns = 0;
  let runs = 0;
  const slices = [
    { nodes: 3, seeds: 40, leaseReads: false },
    { nodes: 5, seeds: 25, leaseReads: false },
    { nodes: 3, seeds: 20, leaseReads: true },
    { nodes: 5, seeds: 15, leaseReads: true },
  ];
  for (const { nodes, seeds, leaseReads } of slices) {
    for (let seed = 1000; seed < 1000 + seeds; seed++) {
      const r = await simulate({ seed, nodes, leaseReads, faults: ALL_FAULTS });
      runs++;
      assert.equal(r.violation, undefined, violationText(r));
      if (r.stateMachine === "kv") kvRuns++;
      if (r.linearizability?.verdict === "ok") checked++;
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${runs} seeds in ${seconds.toFixed(1)} s (${
      (runs / seconds).toFixed(1)
    } seeds/s), ${checked} of ${kvRuns} KV histories lin-checked`,
  );
  assert.ok(checked >= kvRuns - 2, `${kvRuns - checked} histories undecided`);
});

Deno.test("a failure report names the seed and a replay command that reproduces the run", async () => {
  const options = {
    seed: 11,
    nodes: 5,
    steps: 120,
    faults: ["partition", "crash"] as const,
    leaseReads: true,
  };
  const r = await simulate(options);
  assert.equal(
    r.replay,
    "deno task sim --seeds 1 --from 11 --nodes 5 --faults partition,crash --steps 120 --leases --sm kv",
  );
  const again = await simulate(options);
  assert.deepEqual(again.trace, r.trace);
});

Deno.test("clients complete operations and some writes are acknowledged in a run", async () => {
  const r = await simulate({ seed: 7, nodes: 3, stateMachine: "kv" });
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
