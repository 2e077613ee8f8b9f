/**
 * The binary wire codec for every Raft {@linkcode Message}.
 *
 * An encoded message is a format version byte
 * ({@linkcode MESSAGE_FORMAT_VERSION}), a type tag from
 * {@linkcode MESSAGE_TAGS}, the common header (`from`, `to`, `term`) and the
 * fields of its type, in the order documented in `docs/wire_format.md`.
 * Numbers are little-endian; ids, terms, indexes and offsets are 8 bytes and
 * must be safe integers; byte fields carry a 4-byte length; booleans are one
 * byte, 0 or 1.
 *
 * Decoding validates everything: any input that is not a valid encoding
 * throws {@linkcode MessageDecodeError} with a stable `reason` and the byte
 * offset, never anything else, and no length is allocated before it is
 * checked against the limits and the bytes actually present.
 *
 * @module
 */

import type { Entry, EntryKind, SnapshotMeta } from "../log/raft_log.ts";
import type {
  AppendEntries,
  AppendEntriesResponse,
  Heartbeat,
  HeartbeatResponse,
  InstallSnapshot,
  InstallSnapshotResponse,
  Message,
  MessageType,
  Propose,
  ReadIndexRequest,
  ReadIndexResponse,
  Removed,
  RequestVote,
  RequestVoteResponse,
  TimeoutNow,
} from "../core/messages.ts";
import { ByteReader, ByteWriter } from "./binary.ts";
import { MessageDecodeError, MessageEncodeError } from "./codec_errors.ts";

/**
 * The format version written as the first byte of every encoded message and
 * batch. A decoder rejects any other value with reason `unknown_version`.
 */
export const MESSAGE_FORMAT_VERSION = 1;

/** A numeric tag for every message type (a missing type is a compile error). */
export type MessageTagTable = Record<MessageType, number>;

/**
 * The stable numeric type tag of each message type (the second byte of an
 * encoded message).
 *
 * Tags never move; new types take new numbers. A removed type's number is
 * retired, never reused. Tag 0 is reserved (a zeroed buffer never decodes).
 *
 * @example
 * ```ts
 * import { MESSAGE_TAGS } from "@raft-io/raft/codec";
 * MESSAGE_TAGS.AppendEntries; // 3
 * ```
 */
export const MESSAGE_TAGS: Readonly<MessageTagTable> = Object.freeze(
  {
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
  } as const satisfies MessageTagTable,
);

/**
 * The stable numeric code of each entry kind on the wire. Like the message
 * tags, these never move.
 */
export const ENTRY_KIND_CODES: Readonly<Record<EntryKind, number>> = Object
  .freeze(
    {
      normal: 0,
      config: 1,
    } as const satisfies Record<EntryKind, number>,
  );

/** Limits a decoder enforces before it allocates anything. */
export interface DecodeLimits {
  /** Largest encoded message accepted, in bytes (per message inside a batch, too). */
  maxMessageBytes: number;
  /** Largest byte field (entry data, snapshot chunk, config, context, command). */
  maxFieldBytes: number;
  /** Most entries in one AppendEntries, or commands in one Propose. */
  maxEntriesPerMessage: number;
  /** Most messages in one batch ({@linkcode decodeMessages}). */
  maxMessagesPerBatch: number;
  /**
   * When true (the default), the decoder copies the input once and byte
   * fields are views into that private copy: the caller may reuse the input
   * buffer at once. (A retained field keeps the copy of its whole message
   * alive.) When false, byte fields are views into the input itself, which
   * then must not be reused or modified while the message is alive.
   */
  copyBytes: boolean;
}

/**
 * The limits used when none are given: 64 MiB per message and per field,
 * 2^20 entries per message, 2^16 messages per batch, byte fields copied.
 */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxMessageBytes: 64 * 1024 * 1024,
  maxFieldBytes: 64 * 1024 * 1024,
  maxEntriesPerMessage: 1 << 20,
  maxMessagesPerBatch: 1 << 16,
  copyBytes: true,
});

/** version + tag + from + to + term */
const HEADER_BYTES = 2 + 3 * 8;
/** index + term + kind + data length */
const MIN_ENTRY_BYTES = 8 + 8 + 1 + 4;
/** A Propose command is at least its length. */
const MIN_COMMAND_BYTES = 4;
/** A batched message is at least its length prefix and a header. */
const MIN_BATCHED_MESSAGE_BYTES = 4 + HEADER_BYTES;
/** Above this capacity the shared writer is dropped after use. */
const MAX_RETAINED_WRITER_BYTES = 4 * 1024 * 1024;

const shared = new ByteWriter(64 * 1024);

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

function writeEntry(w: ByteWriter, e: Entry): void {
  w.u64(e.index, "entries[].index");
  w.u64(e.term, "entries[].term");
  const kind = e.kind === "normal"
    ? ENTRY_KIND_CODES.normal
    : e.kind === "config"
    ? ENTRY_KIND_CODES.config
    : -1;
  if (kind < 0) {
    throw new MessageEncodeError(
      "invalid_value",
      "entries[].kind",
      `unknown entry kind ${String(e.kind)}`,
    );
  }
  w.u8(kind);
  w.bytes(e.data, "entries[].data");
}

function writeSnapshotMeta(w: ByteWriter, m: SnapshotMeta): void {
  w.u64(m.index, "meta.index");
  w.u64(m.term, "meta.term");
  w.bytes(m.config, "meta.config");
}

/**
 * Appends the encoding of `msg` to `writer` (no reset, no copy): for a
 * transport that frames many messages into one reused buffer.
 *
 * @example
 * ```ts
 * import { ByteWriter, encodeMessageInto } from "@raft-io/raft/codec";
 * const w = new ByteWriter();
 * encodeMessageInto(w, { type: "TimeoutNow", from: 1, to: 2, term: 3 });
 * w.pos; // 26
 * ```
 */
export function encodeMessageInto(writer: ByteWriter, msg: Message): void {
  const w = writer;
  // Looked up as unknown: a caller outside TypeScript may pass any string.
  const tag: unknown = MESSAGE_TAGS[msg.type];
  if (typeof tag !== "number") {
    throw new MessageEncodeError(
      "invalid_value",
      "type",
      `unknown message type ${String(msg.type)}`,
    );
  }
  w.u8(MESSAGE_FORMAT_VERSION);
  w.u8(tag);
  w.u64(msg.from, "from");
  w.u64(msg.to, "to");
  w.u64(msg.term, "term");
  switch (msg.type) {
    case "RequestVote":
      w.bool(msg.preVote);
      w.u64(msg.lastLogIndex, "lastLogIndex");
      w.u64(msg.lastLogTerm, "lastLogTerm");
      w.bool(msg.transfer);
      return;
    case "RequestVoteResponse":
      w.bool(msg.preVote);
      w.bool(msg.granted);
      return;
    case "AppendEntries": {
      w.u64(msg.prevLogIndex, "prevLogIndex");
      w.u64(msg.prevLogTerm, "prevLogTerm");
      w.u64(msg.leaderCommit, "leaderCommit");
      const entries = msg.entries;
      const n = entries.length;
      w.u32(n, "entries.length");
      for (let i = 0; i < n; i++) writeEntry(w, entries[i]);
      return;
    }
    case "AppendEntriesResponse":
      w.bool(msg.success);
      w.u64(msg.matchIndex, "matchIndex");
      w.u64(msg.rejectIndex, "rejectIndex");
      w.u64(msg.hintIndex, "hintIndex");
      w.u64(msg.hintTerm, "hintTerm");
      // Optional, written only when present (so every other response keeps
      // its version-1 bytes): a repaired follower catching up.
      if (msg.catchUpIndex !== undefined) {
        if (msg.catchUpIndex === 0) {
          throw new MessageEncodeError(
            "invalid_value",
            "catchUpIndex",
            "catchUpIndex must be at least 1 when present",
          );
        }
        w.u64(msg.catchUpIndex, "catchUpIndex");
      }
      return;
    case "Heartbeat":
      w.u64(msg.commit, "commit");
      w.u64(msg.context, "context");
      return;
    case "HeartbeatResponse":
      w.u64(msg.context, "context");
      return;
    case "InstallSnapshot":
      writeSnapshotMeta(w, msg.meta);
      w.u64(msg.offset, "offset");
      w.bytes(msg.data, "data");
      w.bool(msg.done);
      return;
    case "InstallSnapshotResponse":
      w.u64(msg.snapshotIndex, "snapshotIndex");
      w.u64(msg.nextOffset, "nextOffset");
      w.bool(msg.success);
      w.bool(msg.done);
      return;
    case "TimeoutNow":
      return;
    case "ReadIndexRequest":
      w.bytes(msg.context, "context");
      return;
    case "ReadIndexResponse":
      w.bytes(msg.context, "context");
      w.u64(msg.index, "index");
      w.bool(msg.success);
      return;
    case "Propose": {
      const commands = msg.commands;
      const n = commands.length;
      w.u32(n, "commands.length");
      for (let i = 0; i < n; i++) w.bytes(commands[i], "commands[]");
      return;
    }
    case "Removed":
      // An optional field: a presence flag, then the value only if present.
      if (msg.configIndex === undefined) w.bool(false);
      else {
        w.bool(true);
        w.u64(msg.configIndex, "configIndex");
      }
      return;
    default: {
      // A new member of Message without a case here is a compile error.
      const unknown: never = msg;
      throw new MessageEncodeError(
        "invalid_value",
        "type",
        `unknown message ${String(unknown)}`,
      );
    }
  }
}

function takeShared(): ByteWriter {
  shared.reset();
  return shared;
}

function finishShared(): Uint8Array {
  const out = shared.toBytes();
  if (shared.capacity > MAX_RETAINED_WRITER_BYTES) shared.shrink(64 * 1024);
  return out;
}

/**
 * Encodes one message. The result is a fresh array owned by the caller.
 * Throws {@linkcode MessageEncodeError} when a number is not a safe integer
 * `>= 0` (nothing is returned then).
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "@raft-io/raft/codec";
 * const bytes = encodeMessage({
 *   type: "AppendEntries", from: 1, to: 2, term: 5, prevLogIndex: 9, prevLogTerm: 4,
 *   entries: [{ index: 10, term: 5, kind: "normal", data: new Uint8Array([42]) }],
 *   leaderCommit: 8,
 * });
 * decodeMessage(bytes).type; // "AppendEntries"
 * ```
 */
export function encodeMessage(msg: Message): Uint8Array {
  const w = takeShared();
  try {
    encodeMessageInto(w, msg);
  } catch (e) {
    w.reset();
    throw e;
  }
  return finishShared();
}

/**
 * Encodes many messages into one buffer (a batch, for one transport write):
 * the version byte, a 4-byte count, then each message as a 4-byte length
 * followed by exactly what {@linkcode encodeMessage} produces for it.
 *
 * @example
 * ```ts
 * import { decodeMessages, encodeMessages } from "@raft-io/raft/codec";
 * const bytes = encodeMessages([
 *   { type: "TimeoutNow", from: 1, to: 2, term: 3 },
 *   { type: "HeartbeatResponse", from: 2, to: 1, term: 3, context: 7 },
 * ]);
 * decodeMessages(bytes).length; // 2
 * ```
 */
export function encodeMessages(msgs: readonly Message[]): Uint8Array {
  const w = takeShared();
  try {
    encodeMessagesInto(w, msgs);
  } catch (e) {
    w.reset();
    throw e;
  }
  return finishShared();
}

/**
 * Appends a batch (see {@linkcode encodeMessages}) to `writer` without a
 * reset or a copy.
 *
 * @example
 * ```ts
 * import { ByteWriter, encodeMessagesInto } from "@raft-io/raft/codec";
 * const w = new ByteWriter();
 * encodeMessagesInto(w, [{ type: "TimeoutNow", from: 1, to: 2, term: 3 }]);
 * w.pos; // 1 + 4 + 4 + 26
 * ```
 */
export function encodeMessagesInto(
  writer: ByteWriter,
  msgs: readonly Message[],
): void {
  const n = msgs.length;
  writer.u8(MESSAGE_FORMAT_VERSION);
  writer.u32(n, "messages.length");
  for (let i = 0; i < n; i++) {
    const at = writer.pos;
    writer.u32(0, "length");
    encodeMessageInto(writer, msgs[i]);
    writer.patchU32(at, writer.pos - at - 4);
  }
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

function resolveLimits(limits?: Partial<DecodeLimits>): DecodeLimits {
  if (limits === undefined) return DEFAULT_DECODE_LIMITS;
  return {
    maxMessageBytes: limits.maxMessageBytes ??
      DEFAULT_DECODE_LIMITS.maxMessageBytes,
    maxFieldBytes: limits.maxFieldBytes ?? DEFAULT_DECODE_LIMITS.maxFieldBytes,
    maxEntriesPerMessage: limits.maxEntriesPerMessage ??
      DEFAULT_DECODE_LIMITS.maxEntriesPerMessage,
    maxMessagesPerBatch: limits.maxMessagesPerBatch ??
      DEFAULT_DECODE_LIMITS.maxMessagesPerBatch,
    copyBytes: limits.copyBytes ?? DEFAULT_DECODE_LIMITS.copyBytes,
  };
}

function readVersion(r: ByteReader): void {
  const at = r.pos;
  const version = r.u8("version");
  if (version !== MESSAGE_FORMAT_VERSION) {
    throw new MessageDecodeError(
      "unknown_version",
      at,
      `format version ${version} is not supported (this codec reads version ${MESSAGE_FORMAT_VERSION})`,
    );
  }
}

function readEntryKind(r: ByteReader): EntryKind {
  const at = r.pos;
  const code = r.u8("entries[].kind");
  if (code === ENTRY_KIND_CODES.normal) return "normal";
  if (code === ENTRY_KIND_CODES.config) return "config";
  throw new MessageDecodeError(
    "unknown_tag",
    at,
    `entry kind ${code} is not in the entry kind table`,
  );
}

function readEntries(r: ByteReader, limits: DecodeLimits): Entry[] {
  const n = r.count(
    limits.maxEntriesPerMessage,
    MIN_ENTRY_BYTES,
    "entries.length",
  );
  const entries: Entry[] = new Array(n);
  const maxField = limits.maxFieldBytes;
  for (let i = 0; i < n; i++) {
    const index = r.u64("entries[].index");
    const term = r.u64("entries[].term");
    const kind = readEntryKind(r);
    const data = r.bytes(maxField, "entries[].data");
    entries[i] = { index, term, kind, data };
  }
  return entries;
}

function readCommands(r: ByteReader, limits: DecodeLimits): Uint8Array[] {
  const n = r.count(
    limits.maxEntriesPerMessage,
    MIN_COMMAND_BYTES,
    "commands.length",
  );
  const commands: Uint8Array[] = new Array(n);
  const maxField = limits.maxFieldBytes;
  for (let i = 0; i < n; i++) commands[i] = r.bytes(maxField, "commands[]");
  return commands;
}

/** Reads one message from `r.pos` to `r.end` (exactly). */
function readMessage(r: ByteReader, limits: DecodeLimits): Message {
  readVersion(r);
  const tagAt = r.pos;
  const tag = r.u8("type tag");
  const from = r.u64("from");
  const to = r.u64("to");
  const term = r.u64("term");
  let msg: Message;
  switch (tag) {
    case MESSAGE_TAGS.RequestVote: {
      const preVote = r.bool("preVote");
      const lastLogIndex = r.u64("lastLogIndex");
      const lastLogTerm = r.u64("lastLogTerm");
      const transfer = r.bool("transfer");
      msg = {
        type: "RequestVote",
        from,
        to,
        term,
        preVote,
        lastLogIndex,
        lastLogTerm,
        transfer,
      } satisfies RequestVote;
      break;
    }
    case MESSAGE_TAGS.RequestVoteResponse: {
      const preVote = r.bool("preVote");
      const granted = r.bool("granted");
      msg = {
        type: "RequestVoteResponse",
        from,
        to,
        term,
        preVote,
        granted,
      } satisfies RequestVoteResponse;
      break;
    }
    case MESSAGE_TAGS.AppendEntries: {
      const prevLogIndex = r.u64("prevLogIndex");
      const prevLogTerm = r.u64("prevLogTerm");
      const leaderCommit = r.u64("leaderCommit");
      const entries = readEntries(r, limits);
      msg = {
        type: "AppendEntries",
        from,
        to,
        term,
        prevLogIndex,
        prevLogTerm,
        entries,
        leaderCommit,
      } satisfies AppendEntries;
      break;
    }
    case MESSAGE_TAGS.AppendEntriesResponse: {
      const success = r.bool("success");
      const matchIndex = r.u64("matchIndex");
      const rejectIndex = r.u64("rejectIndex");
      const hintIndex = r.u64("hintIndex");
      const hintTerm = r.u64("hintTerm");
      const resp: AppendEntriesResponse = {
        type: "AppendEntriesResponse",
        from,
        to,
        term,
        success,
        matchIndex,
        rejectIndex,
        hintIndex,
        hintTerm,
      };
      if (r.pos < r.end) {
        const at = r.pos;
        const catchUpIndex = r.u64("catchUpIndex");
        if (catchUpIndex === 0) {
          // Absent is written as nothing: a zero would not be canonical.
          throw new MessageDecodeError(
            "invalid_value",
            at,
            "catchUpIndex 0 is not a valid encoding (absent is written as nothing)",
          );
        }
        resp.catchUpIndex = catchUpIndex;
      }
      msg = resp;
      break;
    }
    case MESSAGE_TAGS.Heartbeat: {
      const commit = r.u64("commit");
      const context = r.u64("context");
      msg = {
        type: "Heartbeat",
        from,
        to,
        term,
        commit,
        context,
      } satisfies Heartbeat;
      break;
    }
    case MESSAGE_TAGS.HeartbeatResponse: {
      const context = r.u64("context");
      msg = {
        type: "HeartbeatResponse",
        from,
        to,
        term,
        context,
      } satisfies HeartbeatResponse;
      break;
    }
    case MESSAGE_TAGS.InstallSnapshot: {
      const index = r.u64("meta.index");
      const snapshotTerm = r.u64("meta.term");
      const config = r.bytes(limits.maxFieldBytes, "meta.config");
      const offset = r.u64("offset");
      const data = r.bytes(limits.maxFieldBytes, "data");
      const done = r.bool("done");
      msg = {
        type: "InstallSnapshot",
        from,
        to,
        term,
        meta: { index, term: snapshotTerm, config },
        offset,
        data,
        done,
      } satisfies InstallSnapshot;
      break;
    }
    case MESSAGE_TAGS.InstallSnapshotResponse: {
      const snapshotIndex = r.u64("snapshotIndex");
      const nextOffset = r.u64("nextOffset");
      const success = r.bool("success");
      const done = r.bool("done");
      msg = {
        type: "InstallSnapshotResponse",
        from,
        to,
        term,
        snapshotIndex,
        nextOffset,
        success,
        done,
      } satisfies InstallSnapshotResponse;
      break;
    }
    case MESSAGE_TAGS.TimeoutNow:
      msg = { type: "TimeoutNow", from, to, term } satisfies TimeoutNow;
      break;
    case MESSAGE_TAGS.ReadIndexRequest: {
      const context = r.bytes(limits.maxFieldBytes, "context");
      msg = {
        type: "ReadIndexRequest",
        from,
        to,
        term,
        context,
      } satisfies ReadIndexRequest;
      break;
    }
    case MESSAGE_TAGS.ReadIndexResponse: {
      const context = r.bytes(limits.maxFieldBytes, "context");
      const index = r.u64("index");
      const success = r.bool("success");
      msg = {
        type: "ReadIndexResponse",
        from,
        to,
        term,
        context,
        index,
        success,
      } satisfies ReadIndexResponse;
      break;
    }
    case MESSAGE_TAGS.Propose: {
      const commands = readCommands(r, limits);
      msg = {
        type: "Propose",
        from,
        to,
        term,
        commands,
      } satisfies Propose;
      break;
    }
    case MESSAGE_TAGS.Removed: {
      const removed: Removed = { type: "Removed", from, to, term };
      if (r.bool("hasConfigIndex")) {
        removed.configIndex = r.u64("configIndex");
      }
      msg = removed;
      break;
    }
    default:
      throw new MessageDecodeError(
        "unknown_tag",
        tagAt,
        `message type tag ${tag} is not in the tag table`,
      );
  }
  r.expectEnd("message");
  return msg;
}

function checkMessageSize(size: number, at: number, limits: DecodeLimits) {
  if (size > limits.maxMessageBytes) {
    throw new MessageDecodeError(
      "length_limit",
      at,
      `message is ${size} bytes, above the limit of ${limits.maxMessageBytes}`,
    );
  }
}

/**
 * Decodes one message produced by {@linkcode encodeMessage}. Throws
 * {@linkcode MessageDecodeError} — and nothing else — for any input that is
 * not exactly one valid message within `limits`.
 *
 * @example
 * ```ts
 * import { decodeMessage, encodeMessage } from "@raft-io/raft/codec";
 * const msg = decodeMessage(
 *   encodeMessage({ type: "Heartbeat", from: 1, to: 2, term: 3, commit: 4, context: 0 }),
 *   { maxMessageBytes: 1024 },
 * );
 * msg.type === "Heartbeat" && msg.commit; // 4
 * ```
 */
export function decodeMessage(
  bytes: Uint8Array,
  limits?: Partial<DecodeLimits>,
): Message {
  const l = resolveLimits(limits);
  checkMessageSize(bytes.byteLength, 0, l);
  // One copy of the whole input, then views into it: much cheaper than a
  // separate allocation per byte field (see bench/codec_messages_bench.ts).
  const input = l.copyBytes ? bytes.slice() : bytes;
  return readMessage(new ByteReader(input), l);
}

/**
 * Decodes a batch produced by {@linkcode encodeMessages}. All or nothing:
 * any invalid message (or a count, length or trailing byte that does not
 * fit) throws {@linkcode MessageDecodeError} for the whole batch.
 *
 * @example
 * ```ts
 * import { decodeMessages, encodeMessages } from "@raft-io/raft/codec";
 * decodeMessages(encodeMessages([])).length; // 0
 * ```
 */
export function decodeMessages(
  bytes: Uint8Array,
  limits?: Partial<DecodeLimits>,
): Message[] {
  const l = resolveLimits(limits);
  const input = l.copyBytes ? bytes.slice() : bytes;
  const r = new ByteReader(input);
  readVersion(r);
  const n = r.count(
    l.maxMessagesPerBatch,
    MIN_BATCHED_MESSAGE_BYTES,
    "messages.length",
  );
  const out: Message[] = new Array(n);
  const batchEnd = r.end;
  for (let i = 0; i < n; i++) {
    const at = r.pos;
    const size = r.u32("message length");
    checkMessageSize(size, at, l);
    if (size > batchEnd - r.pos) {
      throw new MessageDecodeError(
        "short_read",
        at,
        `message length ${size} runs past the end of the batch (${
          batchEnd - r.pos
        } bytes remain)`,
      );
    }
    r.end = r.pos + size;
    out[i] = readMessage(r, l);
    r.end = batchEnd;
  }
  r.expectEnd("batch");
  return out;
}
