/**
 * The {@linkcode WalBackend} on Deno's file APIs (the default under Deno).
 *
 * Locking: the `LOCK` file in the log directory is held with an exclusive
 * `flock` (`FsFile.tryLockSync`), which the kernel releases when the process
 * dies, so a crashed holder never leaves a stale lock. Two opens in one
 * process use two file descriptions, so they exclude each other too. The
 * file also names the holder's pid, which the `node:fs` backend checks.
 *
 * @module
 */

import {
  heldInProcess,
  joinPath,
  LOCK_FILE,
  lockFileText,
  parseLockFile,
  permissionGuard,
  type WalBackend,
  type WalDirLock,
  type WalFile,
} from "./backend.ts";
import { WalLockedError } from "./errors.ts";
import { pidAlive } from "./pid_alive.ts";

function isPermissionError(e: unknown): boolean {
  return e instanceof Deno.errors.PermissionDenied ||
    // NotCapable: denied by Deno's permission sandbox (Deno 2).
    (e instanceof Error && e.name === "NotCapable");
}

const guard = permissionGuard(isPermissionError);

class DenoWalFile implements WalFile {
  #file: Deno.FsFile;
  #path: string;
  #position = 0;

  constructor(file: Deno.FsFile, path: string) {
    this.#file = file;
    this.#path = path;
  }

  writeAt(bytes: Uint8Array, position: number): Promise<void> {
    return guard(this.#path, "write", () => {
      if (position !== this.#position) {
        this.#file.seekSync(position, Deno.SeekMode.Start);
        this.#position = position;
      }
      // A write only copies into the page cache; doing it on this thread
      // saves a hand-off to Deno's I/O pool per batch. syncData stays async.
      let done = 0;
      while (done < bytes.length) {
        const n = this.#file.writeSync(bytes.subarray(done));
        done += n;
        this.#position += n;
      }
      return Promise.resolve();
    });
  }

  truncate(length: number): Promise<void> {
    return guard(this.#path, "truncate", async () => {
      await this.#file.truncate(length);
      // The position is unknown to the kernel's view after a cut; re-seek on next write.
      this.#position = -1;
    });
  }

  syncData(): Promise<void> {
    return guard(this.#path, "sync", () => this.#file.syncData());
  }

  close(): Promise<void> {
    try {
      this.#file.close();
    } catch (e) {
      if (!(e instanceof Deno.errors.BadResource)) throw e;
    }
    return Promise.resolve();
  }
}

class DenoDirLock implements WalDirLock {
  #file: Deno.FsFile | undefined;
  #key: string;

  constructor(file: Deno.FsFile, key: string) {
    this.#file = file;
    this.#key = key;
  }

  release(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    if (file) {
      heldInProcess.delete(this.#key);
      try {
        // An empty lock file tells the node:fs backend nobody holds it.
        file.truncateSync(0);
      } finally {
        file.close(); // closing drops the flock
      }
    }
    return Promise.resolve();
  }
}

/** The Deno file backend. */
export class DenoWalBackend implements WalBackend {
  /** Backend name. */
  readonly name = "deno";

  /** See {@linkcode WalBackend.mkdirp}. */
  mkdirp(dir: string): Promise<void> {
    return guard(
      dir,
      "create directory",
      () => Deno.mkdir(dir, { recursive: true }),
    );
  }

  /** See {@linkcode WalBackend.readDir}. */
  readDir(dir: string): Promise<string[]> {
    return guard(dir, "list", async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) names.push(e.name);
      return names;
    });
  }

  /** See {@linkcode WalBackend.readFile}. */
  readFile(path: string): Promise<Uint8Array> {
    return guard(path, "read", async () => {
      // Reading into one buffer of the file's size is about twice as fast as Deno.readFile.
      const file = await Deno.open(path, { read: true });
      try {
        const size = (await file.stat()).size;
        const bytes = new Uint8Array(size);
        let done = 0;
        while (done < size) {
          const n = await file.read(bytes.subarray(done));
          if (n === null) break;
          done += n;
        }
        return done === size ? bytes : bytes.subarray(0, done);
      } finally {
        file.close();
      }
    });
  }

  /** See {@linkcode WalBackend.openFile}. */
  openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile> {
    return guard(path, "open", async () => {
      const file = await Deno.open(path, {
        read: true,
        write: true,
        create: options.create,
        truncate: options.truncate,
      });
      return new DenoWalFile(file, path);
    });
  }

  /** See {@linkcode WalBackend.rename}. */
  rename(from: string, to: string): Promise<void> {
    return guard(from, "rename", () => Deno.rename(from, to));
  }

  /** See {@linkcode WalBackend.remove}. */
  remove(path: string): Promise<void> {
    return guard(path, "remove", async () => {
      try {
        await Deno.remove(path);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    });
  }

  /** See {@linkcode WalBackend.syncDir}. */
  syncDir(dir: string): Promise<void> {
    if (Deno.build.os === "windows") return Promise.resolve(); // no directory fsync there
    return guard(dir, "sync directory", async () => {
      const file = await Deno.open(dir, { read: true });
      try {
        await file.sync();
      } finally {
        file.close();
      }
    });
  }

  /** See {@linkcode WalBackend.lock}. */
  lock(dir: string): Promise<WalDirLock> {
    const path = joinPath(dir, LOCK_FILE);
    return guard(path, "lock", async () => {
      const key = await Deno.realPath(dir);
      if (heldInProcess.has(key)) throw new WalLockedError(dir, Deno.pid);
      const file = await Deno.open(path, {
        read: true,
        write: true,
        create: true,
      });
      let locked = false;
      try {
        locked = file.tryLockSync(true);
        if (!locked) {
          const pid = parseLockFile(
            await Deno.readTextFile(path).catch(() => ""),
          ).pid;
          throw new WalLockedError(dir, pid);
        }
        const text = await Deno.readTextFile(path);
        const held = parseLockFile(text);
        if (
          held.protocol === "excl" && held.pid !== undefined &&
          held.pid !== Deno.pid
        ) {
          // A node:fs-backend holder takes no flock; respect its pid while it lives.
          if (pidAlive(held.pid) !== false) {
            throw new WalLockedError(
              dir,
              held.pid,
              `If no such process uses the log, delete ${path}`,
            );
          }
        }
        file.truncateSync(0);
        await file.write(
          new TextEncoder().encode(lockFileText("flock", Deno.pid)),
        );
        heldInProcess.add(key);
        return new DenoDirLock(file, key);
      } catch (e) {
        file.close();
        throw e;
      }
    });
  }
}
