import assert from "node:assert/strict";
import fc from "fast-check";
import {
  decodeMessage,
  decodeMessages,
  encodeMessage,
  encodeMessageInto,
  encodeMessages,
  MESSAGE_FORMAT_VERSION,
  MESSAGE_TAGS,
} from "../../src/codec/messages.ts";
import { ByteWriter } from "../../src/codec/binary.ts";
import {
  MessageDecodeError,
  MessageEncodeError,
} from "../../src/codec/codec_errors.ts";
import { MESSAGE_TYPES } from "../../src/core/messages.ts";
import type { Message, MessageType } from "../../src/core/messages.ts";
import {
  anyMessage,
  ENTRY_FIELDS,
  MESSAGE_ARBITRARIES,
  MESSAGE_FIELDS,
  SNAPSHOT_META_FIELDS,
} from "./messages_arbitraries.ts";

/** Keys of an object, sorted. */
function keys(o: object): string[] {
  return Object.keys(o).sort();
}

/** Asserts that `m` has exactly the fields of its type (nested ones too). */
function assertCompleteShape(m: Message): void {
  assert.deepEqual(keys(m), keys(MESSAGE_FIELDS[m.type]), m.type);
  if (m.type === "AppendEntries") {
    for (const e of m.entries) assert.deepEqual(keys(e), keys(ENTRY_FIELDS));
  }
  if (m.type === "InstallSnapshot") {
    assert.deepEqual(keys(m.meta), keys(SNAPSHOT_META_FIELDS));
  }
}

for (const type of Object.keys(MESSAGE_ARBITRARIES) as MessageType[]) {
  Deno.test(`a random ${type} survives encode and decode unchanged`, () => {
    fc.assert(
      fc.property(MESSAGE_ARBITRARIES[type], (msg: Message) => {
        // The generator must fill every field the type declares; otherwise a
        // field the codec forgets would go unnoticed.
        assertCompleteShape(msg);
        const bytes = encodeMessage(msg);
        assert.equal(bytes[0], MESSAGE_FORMAT_VERSION);
        assert.equal(bytes[1], MESSAGE_TAGS[type]);
        const back = decodeMessage(bytes);
        assertCompleteShape(back);
        assert.deepStrictEqual(back, msg);
      }),
      { numRuns: 300 },
    );
  });
}

Deno.test("every message type has a generator, a field list and a tag", () => {
  assert.deepEqual(
    Object.keys(MESSAGE_ARBITRARIES).sort(),
    [...MESSAGE_TYPES].sort(),
  );
  assert.deepEqual(
    Object.keys(MESSAGE_FIELDS).sort(),
    [...MESSAGE_TYPES].sort(),
  );
  assert.deepEqual(Object.keys(MESSAGE_TAGS).sort(), [...MESSAGE_TYPES].sort());
});

Deno.test("the type tags are the published table and never move", () => {
  // Changing a number here breaks every cluster running an older version:
  // new types take new numbers, retired numbers are never reused.
  assert.deepStrictEqual({ ...MESSAGE_TAGS }, {
    RequestVote: 1,
    RequestVoteResponse: 2,
    AppendEntries: 3,
    AppendEntriesResponse: 4,
    Heartbeat: 5,
    HeartbeatResponse: 6,
    InstallSnapshot: 7,
    InstallSnapshotResponse: 8,
    TimeoutNow: 9,
    ReadIndexRequest: 10,
    ReadIndexResponse: 11,
    Propose: 12,
    Removed: 13,
  });
  assert.equal(MESSAGE_FORMAT_VERSION, 1);
});

Deno.test("a known AppendEntries encodes to the documented bytes", () => {
  const bytes = encodeMessage({
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 0x1_0000_0003,
    prevLogIndex: 4,
    prevLogTerm: 5,
    entries: [{
      index: 5,
      term: 6,
      kind: "config",
      data: new Uint8Array([0xab, 0xcd]),
    }],
    leaderCommit: 7,
  });
  const hex = Array.from(bytes, (x) => x.toString(16).padStart(2, "0")).join(
    "",
  );
  assert.equal(
    hex,
    "01" + "03" + // version, tag
      "0100000000000000" + "0200000000000000" + // from, to
      "0300000001000000" + // term: low u32 3, high u32 1
      "0400000000000000" + "0500000000000000" + "0700000000000000" + // prev index, prev term, commit
      "01000000" + // one entry
      "0500000000000000" + "0600000000000000" + "01" + // index, term, kind config
      "02000000" + "abcd", // data
  );
});

Deno.test("a Removed encodes to the documented bytes, with and without configIndex", () => {
  const hex = (b: Uint8Array) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const head = "01" + "0d" + // version, tag 13
    "0100000000000000" + "0400000000000000" + "0500000000000000"; // from, to, term
  const withIndex: Message = {
    type: "Removed",
    from: 1,
    to: 4,
    term: 5,
    configIndex: 9,
  };
  assert.equal(
    hex(encodeMessage(withIndex)),
    head + "01" + "0900000000000000",
  );
  assert.deepStrictEqual(decodeMessage(encodeMessage(withIndex)), withIndex);
  const without: Message = { type: "Removed", from: 1, to: 4, term: 5 };
  assert.equal(hex(encodeMessage(without)), head + "00");
  const back = decodeMessage(encodeMessage(without));
  assert.deepStrictEqual(back, without);
  assert.ok(!("configIndex" in back));
});

Deno.test("an AppendEntriesResponse encodes catchUpIndex only when present, and never as 0", () => {
  const hex = (b: Uint8Array) =>
    Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  const base: Message = {
    type: "AppendEntriesResponse",
    from: 2,
    to: 1,
    term: 3,
    success: true,
    matchIndex: 7,
    rejectIndex: 0,
    hintIndex: 0,
    hintTerm: 0,
  };
  const body = "01" + "04" + // version, tag 4
    "0200000000000000" + "0100000000000000" + "0300000000000000" + // from, to, term
    "01" + "0700000000000000" + "0000000000000000".repeat(3); // success, match, reject, hint
  assert.equal(hex(encodeMessage(base)), body);
  const back = decodeMessage(encodeMessage(base));
  assert.deepStrictEqual(back, base);
  assert.ok(!("catchUpIndex" in back));
  const flagged: Message = { ...base, catchUpIndex: 9 };
  assert.equal(hex(encodeMessage(flagged)), body + "0900000000000000");
  assert.deepStrictEqual(decodeMessage(encodeMessage(flagged)), flagged);
  assert.throws(
    () => encodeMessage({ ...base, catchUpIndex: 0 }),
    (e) => e instanceof MessageEncodeError && e.reason === "invalid_value",
  );
  const zero = new Uint8Array([...encodeMessage(base), 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.throws(
    () => decodeMessage(zero),
    (e) => e instanceof MessageDecodeError && e.reason === "invalid_value",
  );
});

Deno.test("a batch of random messages of every type survives encode and decode", () => {
  fc.assert(
    fc.property(fc.array(anyMessage, { maxLength: 8 }), (msgs) => {
      const bytes = encodeMessages(msgs);
      assert.deepStrictEqual(decodeMessages(bytes), msgs);
    }),
    { numRuns: 100 },
  );
});

Deno.test("each message in a batch is framed exactly as encodeMessage encodes it", () => {
  fc.assert(
    fc.property(
      fc.array(anyMessage, { minLength: 1, maxLength: 4 }),
      (msgs) => {
        const batch = encodeMessages(msgs);
        const view = new DataView(batch.buffer, batch.byteOffset);
        assert.equal(batch[0], MESSAGE_FORMAT_VERSION);
        assert.equal(view.getUint32(1, true), msgs.length);
        let at = 5;
        for (const m of msgs) {
          const single = encodeMessage(m);
          const len = view.getUint32(at, true);
          assert.equal(len, single.byteLength);
          assert.deepStrictEqual(batch.subarray(at + 4, at + 4 + len), single);
          at += 4 + len;
        }
        assert.equal(at, batch.byteLength);
      },
    ),
    { numRuns: 50 },
  );
});

Deno.test("encodeMessage returns a copy that later encodes do not overwrite", () => {
  const a = encodeMessage({ type: "TimeoutNow", from: 1, to: 2, term: 3 });
  const snapshot = a.slice();
  encodeMessage({ type: "TimeoutNow", from: 9, to: 9, term: 9 });
  assert.deepStrictEqual(a, snapshot);
});

Deno.test("encodeMessageInto appends to a caller's writer after existing bytes", () => {
  const w = new ByteWriter(16);
  w.u8(0xee);
  const msg: Message = {
    type: "Heartbeat",
    from: 3,
    to: 4,
    term: 5,
    commit: 6,
    context: 7,
  };
  encodeMessageInto(w, msg);
  const out = w.toBytes();
  assert.equal(out[0], 0xee);
  assert.deepStrictEqual(decodeMessage(out.subarray(1)), msg);
});

Deno.test("decoding with copyBytes false returns views into the input", () => {
  const msg: Message = {
    type: "ReadIndexRequest",
    from: 1,
    to: 2,
    term: 3,
    context: new Uint8Array([1, 2, 3]),
  };
  const bytes = encodeMessage(msg);
  const shared = decodeMessage(bytes, { copyBytes: false });
  const copied = decodeMessage(bytes);
  assert.deepStrictEqual(shared, msg);
  bytes[bytes.byteLength - 1] = 99;
  assert.ok(shared.type === "ReadIndexRequest" && shared.context[2] === 99);
  assert.ok(copied.type === "ReadIndexRequest" && copied.context[2] === 3);
});

Deno.test("a message at a non-zero offset of a larger buffer decodes without a copy", () => {
  const msg: Message = {
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 3,
    prevLogIndex: 4,
    prevLogTerm: 3,
    entries: [{
      index: 5,
      term: 3,
      kind: "normal",
      data: new Uint8Array([7, 8]),
    }],
    leaderCommit: 4,
  };
  const single = encodeMessage(msg);
  const frame = new Uint8Array(single.byteLength + 7);
  frame.set(single, 3);
  const back = decodeMessage(frame.subarray(3, 3 + single.byteLength), {
    copyBytes: false,
  });
  assert.deepStrictEqual(back, msg);
});

Deno.test("a multi-megabyte snapshot chunk round-trips, and small messages still encode after it", () => {
  const data = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < data.length; i += 4096) data[i] = i & 0xff;
  const chunk: Message = {
    type: "InstallSnapshot",
    from: 1,
    to: 2,
    term: 3,
    meta: { index: 100, term: 3, config: new Uint8Array([1]) },
    offset: 0,
    data,
    done: false,
  };
  assert.deepStrictEqual(decodeMessage(encodeMessage(chunk)), chunk);
  const small: Message = { type: "TimeoutNow", from: 1, to: 2, term: 3 };
  assert.deepStrictEqual(decodeMessage(encodeMessage(small)), small);
  assert.equal(encodeMessage(small).byteLength, 26);
});
