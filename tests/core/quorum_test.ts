import assert from "node:assert/strict";
import fc from "fast-check";
import {
  jointCommitted,
  jointVoteResult,
  majorityCommitted,
  majorityVoteResult,
  type VoteResult,
} from "../../src/core/quorum.ts";

// Brute-force models: defined from the definition of a quorum (more than
// half of the voters), not from the implementation's sorting and counting.

function isQuorum(voters: number[], subset: Set<number>): boolean {
  if (voters.length === 0) return true;
  let n = 0;
  for (const v of voters) if (subset.has(v)) n++;
  return 2 * n > voters.length;
}

function bruteCommitted(
  incoming: number[],
  outgoing: number[],
  acked: Map<number, number>,
  max: number,
): number {
  let best = 0;
  for (let k = 1; k <= max; k++) {
    const holders = new Set(
      [...acked].filter(([, idx]) => idx >= k).map(([id]) => id),
    );
    if (isQuorum(incoming, holders) && isQuorum(outgoing, holders)) best = k;
  }
  return best;
}

function bruteVote(
  incoming: number[],
  outgoing: number[],
  votes: Map<number, boolean | undefined>,
): VoteResult {
  // Won if every completion of the missing votes wins, lost if none does.
  const missing = [...new Set([...incoming, ...outgoing])].filter((id) =>
    votes.get(id) === undefined
  );
  let wins = 0;
  const total = 1 << missing.length;
  for (let mask = 0; mask < total; mask++) {
    const granted = new Set(
      [...votes].filter(([, v]) => v === true).map(([id]) => id),
    );
    missing.forEach((id, i) => {
      if (mask & (1 << i)) granted.add(id);
    });
    if (isQuorum(incoming, granted) && isQuorum(outgoing, granted)) wins++;
  }
  return wins === total ? "won" : wins === 0 ? "lost" : "pending";
}

function subsets(ids: number[]): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << ids.length; mask++) {
    out.push(ids.filter((_, i) => mask & (1 << i)));
  }
  return out;
}

Deno.test("majority commit index equals the brute-force model for every 1-7 voter cluster", () => {
  let cases = 0;
  for (let n = 1; n <= 7; n++) {
    const voters = Array.from({ length: n }, (_, i) => i + 1);
    const values = n <= 5 ? 4 : 3;
    const combos = values ** n;
    for (let c = 0; c < combos; c++) {
      const acked = new Map<number, number>();
      let x = c;
      for (const v of voters) {
        acked.set(v, x % values);
        x = Math.floor(x / values);
      }
      const got = majorityCommitted(voters, {
        ackedIndex: (id) => acked.get(id),
      });
      assert.equal(
        got,
        bruteCommitted(voters, [], acked, values),
        `voters ${voters} acked ${[...acked]}`,
      );
      cases++;
    }
  }
  assert.ok(cases > 3000);
});

Deno.test("joint commit index needs a majority of both halves, for all voter sets over 5 ids", () => {
  const ids = [1, 2, 3, 4, 5];
  const all = subsets(ids);
  for (const incoming of all) {
    if (incoming.length === 0) continue;
    for (const outgoing of all) {
      for (let c = 0; c < 3 ** 5; c += 7) {
        const acked = new Map<number, number>();
        let x = c;
        for (const id of ids) {
          acked.set(id, x % 3);
          x = Math.floor(x / 3);
        }
        const got = jointCommitted(incoming, outgoing, {
          ackedIndex: (id) => acked.get(id),
        });
        assert.equal(
          got,
          bruteCommitted(incoming, outgoing, acked, 2),
          `${incoming} && ${outgoing} ${[...acked]}`,
        );
      }
    }
  }
});

Deno.test("majority vote results equal the brute-force model for every 1-7 voter cluster", () => {
  for (let n = 1; n <= 7; n++) {
    const voters = Array.from({ length: n }, (_, i) => i + 1);
    for (let c = 0; c < 3 ** n; c++) {
      const votes = new Map<number, boolean | undefined>();
      let x = c;
      for (const v of voters) {
        const d = x % 3;
        votes.set(v, d === 0 ? undefined : d === 1);
        x = Math.floor(x / 3);
      }
      const got = majorityVoteResult(voters, { vote: (id) => votes.get(id) });
      assert.equal(
        got,
        bruteVote(voters, [], votes),
        `${voters} ${[...votes]}`,
      );
    }
  }
});

Deno.test("joint vote results equal the brute-force model for all voter sets over 5 ids", () => {
  const ids = [1, 2, 3, 4, 5];
  const all = subsets(ids);
  for (const incoming of all) {
    if (incoming.length === 0) continue;
    for (const outgoing of all) {
      for (let c = 0; c < 3 ** 5; c += 5) {
        const votes = new Map<number, boolean | undefined>();
        let x = c;
        for (const id of ids) {
          const d = x % 3;
          votes.set(id, d === 0 ? undefined : d === 1);
          x = Math.floor(x / 3);
        }
        const got = jointVoteResult(incoming, outgoing, {
          vote: (id) => votes.get(id),
        });
        assert.equal(
          got,
          bruteVote(incoming, outgoing, votes),
          `${incoming} && ${outgoing} ${[...votes]}`,
        );
      }
    }
  }
});

Deno.test("an empty voter set never limits a joint quorum", () => {
  assert.equal(majorityCommitted([], { ackedIndex: () => 0 }), Infinity);
  assert.equal(majorityVoteResult([], { vote: () => undefined }), "won");
});

Deno.test("joint commit index and vote results match the model for random voter sets over 7 ids", () => {
  const ids = [1, 2, 3, 4, 5, 6, 7];
  const subset = fc.subarray(ids, { minLength: 1 });
  fc.assert(
    fc.property(
      subset,
      fc.subarray(ids),
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 7, maxLength: 7 }),
      fc.array(fc.constantFrom(undefined, true, false), {
        minLength: 7,
        maxLength: 7,
      }),
      (incoming, outgoing, acks, vs) => {
        const acked = new Map(ids.map((id, i) => [id, acks[i]]));
        const votes = new Map(ids.map((id, i) => [id, vs[i]]));
        assert.equal(
          jointCommitted(incoming, outgoing, {
            ackedIndex: (id) => acked.get(id),
          }),
          bruteCommitted(incoming, outgoing, acked, 4),
        );
        assert.equal(
          jointVoteResult(incoming, outgoing, { vote: (id) => votes.get(id) }),
          bruteVote(incoming, outgoing, votes),
        );
      },
    ),
    { numRuns: 3000 },
  );
});
