import assert from "node:assert/strict";
import { InvalidConfigError } from "../../src/core/errors.ts";
import { RaftNode } from "../../src/core/node.ts";
import { mulberry32 } from "../../src/core/random.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";

/** The index of the first snapshot hint of a single-node cluster applying `n` proposals. */
function firstHint(jitter: number, seed: number, n = 400): number | undefined {
  const log = new MemoryLog();
  const node = new RaftNode(
    { id: 1, snapshotThreshold: 100, snapshotJitter: jitter },
    log,
    mulberry32(seed),
  );
  node.campaign();
  const data = new Uint8Array([1]);
  for (let i = 0; i <= n; i++) {
    if (i > 0) node.propose(data);
    while (node.hasReady()) {
      const rd = node.ready();
      if (rd.mustSync) log.syncNow();
      node.advance(rd);
      if (rd.snapshotHint !== undefined) return rd.snapshotHint;
    }
  }
  return undefined;
}

Deno.test("without jitter every node is hinted at the snapshot threshold", () => {
  for (const seed of [1, 2, 3]) assert.equal(firstHint(0, seed), 100);
});

Deno.test("snapshotJitter spreads the hints of nodes over [threshold, threshold × (1 + jitter)]", () => {
  const hints = [1, 2, 3, 4, 5, 6].map((seed) => firstHint(0.5, seed)!);
  for (const h of hints) assert.ok(h >= 100 && h <= 150, `hint at ${h}`);
  assert.ok(new Set(hints).size >= 3, `hints ${hints.join(", ")}`);
  assert.equal(firstHint(0.5, 4), hints[3], "the spread comes from the seed");
});

Deno.test("snapshotJitter outside [0, 0.5] is refused naming the option", () => {
  for (const jitter of [-0.1, 0.6, NaN]) {
    assert.throws(
      () => new RaftNode({ id: 1, snapshotJitter: jitter }, new MemoryLog()),
      (e: unknown) =>
        e instanceof InvalidConfigError && e.message.includes("snapshotJitter"),
    );
  }
});
