/**
 * The runtime: {@linkcode RaftServer} drives a RaftNode with timers, batches
 * persistence, applies committed entries to a {@linkcode StateMachine} and
 * settles the Promises of proposals and reads.
 *
 * @module
 */

export { RaftServer } from "./raft_server.ts";
export type {
  AddVoterOptions,
  MemberOptions,
  RaftServerOptions,
  ReadConsistency,
  ReadOptions,
  RequestOptions,
  ServerEventListener,
  ServerEventMap,
  ServerMetrics,
  ServerStatus,
  WaitForLeaderOptions,
} from "./server_types.ts";
export type {
  SnapshotSource,
  SnapshotView,
  StateMachine,
} from "./state_machine.ts";
export {
  ApplyError,
  CatchUpTimeoutError,
  InvalidProposalError,
  type InvalidProposalReason,
  SnapshotFailedError,
  StartFailedError,
  StateMachineFatalError,
  StoppedError,
  TimeoutError,
  TransferAbandonedError,
} from "./errors.ts";
export {
  type CancelTimer,
  type ClockSkew,
  realScheduler,
  type Scheduler,
  skewedScheduler,
} from "./scheduler.ts";
export { Histogram, LATENCY_BUCKETS_MS } from "./metrics.ts";
