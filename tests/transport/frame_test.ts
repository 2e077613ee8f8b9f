import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_KIND,
  FrameReader,
} from "../../src/transport/tcp/frame.ts";
import {
  FrameChecksumError,
  FrameTooLargeError,
  FrameVersionError,
} from "../../src/transport/transport_errors.ts";

Deno.test("frames round-trip however the byte stream is split into chunks", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.array(fc.integer({ min: 1, max: 97 }), {
        minLength: 1,
        maxLength: 10,
      }),
      (bodies, cuts) => {
        const stream = new Uint8Array(
          bodies.reduce((n, b) => n + FRAME_HEADER_BYTES + 1 + b.byteLength, 0),
        );
        let off = 0;
        for (const b of bodies) {
          const f = encodeFrame(FRAME_KIND.batch, b);
          stream.set(f, off);
          off += f.byteLength;
        }
        const reader = new FrameReader(1024);
        const out: Uint8Array[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.byteLength; i++) {
          const n = cuts[i % cuts.length];
          reader.push(stream.subarray(pos, pos + n));
          pos += n;
          for (let f = reader.next(); f !== null; f = reader.next()) {
            assert.equal(f.kind, FRAME_KIND.batch);
            out.push(f.body);
          }
        }
        assert.deepEqual(out, bodies);
        assert.equal(reader.buffered, 0);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("any flipped bit in a frame is caught by the checksum, version or length check", () => {
  const frame = encodeFrame(
    FRAME_KIND.batch,
    new TextEncoder().encode("some payload bytes"),
  );
  for (let bit = 0; bit < frame.byteLength * 8; bit++) {
    const bad = frame.slice();
    bad[bit >> 3] ^= 1 << (bit & 7);
    const reader = new FrameReader(1 << 20);
    reader.push(bad);
    let outcome: string;
    try {
      outcome = reader.next() === null ? "incomplete" : "accepted";
    } catch (e) {
      outcome =
        e instanceof FrameChecksumError || e instanceof FrameVersionError ||
          e instanceof FrameTooLargeError
          ? "refused"
          : "other";
    }
    // A corrupted length that asks for more bytes than exist waits for them (the checksum fails later).
    assert.ok(
      outcome === "refused" || outcome === "incomplete",
      `bit ${bit}: ${outcome}`,
    );
  }
});

Deno.test("a frame header announcing more than the limit is refused before its payload arrives", () => {
  const reader = new FrameReader(100);
  const frame = encodeFrame(FRAME_KIND.batch, new Uint8Array(150));
  reader.push(frame.subarray(0, FRAME_HEADER_BYTES));
  assert.throws(
    () => reader.next(),
    (e: unknown) =>
      e instanceof FrameTooLargeError && e.size === 151 && e.limit === 100,
  );
});

Deno.test("a frame with an unknown version byte is refused, version 1 included", () => {
  for (const version of [1, 3]) {
    const frame = encodeFrame(FRAME_KIND.batch, new Uint8Array([1, 2, 3]));
    frame[4] = version;
    const reader = new FrameReader(100);
    reader.push(frame);
    assert.throws(
      () => reader.next(),
      (e: unknown) => e instanceof FrameVersionError && e.version === version,
    );
  }
});
