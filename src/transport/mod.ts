/**
 * Transports: the {@linkcode RaftTransport} seam, the in-process
 * {@linkcode MemoryNetwork} and the authenticated {@linkcode TcpTransport}
 * (Deno sockets or `node:net`).
 *
 * @module
 */

export type {
  MessageCodec,
  MessageHandler,
  PeerStats,
  RaftTransport,
  TransportStats,
} from "./raft_transport.ts";
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
} from "./transport_errors.ts";
export {
  MemoryNetwork,
  type MemoryNetworkOptions,
  MemoryTransport,
  type NetworkClock,
  type NetworkFaults,
} from "./memory_network.ts";
export { raftMessageCodec } from "./raft_codec.ts";
export {
  TcpTransport,
  type TcpTransportOptions,
  type TcpTransportStats,
  type TransportErrorRecord,
} from "./tcp/tcp_transport.ts";
export {
  formatAddress,
  parseAddress,
  type SocketAddress,
  type SocketBackend,
  type SocketConn,
  type SocketListener,
} from "./tcp/socket.ts";
export { denoSocketBackend } from "./tcp/deno_socket.ts";
export { nodeSocketBackend } from "./tcp/node_socket.ts";
