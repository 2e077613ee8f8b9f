/**
 * Typed errors of the message codec.
 *
 * Decoding never throws anything but {@linkcode MessageDecodeError}, whatever
 * the bytes; encoding throws {@linkcode MessageEncodeError} for a message that
 * cannot be represented (a number that is not a safe non-negative integer, a
 * field over the format's size limits).
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";

/**
 * Why a decode failed. The values are stable: match on them, do not parse
 * the error message.
 *
 * - `short_read`: the bytes end before a field does.
 * - `unsafe_integer`: a 64-bit number above `Number.MAX_SAFE_INTEGER`.
 * - `unknown_version`: the first byte is not a format version this codec reads.
 * - `unknown_tag`: a message type tag (or entry kind, or other enum) not in the table.
 * - `length_limit`: a length or count above the configured limit (checked
 *   before anything of that size is allocated).
 * - `trailing_bytes`: bytes left over after a complete message.
 * - `invalid_value`: a field with a value its type does not allow (a boolean
 *   that is neither 0 nor 1, for example).
 */
export type MessageDecodeErrorReason =
  | "short_read"
  | "unsafe_integer"
  | "unknown_version"
  | "unknown_tag"
  | "length_limit"
  | "trailing_bytes"
  | "invalid_value";

/**
 * Thrown by `decodeMessage` / `decodeMessages` for any bytes that are not a
 * valid encoding. The peer that sent them is either broken, malicious, or runs
 * an incompatible raft-io version; drop the message (and usually the
 * connection).
 *
 * @example
 * ```ts
 * import { decodeMessage, MessageDecodeError } from "@raft-io/raft/codec";
 * try {
 *   decodeMessage(new Uint8Array([9]));
 * } catch (e) {
 *   if (e instanceof MessageDecodeError) console.log(e.reason, e.offset); // "unknown_version" 0
 * }
 * ```
 */
export class MessageDecodeError extends RaftIoError {
  /** Stable error code shared by every decode failure. */
  override readonly code = "MESSAGE_DECODE_FAILED" as const;
  /** Which rule the bytes broke. */
  readonly reason: MessageDecodeErrorReason;
  /** Byte offset in the input where the offending field starts. */
  readonly offset: number;

  /**
   * Creates the error; the message names the field, the reason and the offset.
   *
   * @param reason which rule the bytes broke
   * @param offset byte offset of the offending field
   * @param detail a short human description of the field and the value
   */
  constructor(
    reason: MessageDecodeErrorReason,
    offset: number,
    detail: string,
  ) {
    super(
      "MESSAGE_DECODE_FAILED",
      `cannot decode raft message: ${detail} (reason ${reason}, at byte ${offset}); ` +
        "drop the message: the sender is broken or runs an incompatible raft-io version",
    );
    this.name = "MessageDecodeError";
    this.reason = reason;
    this.offset = offset;
  }
}

/**
 * Why an encode failed. Stable values:
 *
 * - `unsafe_integer`: a number field is not a safe integer `>= 0`.
 * - `length_limit`: a byte field or list is longer than the format allows
 *   (2^32 - 1).
 * - `invalid_value`: a field has a value its type does not allow (an unknown
 *   message type or entry kind, for example).
 */
export type MessageEncodeErrorReason =
  | "unsafe_integer"
  | "length_limit"
  | "invalid_value";

/**
 * Thrown by `encodeMessage` / `encodeMessages` for a message that cannot be
 * put on the wire. This is a bug in the caller (the core only produces
 * encodable messages); nothing is sent.
 *
 * @example
 * ```ts
 * import { encodeMessage, MessageEncodeError } from "@raft-io/raft/codec";
 * try {
 *   encodeMessage({ type: "TimeoutNow", from: 1, to: 2, term: -1 });
 * } catch (e) {
 *   if (e instanceof MessageEncodeError) console.log(e.field); // "term"
 * }
 * ```
 */
export class MessageEncodeError extends RaftIoError {
  /** Stable error code shared by every encode failure. */
  override readonly code = "MESSAGE_ENCODE_FAILED" as const;
  /** Which rule the message broke. */
  readonly reason: MessageEncodeErrorReason;
  /** Name of the offending field (e.g. `"term"`, `"entries[3].index"`). */
  readonly field: string;

  /**
   * Creates the error; the message names the field and the reason.
   *
   * @param reason which rule the message broke
   * @param field the offending field
   * @param detail a short human description of the value
   */
  constructor(reason: MessageEncodeErrorReason, field: string, detail: string) {
    super(
      "MESSAGE_ENCODE_FAILED",
      `cannot encode raft message field ${field}: ${detail} (reason ${reason}); ` +
        "ids, terms and indexes must be safe integers >= 0",
    );
    this.name = "MessageEncodeError";
    this.reason = reason;
    this.field = field;
  }
}
