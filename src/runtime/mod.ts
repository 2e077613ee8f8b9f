/**
 * The runtime: {@linkcode RaftServer} drives a RaftNode with timers, batches
 * persistence, applies committed entries to a {@linkcode StateMachine} and
 * settles the Promises of proposals and reads.
 *
 * @module
 */

export {
  RaftServer,
  type RaftServerOptions,
  type ReadConsistency,
  type ServerLogger,
  type ServerMetrics,
  type ServerStatus,
} from "./raft_server.ts";
export type { StateMachine } from "./state_machine.ts";
export { StoppedError, TimeoutError } from "./errors.ts";
export { Histogram, LATENCY_BUCKETS_MS } from "./metrics.ts";
