/**
 * The write-ahead log: {@linkcode WalLog}, its file backends and errors.
 *
 * @module
 */

export {
  DEFAULT_SEGMENT_BYTES,
  WalLog,
  type WalLogOptions,
} from "./wal_log.ts";
export type { CatchUp } from "./format.ts";
export { IDENTITY_FILE, type WalIdentity } from "./identity.ts";
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
} from "./errors.ts";
export {
  LOCK_FILE,
  type WalBackend,
  type WalDirLock,
  type WalFile,
} from "./backend.ts";
export { DenoWalBackend } from "./deno_backend.ts";
export { NodeWalBackend, type NodeWalBackendOptions } from "./node_backend.ts";
export { FORMAT_VERSION } from "./format.ts";
export type { CodecBackend } from "../../codec/records.ts";
