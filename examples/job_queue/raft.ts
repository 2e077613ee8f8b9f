/**
 * The one place the example imports raft-io from. Under Deno it re-exports
 * the repository's root module; `scripts/build_npm.ts` compiles the example
 * into `npm/examples/job_queue/` and points this file at the built package
 * (`../../esm/mod.js`), so the same sources run under Node.
 *
 * An application outside this repository imports `@raft-io/raft` instead.
 *
 * @module
 */
export {
  ApplyError,
  consoleLogger,
  RaftIoError,
  raftMessageCodec,
  RaftServer,
  StateMachineFatalError,
  TcpTransport,
  WalLog,
} from "../../mod.ts";
export type {
  Entry,
  Logger,
  LogLevel,
  Message,
  SnapshotSource,
  StateMachine,
} from "../../mod.ts";
