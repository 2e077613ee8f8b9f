import assert from "node:assert/strict";
import fc from "fast-check";
import { ByteReader, ByteWriter } from "../../src/codec/binary.ts";
import {
  MessageDecodeError,
  MessageEncodeError,
} from "../../src/codec/codec_errors.ts";

Deno.test("the writer grows past its initial capacity and keeps what it wrote", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 40 }),
      (chunks) => {
        const w = new ByteWriter(16);
        for (const c of chunks) w.bytes(c, "chunk");
        const r = new ByteReader(w.toBytes());
        for (const c of chunks) {
          assert.deepStrictEqual(
            r.bytes(1000, "chunk"),
            c,
          );
        }
        r.expectEnd();
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("u64 round-trips every safe integer, including both halves' edges", () => {
  const edges = [
    0,
    1,
    0xffff_ffff,
    0x1_0000_0000,
    2 ** 52,
    Number.MAX_SAFE_INTEGER,
  ];
  fc.assert(
    fc.property(fc.oneof(fc.constantFrom(...edges), fc.maxSafeNat()), (x) => {
      const w = new ByteWriter();
      w.u64(x, "x");
      assert.equal(new ByteReader(w.toBytes()).u64("x"), x);
    }),
    { numRuns: 500 },
  );
});

Deno.test("u32 rejects values outside 0..2^32-1 when writing", () => {
  const w = new ByteWriter();
  for (const bad of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(() => w.u32(bad, "n"), MessageEncodeError);
  }
  assert.equal(w.pos, 0);
});

Deno.test("a reset writer reuses its buffer and starts from zero", () => {
  const w = new ByteWriter(16);
  w.bytes(new Uint8Array(100), "a");
  const capacity = w.capacity;
  w.reset();
  w.u8(7);
  assert.equal(w.capacity, capacity);
  assert.deepStrictEqual(w.toBytes(), new Uint8Array([7]));
});

Deno.test("every reader method throws a short_read MessageDecodeError at the end of input", () => {
  const reads: [string, (r: ByteReader) => unknown][] = [
    ["u8", (r) => r.u8("f")],
    ["bool", (r) => r.bool("f")],
    ["u32", (r) => r.u32("f")],
    ["u64", (r) => r.u64("f")],
    ["bytes", (r) => r.bytes(10, "f")],
    ["count", (r) => r.count(10, 1, "f")],
  ];
  for (const [name, read] of reads) {
    const r = new ByteReader(new Uint8Array(0));
    assert.throws(
      () => read(r),
      (e: unknown) =>
        e instanceof MessageDecodeError && e.reason === "short_read" &&
        e.offset === 0,
      name,
    );
  }
});

Deno.test("a reader over a subarray honours the view's offset", () => {
  const backing = new Uint8Array([0xff, 0xff, 5, 0, 0, 0, 0xff]);
  const r = new ByteReader(backing.subarray(2, 6));
  assert.equal(r.u32("n"), 5);
  r.expectEnd();
});
