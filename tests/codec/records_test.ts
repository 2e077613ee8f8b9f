import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type CodecBackend,
  decodeRecords,
  decodeRecordsStrict,
  encodeRecords,
  MAX_RECORD_PAYLOAD,
  RECORD_HEADER_BYTES,
  RecordCorruptionError,
  RecordEncoder,
} from "../../src/codec/records.ts";

const backends: CodecBackend[] = ["wasm", "ts"];
const text = (s: string) => new TextEncoder().encode(s);

function sample(): { type: number; payload: Uint8Array }[] {
  return [
    { type: 1, payload: text("first record") },
    { type: 2, payload: new Uint8Array(0) },
    { type: 255, payload: text("third") },
  ];
}

/** Header offsets of the sample batch: 0, 21, 30. */
const SAMPLE_OFFSETS = [0, 9 + 12, 9 + 12 + 9];

function expectCorruption(
  bytes: Uint8Array,
  backend: CodecBackend,
  offset: number,
  reason: string,
  validCount: number,
): void {
  const decoded = decodeRecords(bytes, { backend });
  assert.ok(decoded.error instanceof RecordCorruptionError);
  assert.equal(decoded.error.code, "RECORD_CORRUPTION");
  assert.equal(decoded.error.offset, offset);
  assert.equal(decoded.error.reason, reason);
  assert.equal(decoded.count, validCount);
  assert.equal(decoded.validLength, offset);
  assert.throws(
    () => decodeRecordsStrict(bytes, { backend }),
    RecordCorruptionError,
  );
}

for (const backend of backends) {
  Deno.test(`${backend}: a batch round-trips type and payload`, () => {
    const bytes = encodeRecords(sample(), { backend });
    assert.equal(bytes.length, 3 * RECORD_HEADER_BYTES + 12 + 0 + 5);
    const decoded = decodeRecordsStrict(bytes, { backend });
    assert.equal(decoded.count, 3);
    assert.equal(decoded.validLength, bytes.length);
    sample().forEach((r, i) => {
      assert.equal(decoded.type(i), r.type);
      assert.deepEqual(decoded.payload(i), r.payload);
      assert.equal(decoded.headerOffset(i), SAMPLE_OFFSETS[i]);
    });
  });

  Deno.test(`${backend}: a truncated header is rejected at its offset`, () => {
    const bytes = encodeRecords(sample(), { backend });
    expectCorruption(
      bytes.subarray(0, SAMPLE_OFFSETS[2] + 4),
      backend,
      SAMPLE_OFFSETS[2],
      "truncated_header",
      2,
    );
  });

  Deno.test(`${backend}: a truncated payload is rejected at its record's offset`, () => {
    const bytes = encodeRecords(sample(), { backend });
    expectCorruption(
      bytes.subarray(0, SAMPLE_OFFSETS[1] - 3),
      backend,
      SAMPLE_OFFSETS[0],
      "truncated_payload",
      0,
    );
  });

  Deno.test(`${backend}: a length past the buffer is rejected at its offset`, () => {
    const bytes = encodeRecords(sample(), { backend });
    new DataView(bytes.buffer).setUint32(SAMPLE_OFFSETS[1], 1000, true);
    expectCorruption(bytes, backend, SAMPLE_OFFSETS[1], "truncated_payload", 1);
    new DataView(bytes.buffer).setUint32(
      SAMPLE_OFFSETS[1],
      MAX_RECORD_PAYLOAD + 1,
      true,
    );
    expectCorruption(bytes, backend, SAMPLE_OFFSETS[1], "length_past_end", 1);
  });

  Deno.test(`${backend}: a flipped bit anywhere in a record is caught at that record`, () => {
    const clean = encodeRecords(sample(), { backend });
    for (let byte = 0; byte < clean.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const bytes = clean.slice();
        bytes[byte] ^= 1 << bit;
        const record = SAMPLE_OFFSETS.findLastIndex((o) => o <= byte);
        const decoded = decodeRecords(bytes, { backend });
        assert.ok(
          decoded.error,
          `flip at byte ${byte} bit ${bit} was accepted`,
        );
        assert.equal(decoded.error.offset, SAMPLE_OFFSETS[record]);
        assert.equal(decoded.count, record);
      }
    }
  });

  Deno.test(`${backend}: zero-filled space after the last record is not a record`, () => {
    const bytes = new Uint8Array(44 + 64);
    bytes.set(encodeRecords(sample(), { backend }));
    expectCorruption(bytes, backend, 44, "checksum_mismatch", 3);
  });

  Deno.test(`${backend}: the empty buffer holds zero records`, () => {
    const decoded = decodeRecordsStrict(new Uint8Array(0), { backend });
    assert.equal(decoded.count, 0);
    assert.equal(decoded.validLength, 0);
  });

  Deno.test(`${backend}: reserve fills payloads in place and reset starts a new batch`, () => {
    const encoder = new RecordEncoder({ backend });
    encoder.reserve(7, 3).set([1, 2, 3]);
    assert.equal(encoder.count, 1);
    encoder.reset();
    encoder.reserve(8, 2).set([9, 9]);
    const decoded = decodeRecordsStrict(encoder.finish().slice(), { backend });
    assert.equal(decoded.count, 1);
    assert.equal(decoded.type(0), 8);
    assert.deepEqual([...decoded.payload(0)], [9, 9]);
    assert.throws(() => encoder.reserve(256, 1), RangeError);
    assert.throws(() => encoder.reserve(1, -1), RangeError);
  });

  Deno.test(`${backend}: random bytes never crash the decoder and never yield a bad record`, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const decoded = decodeRecords(bytes, { backend });
        assert.ok(decoded.validLength <= bytes.length);
        assert.equal(
          decoded.error === undefined,
          decoded.validLength === bytes.length,
        );
        for (let i = 0; i < decoded.count; i++) decoded.payload(i);
      }),
      { numRuns: 300 },
    );
  });
}

Deno.test("WASM and reference encodings are identical for batches of 0 to 10,000 records", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 200 }),
      fc.integer(),
      (count, maxSize, seed) => {
        let x = seed | 1;
        const next = () => {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          return x >>> 0;
        };
        const records = Array.from({ length: count }, () => {
          const payload = new Uint8Array(next() % (maxSize + 1));
          for (let i = 0; i < payload.length; i++) payload[i] = next();
          return { type: next() & 0xff, payload };
        });
        const wasm = encodeRecords(records, { backend: "wasm" });
        const ts = encodeRecords(records, { backend: "ts" });
        assert.deepEqual(wasm, ts);
        const dw = decodeRecordsStrict(wasm, { backend: "wasm" });
        const dt = decodeRecordsStrict(ts, { backend: "ts" });
        assert.equal(dw.count, count);
        assert.equal(dt.count, count);
        for (let i = 0; i < count; i += Math.max(1, count >> 5)) {
          assert.equal(dw.payloadOffset(i), dt.payloadOffset(i));
          assert.deepEqual(dw.payload(i), records[i].payload);
        }
      },
    ),
    { numRuns: 25 },
  );
});

Deno.test("WASM decoding of records that straddle its copy window matches the reference", () => {
  const sizes = [100, 5 << 20, 7, (4 << 20) - 3, 0, 9 << 20, 1];
  const records = sizes.map((size, i) => ({
    type: i,
    payload: new Uint8Array(size).fill(i + 1),
  }));
  const bytes = encodeRecords(records);
  const wasm = decodeRecordsStrict(bytes, { backend: "wasm" });
  assert.equal(wasm.count, sizes.length);
  sizes.forEach((size, i) => assert.equal(wasm.payloadLength(i), size));
  const torn = bytes.subarray(0, bytes.length - 1);
  const a = decodeRecords(torn, { backend: "wasm" });
  const b = decodeRecords(torn, { backend: "ts" });
  assert.equal(a.error?.offset, b.error?.offset);
  assert.equal(a.error?.reason, "truncated_payload");
  assert.equal(a.count, sizes.length - 1);
});
