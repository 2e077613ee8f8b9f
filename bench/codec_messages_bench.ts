/**
 * Encode + decode of an AppendEntries with 64 entries of 100 B: the binary
 * codec against a JSON baseline (bytes as number arrays) in the same run.
 *
 * Run: `deno bench bench/codec_messages_bench.ts`
 */
import {
  decodeMessage,
  decodeMessages,
  encodeMessage,
  encodeMessages,
} from "../src/codec/messages.ts";
import type { Entry } from "../src/log/raft_log.ts";
import type { AppendEntries, Message } from "../src/core/messages.ts";

function makeAppend(count: number, dataBytes: number): AppendEntries {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const data = new Uint8Array(dataBytes);
    for (let j = 0; j < dataBytes; j++) data[j] = (i * 31 + j) & 0xff;
    entries.push({ index: 1_000_001 + i, term: 7, kind: "normal", data });
  }
  return {
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 7,
    prevLogIndex: 1_000_000,
    prevLogTerm: 7,
    entries,
    leaderCommit: 999_990,
  };
}

const append = makeAppend(64, 100);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The JSON baseline: byte fields as arrays of numbers, then UTF-8. */
function jsonEncode(m: AppendEntries): Uint8Array {
  return encoder.encode(
    JSON.stringify(m, (_k, v) => v instanceof Uint8Array ? Array.from(v) : v),
  );
}
function jsonDecode(bytes: Uint8Array): AppendEntries {
  const m = JSON.parse(decoder.decode(bytes)) as AppendEntries;
  for (const e of m.entries) {
    e.data = new Uint8Array(e.data as unknown as number[]);
  }
  return m;
}

let sink = 0;

Deno.bench({
  name: "JSON stringify+parse (baseline)",
  group: "AppendEntries 64 x 100 B encode+decode",
  baseline: true,
  fn() {
    const m = jsonDecode(jsonEncode(append));
    sink += m.entries.length;
  },
});

Deno.bench({
  name: "binary codec",
  group: "AppendEntries 64 x 100 B encode+decode",
  fn() {
    const m = decodeMessage(encodeMessage(append));
    sink += m.type === "AppendEntries" ? m.entries.length : 0;
  },
});

Deno.bench({
  name: "binary codec, decode with copyBytes: false",
  group: "AppendEntries 64 x 100 B encode+decode",
  fn() {
    const m = decodeMessage(encodeMessage(append), { copyBytes: false });
    sink += m.type === "AppendEntries" ? m.entries.length : 0;
  },
});

const appendBytes = encodeMessage(append);
const appendJson = jsonEncode(append);

Deno.bench({
  name: "JSON encode only (baseline)",
  group: "AppendEntries 64 x 100 B encode",
  baseline: true,
  fn() {
    sink += jsonEncode(append).byteLength;
  },
});

Deno.bench({
  name: "binary encodeMessage",
  group: "AppendEntries 64 x 100 B encode",
  fn() {
    sink += encodeMessage(append).byteLength;
  },
});

Deno.bench({
  name: "JSON decode only (baseline)",
  group: "AppendEntries 64 x 100 B decode",
  baseline: true,
  fn() {
    sink += jsonDecode(appendJson).entries.length;
  },
});

Deno.bench({
  name: "binary decodeMessage",
  group: "AppendEntries 64 x 100 B decode",
  fn() {
    const m = decodeMessage(appendBytes);
    sink += m.type === "AppendEntries" ? m.entries.length : 0;
  },
});

const heartbeats: Message[] = [];
for (let i = 0; i < 16; i++) {
  heartbeats.push({
    type: "Heartbeat",
    from: 1,
    to: 2 + i,
    term: 7,
    commit: 999_990,
    context: i,
  });
}

Deno.bench({
  name: "JSON stringify+parse (baseline)",
  group: "batch of 16 Heartbeats encode+decode",
  baseline: true,
  fn() {
    sink += (JSON.parse(
      decoder.decode(encoder.encode(JSON.stringify(heartbeats))),
    ) as Message[]).length;
  },
});

Deno.bench({
  name: "binary codec (encodeMessages/decodeMessages)",
  group: "batch of 16 Heartbeats encode+decode",
  fn() {
    sink += decodeMessages(encodeMessages(heartbeats)).length;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
