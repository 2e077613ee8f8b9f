/**
 * Typed errors of the transports. Each has a stable `code`; match on it (or
 * on the class), never on the message text.
 *
 * Except for {@linkcode InsecureTransportError} (thrown by a constructor on a
 * bad configuration), these errors are never thrown at the caller of
 * `send`: the transport records them in its stats and its log, closes the
 * offending connection and keeps running.
 *
 * @module
 */

import { RaftIoError } from "../errors.ts";

/** Every stable code a transport error can carry. */
export type TransportErrorCode =
  | "AUTHENTICATION_FAILED"
  | "UNKNOWN_PEER"
  | "FRAME_TOO_LARGE"
  | "FRAME_CHECKSUM_MISMATCH"
  | "FRAME_VERSION_UNSUPPORTED"
  | "FRAME_MALFORMED"
  | "FRAME_AUTH_FAILED"
  | "CLUSTER_MISMATCH"
  | "HANDSHAKE_TIMEOUT"
  | "CONNECTION_FAILED"
  | "INSECURE_TRANSPORT"
  | "LISTEN_FAILED";

/**
 * Base class of every transport error.
 *
 * @example
 * ```ts
 * import { TransportError, UnknownPeerError } from "@raft-io/raft";
 * const e: TransportError = new UnknownPeerError(9, "127.0.0.1:50123");
 * e.code; // "UNKNOWN_PEER"
 * ```
 */
export class TransportError extends RaftIoError {
  /** Stable machine-readable code. */
  declare readonly code: TransportErrorCode;
  /** The peer involved, when known (0 when not). */
  readonly peerId: number;

  /**
   * Creates the error.
   *
   * @param code stable code
   * @param message what happened and what to do
   * @param peerId the peer involved, 0 when unknown
   */
  constructor(
    code: TransportErrorCode,
    message: string,
    peerId = 0,
    options?: ErrorOptions,
  ) {
    super(code, message, options);
    this.name = "TransportError";
    this.peerId = peerId;
  }
}

/**
 * A peer failed the challenge–response handshake: it does not know the
 * cluster secret (or we do not), or it rejected our proof.
 *
 * @example
 * ```ts
 * import { AuthenticationError } from "@raft-io/raft";
 * new AuthenticationError(2, "bad proof").code; // "AUTHENTICATION_FAILED"
 * ```
 */
export class AuthenticationError extends TransportError {
  /**
   * Creates the error.
   *
   * @param peerId the peer's claimed id (0 when it never said)
   * @param detail what failed
   */
  constructor(peerId: number, detail: string) {
    super(
      "AUTHENTICATION_FAILED",
      `peer ${peerId || "?"} failed authentication: ${detail}; ` +
        "check that every node uses the same cluster secret",
      peerId,
    );
    this.name = "AuthenticationError";
  }
}

/**
 * A peer announced a node id this node does not know (not in its peer list),
 * or a peer answered with a different id than the one we dialled.
 *
 * @example
 * ```ts
 * import { UnknownPeerError } from "@raft-io/raft";
 * new UnknownPeerError(9, "127.0.0.1:7009").peerId; // 9
 * ```
 */
export class UnknownPeerError extends TransportError {
  /**
   * Creates the error.
   *
   * @param peerId the id the peer announced
   * @param address where the connection came from or went to
   * @param detail optional extra explanation
   */
  constructor(peerId: number, address: string, detail?: string) {
    super(
      "UNKNOWN_PEER",
      `refused node id ${peerId} at ${address}: ${
        detail ?? "not a member of this node's peer list"
      }; ` +
        "add it with --peer (or addPeer) on every node, or fix its --id",
      peerId,
    );
    this.name = "UnknownPeerError";
  }
}

/**
 * A frame header announced more bytes than the configured maximum. The
 * connection is closed before any of it is buffered.
 *
 * @example
 * ```ts
 * import { FrameTooLargeError } from "@raft-io/raft";
 * new FrameTooLargeError(1 << 30, 1 << 24, 2).limit; // 16777216
 * ```
 */
export class FrameTooLargeError extends TransportError {
  /** Announced payload size in bytes. */
  readonly size: number;
  /** The configured maximum in bytes. */
  readonly limit: number;

  /**
   * Creates the error.
   *
   * @param size announced payload bytes
   * @param limit configured maximum
   * @param peerId the peer, 0 when not yet known
   */
  constructor(size: number, limit: number, peerId = 0) {
    super(
      "FRAME_TOO_LARGE",
      `frame of ${size} bytes exceeds the maximum of ${limit} bytes; connection closed ` +
        "(raise maxFrameBytes on the receiver, or lower message size limits on the sender)",
      peerId,
    );
    this.name = "FrameTooLargeError";
    this.size = size;
    this.limit = limit;
  }
}

/**
 * A frame's CRC32C did not match its bytes (corruption on the wire or a
 * peer speaking another protocol). The connection is closed.
 *
 * @example
 * ```ts
 * import { FrameChecksumError } from "@raft-io/raft";
 * new FrameChecksumError(1, 2).code; // "FRAME_CHECKSUM_MISMATCH"
 * ```
 */
export class FrameChecksumError extends TransportError {
  /**
   * Creates the error.
   *
   * @param expected the checksum in the header
   * @param actual the checksum of the bytes
   * @param peerId the peer, 0 when not yet known
   */
  constructor(expected: number, actual: number, peerId = 0) {
    super(
      "FRAME_CHECKSUM_MISMATCH",
      `frame checksum mismatch (header 0x${expected.toString(16)}, bytes 0x${
        actual.toString(16)
      }); ` +
        "connection closed",
      peerId,
    );
    this.name = "FrameChecksumError";
  }
}

/**
 * A frame carried a version byte this node does not speak, or the peer is
 * not speaking the raft-io frame protocol at all.
 *
 * @example
 * ```ts
 * import { FrameVersionError } from "@raft-io/raft";
 * new FrameVersionError(7).version; // 7
 * ```
 */
export class FrameVersionError extends TransportError {
  /** The version byte received. */
  readonly version: number;

  /**
   * Creates the error.
   *
   * @param version the version byte received
   * @param peerId the peer, 0 when not yet known
   */
  constructor(version: number, peerId = 0) {
    super(
      "FRAME_VERSION_UNSUPPORTED",
      `frame version ${version} is not supported (this node speaks version 2); ` +
        "connection closed — run the same raft-io version on every node",
      peerId,
    );
    this.name = "FrameVersionError";
    this.version = version;
  }
}

/**
 * A frame passed its checksum but its content was wrong: an unknown frame
 * kind, a handshake message out of order, or a batch the codec rejected.
 *
 * @example
 * ```ts
 * import { MalformedFrameError } from "@raft-io/raft";
 * new MalformedFrameError("unknown frame kind 99").code; // "FRAME_MALFORMED"
 * ```
 */
export class MalformedFrameError extends TransportError {
  /**
   * Creates the error.
   *
   * @param detail what was wrong
   * @param peerId the peer, 0 when not yet known
   */
  constructor(detail: string, peerId = 0) {
    super(
      "FRAME_MALFORMED",
      `malformed frame: ${detail}; connection closed`,
      peerId,
    );
    this.name = "MalformedFrameError";
  }
}

/** Why a frame after the handshake failed authentication. */
export type FrameAuthFailure =
  /** The MAC (or AES-GCM tag) did not verify: a forged or altered frame. */
  | "bad_tag"
  /** The sequence number was not the next one: a replayed, reordered or dropped frame. */
  | "bad_sequence"
  /** Too short to hold a sequence number and a tag. */
  | "truncated";

/**
 * A frame after the handshake failed authentication: its MAC (or AES-GCM
 * tag) did not verify under the connection's key, or its sequence number was
 * not the next one. Something on the path forged, replayed, reordered or
 * altered it (a checksum error would have caught plain corruption first).
 * The frame is dropped and the connection closed; the sender reconnects
 * with a fresh handshake and fresh keys.
 *
 * @example
 * ```ts
 * import { FrameAuthError } from "@raft-io/raft";
 * const e = new FrameAuthError("bad_sequence", "frame 3, expected 5", 1);
 * e.code; // "FRAME_AUTH_FAILED"
 * e.reason; // "bad_sequence"
 * ```
 */
export class FrameAuthError extends TransportError {
  /** What failed. */
  readonly reason: FrameAuthFailure;

  /**
   * Creates the error.
   *
   * @param reason what failed
   * @param detail explanation (sequence numbers, frame kind)
   * @param peerId the authenticated peer of the connection
   */
  constructor(reason: FrameAuthFailure, detail: string, peerId = 0) {
    super(
      "FRAME_AUTH_FAILED",
      `frame from peer ${
        peerId || "?"
      } failed authentication (${reason}): ${detail}; ` +
        "frame dropped and connection closed — something on the network path " +
        "forged, replayed or altered it",
      peerId,
    );
    this.name = "FrameAuthError";
    this.reason = reason;
  }
}

/**
 * A peer belongs to another cluster: both nodes have a `clusterId` and they
 * differ. The connection is refused in the handshake, nothing is delivered.
 *
 * @example
 * ```ts
 * import { ClusterMismatchError } from "@raft-io/raft";
 * const e = new ClusterMismatchError("prod-eu", "staging", 2);
 * e.code; // "CLUSTER_MISMATCH"
 * e.remoteClusterId; // "staging"
 * ```
 */
export class ClusterMismatchError extends TransportError {
  /** This node's cluster id. */
  readonly localClusterId: string;
  /** The cluster id the peer announced. */
  readonly remoteClusterId: string;

  /**
   * Creates the error.
   *
   * @param localClusterId this node's cluster id
   * @param remoteClusterId the peer's cluster id
   * @param peerId the peer's id
   */
  constructor(localClusterId: string, remoteClusterId: string, peerId = 0) {
    super(
      "CLUSTER_MISMATCH",
      `node ${peerId || "?"} belongs to cluster ${
        JSON.stringify(remoteClusterId)
      }, this node to cluster ${JSON.stringify(localClusterId)}; ` +
        "connection refused — check the peer addresses and each node's cluster id",
      peerId,
    );
    this.name = "ClusterMismatchError";
    this.localClusterId = localClusterId;
    this.remoteClusterId = remoteClusterId;
  }
}

/**
 * The handshake did not finish in time.
 *
 * @example
 * ```ts
 * import { HandshakeTimeoutError } from "@raft-io/raft";
 * new HandshakeTimeoutError(5000).code; // "HANDSHAKE_TIMEOUT"
 * ```
 */
export class HandshakeTimeoutError extends TransportError {
  /**
   * Creates the error.
   *
   * @param timeoutMs the handshake deadline
   * @param peerId the peer, 0 when not yet known
   */
  constructor(timeoutMs: number, peerId = 0) {
    super(
      "HANDSHAKE_TIMEOUT",
      `handshake did not complete within ${timeoutMs} ms; connection closed`,
      peerId,
    );
    this.name = "HandshakeTimeoutError";
  }
}

/**
 * Could not connect to, or lost the connection to, a peer. Recorded; the
 * transport retries with back-off.
 *
 * @example
 * ```ts
 * import { ConnectionError } from "@raft-io/raft";
 * new ConnectionError(2, "127.0.0.1:7002", "connection refused").peerId; // 2
 * ```
 */
export class ConnectionError extends TransportError {
  /**
   * Creates the error.
   *
   * @param peerId the peer
   * @param address the peer's address
   * @param detail the underlying error text
   */
  constructor(peerId: number, address: string, detail: string) {
    super(
      "CONNECTION_FAILED",
      `connection to node ${peerId} at ${address} failed: ${detail}`,
      peerId,
    );
    this.name = "ConnectionError";
  }
}

/**
 * Thrown by a transport constructor when no cluster secret is configured and
 * `insecure: true` was not given: refusing to run unauthenticated by accident.
 *
 * @example
 * ```ts
 * import { InsecureTransportError } from "@raft-io/raft";
 * new InsecureTransportError().code; // "INSECURE_TRANSPORT"
 * ```
 */
export class InsecureTransportError extends TransportError {
  /**
   * Creates the error.
   *
   * @param detail why the configuration was refused
   */
  constructor(detail?: string) {
    super(
      "INSECURE_TRANSPORT",
      detail ??
        "no cluster secret configured: give a secret (--cluster-secret-file) or pass " +
          "insecure: true (--insecure) to run without peer authentication",
    );
    this.name = "InsecureTransportError";
  }
}

/**
 * The transport could not listen on its address (in use, not a local
 * address, no permission). Thrown by `TcpTransport.create`.
 *
 * @example
 * ```ts
 * import { ListenError } from "@raft-io/raft";
 * new ListenError("127.0.0.1:7001", "address in use").address; // "127.0.0.1:7001"
 * ```
 */
export class ListenError extends TransportError {
  /** The address that could not be listened on. */
  readonly address: string;

  /**
   * Creates the error.
   *
   * @param address the listen address
   * @param detail the underlying error text
   * @param options `cause`: the underlying error
   */
  constructor(address: string, detail: string, options?: ErrorOptions) {
    super(
      "LISTEN_FAILED",
      `cannot listen on ${address}: ${detail}` +
        (/in use/i.test(detail)
          ? " (another process holds the port: stop it or pick another --listen port)"
          : ""),
      0,
      options,
    );
    this.name = "ListenError";
    this.address = address;
  }
}
