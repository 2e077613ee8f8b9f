/**
 * raft-io: a Raft consensus and replicated-log engine for Deno and Node.
 *
 * The root exports what an application uses: {@linkcode RaftServer} and its
 * {@linkcode StateMachine} contract, the log stores ({@linkcode MemoryLog},
 * {@linkcode WalLog}), the transports ({@linkcode MemoryNetwork},
 * {@linkcode TcpTransport}) and every error an application can meet (all
 * extend {@linkcode RaftIoError} and carry a stable `code`).
 *
 * Subpaths hold the rest:
 * - `@raft-io/raft/core`: the pure Ready-level core (`RaftNode`, `Ready`,
 *   progress, quorum arithmetic, membership encoding) for custom drivers;
 * - `@raft-io/raft/codec`: byte formats (the message wire codec, WAL record
 *   framing, CRC32C);
 * - `@raft-io/raft/kv`: the replicated key-value service;
 * - `@raft-io/raft/testing`: simulator, invariants, linearizability checker
 *   and the log conformance suite.
 *
 * This module loads in any JavaScript runtime: the Deno and Node backends of
 * the WAL and the TCP transport are imported only when `WalLog.open` or
 * `TcpTransport.create` needs them.
 *
 * @example
 * ```ts
 * import { type Entry, MemoryLog, MemoryNetwork, type Message, RaftServer } from "@raft-io/raft";
 * const net = new MemoryNetwork<Message>();
 * const server = await RaftServer.start({
 *   config: { id: 1 },
 *   log: new MemoryLog(),
 *   transport: net.endpoint(1),
 *   stateMachine: {
 *     apply: (e: Entry) => e.data.length,
 *     snapshot: () => new Uint8Array(0),
 *     restore: () => {},
 *   },
 *   tickMs: 10,
 * });
 * await server.waitForLeader();
 * await server.propose(new Uint8Array([1, 2, 3])); // 3
 * await server.stop();
 * await net.close();
 * ```
 *
 * @module
 */

export { RaftIoError } from "./src/errors.ts";
export {
  consoleLogger,
  type ConsoleLoggerOptions,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./src/logger.ts";

// Runtime: the server, its options, status, metrics and errors.
export * from "./src/runtime/mod.ts";
export type {
  SnapshotSource,
  SnapshotView,
  StateMachine,
} from "./src/runtime/state_machine.ts";

// Core: the types the server's options and status mention, and its errors.
export {
  ConfigChangeInProgressError,
  InvalidConfigError,
  InvalidMembershipChangeError,
  InvalidTransferTargetError,
  NotLeaderError,
  OverloadedError,
  ProposalDroppedError,
  RemovedFromClusterError,
  TransferInProgressError,
} from "./src/core/errors.ts";
export type { RaftConfig } from "./src/core/config.ts";
export type {
  MemberInfo,
  Membership,
  MembershipChange,
} from "./src/core/membership.ts";
export type {
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
} from "./src/core/messages.ts";
export type { NodeRole, NodeStatus, PeerStatus } from "./src/core/node.ts";
export type { ProgressState } from "./src/core/progress.ts";

// Logs.
export type {
  Entry,
  EntryKind,
  HardState,
  RaftLog,
  SnapshotMeta,
} from "./src/log/raft_log.ts";
export { LogContinuityError } from "./src/log/log_state.ts";
export { MemoryLog } from "./src/log/memory_log.ts";
export { WalLog, type WalLogOptions } from "./src/log/wal/wal_log.ts";
export type { WalBackend, WalDirLock, WalFile } from "./src/log/wal/backend.ts";
export type { CodecBackend } from "./src/codec/records.ts";
export {
  WalCorruptionError,
  WalFailedError,
  WalFormatError,
  type WalFormatReason,
  WalIdentityError,
  WalLockedError,
  WalMissingSegmentError,
  WalPermissionError,
  WalRepairRefusedError,
} from "./src/log/wal/errors.ts";
export type { CatchUp } from "./src/log/wal/format.ts";
export type { WalIdentity } from "./src/log/wal/identity.ts";

// Transports.
export type {
  MessageCodec,
  MessageHandler,
  PeerStats,
  RaftTransport,
  TransportStats,
} from "./src/transport/raft_transport.ts";
export {
  AuthenticationError,
  ClusterMismatchError,
  ConnectionError,
  FrameAuthError,
  type FrameAuthFailure,
  FrameChecksumError,
  FrameTooLargeError,
  FrameVersionError,
  HandshakeTimeoutError,
  InsecureTransportError,
  ListenError,
  MalformedFrameError,
  TransportError,
  type TransportErrorCode,
  UnknownPeerError,
} from "./src/transport/transport_errors.ts";
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  MemoryTransport,
  type NetworkClock,
  type NetworkFaults,
} from "./src/transport/memory_network.ts";
export { raftMessageCodec } from "./src/transport/raft_codec.ts";
export type { ByteWriter } from "./src/codec/binary.ts";
export {
  TcpTransport,
  type TcpTransportOptions,
  type TcpTransportStats,
  type TransportErrorRecord,
} from "./src/transport/tcp/tcp_transport.ts";
export type {
  SocketAddress,
  SocketBackend,
  SocketConn,
  SocketListener,
} from "./src/transport/tcp/socket.ts";

export { wasmAvailable } from "./src/wasm/codec_wasm.ts";
