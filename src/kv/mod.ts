/**
 * The replicated key-value service: its state machine, HTTP API (on
 * `Deno.serve` or `node:http`) and a ready-to-run node (write-ahead log,
 * authenticated TCP transport, Raft server, HTTP). Exported as
 * `@raft-io/raft/kv`.
 *
 * @example
 * ```ts ignore
 * import { loadSecret, parseServeArgs, startKvNode } from "@raft-io/raft/kv";
 * const options = parseServeArgs(["--id", "1", "--data-dir", "data-1", "--peer", "1=127.0.0.1:7001", "--insecure"]);
 * if (options !== "help") {
 *   const node = await startKvNode({ ...options, clusterSecret: undefined });
 *   // curl -X PUT --data hello http://127.0.0.1:8001/kv/greeting
 *   await node.stop();
 * }
 * ```
 *
 * @module
 */

export {
  decodeKvCommand,
  encodeKvCommand,
  KV_OP,
  type KvCommand,
  type KvResult,
  type KvSnapshotView,
  KvStateMachine,
} from "./kv_state_machine.ts";
export {
  HTTP_STATUS_BY_CODE,
  KvHttpApi,
  type KvHttpApiOptions,
  type KvHttpServer,
  type KvHttpTls,
  type KvRequestInfo,
  serveKvHttp,
} from "./http_api.ts";
export { type KvHttpNodeLimits, serveKvHttpNode } from "./node_http.ts";
export {
  type AuthFailureReason,
  type AuthResult,
  CLIENT_ROLES,
  ClientAuth,
  type ClientRole,
  type ClientToken,
  MIN_TOKEN_LENGTH,
  parseAuthTokens,
  requiredRole,
} from "./auth.ts";
export { runServeCli } from "./cli.ts";
export {
  defaultClusterId,
  type KvNode,
  type KvNodeOptions,
  loadAuthTokens,
  loadSecret,
  loadServeFiles,
  parseServeArgs,
  SERVE_USAGE,
  type ServeFiles,
  serveUsage,
  startKvNode,
  UsageError,
} from "./node.ts";
