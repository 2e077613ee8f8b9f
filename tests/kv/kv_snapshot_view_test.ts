import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeKvCommand,
  type KvCommand,
  type KvSnapshotView,
  KvStateMachine,
} from "../../src/kv/kv_state_machine.ts";
import { CowMap } from "../../src/kv/cow_map.ts";
import { readView } from "./snapshot_helpers.ts";

const KEYS = ["a", "b", "c", "dé", "e".repeat(70), "f"];
const arbKey = fc.constantFrom(...KEYS);
const arbValue = fc.uint8Array({ maxLength: 6 });

type Step =
  | { op: "put"; key: string; value: Uint8Array }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expect: Uint8Array | null; value: Uint8Array }
  | { op: "get"; key: string }
  | { op: "snapshot" }
  | { op: "release"; pick: number }
  | { op: "serialize"; pick: number };

const arbStep: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: arbKey,
      value: arbValue,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("delete" as const), key: arbKey }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("cas" as const),
      key: arbKey,
      expect: fc.option(
        fc.constantFrom(new Uint8Array(), new Uint8Array([1])),
        { nil: null },
      ),
      value: arbValue,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("get" as const), key: arbKey }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("snapshot" as const) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("release" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("serialize" as const),
      pick: fc.nat(),
    }),
  },
);

function equalBytes(a: Uint8Array | undefined, b: Uint8Array | undefined) {
  return a === b ||
    (a !== undefined && b !== undefined && a.length === b.length &&
      a.every((x, i) => x === b[i]));
}

async function checkView(
  view: KvSnapshotView,
  expected: Map<string, Uint8Array>,
): Promise<void> {
  const bytes = await readView(view);
  const copy = new KvStateMachine();
  copy.restore(bytes);
  assert.equal(copy.size, expected.size);
  assert.equal(view.keys, expected.size);
  for (const [k, v] of expected) assert.deepEqual(copy.get(k), v, k);
}

Deno.test("kv reads and writes stay correct while snapshot views are taken and released, and each view serializes the state at the moment it was taken", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(arbStep, { maxLength: 80 }), async (steps) => {
      const kv = new KvStateMachine();
      const model = new Map<string, Uint8Array>();
      const open: {
        view: KvSnapshotView;
        expected: Map<string, Uint8Array>;
      }[] = [];
      let index = 0;
      const apply = (cmd: KvCommand) =>
        kv.apply({
          index: ++index,
          term: 1,
          kind: "normal",
          data: encodeKvCommand(cmd),
        });
      for (const s of steps) {
        switch (s.op) {
          case "put":
            assert.deepEqual(apply(s), { ok: true });
            model.set(s.key, s.value.slice());
            break;
          case "delete":
            assert.equal(apply(s).ok, model.delete(s.key));
            break;
          case "cas": {
            const current = model.get(s.key);
            const matches = s.expect === null
              ? current === undefined
              : equalBytes(current, s.expect);
            const r = apply(s);
            assert.equal(r.ok, matches);
            if (!matches) assert.deepEqual(r.current, current);
            else model.set(s.key, s.value.slice());
            break;
          }
          case "get":
            assert.deepEqual(kv.get(s.key), model.get(s.key));
            break;
          case "snapshot":
            open.push({ view: kv.snapshot(), expected: new Map(model) });
            break;
          case "release":
            if (open.length > 0) {
              open.splice(s.pick % open.length, 1)[0].view.release();
            }
            break;
          case "serialize":
            if (open.length > 0) {
              const { view, expected } =
                open.splice(s.pick % open.length, 1)[0];
              await checkView(view, expected);
            }
            break;
        }
        assert.equal(kv.size, model.size);
      }
      for (const { view, expected } of open) await checkView(view, expected);
      for (const [k, v] of model) assert.deepEqual(kv.get(k), v);
      // Every view released: the overlays are folded back, and a fresh view matches the model.
      await checkView(kv.snapshot(), model);
    }),
    { numRuns: 300 },
  );
});

Deno.test("a frozen CowMap iterated one entry at a time between writes yields exactly the state it froze", () => {
  type MapStep =
    | { op: "set"; key: string; value: number }
    | { op: "delete"; key: string }
    | { op: "freeze" }
    | { op: "step"; pick: number }
    | { op: "release"; pick: number };
  const arb: fc.Arbitrary<MapStep> = fc.oneof(
    fc.record({
      op: fc.constant("set" as const),
      key: arbKey,
      value: fc.nat(9),
    }),
    fc.record({ op: fc.constant("delete" as const), key: arbKey }),
    fc.record({ op: fc.constant("freeze" as const) }),
    fc.record({ op: fc.constant("step" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("release" as const), pick: fc.nat() }),
  );
  fc.assert(
    fc.property(fc.array(arb, { maxLength: 60 }), (steps) => {
      const map = new CowMap<number>();
      const model = new Map<string, number>();
      const views: {
        release: () => void;
        it: Iterator<[string, number]>;
        got: Map<string, number>;
        expected: Map<string, number>;
      }[] = [];
      const finish = (v: (typeof views)[number]) => {
        for (let r = v.it.next(); !r.done; r = v.it.next()) {
          assert.ok(!v.got.has(r.value[0]), "a key came twice");
          v.got.set(r.value[0], r.value[1]);
        }
        assert.deepEqual(v.got, v.expected);
        v.release();
      };
      for (const s of steps) {
        if (s.op === "set") {
          assert.equal(map.set(s.key, s.value), model.get(s.key));
          model.set(s.key, s.value);
        } else if (s.op === "delete") {
          assert.equal(map.delete(s.key), model.get(s.key));
          model.delete(s.key);
        } else if (s.op === "freeze") {
          const f = map.freeze();
          assert.equal(f.size, model.size);
          views.push({
            release: f.release,
            it: f.entries(),
            got: new Map(),
            expected: new Map(model),
          });
        } else if (views.length > 0) {
          const v = views[s.pick % views.length];
          if (s.op === "release") {
            views.splice(views.indexOf(v), 1);
            finish(v);
          } else {
            const r = v.it.next();
            if (!r.done) v.got.set(r.value[0], r.value[1]);
          }
        }
        assert.equal(map.size, model.size);
        for (const k of KEYS) assert.equal(map.get(k), model.get(k));
      }
      for (const v of views) finish(v);
      assert.equal(
        map.layerCount,
        1,
        "overlays are folded once every view is released",
      );
    }),
    { numRuns: 500 },
  );
});

Deno.test("a kv snapshot view comes in chunks of about 256 KiB, lets timers run between them, and ignores writes applied while it is read", async () => {
  const kv = new KvStateMachine();
  const value = new Uint8Array(100).fill(7);
  const n = 30_000;
  for (let i = 0; i < n; i++) {
    kv.apply({
      index: i + 1,
      term: 1,
      kind: "normal",
      data: encodeKvCommand({ op: "put", key: `key-${i}`, value }),
    });
  }
  const view = kv.snapshot();
  let timerFired = false;
  setTimeout(() => timerFired = true, 0);
  const sizes: number[] = [];
  let firedBeforeLast = false;
  let index = n;
  const bytes = await readView(view, (chunk) => {
    sizes.push(chunk.byteLength);
    if (sizes.length > 1 && timerFired) firedBeforeLast = true;
    // Applying goes on between chunks: overwrite, delete and add keys.
    for (let k = 0; k < 50; k++) {
      const i = (sizes.length * 50 + k) % n;
      kv.apply({
        index: ++index,
        term: 1,
        kind: "normal",
        data: encodeKvCommand({
          op: "put",
          key: `key-${i}`,
          value: new Uint8Array([1]),
        }),
      });
      kv.apply({
        index: ++index,
        term: 1,
        kind: "normal",
        data: encodeKvCommand({ op: "delete", key: `key-${(i + 1) % n}` }),
      });
      kv.apply({
        index: ++index,
        term: 1,
        kind: "normal",
        data: encodeKvCommand({ op: "put", key: `new-${index}`, value }),
      });
    }
  });
  assert.ok(sizes.length >= 3, `${sizes.length} chunks`);
  for (const s of sizes.slice(0, -1)) {
    assert.ok(s > 256 * 1024 - 200 && s <= 256 * 1024, `chunk of ${s} bytes`);
  }
  assert.ok(firedBeforeLast, "a timer ran between chunks");
  const copy = new KvStateMachine();
  copy.restore(bytes);
  assert.equal(copy.size, n);
  for (let i = 0; i < n; i += 997) {
    assert.deepEqual(copy.get(`key-${i}`), value);
  }
  assert.equal(copy.get(`new-${n + 3}`), undefined);
  // The live store kept the writes.
  assert.notEqual(kv.size, n);
});
