/**
 * fast-check generators for every message type, plus the complete field
 * list of each type. Both are typed so that a new message type, or a new
 * field on an existing one, is a compile error here until it is covered.
 *
 * @module
 */

import fc from "fast-check";
import type { Entry, SnapshotMeta } from "../../src/log/raft_log.ts";
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
} from "../../src/core/messages.ts";

/** `fc.record` with ordinary prototypes (deepStrictEqual compares prototypes). */
function rec<T>(
  model: { [K in keyof T]: fc.Arbitrary<T[K]> },
): fc.Arbitrary<T> {
  return fc.record(model, { noNullPrototype: true });
}

/** A message of one given type. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

/** Every key of T, required — so an added (even optional) field must be listed. */
type AllKeys<T> = { [K in keyof Required<T>]: true };

/** The complete field list of each message type (see the module doc). */
export const MESSAGE_FIELDS: { [T in MessageType]: AllKeys<MessageOf<T>> } = {
  RequestVote: {
    type: true,
    from: true,
    to: true,
    term: true,
    preVote: true,
    lastLogIndex: true,
    lastLogTerm: true,
    transfer: true,
  } satisfies AllKeys<RequestVote>,
  RequestVoteResponse: {
    type: true,
    from: true,
    to: true,
    term: true,
    preVote: true,
    granted: true,
  } satisfies AllKeys<RequestVoteResponse>,
  AppendEntries: {
    type: true,
    from: true,
    to: true,
    term: true,
    prevLogIndex: true,
    prevLogTerm: true,
    entries: true,
    leaderCommit: true,
  } satisfies AllKeys<AppendEntries>,
  AppendEntriesResponse: {
    type: true,
    from: true,
    to: true,
    term: true,
    success: true,
    matchIndex: true,
    rejectIndex: true,
    hintIndex: true,
    hintTerm: true,
    catchUpIndex: true,
  } satisfies AllKeys<AppendEntriesResponse>,
  Heartbeat: {
    type: true,
    from: true,
    to: true,
    term: true,
    commit: true,
    context: true,
  } satisfies AllKeys<Heartbeat>,
  HeartbeatResponse: {
    type: true,
    from: true,
    to: true,
    term: true,
    context: true,
  } satisfies AllKeys<HeartbeatResponse>,
  InstallSnapshot: {
    type: true,
    from: true,
    to: true,
    term: true,
    meta: true,
    offset: true,
    data: true,
    done: true,
  } satisfies AllKeys<InstallSnapshot>,
  InstallSnapshotResponse: {
    type: true,
    from: true,
    to: true,
    term: true,
    snapshotIndex: true,
    nextOffset: true,
    success: true,
    done: true,
  } satisfies AllKeys<InstallSnapshotResponse>,
  TimeoutNow: {
    type: true,
    from: true,
    to: true,
    term: true,
  } satisfies AllKeys<TimeoutNow>,
  ReadIndexRequest: {
    type: true,
    from: true,
    to: true,
    term: true,
    context: true,
  } satisfies AllKeys<ReadIndexRequest>,
  ReadIndexResponse: {
    type: true,
    from: true,
    to: true,
    term: true,
    context: true,
    index: true,
    success: true,
  } satisfies AllKeys<ReadIndexResponse>,
  Propose: {
    type: true,
    from: true,
    to: true,
    term: true,
    commands: true,
  } satisfies AllKeys<Propose>,
  Removed: {
    type: true,
    from: true,
    to: true,
    term: true,
    configIndex: true,
  } satisfies AllKeys<Removed>,
};

/** The complete field list of an entry and of snapshot metadata. */
export const ENTRY_FIELDS: AllKeys<Entry> = {
  index: true,
  term: true,
  kind: true,
  data: true,
};
/** See {@linkcode ENTRY_FIELDS}. */
export const SNAPSHOT_META_FIELDS: AllKeys<SnapshotMeta> = {
  index: true,
  term: true,
  config: true,
};

/** Safe non-negative integers, biased to the edges: 0, 1, 2^32 ± 1, 2^53 - 1. */
export const safeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(
    0,
    1,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0001,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER - 1,
  ),
  fc.nat(1000),
  fc.maxSafeNat(),
);

/**
 * Byte strings: mostly small, sometimes empty, sometimes large (up to
 * 256 KiB, filled from a seed so generation stays fast).
 */
export const bytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(new Uint8Array(0)) },
  { weight: 6, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.integer({ min: 1, max: 256 * 1024 }), fc.nat())
      .map(([n, seed]) => {
        const out = new Uint8Array(n);
        let x = seed | 1;
        for (let i = 0; i < n; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          out[i] = x & 0xff;
        }
        return out;
      }),
  },
);

/** Entries with any kind, any data (empty and large included). */
export const entry: fc.Arbitrary<Entry> = rec({
  index: safeNumber,
  term: safeNumber,
  kind: fc.constantFrom("normal" as const, "config" as const),
  data: bytes,
});

const snapshotMeta: fc.Arbitrary<SnapshotMeta> = rec({
  index: safeNumber,
  term: safeNumber,
  config: bytes,
});

const n = safeNumber;
const b = fc.boolean();

/** One generator per message type; missing a type is a compile error. */
export const MESSAGE_ARBITRARIES: {
  [T in MessageType]: fc.Arbitrary<MessageOf<T>>;
} = {
  RequestVote: rec({
    type: fc.constant("RequestVote" as const),
    from: n,
    to: n,
    term: n,
    preVote: b,
    lastLogIndex: n,
    lastLogTerm: n,
    transfer: b,
  }),
  RequestVoteResponse: rec({
    type: fc.constant("RequestVoteResponse" as const),
    from: n,
    to: n,
    term: n,
    preVote: b,
    granted: b,
  }),
  AppendEntries: rec({
    type: fc.constant("AppendEntries" as const),
    from: n,
    to: n,
    term: n,
    prevLogIndex: n,
    prevLogTerm: n,
    entries: fc.array(entry, { maxLength: 12 }),
    leaderCommit: n,
  }),
  // `catchUpIndex` is optional (and never 0); its absence is covered by a pinned test.
  AppendEntriesResponse: rec({
    type: fc.constant("AppendEntriesResponse" as const),
    from: n,
    to: n,
    term: n,
    success: b,
    matchIndex: n,
    rejectIndex: n,
    hintIndex: n,
    hintTerm: n,
    catchUpIndex: n.map((x) => Math.max(x, 1)),
  }),
  Heartbeat: rec({
    type: fc.constant("Heartbeat" as const),
    from: n,
    to: n,
    term: n,
    commit: n,
    context: n,
  }),
  HeartbeatResponse: rec({
    type: fc.constant("HeartbeatResponse" as const),
    from: n,
    to: n,
    term: n,
    context: n,
  }),
  InstallSnapshot: rec({
    type: fc.constant("InstallSnapshot" as const),
    from: n,
    to: n,
    term: n,
    meta: snapshotMeta,
    offset: n,
    data: bytes,
    done: b,
  }),
  InstallSnapshotResponse: rec({
    type: fc.constant("InstallSnapshotResponse" as const),
    from: n,
    to: n,
    term: n,
    snapshotIndex: n,
    nextOffset: n,
    success: b,
    done: b,
  }),
  TimeoutNow: rec({
    type: fc.constant("TimeoutNow" as const),
    from: n,
    to: n,
    term: n,
  }),
  ReadIndexRequest: rec({
    type: fc.constant("ReadIndexRequest" as const),
    from: n,
    to: n,
    term: n,
    context: bytes,
  }),
  ReadIndexResponse: rec({
    type: fc.constant("ReadIndexResponse" as const),
    from: n,
    to: n,
    term: n,
    context: bytes,
    index: n,
    success: b,
  }),
  Propose: rec({
    type: fc.constant("Propose" as const),
    from: n,
    to: n,
    term: n,
    commands: fc.array(bytes, { maxLength: 12 }),
  }),
  // `configIndex` is optional; its absence is covered by a pinned test.
  Removed: rec({
    type: fc.constant("Removed" as const),
    from: n,
    to: n,
    term: n,
    configIndex: n,
  }),
};

/** Any message of any type, each type equally likely. */
export const anyMessage: fc.Arbitrary<Message> = fc.oneof(
  ...Object.values(MESSAGE_ARBITRARIES) as fc.Arbitrary<Message>[],
);
