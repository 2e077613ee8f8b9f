/**
 * Typed errors of the write-ahead log. Each has a stable `code` to match on
 * and a message that says what happened and what to do.
 *
 * @module
 */

import { RaftIoError } from "../../errors.ts";

/**
 * A record or file of the log is damaged somewhere other than the tail of
 * the last segment, where a torn write is expected and cut off. Nothing was
 * guessed or dropped: the log refuses to open.
 *
 * @example
 * ```ts
 * import { WalCorruptionError, WalLog } from "@raft-io/raft";
 * try {
 *   await WalLog.open("./raft-data");
 * } catch (e) {
 *   if (e instanceof WalCorruptionError) console.error(e.file, e.offset);
 * }
 * ```
 */
export class WalCorruptionError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_CORRUPTION" as const;
  /** Path of the damaged file. */
  readonly file: string;
  /** Byte offset of the damaged record (or field) within `file`. */
  readonly offset: number;

  /**
   * Creates the error for damage in `file` at byte `offset`.
   *
   * @param file path of the damaged file
   * @param offset byte offset of the damage
   * @param detail what is wrong there
   */
  constructor(file: string, offset: number, detail: string) {
    super(
      "WAL_CORRUPTION",
      `write-ahead log file ${file} is corrupt at byte ${offset}: ${detail}. ` +
        "This is not a torn tail from a crash, so nothing was repaired. Restore the " +
        "directory from a backup, or remove this node's data and let it catch up " +
        "from the cluster (a snapshot and log from the leader)",
    );
    this.name = "WalCorruptionError";
    this.file = file;
    this.offset = offset;
  }
}

/**
 * Another `WalLog` (in this or another process) holds the directory.
 *
 * @example
 * ```ts
 * import { WalLockedError, WalLog } from "@raft-io/raft";
 * const log = await WalLog.open("./raft-data");
 * try {
 *   await WalLog.open("./raft-data");
 * } catch (e) {
 *   console.log(e instanceof WalLockedError); // true
 * }
 * await log.close();
 * ```
 */
export class WalLockedError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_LOCKED" as const;
  /** The locked directory. */
  readonly dir: string;
  /** Process id written by the holder, when known. */
  readonly holderPid: number | undefined;

  /**
   * Creates the error for a directory another log holds.
   *
   * @param dir the log directory
   * @param holderPid pid recorded in the lock file, if any
   * @param hint extra advice for this backend
   */
  constructor(dir: string, holderPid: number | undefined, hint = "") {
    super(
      "WAL_LOCKED",
      `write-ahead log directory ${dir} is locked by another open WalLog` +
        (holderPid === undefined ? "" : ` (process ${holderPid})`) +
        ". Close the other log (or stop that process) first; two writers would " +
        "corrupt the log" + (hint ? `. ${hint}` : ""),
    );
    this.name = "WalLockedError";
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/** Why a file is not a log file this version can read. */
export type WalFormatReason = "foreign_file" | "unknown_version";

/**
 * A file in the log directory is not a raft-io log file, or was written by a
 * format version this build does not know.
 *
 * @example
 * ```ts
 * import { WalFormatError } from "@raft-io/raft";
 * const e = new WalFormatError("dir/00000000000000000001.wal", "unknown_version", "version 9");
 * console.log(e.code, e.reason); // "WAL_FORMAT" "unknown_version"
 * ```
 */
export class WalFormatError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_FORMAT" as const;
  /** Path of the offending file. */
  readonly file: string;
  /** `foreign_file` (wrong magic, too short) or `unknown_version`. */
  readonly reason: WalFormatReason;

  /**
   * Creates the error for a file this version cannot read.
   *
   * @param file the offending file
   * @param reason why it cannot be read
   * @param detail what was found
   */
  constructor(file: string, reason: WalFormatReason, detail: string) {
    super(
      "WAL_FORMAT",
      reason === "unknown_version"
        ? `write-ahead log file ${file} has format ${detail}, which this raft-io ` +
          "version cannot read. Open it with the raft-io version that wrote it (or a newer one)"
        : `${file} is not a raft-io write-ahead log file (${detail}). Move it out of ` +
          "the log directory, or point WalLog.open at the right directory",
    );
    this.name = "WalFormatError";
    this.file = file;
    this.reason = reason;
  }
}

/**
 * A file the log needs is gone: a gap in the segment sequence, a first
 * segment whose entries were never covered by a snapshot, or the snapshot
 * file the log refers to.
 *
 * @example
 * ```ts
 * import { WalMissingSegmentError } from "@raft-io/raft";
 * const e = new WalMissingSegmentError("dir", "dir/00000000000000000002.wal", "it lies between 1 and 3");
 * console.log(e.code); // "WAL_MISSING_SEGMENT"
 * ```
 */
export class WalMissingSegmentError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_MISSING_SEGMENT" as const;
  /** The log directory. */
  readonly dir: string;
  /** The missing file (path it would have). */
  readonly file: string;

  /**
   * Creates the error for a file the log needs and cannot find.
   *
   * @param dir the log directory
   * @param file the missing file
   * @param detail why it is known to be missing
   */
  constructor(dir: string, file: string, detail: string) {
    super(
      "WAL_MISSING_SEGMENT",
      `write-ahead log in ${dir} is missing ${file} (${detail}). Files were removed ` +
        "or the directory was copied incompletely; restore them from a backup, or remove " +
        "this node's data and let it catch up from the cluster",
    );
    this.name = "WalMissingSegmentError";
    this.dir = dir;
    this.file = file;
  }
}

/**
 * The operating system (or the Deno permission sandbox) denied access to a
 * log file or directory.
 *
 * @example
 * ```ts
 * import { WalPermissionError } from "@raft-io/raft";
 * const e = new WalPermissionError("dir/LOCK", "open");
 * console.log(e.code); // "WAL_PERMISSION"
 * ```
 */
export class WalPermissionError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_PERMISSION" as const;
  /** The path access was denied to. */
  readonly path: string;
  /** The operation that failed (`open`, `read`, `write`, ...). */
  readonly operation: string;

  /**
   * Creates the error for an access the system denied.
   *
   * @param path the path
   * @param operation the denied operation
   * @param options the underlying error
   */
  constructor(path: string, operation: string, options?: { cause?: unknown }) {
    super(
      "WAL_PERMISSION",
      `permission denied: cannot ${operation} ${path}. Give the process read and ` +
        "write access to the whole log directory (file modes / ownership, or Deno's " +
        "--allow-read and --allow-write for that directory)",
      options,
    );
    this.name = "WalPermissionError";
    this.path = path;
    this.operation = operation;
  }
}

/**
 * A write or sync failed earlier, so the files may hold less than memory
 * does. The log refuses further use; close it and open it again (recovery
 * cuts any partial write).
 *
 * @example
 * ```ts
 * import { WalFailedError } from "@raft-io/raft";
 * const e = new WalFailedError("dir", new Error("ENOSPC"));
 * console.log(e.code); // "WAL_FAILED"
 * ```
 */
export class WalFailedError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_FAILED" as const;

  /**
   * Creates the error for a log that failed an earlier write or sync.
   *
   * @param dir the log directory
   * @param cause the first I/O error
   */
  constructor(dir: string, cause: unknown) {
    super(
      "WAL_FAILED",
      `write-ahead log in ${dir} failed earlier (${
        cause instanceof Error ? cause.message : String(cause)
      }) and accepts no more writes: close it and open it again`,
      { cause },
    );
    this.name = "WalFailedError";
  }
}

/**
 * {@linkcode WalLog.repair} refused: the log has nothing to repair, or the
 * damage is not where the repair was told to cut (`file`, `offset` say
 * where it is, when known), or it is not a tail a cut can remove.
 *
 * @example
 * ```ts
 * import { WalLog } from "@raft-io/raft";
 * try {
 *   await WalLog.repair("./raft-data", { truncateAt: 4096 });
 * } catch (e) {
 *   if ((e as { code?: string }).code === "WAL_REPAIR_REFUSED") console.error((e as Error).message);
 * }
 * ```
 */
export class WalRepairRefusedError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_REPAIR_REFUSED" as const;
  /** File of the damage found, when any. */
  readonly file: string | undefined;
  /** Offset of the damage found, when any. */
  readonly offset: number | undefined;

  /**
   * Creates the error.
   *
   * @param dir the log directory
   * @param why why nothing was cut
   * @param file where the damage is, when known
   * @param offset its offset, when known
   * @param options the error found instead
   */
  constructor(
    dir: string,
    why: string,
    file: string | undefined,
    offset: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      "WAL_REPAIR_REFUSED",
      `write-ahead log in ${dir} was not repaired: ${why}. Nothing was changed`,
      options,
    );
    this.name = "WalRepairRefusedError";
    this.file = file;
    this.offset = offset;
  }
}

/**
 * The log directory belongs to another node or another cluster than the
 * one opening it (its `IDENTITY` file names a different node id or
 * cluster id). Nothing was read or written: starting a node on a copy of a
 * peer's folder, or on another cluster's folder, would make it answer with
 * someone else's state.
 *
 * @example
 * ```ts
 * import { WalIdentityError, WalLog } from "@raft-io/raft";
 * try {
 *   await WalLog.open("./raft-data", { identity: { nodeId: 1, clusterId: "prod" } });
 * } catch (e) {
 *   if (e instanceof WalIdentityError) console.error(e.found, e.expected);
 * }
 * ```
 */
export class WalIdentityError extends RaftIoError {
  /** Stable code for programmatic handling. */
  override readonly code = "WAL_IDENTITY_MISMATCH" as const;
  /** The log directory. */
  readonly dir: string;
  /** The identity the caller asked for. */
  readonly expected: { nodeId: number; clusterId: string };
  /** The identity recorded in the directory. */
  readonly found: { nodeId: number; clusterId: string };

  /**
   * Creates the error.
   *
   * @param dir the log directory
   * @param expected the identity of the node opening it
   * @param found the identity recorded in it
   */
  constructor(
    dir: string,
    expected: { nodeId: number; clusterId: string },
    found: { nodeId: number; clusterId: string },
  ) {
    const what = expected.nodeId !== found.nodeId
      ? `node ${found.nodeId}${
        expected.clusterId !== found.clusterId
          ? ` of cluster ${JSON.stringify(found.clusterId)}`
          : ""
      }, not node ${expected.nodeId}`
      : `cluster ${JSON.stringify(found.clusterId)}, not cluster ${
        JSON.stringify(expected.clusterId)
      }`;
    super(
      "WAL_IDENTITY_MISMATCH",
      `write-ahead log directory ${dir} belongs to ${what} (node ${expected.nodeId} of cluster ${
        JSON.stringify(expected.clusterId)
      } is starting). Nothing was changed. Give this node its own --data-dir ` +
        "(an empty folder to join afresh), or fix --id / --cluster-id",
    );
    this.name = "WalIdentityError";
    this.dir = dir;
    this.expected = expected;
    this.found = found;
  }
}
