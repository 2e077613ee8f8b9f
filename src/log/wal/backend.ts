/**
 * The file operations the write-ahead log needs, behind one small interface
 * so the same log runs on Deno's file APIs and on `node:fs`.
 *
 * Every method throws {@linkcode WalPermissionError} when access is denied;
 * `lock` throws {@linkcode WalLockedError} when another log holds the
 * directory. Other I/O errors pass through unchanged.
 *
 * @module
 */

import { type WalLockedError, WalPermissionError } from "./errors.ts";

/** An open file the log writes to. */
export interface WalFile {
  /** Writes all of `bytes` at byte `position` (short writes are retried). */
  writeAt(bytes: Uint8Array, position: number): Promise<void>;
  /** Cuts (or zero-extends) the file to `length` bytes. */
  truncate(length: number): Promise<void>;
  /** Makes the file's data (and the metadata needed to read it) durable: fdatasync. */
  syncData(): Promise<void>;
  /** Closes the file. */
  close(): Promise<void>;
}

/** A held directory lock. */
export interface WalDirLock {
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
  /**
   * Checks the lock is still held by this lock (its `LOCK` file still names
   * it), else throws `WalLockedError`. The log calls it before its first
   * write. Optional for custom backends.
   */
  verify?(): Promise<void>;
}

/** File system access for the write-ahead log. Paths use `/` separators. */
export interface WalBackend {
  /** `"deno"` or `"node"` (or a custom name). */
  readonly name: string;
  /** Creates `dir` and its parents when missing. */
  mkdirp(dir: string): Promise<void>;
  /** Names of the entries of `dir` (files only matter). */
  readDir(dir: string): Promise<string[]>;
  /** The whole content of `path`. */
  readFile(path: string): Promise<Uint8Array>;
  /** Opens `path` for writing; `create` creates it when missing, `truncate` empties it. */
  openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile>;
  /** Atomically renames `from` to `to`, replacing `to`. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; a missing file is not an error. */
  remove(path: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
  /** Takes the exclusive lock of `dir`, or throws `WalLockedError`. */
  lock(dir: string): Promise<WalDirLock>;
}

/**
 * Builds a backend's `guard(path, op, fn)`: it runs `fn` and turns the
 * errors `isDenied` recognizes as access denied into
 * {@linkcode WalPermissionError}; other errors pass through unchanged.
 */
export function permissionGuard(
  isDenied: (e: unknown) => boolean,
): <T>(path: string, op: string, fn: () => Promise<T>) => Promise<T> {
  return async (path, op, fn) => {
    try {
      return await fn();
    } catch (e) {
      if (isDenied(e)) throw new WalPermissionError(path, op, { cause: e });
      throw e;
    }
  };
}

/** Name of the lock file inside a log directory. */
export const LOCK_FILE = "LOCK";

/** Joins a directory and a file name with `/`. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? dir + name : `${dir}/${name}`;
}

/**
 * Directories held by a log in this process, by real path, shared by all
 * backends: a second open in the same process fails whatever the backend.
 */
export const heldInProcess: Set<string> = new Set();

// Documentation-only references keep the imports meaningful for `deno doc`.
export type { WalLockedError, WalPermissionError };
