/**
 * {@linkcode SimDisk}: an in-memory {@linkcode WalBackend} that models what
 * survives a crash, with faults decided by a seeded random source.
 *
 * - File contents count only once `syncData()` ran, directory entries
 *   (creations, renames, removals) only once `syncDir()` ran.
 * - {@linkcode SimDisk.crash} returns the disk a restarted process finds:
 *   synced data under synced names; with `torn`, each file also keeps a
 *   random prefix of its unsynced tail (a write torn at any byte).
 * - Faults (probabilities per operation, {@linkcode SimDiskFaults}): a
 *   `syncData` that fails with `EIO`, `ENOSPC` on a write or on a sync, slow
 *   syncs that resolve after a virtual delay through a
 *   {@linkcode SimDiskTimer} (the simulator's scheduler).
 * - {@linkcode SimDisk.flipBit} corrupts one bit of a closed (non-last)
 *   segment, at rest: recovery must report it, never serve it.
 * - {@linkcode SimDisk.halt} freezes the disk of a crashed process: every
 *   later operation never settles (the process is gone).
 * - `failAt` throws at the n-th mutating operation, to crash a log at every
 *   write boundary.
 *
 * @module
 */

import { mulberry32 } from "../core/random.ts";
import type { WalBackend, WalDirLock, WalFile } from "../log/wal/backend.ts";
import { WalLockedError } from "../log/wal/errors.ts";
import { parseSegmentName } from "../log/wal/format.ts";

class Inode {
  data = new Uint8Array(0);
  synced = new Uint8Array(0);
}

/** Thrown by an operation the disk was told to fail with `failAt`. */
export class InjectedCrash extends Error {
  /** @param op the operation that was failed */
  constructor(op: string) {
    super(`injected crash at ${op}`);
    this.name = "InjectedCrash";
  }
}

/** An I/O error as the operating system reports it (`code` `EIO` or `ENOSPC`). */
export class SimIoError extends Error {
  /** `"EIO"` or `"ENOSPC"`. */
  readonly code: "EIO" | "ENOSPC";
  /**
   * @param code the errno name
   * @param op the operation that failed
   * @param path the file it failed on
   */
  constructor(code: "EIO" | "ENOSPC", op: string, path: string) {
    super(
      `${
        code === "EIO"
          ? "Input/output error (os error 5)"
          : "No space left on device (os error 28)"
      }: ${op} ${path} (simulated)`,
    );
    this.name = "SimIoError";
    this.code = code;
  }
}

/** Fault probabilities of a {@linkcode SimDisk}, each in `[0, 1]` per operation. */
export interface SimDiskFaults {
  /** A `syncData` fails with `EIO` (what it wrote may or may not be on the disk). */
  syncEio: number;
  /** A write fails with `ENOSPC` (nothing written). */
  writeEnospc: number;
  /** A `syncData` fails with `ENOSPC`. */
  syncEnospc: number;
  /** A sync is slow: it takes `slowSyncMs` instead of `syncMs`. */
  slowSync: number;
  /** Duration of a sync, ms, drawn uniformly from `[min, max]`. */
  syncMs: [number, number];
  /** Duration of a slow sync, ms, drawn uniformly from `[min, max]`. */
  slowSyncMs: [number, number];
}

/** Where a disk waits for a sync's virtual duration (e.g. a `Scheduler`). */
export interface SimDiskTimer {
  /** Runs `fn` after `ms`. */
  after(ms: number, fn: () => void): unknown;
}

/** Options of {@linkcode SimDisk}. */
export interface SimDiskOptions {
  /** Uniform random numbers in `[0, 1)` for faults and torn writes (default: a fixed seed). */
  random?: () => number;
  /** Fault probabilities (default: none). */
  faults?: Partial<SimDiskFaults>;
  /** Where syncs wait for their duration (default: they complete at once). */
  timer?: SimDiskTimer;
  /** Told of every injected I/O error, as it is decided (before the failing call settles). */
  onFault?: SimDiskFaultListener;
}

/** Sees an injected I/O error: its errno, the operation and the file. */
export type SimDiskFaultListener = (
  code: "EIO" | "ENOSPC",
  op: string,
  path: string,
) => void;

const NO_FAULTS: SimDiskFaults = {
  syncEio: 0,
  writeEnospc: 0,
  syncEnospc: 0,
  slowSync: 0,
  syncMs: [0, 0],
  slowSyncMs: [0, 0],
};

/** What {@linkcode SimDisk} counted (faults injected). */
export interface SimDiskStats {
  /** Syncs failed with EIO. */
  syncEio: number;
  /** Writes failed with ENOSPC. */
  writeEnospc: number;
  /** Syncs failed with ENOSPC. */
  syncEnospc: number;
  /** Slow syncs. */
  slowSyncs: number;
  /** Crashes that kept a torn prefix of unsynced data. */
  tornFiles: number;
}

const NEVER: Promise<never> = new Promise<never>(() => {});

/**
 * A simulated disk holding one directory tree (paths are flat keys).
 *
 * @example
 * ```ts
 * import { SimDisk } from "@raft-io/raft/testing";
 * import { WalLog } from "@raft-io/raft";
 * const disk = new SimDisk();
 * const log = await WalLog.open("n1", { backend: disk });
 * log.setHardState({ term: 1, vote: 1, commit: 0 });
 * await log.sync();
 * const after = await WalLog.open("n1", { backend: disk.crash() });
 * after.hardState().term; // 1
 * ```
 */
export class SimDisk implements WalBackend {
  readonly name = "sim";
  #names = new Map<string, Inode>();
  #durableNames = new Map<string, Inode>();
  #locked = new Set<string>();
  #halted = false;
  readonly #random: () => number;
  /** Fault probabilities; change them at any time. */
  faults: SimDiskFaults;
  /** Where syncs wait for their duration; change it when the process restarts. */
  timer: SimDiskTimer | undefined;
  /** Told of every injected I/O error (carried over by `crash`). */
  onFault: SimDiskFaultListener | undefined;
  /** Faults injected so far (carried over by `crash`). */
  readonly stats: SimDiskStats;
  /** Mutating operations so far. */
  ops = 0;
  /** Fail (throw) the mutating operation with this number (1-based); 0: never. */
  failAt = 0;

  /**
   * A disk with no files.
   *
   * @param options random source, faults and timer
   */
  constructor(options: SimDiskOptions = {}) {
    this.#random = options.random ?? mulberry32(1);
    this.faults = { ...NO_FAULTS, ...options.faults };
    this.timer = options.timer;
    this.onFault = options.onFault;
    this.stats = {
      syncEio: 0,
      writeEnospc: 0,
      syncEnospc: 0,
      slowSyncs: 0,
      tornFiles: 0,
    };
  }

  #mutate(op: string): void {
    this.ops++;
    if (this.failAt !== 0 && this.ops >= this.failAt) {
      throw new InjectedCrash(op);
    }
  }

  #roll(p: number): boolean {
    return p > 0 && this.#random() < p;
  }

  /**
   * The disk after a power loss: only synced contents under synced names.
   * With `keepUnsynced: true`, everything written survives (a process kill
   * with the page cache intact); with `"torn"`, each file keeps a random
   * prefix (possibly empty, possibly all) of what it had not synced. The new
   * disk shares this one's random source, faults and counters.
   */
  crash(keepUnsynced: boolean | "torn" = false): SimDisk {
    const disk = new SimDisk({
      random: this.#random,
      faults: this.faults,
      timer: this.timer,
      onFault: this.onFault,
    });
    Object.assign(disk.stats, this.stats);
    const source = keepUnsynced === true ? this.#names : this.#durableNames;
    for (const [name, inode] of source) {
      const copy = new Inode();
      if (keepUnsynced === true) copy.data = inode.data.slice();
      else if (keepUnsynced === "torn") copy.data = this.#torn(inode);
      else copy.data = inode.synced.slice();
      copy.synced = copy.data.slice();
      disk.#names.set(name, copy);
      disk.#durableNames.set(name, copy);
    }
    return disk;
  }

  /** Synced bytes plus a random prefix of the unsynced tail (only when the file grew past what was synced). */
  #torn(inode: Inode): Uint8Array<ArrayBuffer> {
    const { data, synced } = inode;
    if (data.length <= synced.length) return synced.slice();
    for (let i = 0; i < synced.length; i++) {
      if (data[i] !== synced[i]) return synced.slice();
    }
    const keep = Math.floor(this.#random() * (data.length - synced.length + 1));
    if (keep > 0) this.stats.tornFiles++;
    return data.slice(0, synced.length + keep);
  }

  /**
   * Freezes the disk: every later operation never settles, as if the
   * process using it were gone. Use it on the disk a crashed node left.
   */
  halt(): void {
    this.#halted = true;
  }

  /**
   * Flips one random bit of a closed (non-last) segment file in `dir`, in
   * its synced contents (corruption at rest). Returns the file and byte
   * offset, or undefined when `dir` has fewer than two segments.
   */
  flipBit(dir: string): { file: string; offset: number } | undefined {
    const prefix = dir + "/";
    const segments: [number, string][] = [];
    for (const name of this.#durableNames.keys()) {
      if (!name.startsWith(prefix)) continue;
      const seq = parseSegmentName(name.slice(prefix.length));
      if (seq !== undefined) segments.push([seq, name]);
    }
    if (segments.length < 2) return undefined;
    segments.sort((a, b) => a[0] - b[0]);
    const [, file] =
      segments[Math.floor(this.#random() * (segments.length - 1))];
    const inode = this.#durableNames.get(file)!;
    if (inode.synced.length === 0) return undefined;
    const offset = Math.floor(this.#random() * inode.synced.length);
    const bit = 1 << Math.floor(this.#random() * 8);
    inode.synced = inode.synced.slice();
    inode.synced[offset] ^= bit;
    if (inode.data.length > offset) {
      inode.data = inode.data.slice();
      inode.data[offset] ^= bit;
    }
    return { file, offset };
  }

  /** A copy of this disk as it stands (names and contents, synced or not). */
  clone(): SimDisk {
    const disk = new SimDisk({
      random: this.#random,
      faults: this.faults,
      timer: this.timer,
    });
    const copies = new Map<Inode, Inode>();
    const copy = (inode: Inode) => {
      let c = copies.get(inode);
      if (c === undefined) {
        c = new Inode();
        c.data = inode.data.slice();
        c.synced = inode.synced.slice();
        copies.set(inode, c);
      }
      return c;
    };
    for (const [name, inode] of this.#names) disk.#names.set(name, copy(inode));
    for (const [name, inode] of this.#durableNames) {
      disk.#durableNames.set(name, copy(inode));
    }
    return disk;
  }

  mkdirp(): Promise<void> {
    if (this.#halted) return NEVER;
    return Promise.resolve();
  }

  readDir(dir: string): Promise<string[]> {
    if (this.#halted) return NEVER;
    const prefix = dir + "/";
    const out: string[] = [];
    for (const name of this.#names.keys()) {
      if (name.startsWith(prefix)) out.push(name.slice(prefix.length));
    }
    return Promise.resolve(out);
  }

  readFile(path: string): Promise<Uint8Array> {
    if (this.#halted) return NEVER;
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
    if (this.#halted) return NEVER;
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
        if (this.#halted) return NEVER;
        this.#mutate("write");
        if (this.#roll(this.faults.writeEnospc)) {
          this.stats.writeEnospc++;
          this.onFault?.("ENOSPC", "write", path);
          return Promise.reject(new SimIoError("ENOSPC", "write", path));
        }
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
        if (this.#halted) return NEVER;
        this.#mutate("truncate");
        const next = new Uint8Array(length);
        next.set(node.data.subarray(0, Math.min(length, node.data.length)));
        node.data = next;
        return Promise.resolve();
      },
      syncData: (): Promise<void> => {
        if (this.#halted) return NEVER;
        this.#mutate("syncData");
        return this.#sync(node, path);
      },
      close: (): Promise<void> => {
        if (this.#halted) return NEVER;
        return Promise.resolve();
      },
    });
  }

  #sync(node: Inode, path: string): Promise<void> {
    const f = this.faults;
    let error: SimIoError | undefined;
    if (this.#roll(f.syncEio)) {
      // The device failed: a random part of the data may have reached it.
      this.stats.syncEio++;
      error = new SimIoError("EIO", "fsync", path);
      node.synced = this.#torn(node);
      this.onFault?.("EIO", "fsync", path);
    } else if (this.#roll(f.syncEnospc)) {
      this.stats.syncEnospc++;
      error = new SimIoError("ENOSPC", "fsync", path);
      this.onFault?.("ENOSPC", "fsync", path);
    }
    const slow = this.#roll(f.slowSync);
    if (slow) this.stats.slowSyncs++;
    const [lo, hi] = slow ? f.slowSyncMs : f.syncMs;
    const ms = lo + (hi - lo) * (hi > lo ? this.#random() : 0);
    const finish = () => {
      if (error === undefined) node.synced = node.data.slice();
    };
    const timer = this.timer;
    if (ms <= 0 || timer === undefined) {
      finish();
      return error ? Promise.reject(error) : Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      timer.after(ms, () => {
        if (this.#halted) return;
        finish();
        if (error) reject(error);
        else resolve();
      });
    });
  }

  rename(from: string, to: string): Promise<void> {
    if (this.#halted) return NEVER;
    this.#mutate("rename");
    const inode = this.#names.get(from);
    if (!inode) return Promise.reject(new Error(`no ${from}`));
    this.#names.delete(from);
    this.#names.set(to, inode);
    return Promise.resolve();
  }

  remove(path: string): Promise<void> {
    if (this.#halted) return NEVER;
    this.#mutate("remove");
    this.#names.delete(path);
    return Promise.resolve();
  }

  syncDir(dir: string): Promise<void> {
    if (this.#halted) return NEVER;
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
    if (this.#halted) return NEVER;
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
