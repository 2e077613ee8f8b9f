import assert from "node:assert/strict";
import fc from "fast-check";
import { crc32c, crc32cWasm } from "../../src/codec/crc32c.ts";
import { crc32cReference } from "../../src/codec/crc32c_reference.ts";

const implementations = [
  ["crc32c", crc32c],
  ["wasm", crc32cWasm],
  ["reference", crc32cReference],
] as const;

const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
const descending = Uint8Array.from({ length: 32 }, (_, i) => 31 - i);
const vectors: [string, Uint8Array, number][] = [
  ['"123456789"', new TextEncoder().encode("123456789"), 0xe3069283],
  ["32 zero bytes (RFC 3720 B.4)", new Uint8Array(32), 0x8a9136aa],
  [
    "32 bytes of 0xFF (RFC 3720 B.4)",
    new Uint8Array(32).fill(0xff),
    0x62a8ab43,
  ],
  ["bytes 0..31 ascending (RFC 3720 B.4)", ascending, 0x46dd794e],
  ["bytes 31..0 descending (RFC 3720 B.4)", descending, 0x113fdb5c],
  ["the empty input", new Uint8Array(0), 0],
];

for (const [name, fn] of implementations) {
  for (const [label, input, expected] of vectors) {
    Deno.test(`${name} of ${label} is 0x${expected.toString(16)}`, () => {
      assert.equal(fn(input), expected);
    });
  }
  Deno.test(`${name} chained through seed equals one call over the concatenation`, () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
        (a, b) => {
          const joined = new Uint8Array(a.length + b.length);
          joined.set(a);
          joined.set(b, a.length);
          assert.equal(fn(b, fn(a)), fn(joined));
        },
      ),
    );
  });
}

function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed | 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x;
  }
  return out;
}

Deno.test("WASM CRC32C equals the reference on random inputs up to 1 MiB at unaligned offsets", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.integer({ min: 0, max: 300 }),
        fc.integer({ min: 0, max: 1 << 20 }),
      ),
      fc.integer({ min: 0, max: 15 }),
      fc.integer({ min: 0, max: 15 }),
      fc.integer(),
      fc.integer({ min: 0, max: 0xffffffff }),
      (length, head, tail, seed, crcSeed) => {
        const buffer = pseudoRandomBytes(head + length + tail, seed);
        const view = buffer.subarray(head, head + length);
        assert.equal(crc32cWasm(view, crcSeed), crc32cReference(view, crcSeed));
        assert.equal(crc32c(view, crcSeed), crc32cReference(view, crcSeed));
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("the WASM CRC32C of inputs longer than one copy chunk equals the reference", () => {
  const input = pseudoRandomBytes((3 << 20) + 5, 99);
  assert.equal(crc32cWasm(input), crc32cReference(input));
});
