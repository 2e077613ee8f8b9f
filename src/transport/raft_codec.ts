/**
 * The {@linkcode MessageCodec} for Raft messages: raft-io's binary wire
 * codec (`encodeMessages` / `decodeMessages`) in the shape transports take.
 *
 * @module
 */

import type { Message } from "../core/messages.ts";
import type { ByteWriter } from "../codec/binary.ts";
import {
  decodeMessages,
  encodeMessages,
  encodeMessagesInto,
} from "../codec/messages.ts";
import type { MessageCodec } from "./raft_transport.ts";

/**
 * Encodes batches of Raft {@linkcode Message}s for a transport. Decoding
 * does not copy the input again: transports hand it a buffer of its own.
 *
 * @example
 * ```ts
 * import { raftMessageCodec } from "@raft-io/raft";
 * const bytes = raftMessageCodec.encodeBatch([{ type: "TimeoutNow", from: 1, to: 2, term: 3 }]);
 * raftMessageCodec.decodeBatch(bytes)[0].type; // "TimeoutNow"
 * ```
 */
export const raftMessageCodec: MessageCodec<Message> = {
  encodeBatch(msgs: Message[]): Uint8Array {
    return encodeMessages(msgs);
  },
  encodeBatchInto(writer: ByteWriter, msgs: Message[]): void {
    encodeMessagesInto(writer, msgs);
  },
  decodeBatch(bytes: Uint8Array): Message[] {
    return decodeMessages(bytes, { copyBytes: false });
  },
};
