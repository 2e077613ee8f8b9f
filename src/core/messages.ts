/**
 * Every message one {@linkcode RaftNode} sends to another, as a plain
 * discriminated union on `type`. No classes, no methods: the wire codec
 * (`src/codec/`) encodes these objects field by field, and the simulator
 * passes them around unchanged.
 *
 * Common fields of every message:
 * - `from`, `to`: node ids (positive safe integers);
 * - `term`: the sender's current term (§5.1). Pre-vote requests carry the
 *   term the sender *would* campaign in (its term + 1) without having
 *   adopted it (§9.6 of Ongaro's thesis).
 *
 * All numbers are JavaScript numbers holding non-negative safe integers.
 * Byte fields are `Uint8Array` (never `string`).
 *
 * @module
 */

import type { Entry, SnapshotMeta } from "../log/raft_log.ts";

/**
 * A candidate asks for a vote (§5.2), or a pre-candidate asks whether it
 * could win an election (`preVote: true`, thesis §9.6).
 */
export interface RequestVote {
  /** Discriminant. */
  type: "RequestVote";
  /** Sender id. */
  from: number;
  /** Recipient id. */
  to: number;
  /** The candidate's term (for a pre-vote: the term it would campaign in). */
  term: number;
  /** True for a pre-vote: the recipient changes no state when answering. */
  preVote: boolean;
  /** Index of the candidate's last log entry (§5.4.1 up-to-date check). */
  lastLogIndex: number;
  /** Term of the candidate's last log entry. */
  lastLogTerm: number;
  /**
   * True when the election was triggered by a leadership transfer
   * (TimeoutNow): recipients then ignore leader stickiness, because the
   * current leader itself asked for the election (thesis §3.10).
   */
  transfer: boolean;
}

/** The answer to a {@linkcode RequestVote}. */
export interface RequestVoteResponse {
  /** Discriminant. */
  type: "RequestVoteResponse";
  /** Sender id. */
  from: number;
  /** Recipient id. */
  to: number;
  /**
   * The voter's term; for a granted pre-vote the term of the request (so the
   * pre-candidate can match it), for a rejection the voter's current term.
   */
  term: number;
  /** Answers a pre-vote request. */
  preVote: boolean;
  /** Whether the vote (or pre-vote) was granted. */
  granted: boolean;
}

/**
 * The leader replicates entries (§5.3). With no entries it is also a probe
 * for the follower's log position.
 */
export interface AppendEntries {
  /** Discriminant. */
  type: "AppendEntries";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id. */
  to: number;
  /** The leader's term. */
  term: number;
  /** Index of the entry immediately preceding `entries`. */
  prevLogIndex: number;
  /** Term of the entry at `prevLogIndex`. */
  prevLogTerm: number;
  /** Entries to store, consecutive from `prevLogIndex + 1` (may be empty). */
  entries: Entry[];
  /** The leader's commit index. */
  leaderCommit: number;
}

/** The answer to an {@linkcode AppendEntries}. */
export interface AppendEntriesResponse {
  /** Discriminant. */
  type: "AppendEntriesResponse";
  /** Sender id (the follower). */
  from: number;
  /** Recipient id (the leader). */
  to: number;
  /** The follower's term. */
  term: number;
  /** True when the follower's log matches the leader's up to `matchIndex`. */
  success: boolean;
  /**
   * On success: the highest index known to match the leader's log
   * (`prevLogIndex + entries.length` of the acknowledged request).
   * On rejection: 0.
   */
  matchIndex: number;
  /** On rejection: the `prevLogIndex` that did not match. On success: 0. */
  rejectIndex: number;
  /**
   * On rejection, a hint for fast back-tracking (§5.3, "the follower can
   * include the term of the conflicting entry"): the largest index
   * `hintIndex <= rejectIndex` in the follower's log whose term is
   * `<= hintTerm`, where `hintTerm` is that entry's term. The leader then
   * skips every index its own log proves cannot match. On success: 0.
   */
  hintIndex: number;
  /** Term of the follower's entry at `hintIndex` (see `hintIndex`). On success: 0. */
  hintTerm: number;
  /**
   * Present while the follower is catching up after a repair of its log
   * (`RaftLog.needsCatchUp`): the highest index it may have acknowledged
   * before and since lost (≥ 1). The leader then forgets that follower's
   * earlier acknowledgements (see the core's catch_up.ts). Absent normally.
   */
  catchUpIndex?: number;
}

/**
 * A leader's heartbeat: keeps followers from campaigning, advances their
 * commit index, and confirms leadership for ReadIndex rounds (§6.4).
 */
export interface Heartbeat {
  /** Discriminant. */
  type: "Heartbeat";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id. */
  to: number;
  /** The leader's term. */
  term: number;
  /**
   * `min(leaderCommit, follower's matchIndex)`: never points past what the
   * follower is known to hold, so a follower can adopt it without a log check.
   */
  commit: number;
  /**
   * The read round this heartbeat confirms (a leader-local sequence number,
   * 0 when the heartbeat carries no read round). Echoed in the response.
   */
  context: number;
}

/** The answer to a {@linkcode Heartbeat}. */
export interface HeartbeatResponse {
  /** Discriminant. */
  type: "HeartbeatResponse";
  /** Sender id (the follower). */
  from: number;
  /** Recipient id (the leader). */
  to: number;
  /** The follower's term. */
  term: number;
  /** The `context` of the heartbeat being answered. */
  context: number;
}

/**
 * One chunk of a snapshot sent to a follower that is behind the leader's
 * first log index (§7). Chunks are sent in order; the follower acknowledges
 * each one and the leader sends the next only after the acknowledgement.
 */
export interface InstallSnapshot {
  /** Discriminant. */
  type: "InstallSnapshot";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id. */
  to: number;
  /** The leader's term. */
  term: number;
  /** What the snapshot stands for (index, term, configuration). */
  meta: SnapshotMeta;
  /** Byte offset of `data` within the whole snapshot. */
  offset: number;
  /** This chunk's bytes. */
  data: Uint8Array;
  /** True for the last chunk. */
  done: boolean;
}

/** The answer to an {@linkcode InstallSnapshot} chunk. */
export interface InstallSnapshotResponse {
  /** Discriminant. */
  type: "InstallSnapshotResponse";
  /** Sender id (the follower). */
  from: number;
  /** Recipient id (the leader). */
  to: number;
  /** The follower's term. */
  term: number;
  /** `meta.index` of the snapshot being transferred. */
  snapshotIndex: number;
  /**
   * The byte offset the follower expects next. After a successful final
   * chunk this is the snapshot's total length.
   */
  nextOffset: number;
  /** True when the chunk was accepted (false: resume from `nextOffset`). */
  success: boolean;
  /** True when the whole snapshot is installed. */
  done: boolean;
}

/**
 * Leadership transfer (thesis §3.10): the leader tells a caught-up follower
 * to campaign at once, without waiting for its election timeout.
 */
export interface TimeoutNow {
  /** Discriminant. */
  type: "TimeoutNow";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id (the transfer target). */
  to: number;
  /** The leader's term. */
  term: number;
}

/**
 * A follower relays a linearizable read to the leader (§6.4 "followers can
 * serve reads"): the leader runs a ReadIndex round and answers with the
 * index the follower must apply up to before serving the read.
 */
export interface ReadIndexRequest {
  /** Discriminant. */
  type: "ReadIndexRequest";
  /** Sender id (the follower). */
  from: number;
  /** Recipient id (the leader). */
  to: number;
  /** The follower's term. */
  term: number;
  /** The caller's opaque read context, echoed back. */
  context: Uint8Array;
}

/** The leader's answer to a {@linkcode ReadIndexRequest}. */
export interface ReadIndexResponse {
  /** Discriminant. */
  type: "ReadIndexResponse";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id (the follower). */
  to: number;
  /** The leader's term. */
  term: number;
  /** The context of the request. */
  context: Uint8Array;
  /** The read index; meaningful only when `success`. */
  index: number;
  /** False when the recipient could not serve the read (e.g. no longer leader). */
  success: boolean;
}

/**
 * A follower forwards proposals to the leader (proposal forwarding). The
 * leader appends them as normal entries; the forwarding node learns of their
 * outcome only by applying the log (forwarded proposals are best effort).
 */
export interface Propose {
  /** Discriminant. */
  type: "Propose";
  /** Sender id (the forwarding node). */
  from: number;
  /** Recipient id (the leader as the sender knows it). */
  to: number;
  /** The sender's term. */
  term: number;
  /** The application commands, in order. */
  commands: Uint8Array[];
}

/**
 * The leader tells a node that is not in its (committed) latest
 * configuration that it was removed from the cluster: the node stops
 * campaigning and refuses proposals and reads (`RaftNode.removed`). Sent in
 * answer to any request or response from such a node, at most once per peer
 * per election timeout.
 */
export interface Removed {
  /** Discriminant. */
  type: "Removed";
  /** Sender id (the leader). */
  from: number;
  /** Recipient id (the removed node). */
  to: number;
  /** The leader's term. */
  term: number;
  /**
   * Index of the leader's configuration that does not contain the recipient
   * (so a node re-added later can tell a stale notice from a new one).
   */
  configIndex?: number;
}

/** Every message of the protocol, discriminated by `type`. */
export type Message =
  | RequestVote
  | RequestVoteResponse
  | AppendEntries
  | AppendEntriesResponse
  | Heartbeat
  | HeartbeatResponse
  | InstallSnapshot
  | InstallSnapshotResponse
  | TimeoutNow
  | ReadIndexRequest
  | ReadIndexResponse
  | Propose
  | Removed;

/** The `type` of a {@linkcode Message}. */
export type MessageType = Message["type"];

/**
 * Every message type, in a fixed order. The order here is documentation
 * only; the wire codec defines its own stable numeric tags.
 *
 * @example
 * ```ts
 * import { MESSAGE_TYPES } from "@raft-io/raft/core";
 * MESSAGE_TYPES.includes("AppendEntries"); // true
 * ```
 */
export const MESSAGE_TYPES: readonly MessageType[] = Object.freeze([
  "RequestVote",
  "RequestVoteResponse",
  "AppendEntries",
  "AppendEntriesResponse",
  "Heartbeat",
  "HeartbeatResponse",
  "InstallSnapshot",
  "InstallSnapshotResponse",
  "TimeoutNow",
  "ReadIndexRequest",
  "ReadIndexResponse",
  "Propose",
  "Removed",
]);

/**
 * True for messages a node may only send after its own log and hard state
 * are durable (votes, append/snapshot acknowledgements). The core puts these
 * in `Ready.persistedMessages`; this helper lets a driver or a test check it.
 *
 * @example
 * ```ts
 * import { needsDurability } from "@raft-io/raft/core";
 * needsDurability({ type: "TimeoutNow", from: 1, to: 2, term: 3 }); // false
 * needsDurability({
 *   type: "RequestVoteResponse", from: 2, to: 1, term: 3, preVote: false, granted: true,
 * }); // true
 * ```
 */
export function needsDurability(message: Message): boolean {
  switch (message.type) {
    case "RequestVote":
    case "RequestVoteResponse":
      // A real vote (request or grant) is only safe once the sender's term
      // and vote are durable; pre-votes change no state.
      return !message.preVote;
    case "AppendEntriesResponse":
    case "InstallSnapshotResponse":
      return true;
    case "AppendEntries":
    case "InstallSnapshot":
    case "Heartbeat":
    case "HeartbeatResponse":
    case "TimeoutNow":
    case "ReadIndexRequest":
    case "ReadIndexResponse":
    case "Propose":
    case "Removed":
      return false;
    default: {
      const never: never = message;
      throw new Error(`unknown message ${JSON.stringify(never)}`);
    }
  }
}
