/**
 * The transport seam of raft-io: how one node's messages reach another.
 *
 * A {@linkcode RaftTransport} is deliberately lossy: {@linkcode RaftTransport.send}
 * never blocks and may drop a message (a full queue, a peer that is down, a
 * partition). Raft tolerates loss — every message is retried by the protocol
 * itself (heartbeats, probes, re-sent appends) — so a transport that drops
 * and counts is safer than one that buffers without bound.
 *
 * Transports are generic over the message type `M`. Where bytes are needed
 * (TCP), the encoding is injected as a {@linkcode MessageCodec}; raft-io's
 * wire codec (`encodeMessages` / `decodeMessages`) fits it directly.
 *
 * @module
 */

import type { ByteWriter } from "../codec/binary.ts";

/**
 * Turns a batch of messages into bytes and back. Implementations must throw
 * (any error) on bytes they cannot decode; the transport counts the frame as
 * malformed and closes the connection that sent it.
 *
 * @example
 * ```ts
 * import type { MessageCodec } from "@raft-io/raft";
 * const jsonCodec: MessageCodec<{ n: number }> = {
 *   encodeBatch: (msgs) => new TextEncoder().encode(JSON.stringify(msgs)),
 *   decodeBatch: (bytes) => JSON.parse(new TextDecoder().decode(bytes)),
 * };
 * jsonCodec.decodeBatch(jsonCodec.encodeBatch([{ n: 1 }])); // [{ n: 1 }]
 * ```
 */
export interface MessageCodec<M> {
  /** Encodes `msgs` (in order) into one byte string. */
  encodeBatch(msgs: M[]): Uint8Array;
  /** Decodes what {@linkcode MessageCodec.encodeBatch} produced. Throws on bad bytes. */
  decodeBatch(bytes: Uint8Array): M[];
  /**
   * Optional fast path: appends exactly the bytes `encodeBatch(msgs)` would
   * return to `writer`, so the TCP transport can encode a batch straight
   * into its frame buffer (no intermediate copies). Throws like
   * `encodeBatch`; `writer` is then reset by the caller.
   */
  encodeBatchInto?(writer: ByteWriter, msgs: M[]): void;
}

/**
 * Called once per inbound message. `from` is the id of the peer the message
 * came from as the transport knows it (for TCP: the id the peer proved in the
 * authenticated handshake), which a receiver may compare with the message's
 * own sender field.
 */
export type MessageHandler<M> = (message: M, from: number) => void;

/** Per-peer counters of a transport. */
export interface PeerStats {
  /** Messages handed to the wire (or to the simulated network) for this peer. */
  sent: number;
  /** Messages for this peer that were dropped (full queue, peer down, fault). */
  dropped: number;
  /** Messages received from this peer. */
  received: number;
  /** Messages waiting in this peer's outbound queue. */
  queued: number;
  /** Whether an authenticated outbound connection to the peer is up (always true in memory). */
  connected: boolean;
}

/** Counters every transport keeps. All are monotonic except `queued`/`connected`. */
export interface TransportStats {
  /** Messages accepted by `send` and handed onwards. */
  messagesSent: number;
  /** Messages delivered to the handler. */
  messagesReceived: number;
  /** Messages dropped on the sending side, for any reason. */
  messagesDropped: number;
  /** Per-peer counters, by peer id. */
  peers: Record<number, PeerStats>;
}

/**
 * Moves messages between Raft nodes. `send` never blocks and may drop;
 * inbound messages go to the handler set with `onMessage`.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "@raft-io/raft";
 * const net = new MemoryNetwork<string>();
 * const a = net.endpoint(1);
 * const b = net.endpoint(2);
 * b.onMessage((msg, from) => console.log(`${from} says ${msg}`));
 * a.send(2, "hello");
 * await net.settle();
 * await net.close();
 * ```
 */
export interface RaftTransport<M> {
  /** The id of the local node. */
  readonly id: number;
  /**
   * Queues `message` for peer `to` and returns at once. The message may be
   * dropped (and counted); it is never delivered twice by the transport
   * itself (a faulty simulated network may duplicate on purpose).
   */
  send(to: number, message: M): void;
  /** Sets the handler for inbound messages (replaces any previous one). */
  onMessage(handler: MessageHandler<M>): void;
  /** A snapshot of the transport's counters. */
  stats(): TransportStats;
  /**
   * Optional: sets a callback for peers that could not be reached (their
   * queued messages were lost), so the driver can tell the Raft node.
   */
  onUnreachable?(handler: (peerId: number) => void): void;
  /**
   * Optional: adds a peer or changes its address. `RaftServer` calls it for
   * every member with an address in the applied configuration (at start,
   * on every change, after a snapshot restore), so nodes learn each
   * other's addresses from the replicated configuration alone.
   */
  addPeer?(peerId: number, address: string): void;
  /** Stops sending and receiving, releases every socket and timer. Idempotent. */
  close(): Promise<void>;
}
