import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeKvCommand,
  encodeKvCommand,
  type KvCommand,
  KvStateMachine,
} from "../../src/kv/kv_state_machine.ts";
import { readView } from "./snapshot_helpers.ts";

const arbCommand: fc.Arbitrary<KvCommand> = fc.oneof(
  fc.record({
    op: fc.constant("put" as const),
    key: fc.string({ minLength: 1 }),
    value: fc.uint8Array(),
  }),
  fc.record({
    op: fc.constant("delete" as const),
    key: fc.string({ minLength: 1 }),
  }),
  fc.record({
    op: fc.constant("cas" as const),
    key: fc.string({ minLength: 1 }),
    expect: fc.option(fc.uint8Array(), { nil: null }),
    value: fc.uint8Array(),
  }),
);

Deno.test("kv commands round-trip through their binary encoding", () => {
  fc.assert(
    fc.property(arbCommand, (cmd) => {
      assert.deepEqual(
        decodeKvCommand(encodeKvCommand(cmd)),
        structuredClone(cmd),
      );
    }),
    { numRuns: 500 },
  );
});

Deno.test("kv state machine applies put, delete and compare-and-set with their results", () => {
  const kv = new KvStateMachine();
  let index = 0;
  const apply = (cmd: KvCommand) =>
    kv.apply({
      index: ++index,
      term: 1,
      kind: "normal",
      data: encodeKvCommand(cmd),
    });
  const b = (s: string) => new TextEncoder().encode(s);
  assert.deepEqual(apply({ op: "put", key: "k", value: b("1") }), { ok: true });
  assert.deepEqual(
    apply({ op: "cas", key: "k", expect: b("2"), value: b("3") }),
    { ok: false, current: b("1") },
  );
  assert.deepEqual(
    apply({ op: "cas", key: "k", expect: b("1"), value: b("3") }),
    { ok: true },
  );
  assert.deepEqual(kv.get("k"), b("3"));
  assert.deepEqual(
    apply({ op: "cas", key: "new", expect: null, value: b("n") }),
    { ok: true },
  );
  assert.deepEqual(
    apply({ op: "cas", key: "new", expect: null, value: b("m") }),
    { ok: false, current: b("n") },
  );
  assert.deepEqual(apply({ op: "delete", key: "k" }), { ok: true });
  assert.deepEqual(apply({ op: "delete", key: "k" }), { ok: false });
  assert.equal(kv.get("k"), undefined);
  assert.deepEqual(
    kv.apply({
      index: ++index,
      term: 1,
      kind: "normal",
      data: new Uint8Array([99, 0, 0, 0, 0]),
    }),
    {
      ok: false,
    },
  );
});

Deno.test("kv state machine snapshots restore the same keys and values", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(arbCommand, { maxLength: 40 }), async (cmds) => {
      const a = new KvStateMachine();
      cmds.forEach((cmd, i) =>
        a.apply({
          index: i + 1,
          term: 1,
          kind: "normal",
          data: encodeKvCommand(cmd),
        })
      );
      const b = new KvStateMachine();
      b.restore(await readView(a.snapshot()));
      assert.equal(b.size, a.size);
      for (const cmd of cmds) assert.deepEqual(b.get(cmd.key), a.get(cmd.key));
    }),
    { numRuns: 200 },
  );
  const empty = new KvStateMachine();
  empty.restore(new Uint8Array(0));
  assert.equal(empty.size, 0);
});

/** An old (op 4) address-book command as earlier versions wrote it. */
function oldMemberCommand(id: number, raft: string, http: string): Uint8Array {
  const r = new TextEncoder().encode(raft);
  const h = new TextEncoder().encode(http);
  const out = new Uint8Array(13 + r.byteLength + h.byteLength);
  const v = new DataView(out.buffer);
  out[0] = 4;
  v.setUint32(1, id, true);
  v.setUint32(5, r.byteLength, true);
  out.set(r, 9);
  v.setUint32(9 + r.byteLength, h.byteLength, true);
  out.set(h, 13 + r.byteLength);
  return out;
}

Deno.test("kv state machine applies an old address-book entry (op 4) as a no-op that succeeds", () => {
  const kv = new KvStateMachine();
  const data = oldMemberCommand(2, "127.0.0.1:7002", "127.0.0.1:8002");
  assert.deepEqual(kv.apply({ index: 1, term: 1, kind: "normal", data }), {
    ok: true,
  });
  assert.equal(kv.size, 0);
  assert.throws(() => decodeKvCommand(data), RangeError);
});

Deno.test("kv state machine restores an old snapshot that starts with the address book", () => {
  const te = new TextEncoder();
  const book = te.encode(
    JSON.stringify([[1, { raft: "127.0.0.1:7001", http: "127.0.0.1:8001" }]]),
  );
  const key = te.encode("k");
  const value = te.encode("v");
  const old = new Uint8Array(4 + book.byteLength + 4 + 8 + 1 + 1);
  const v = new DataView(old.buffer);
  let o = 0;
  v.setUint32(o, book.byteLength, true);
  old.set(book, 4);
  o = 4 + book.byteLength;
  v.setUint32(o, 1, true);
  v.setUint32(o + 4, key.byteLength, true);
  old.set(key, o + 8);
  v.setUint32(o + 9, value.byteLength, true);
  old.set(value, o + 13);
  const kv = new KvStateMachine();
  kv.restore(old);
  assert.equal(kv.size, 1);
  assert.equal(new TextDecoder().decode(kv.get("k")), "v");
});

Deno.test("kv keys of any Unicode text and length round-trip, and malformed UTF-8 keys are refused", () => {
  fc.assert(
    fc.property(
      fc.string({ unit: "binary", minLength: 1, maxLength: 100 }),
      fc.uint8Array({ maxLength: 8 }),
      (key, value) => {
        const cmd = decodeKvCommand(
          encodeKvCommand({ op: "put", key, value }),
        );
        assert.equal(cmd.op === "put" && cmd.key, key.toWellFormed());
      },
    ),
    { numRuns: 500 },
  );
  // [put][len 2][0xC3 0x28]: an invalid two-byte sequence.
  const bad = new Uint8Array([1, 2, 0, 0, 0, 0xc3, 0x28, 7]);
  assert.throws(() => decodeKvCommand(bad), TypeError);
  assert.deepEqual(
    new KvStateMachine().apply({
      index: 1,
      term: 1,
      kind: "normal",
      data: bad,
    }),
    { ok: false },
  );
  // A long ASCII key and a key with one multi-byte character near the end.
  for (const key of ["a".repeat(1000), "k".repeat(20) + "é"]) {
    const cmd = decodeKvCommand(
      encodeKvCommand({ op: "delete", key }),
    );
    assert.equal(cmd.op === "delete" && cmd.key, key);
  }
});

Deno.test("kv apply of any put bytes stores exactly what decodeKvCommand reads, or refuses what it refuses", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 40 }),
      fc.nat({ max: 40 }),
      (tail, keyLength) => {
        const data = new Uint8Array(5 + tail.byteLength);
        data[0] = 1;
        new DataView(data.buffer).setUint32(1, keyLength, true);
        data.set(tail, 5);
        const kv = new KvStateMachine();
        const result = kv.apply({ index: 1, term: 1, kind: "normal", data });
        let expected: KvCommand | undefined;
        try {
          expected = decodeKvCommand(data);
        } catch {
          expected = undefined;
        }
        if (expected === undefined || expected.op !== "put") {
          assert.deepEqual(result, { ok: false });
          assert.equal(kv.size, 0);
        } else {
          assert.deepEqual(result, { ok: true });
          assert.deepEqual(kv.get(expected.key), expected.value.slice());
        }
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("kv put values never alias a larger buffer the command was read from", () => {
  const kv = new KvStateMachine();
  const cmd = encodeKvCommand({
    op: "put",
    key: "k",
    value: new Uint8Array([1, 2, 3]),
  });
  // The command inside a larger buffer (as in a received frame), reused later.
  const frame = new Uint8Array(cmd.byteLength + 8);
  frame.set(cmd, 4);
  kv.apply({
    index: 1,
    term: 1,
    kind: "normal",
    data: frame.subarray(4, 4 + cmd.byteLength),
  });
  frame.fill(9);
  assert.deepEqual(kv.get("k"), new Uint8Array([1, 2, 3]));
  assert.equal(kv.get("k")!.buffer.byteLength, 3);
  // A command that owns its buffer (the leader's own proposal) is kept as is.
  kv.apply({ index: 2, term: 1, kind: "normal", data: cmd });
  assert.deepEqual(kv.get("k"), new Uint8Array([1, 2, 3]));
});

Deno.test("kv state machine restores a large snapshot in slices, letting timers run, and only then replaces its state", async () => {
  const a = new KvStateMachine();
  const value = new Uint8Array(1000).fill(9);
  for (let i = 0; i < 10_000; i++) {
    a.apply({
      index: i + 1,
      term: 1,
      kind: "normal",
      data: encodeKvCommand({ op: "put", key: `k${i}`, value }),
    });
  }
  const bytes = await readView(a.snapshot());
  assert.ok(bytes.byteLength > 8 * 1024 * 1024);
  const b = new KvStateMachine();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    const pending = b.restore(bytes);
    assert.ok(pending instanceof Promise, "a large restore is asynchronous");
    await pending;
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks > 0, "timers ran while restoring");
  assert.equal(b.size, 10_000);
  assert.deepEqual(b.get("k9999"), value);
});
