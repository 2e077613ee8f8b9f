/**
 * The {@linkcode WalBackend} on Deno's file APIs (the default under Deno).
 *
 * Locking: the log directory itself is held with an exclusive `flock`
 * (`FsFile.tryLockSync` on the directory), which the kernel releases when
 * the process dies, so a crashed holder never leaves a stale lock, and
 * which deleting `LOCK` does not undo. Two opens in one process use two
 * file descriptions, so they exclude each other too. The `LOCK` file is
 * also taken with the protocol of lock_file.ts, so `node:fs`-backend
 * processes (which have no `flock`) see the holder.
 *
 * @module
 */

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
  parseLockFile,
  releaseLockFile,
} from "./lock_file.ts";
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

async function writeSynced(path: string, text: string): Promise<void> {
  const file = await Deno.open(path, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    const bytes = new TextEncoder().encode(text);
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    await file.syncData();
  } finally {
    file.close();
  }
}

const denoLockOps: LockFileOps = {
  async createExclusive(path, text, tmp) {
    try {
      for (let attempt = 0;; attempt++) {
        await writeSynced(tmp, text);
        try {
          await Deno.link(tmp, path);
          return true;
        } catch (e) {
          if (e instanceof Deno.errors.AlreadyExists) return false;
          // The holder's recovery may sweep our temporary away: write it again.
          if (!(e instanceof Deno.errors.NotFound) || attempt >= 3) throw e;
        }
      }
    } finally {
      await Deno.remove(tmp).catch(() => {});
    }
  },
  async read(path) {
    try {
      return await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    }
  },
  async replace(path, text, tmp) {
    await writeSynced(tmp, text);
    await Deno.rename(tmp, path);
  },
  async remove(path) {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  },
};

class DenoDirLock implements WalDirLock {
  #dir: string | undefined;
  #flock: Deno.FsFile | undefined;
  #key: string;
  #token: string;

  constructor(
    dir: string,
    flock: Deno.FsFile | undefined,
    key: string,
    token: string,
  ) {
    this.#dir = dir;
    this.#flock = flock;
    this.#key = key;
    this.#token = token;
  }

  async release(): Promise<void> {
    const dir = this.#dir;
    this.#dir = undefined;
    if (dir === undefined) return;
    heldInProcess.delete(this.#key);
    try {
      await releaseLockFile(denoLockOps, dir, this.#token);
    } finally {
      this.#flock?.close(); // closing drops the flock
    }
  }

  async verify(): Promise<void> {
    const dir = this.#dir;
    if (dir === undefined) throw new Error("lock released");
    const text = lockFileText("flock", Deno.pid, this.#token);
    // The directory's flock is ours whatever happened to the file; put a
    // deleted LOCK back so node:fs-backend processes keep seeing the holder.
    if (
      this.#flock !== undefined &&
      await denoLockOps.read(joinPath(dir, LOCK_FILE)) === undefined
    ) {
      await denoLockOps.createExclusive(
        joinPath(dir, LOCK_FILE),
        text,
        joinPath(dir, `${LOCK_FILE}.${this.#token}.tmp`),
      );
    }
    await checkOurs(denoLockOps, dir, this.#token);
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
      // The OS lock: an exclusive flock on the directory itself, which no
      // file deletion undoes and the kernel drops when the process dies.
      // (Windows cannot open a directory: the LOCK file protocol alone.)
      let flock: Deno.FsFile | undefined;
      if (Deno.build.os !== "windows") {
        flock = await Deno.open(dir, { read: true });
        if (!flock.tryLockSync(true)) {
          flock.close();
          const held = parseLockFile(await denoLockOps.read(path) ?? "");
          throw new WalLockedError(dir, held.pid);
        }
      }
      const token = newLockToken();
      heldInProcess.add(key);
      try {
        await acquireLockFile(
          denoLockOps,
          dir,
          { text: lockFileText("flock", Deno.pid, token), token },
          (held) =>
            held.pid === undefined || held.pid === Deno.pid ||
            // A flock holder is gone once we hold the directory's flock.
            (held.protocol === "flock" && flock !== undefined) ||
            pidAlive(held.pid) === false,
        );
      } catch (e) {
        heldInProcess.delete(key);
        flock?.close();
        throw e;
      }
      return new DenoDirLock(dir, flock, key, token);
    });
  }
}
