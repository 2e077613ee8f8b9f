/**
 * An in-memory {@linkcode WalBackend} that models what survives a crash:
 * file contents count only once `syncData()` ran, directory entries
 * (creations, renames, removals) only once `syncDir()` ran. It can fail the
 * n-th mutating operation, to crash a log at every write boundary.
 *
 * @module
 */

import type { WalBackend, WalDirLock, WalFile } from "../../src/log/wal/mod.ts";
import { WalLockedError } from "../../src/log/wal/mod.ts";

class Inode {
  data = new Uint8Array(0);
  synced = new Uint8Array(0);
}

/** Thrown by an operation the disk was told to fail. */
export class InjectedCrash extends Error {
  constructor(op: string) {
    super(`injected crash at ${op}`);
    this.name = "InjectedCrash";
  }
}

/** A simulated disk holding one directory tree (paths are flat keys). */
export class SimDisk implements WalBackend {
  readonly name = "sim";
  #names = new Map<string, Inode>();
  #durableNames = new Map<string, Inode>();
  #locked = new Set<string>();
  /** Mutating operations so far. */
  ops = 0;
  /** Fail (throw) the mutating operation with this number (1-based); 0: never. */
  failAt = 0;

  #mutate(op: string): void {
    this.ops++;
    if (this.failAt !== 0 && this.ops >= this.failAt) {
      throw new InjectedCrash(op);
    }
  }

  /**
   * The disk after a power loss: only synced contents under synced names.
   * With `keepUnsynced`, everything written survives (a process kill).
   */
  crash(keepUnsynced = false): SimDisk {
    const disk = new SimDisk();
    const source = keepUnsynced ? this.#names : this.#durableNames;
    for (const [name, inode] of source) {
      const copy = new Inode();
      copy.data = (keepUnsynced ? inode.data : inode.synced).slice();
      copy.synced = copy.data.slice();
      disk.#names.set(name, copy);
      disk.#durableNames.set(name, copy);
    }
    return disk;
  }

  mkdirp(): Promise<void> {
    return Promise.resolve();
  }

  readDir(dir: string): Promise<string[]> {
    const prefix = dir + "/";
    const out: string[] = [];
    for (const name of this.#names.keys()) {
      if (name.startsWith(prefix)) out.push(name.slice(prefix.length));
    }
    return Promise.resolve(out);
  }

  readFile(path: string): Promise<Uint8Array> {
    const inode = this.#names.get(path);
    if (!inode) {
      return Promise.reject(
        Object.assign(new Error(`no ${path}`), { code: "ENOENT" }),
      );
    }
    return Promise.resolve(inode.data.slice());
  }

  openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile> {
    let inode = this.#names.get(path);
    if (!inode) {
      if (!options.create) {
        return Promise.reject(
          Object.assign(new Error(`no ${path}`), { code: "ENOENT" }),
        );
      }
      this.#mutate("create");
      inode = new Inode();
      this.#names.set(path, inode);
    }
    if (options.truncate) inode.data = new Uint8Array(0);
    const node = inode;
    return Promise.resolve({
      writeAt: (bytes: Uint8Array, position: number): Promise<void> => {
        this.#mutate("write");
        const end = position + bytes.length;
        if (end > node.data.length) {
          const grown = new Uint8Array(end);
          grown.set(node.data);
          node.data = grown;
        }
        node.data.set(bytes, position);
        return Promise.resolve();
      },
      truncate: (length: number): Promise<void> => {
        this.#mutate("truncate");
        const next = new Uint8Array(length);
        next.set(node.data.subarray(0, Math.min(length, node.data.length)));
        node.data = next;
        return Promise.resolve();
      },
      syncData: (): Promise<void> => {
        this.#mutate("syncData");
        node.synced = node.data.slice();
        return Promise.resolve();
      },
      close(): Promise<void> {
        return Promise.resolve();
      },
    });
  }

  rename(from: string, to: string): Promise<void> {
    this.#mutate("rename");
    const inode = this.#names.get(from);
    if (!inode) return Promise.reject(new Error(`no ${from}`));
    this.#names.delete(from);
    this.#names.set(to, inode);
    return Promise.resolve();
  }

  remove(path: string): Promise<void> {
    this.#mutate("remove");
    this.#names.delete(path);
    return Promise.resolve();
  }

  syncDir(dir: string): Promise<void> {
    this.#mutate("syncDir");
    const prefix = dir + "/";
    for (const name of [...this.#durableNames.keys()]) {
      if (name.startsWith(prefix) && !this.#names.has(name)) {
        this.#durableNames.delete(name);
      }
    }
    for (const [name, inode] of this.#names) {
      if (name.startsWith(prefix)) this.#durableNames.set(name, inode);
    }
    return Promise.resolve();
  }

  lock(dir: string): Promise<WalDirLock> {
    if (this.#locked.has(dir)) {
      return Promise.reject(new WalLockedError(dir, undefined));
    }
    this.#locked.add(dir);
    return Promise.resolve({
      release: () => {
        this.#locked.delete(dir);
        return Promise.resolve();
      },
    });
  }
}
