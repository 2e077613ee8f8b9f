/**
 * The {@linkcode WalBackend} on `node:fs` (used by the npm build on Node; it
 * also runs under Deno).
 *
 * Locking: `node:fs` has no `flock`, so the lock is the `LOCK` file alone,
 * created atomically with its content and taken over atomically when its
 * pid no longer runs (the protocol in lock_file.ts); a live pid means
 * locked. Within one process a registry of held directories answers instead
 * of the pid. Limits: a stale lock whose pid was reused by an unrelated live
 * process reads as held (the error says to delete `LOCK`); and with no OS
 * lock behind it, deleting `LOCK` by hand while a node-backend process holds
 * the log lets another node-backend process in (a Deno-backend process also
 * holds an OS lock on the directory, which a deleted file does not undo).
 *
 * @module
 */

import { constants as fsConstants, promises as fsp, writeSync } from "node:fs";
import process from "node:process";
import {
  heldInProcess,
  joinPath,
  LOCK_FILE,
  permissionGuard,
  type WalBackend,
  type WalDirLock,
  type WalFile,
} from "./backend.ts";
import { WalLockedError } from "./errors.ts";
import {
  acquireLockFile,
  checkOurs,
  type LockFileOps,
  lockFileText,
  newLockToken,
  releaseLockFile,
} from "./lock_file.ts";
import { pidAlive } from "./pid_alive.ts";

function errorCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown }).code;
  return typeof code === "string" ? code : undefined;
}

function isPermissionError(e: unknown): boolean {
  const code = errorCode(e);
  return code === "EACCES" || code === "EPERM" ||
    (e instanceof Error &&
      (e.name === "NotCapable" || e.name === "PermissionDenied"));
}

const guard = permissionGuard(isPermissionError);

type FileHandle = Awaited<ReturnType<typeof fsp.open>>;

class NodeWalFile implements WalFile {
  #handle: FileHandle;
  #path: string;

  constructor(handle: FileHandle, path: string) {
    this.#handle = handle;
    this.#path = path;
  }

  writeAt(bytes: Uint8Array, position: number): Promise<void> {
    return guard(this.#path, "write", () => {
      // A write only copies into the page cache; doing it on this thread
      // saves a hand-off to libuv's pool per batch. syncData stays async.
      let done = 0;
      while (done < bytes.length) {
        done += writeSync(
          this.#handle.fd,
          bytes,
          done,
          bytes.length - done,
          position + done,
        );
      }
      return Promise.resolve();
    });
  }

  truncate(length: number): Promise<void> {
    return guard(this.#path, "truncate", () => this.#handle.truncate(length));
  }

  syncData(): Promise<void> {
    return guard(this.#path, "sync", () => this.#handle.datasync());
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

/** Writes `text` to `path` and makes it durable before returning. */
async function writeSynced(path: string, text: string): Promise<void> {
  const handle = await fsp.open(path, "w", 0o644);
  try {
    await handle.writeFile(text);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

const nodeLockOps: LockFileOps = {
  async createExclusive(path, text, tmp) {
    try {
      for (let attempt = 0;; attempt++) {
        await writeSynced(tmp, text);
        try {
          await fsp.link(tmp, path);
          return true;
        } catch (e) {
          if (errorCode(e) === "EEXIST") return false;
          // The holder's recovery may sweep our temporary away: write it again.
          if (errorCode(e) !== "ENOENT" || attempt >= 3) throw e;
        }
      }
    } finally {
      await fsp.unlink(tmp).catch(() => {});
    }
  },
  async read(path) {
    try {
      return await fsp.readFile(path, "utf8");
    } catch (e) {
      if (errorCode(e) === "ENOENT") return undefined;
      throw e;
    }
  },
  async replace(path, text, tmp) {
    await writeSynced(tmp, text);
    await fsp.rename(tmp, path);
  },
  async remove(path) {
    try {
      await fsp.unlink(path);
    } catch (e) {
      if (errorCode(e) !== "ENOENT") throw e;
    }
  },
};

class NodeDirLock implements WalDirLock {
  #dir: string | undefined;
  #key: string;
  #token: string;

  constructor(dir: string, key: string, token: string) {
    this.#dir = dir;
    this.#key = key;
    this.#token = token;
  }

  async release(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    if (dir === undefined) return;
    heldInProcess.delete(this.#key);
    await releaseLockFile(nodeLockOps, dir, this.#token);
  }

  verify(): Promise<void> {
    const dir = this.#dir;
    if (dir === undefined) return Promise.reject(new Error("lock released"));
    return checkOurs(nodeLockOps, dir, this.#token);
  }
}

/** Options of {@linkcode NodeWalBackend}. */
export interface NodeWalBackendOptions {
  /**
   * Whether the process that wrote a lock file is alive (`undefined`: cannot
   * tell, treated as alive). Default: `process.kill(pid, 0)`, which on Deno
   * needs `--allow-run`. Replace it where pids are not meaningful (e.g. lock
   * files on storage shared between containers).
   */
  pidAlive?: (pid: number) => boolean | undefined;
}

/** The `node:fs` file backend. */
export class NodeWalBackend implements WalBackend {
  /** Backend name. */
  readonly name = "node";
  #pidAlive: (pid: number) => boolean | undefined;

  /** Creates the backend; `options.pidAlive` replaces the lock liveness check. */
  constructor(options: NodeWalBackendOptions = {}) {
    this.#pidAlive = options.pidAlive ?? pidAlive;
  }

  /** See {@linkcode WalBackend.mkdirp}. */
  mkdirp(dir: string): Promise<void> {
    return guard(dir, "create directory", async () => {
      await fsp.mkdir(dir, { recursive: true });
    });
  }

  /** See {@linkcode WalBackend.readDir}. */
  readDir(dir: string): Promise<string[]> {
    return guard(dir, "list", () => fsp.readdir(dir));
  }

  /** See {@linkcode WalBackend.readFile}. */
  readFile(path: string): Promise<Uint8Array> {
    return guard(path, "read", async () => {
      const b = await fsp.readFile(path);
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    });
  }

  /** See {@linkcode WalBackend.openFile}. */
  openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile> {
    return guard(path, "open", async () => {
      let flags = fsConstants.O_RDWR;
      if (options.create) flags |= fsConstants.O_CREAT;
      if (options.truncate) flags |= fsConstants.O_TRUNC;
      return new NodeWalFile(await fsp.open(path, flags, 0o644), path);
    });
  }

  /** See {@linkcode WalBackend.rename}. */
  rename(from: string, to: string): Promise<void> {
    return guard(from, "rename", () => fsp.rename(from, to));
  }

  /** See {@linkcode WalBackend.remove}. */
  remove(path: string): Promise<void> {
    return guard(path, "remove", async () => {
      try {
        await fsp.unlink(path);
      } catch (e) {
        if (errorCode(e) !== "ENOENT") throw e;
      }
    });
  }

  /** See {@linkcode WalBackend.syncDir}. */
  syncDir(dir: string): Promise<void> {
    if (process.platform === "win32") return Promise.resolve();
    return guard(dir, "sync directory", async () => {
      const handle = await fsp.open(dir, "r");
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    });
  }

  /** See {@linkcode WalBackend.lock}. */
  lock(dir: string): Promise<WalDirLock> {
    const path = joinPath(dir, LOCK_FILE);
    return guard(path, "lock", async () => {
      const key = await fsp.realpath(dir);
      if (heldInProcess.has(key)) throw new WalLockedError(dir, process.pid);
      const token = newLockToken();
      heldInProcess.add(key);
      try {
        await acquireLockFile(
          nodeLockOps,
          dir,
          { text: lockFileText("excl", process.pid, token), token },
          (held) =>
            // An own-pid lock not in the registry is left by an earlier process that had our pid.
            held.pid === undefined || held.pid === process.pid ||
            this.#pidAlive(held.pid) === false,
        );
      } catch (e) {
        heldInProcess.delete(key);
        throw e;
      }
      return new NodeDirLock(dir, key, token);
    });
  }
}
