import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeMessage,
  decodeMessages,
  encodeMessage,
  encodeMessages,
  MESSAGE_FORMAT_VERSION,
  MESSAGE_TAGS,
} from "../../src/codec/messages.ts";
import {
  MessageDecodeError,
  type MessageDecodeErrorReason,
  MessageEncodeError,
} from "../../src/codec/codec_errors.ts";
import type { Message } from "../../src/core/messages.ts";
import { anyMessage } from "./messages_arbitraries.ts";

/** Decodes and reports either "ok" or the decode error; any other throw fails the test. */
function tryDecode(
  decode: () => unknown,
): "ok" | MessageDecodeError {
  try {
    decode();
    return "ok";
  } catch (e) {
    if (e instanceof MessageDecodeError) return e;
    throw e;
  }
}

function expectDecodeError(
  decode: () => unknown,
  reason: MessageDecodeErrorReason,
  offset?: number,
): MessageDecodeError {
  const result = tryDecode(decode);
  assert.notEqual(result, "ok", `expected a ${reason} error, decoded fine`);
  const err = result as MessageDecodeError;
  assert.equal(err.reason, reason, err.message);
  assert.equal(err.code, "MESSAGE_DECODE_FAILED");
  if (offset !== undefined) assert.equal(err.offset, offset, err.message);
  return err;
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

const HEADER = 26; // version, tag, from, to, term
const TERM_AT = 2 + 8 + 8;

const heartbeat: Message = {
  type: "Heartbeat",
  from: 1,
  to: 2,
  term: 3,
  commit: 4,
  context: 5,
};

function appendEntries(count: number, dataBytes: number): Message {
  const entries = [];
  for (let i = 0; i < count; i++) {
    entries.push({
      index: 10 + i,
      term: 2,
      kind: "normal" as const,
      data: new Uint8Array(dataBytes).fill(i),
    });
  }
  return {
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 2,
    prevLogIndex: 9,
    prevLogTerm: 1,
    entries,
    leaderCommit: 9,
  };
}
/** Offset of the entry count in an encoded AppendEntries. */
const ENTRY_COUNT_AT = HEADER + 3 * 8;

// --- never crash ----------------------------------------------------------

Deno.test("random bytes never make the decoder throw anything but MessageDecodeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      tryDecode(() => decodeMessage(bytes));
      tryDecode(() => decodeMessages(bytes));
    }),
    { numRuns: 20000 },
  );
});

Deno.test("random bytes behind a valid version and tag never crash the decoder", () => {
  const tags = Object.values(MESSAGE_TAGS);
  fc.assert(
    fc.property(
      fc.constantFrom(...tags),
      fc.uint8Array({ maxLength: 300 }),
      (tag, body) => {
        const bytes = new Uint8Array(2 + body.byteLength);
        bytes[0] = MESSAGE_FORMAT_VERSION;
        bytes[1] = tag;
        bytes.set(body, 2);
        tryDecode(() => decodeMessage(bytes));
      },
    ),
    { numRuns: 20000 },
  );
});

type Mutation =
  | { op: "flip"; at: number; bit: number }
  | { op: "set"; at: number; value: number }
  | { op: "truncate"; at: number }
  | { op: "insert"; at: number; value: number }
  | { op: "delete"; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant("flip" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    op: fc.constant("set" as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 2, 0x20, 0x7f, 0xff),
  }),
  fc.record({ op: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    op: fc.constant("insert" as const),
    at: fc.nat(),
    value: fc.nat(255),
  }),
  fc.record({ op: fc.constant("delete" as const), at: fc.nat() }),
);

function mutate(bytes: Uint8Array, ms: Mutation[]): Uint8Array {
  let out = bytes.slice();
  for (const m of ms) {
    if (out.byteLength === 0) break;
    const at = m.at % out.byteLength;
    switch (m.op) {
      case "flip":
        out[at] ^= 1 << m.bit;
        break;
      case "set":
        out[at] = m.value;
        break;
      case "truncate":
        out = out.slice(0, at);
        break;
      case "insert": {
        const next = new Uint8Array(out.byteLength + 1);
        next.set(out.subarray(0, at));
        next[at] = m.value;
        next.set(out.subarray(at), at + 1);
        out = next;
        break;
      }
      case "delete": {
        const next = new Uint8Array(out.byteLength - 1);
        next.set(out.subarray(0, at));
        next.set(out.subarray(at + 1), at);
        out = next;
        break;
      }
    }
  }
  return out;
}

Deno.test("mutated valid encodings never crash the decoder, and what decodes re-encodes to the same bytes", () => {
  fc.assert(
    fc.property(
      anyMessage,
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (msg, ms) => {
        const bytes = mutate(encodeMessage(msg), ms);
        let decoded: Message | undefined;
        const result = tryDecode(() => (decoded = decodeMessage(bytes)));
        // Every valid encoding is canonical: a mutation that still decodes
        // produced another message's exact encoding.
        if (result === "ok") {
          assert.deepStrictEqual(encodeMessage(decoded!), bytes);
        }
      },
    ),
    { numRuns: 8000 },
  );
});

Deno.test("mutated valid batches never crash the batch decoder", () => {
  fc.assert(
    fc.property(
      fc.array(anyMessage, { maxLength: 4 }),
      fc.array(mutation, { minLength: 1, maxLength: 4 }),
      (msgs, ms) => {
        const bytes = mutate(encodeMessages(msgs), ms);
        let decoded: Message[] = [];
        const result = tryDecode(() => (decoded = decodeMessages(bytes)));
        if (result === "ok") {
          assert.deepStrictEqual(encodeMessages(decoded), bytes);
        }
      },
    ),
    { numRuns: 2000 },
  );
});

// --- specific rejections ---------------------------------------------------

Deno.test("an empty input is a short read", () => {
  expectDecodeError(() => decodeMessage(new Uint8Array(0)), "short_read", 0);
  expectDecodeError(() => decodeMessages(new Uint8Array(0)), "short_read", 0);
});

Deno.test("every proper prefix of a valid encoding is a short read", () => {
  const bytes = encodeMessage(appendEntries(3, 5));
  for (let n = 0; n < bytes.byteLength; n++) {
    expectDecodeError(() => decodeMessage(bytes.subarray(0, n)), "short_read");
  }
});

Deno.test("an unknown format version is rejected as unknown_version", () => {
  for (const version of [0, 2, 0xff]) {
    const bytes = encodeMessage(heartbeat);
    bytes[0] = version;
    expectDecodeError(() => decodeMessage(bytes), "unknown_version", 0);
    const batch = encodeMessages([heartbeat]);
    batch[0] = version;
    expectDecodeError(() => decodeMessages(batch), "unknown_version", 0);
  }
});

Deno.test("an unknown type tag is rejected as unknown_tag, distinct from a bad version", () => {
  const known = new Set<number>(Object.values(MESSAGE_TAGS));
  for (let tag = 0; tag < 256; tag++) {
    if (known.has(tag)) continue;
    const bytes = encodeMessage(heartbeat);
    bytes[1] = tag;
    const err = expectDecodeError(() => decodeMessage(bytes), "unknown_tag", 1);
    assert.match(err.message, new RegExp(`tag ${tag}`));
  }
});

Deno.test("an unknown entry kind is rejected as unknown_tag at the kind byte", () => {
  const bytes = encodeMessage(appendEntries(1, 0));
  const kindAt = ENTRY_COUNT_AT + 4 + 16;
  assert.equal(bytes[kindAt], 0);
  bytes[kindAt] = 2;
  expectDecodeError(() => decodeMessage(bytes), "unknown_tag", kindAt);
});

Deno.test("a boolean byte other than 0 or 1 is rejected as invalid_value", () => {
  const bytes = encodeMessage({
    type: "RequestVoteResponse",
    from: 1,
    to: 2,
    term: 3,
    preVote: false,
    granted: true,
  });
  bytes[HEADER] = 2;
  expectDecodeError(() => decodeMessage(bytes), "invalid_value", HEADER);
});

Deno.test("a number above 2^53 - 1 on the wire is rejected as unsafe_integer", () => {
  const bytes = encodeMessage({ ...heartbeat, term: Number.MAX_SAFE_INTEGER });
  assert.equal(view(bytes).getUint32(TERM_AT + 4, true), 0x1f_ffff);
  assert.equal(decodeMessage(bytes).term, Number.MAX_SAFE_INTEGER);
  // 2^53 exactly: the smallest unsafe value.
  view(bytes).setUint32(TERM_AT, 0, true);
  view(bytes).setUint32(TERM_AT + 4, 0x20_0000, true);
  expectDecodeError(() => decodeMessage(bytes), "unsafe_integer", TERM_AT);
  view(bytes).setUint32(TERM_AT + 4, 0xffff_ffff, true);
  expectDecodeError(() => decodeMessage(bytes), "unsafe_integer", TERM_AT);
});

Deno.test("an unsafe entry index inside AppendEntries is rejected", () => {
  const bytes = encodeMessage(appendEntries(2, 1));
  const secondIndexAt = ENTRY_COUNT_AT + 4 + (8 + 8 + 1 + 4 + 1);
  view(bytes).setUint32(secondIndexAt + 4, 0x40_0000, true);
  expectDecodeError(
    () => decodeMessage(bytes),
    "unsafe_integer",
    secondIndexAt,
  );
});

Deno.test("trailing bytes after a complete message are rejected", () => {
  const bytes = encodeMessage(heartbeat);
  const longer = new Uint8Array(bytes.byteLength + 1);
  longer.set(bytes);
  expectDecodeError(
    () => decodeMessage(longer),
    "trailing_bytes",
    bytes.byteLength,
  );
});

Deno.test("trailing bytes after a complete batch, or inside a batched message, are rejected", () => {
  const batch = encodeMessages([heartbeat]);
  const longer = new Uint8Array(batch.byteLength + 3);
  longer.set(batch);
  expectDecodeError(
    () => decodeMessages(longer),
    "trailing_bytes",
    batch.byteLength,
  );
  // Declare the message one byte longer than it is and append a byte: the
  // extra byte belongs to the message, which must then end early.
  const padded = new Uint8Array(batch.byteLength + 1);
  padded.set(batch);
  view(padded).setUint32(5, view(batch).getUint32(5, true) + 1, true);
  expectDecodeError(
    () => decodeMessages(padded),
    "trailing_bytes",
    batch.byteLength,
  );
});

Deno.test("a batched message length past the end of the batch is a short read", () => {
  const batch = encodeMessages([heartbeat]);
  view(batch).setUint32(5, 1000, true);
  expectDecodeError(() => decodeMessages(batch), "short_read", 5);
});

// --- limits: checked before allocation -------------------------------------

Deno.test("an entry count above maxEntriesPerMessage is rejected as length_limit", () => {
  const bytes = encodeMessage(appendEntries(5, 1));
  expectDecodeError(
    () => decodeMessage(bytes, { maxEntriesPerMessage: 4 }),
    "length_limit",
    ENTRY_COUNT_AT,
  );
  assert.equal(
    tryDecode(() => decodeMessage(bytes, { maxEntriesPerMessage: 5 })),
    "ok",
  );
});

Deno.test("a huge entry count is rejected without allocating an array for it", () => {
  const bytes = encodeMessage(appendEntries(1, 1));
  view(bytes).setUint32(ENTRY_COUNT_AT, 0xffff_ffff, true);
  expectDecodeError(() => decodeMessage(bytes), "length_limit", ENTRY_COUNT_AT);
  // Even with no count limit at all, the count must fit the bytes present:
  // `new Array(2 ** 32 - 1)` would throw a RangeError, not a decode error.
  expectDecodeError(
    () => decodeMessage(bytes, { maxEntriesPerMessage: Infinity }),
    "short_read",
    ENTRY_COUNT_AT,
  );
});

Deno.test("a byte field longer than maxFieldBytes is rejected as length_limit", () => {
  const bytes = encodeMessage(appendEntries(1, 100));
  const lengthAt = ENTRY_COUNT_AT + 4 + 17;
  expectDecodeError(
    () => decodeMessage(bytes, { maxFieldBytes: 99 }),
    "length_limit",
    lengthAt,
  );
  assert.equal(
    tryDecode(() => decodeMessage(bytes, { maxFieldBytes: 100 })),
    "ok",
  );
});

Deno.test("a huge byte-field length is rejected without allocating it", () => {
  const bytes = encodeMessage({
    type: "ReadIndexRequest",
    from: 1,
    to: 2,
    term: 3,
    context: new Uint8Array(4),
  });
  view(bytes).setUint32(HEADER, 0xffff_fff0, true);
  expectDecodeError(() => decodeMessage(bytes), "length_limit", HEADER);
  // With the limit lifted, the length still has to fit the bytes present
  // (allocating 4 GiB would throw a RangeError or exhaust memory).
  expectDecodeError(
    () => decodeMessage(bytes, { maxFieldBytes: Infinity }),
    "short_read",
    HEADER,
  );
});

Deno.test("a huge Propose command count is rejected without allocating it", () => {
  const bytes = encodeMessage({
    type: "Propose",
    from: 1,
    to: 2,
    term: 3,
    commands: [new Uint8Array(1)],
  });
  view(bytes).setUint32(HEADER, 0x8000_0000, true);
  expectDecodeError(() => decodeMessage(bytes), "length_limit", HEADER);
  expectDecodeError(
    () => decodeMessage(bytes, { maxEntriesPerMessage: Infinity }),
    "short_read",
    HEADER,
  );
});

Deno.test("a message larger than maxMessageBytes is rejected before it is read", () => {
  const bytes = encodeMessage(appendEntries(4, 50));
  expectDecodeError(
    () => decodeMessage(bytes, { maxMessageBytes: bytes.byteLength - 1 }),
    "length_limit",
    0,
  );
  assert.equal(
    tryDecode(() =>
      decodeMessage(bytes, { maxMessageBytes: bytes.byteLength })
    ),
    "ok",
  );
  const batch = encodeMessages([heartbeat, appendEntries(4, 50)]);
  expectDecodeError(
    () => decodeMessages(batch, { maxMessageBytes: bytes.byteLength - 1 }),
    "length_limit",
    5 + 4 + encodeMessage(heartbeat).byteLength,
  );
});

Deno.test("a batch count above maxMessagesPerBatch, or above what the bytes can hold, is rejected", () => {
  const batch = encodeMessages([heartbeat, heartbeat, heartbeat]);
  expectDecodeError(
    () => decodeMessages(batch, { maxMessagesPerBatch: 2 }),
    "length_limit",
    1,
  );
  assert.equal(decodeMessages(batch, { maxMessagesPerBatch: 3 }).length, 3);
  view(batch).setUint32(1, 0xffff_ffff, true);
  expectDecodeError(
    () => decodeMessages(batch, { maxMessagesPerBatch: Infinity }),
    "short_read",
    1,
  );
});

// --- encoding ---------------------------------------------------------------

Deno.test("encoding a number that is not a safe integer >= 0 throws MessageEncodeError naming the field", () => {
  for (
    const bad of [-1, 0.5, Number.MAX_SAFE_INTEGER + 1, 2 ** 64, NaN, Infinity]
  ) {
    assert.throws(
      () => encodeMessage({ ...heartbeat, commit: bad }),
      (e: unknown) =>
        e instanceof MessageEncodeError && e.reason === "unsafe_integer" &&
        e.field === "commit" && e.code === "MESSAGE_ENCODE_FAILED",
    );
  }
  const ae = appendEntries(2, 1);
  if (ae.type !== "AppendEntries") throw new Error("unreachable");
  ae.entries[1].term = 2 ** 60;
  assert.throws(
    () => encodeMessage(ae),
    (e: unknown) =>
      e instanceof MessageEncodeError && e.field === "entries[].term",
  );
});

Deno.test("encoding an unknown message type or entry kind throws MessageEncodeError", () => {
  const bogus = {
    type: "Bogus",
    from: 1,
    to: 2,
    term: 3,
  } as unknown as Message;
  assert.throws(
    () => encodeMessage(bogus),
    (e: unknown) =>
      e instanceof MessageEncodeError && e.reason === "invalid_value",
  );
  const inherited = { ...heartbeat, type: "toString" } as unknown as Message;
  assert.throws(
    () => encodeMessage(inherited),
    (e: unknown) => e instanceof MessageEncodeError && e.field === "type",
  );
  const ae = appendEntries(1, 1);
  if (ae.type !== "AppendEntries") throw new Error("unreachable");
  (ae.entries[0] as { kind: string }).kind = "weird";
  assert.throws(
    () => encodeMessage(ae),
    (e: unknown) =>
      e instanceof MessageEncodeError && e.field === "entries[].kind",
  );
});

Deno.test("a failed encode leaves no partial bytes in the next encoding", () => {
  assert.throws(() => encodeMessages([heartbeat, { ...heartbeat, term: -1 }]));
  assert.deepStrictEqual(decodeMessage(encodeMessage(heartbeat)), heartbeat);
  assert.deepStrictEqual(decodeMessages(encodeMessages([heartbeat])), [
    heartbeat,
  ]);
});
