/**
 * The `LOCK` file protocol both backends share, so that a Deno-backend and a
 * `node:fs`-backend process exclude each other.
 *
 * The file names its holder: `protocol`, `pid` and a random `token`.
 *
 * - Taking a free lock: the text is written to a temporary file, synced, and
 *   hard-linked to `LOCK`. `link` fails when `LOCK` exists, so the file
 *   appears atomically with its content: nobody ever reads a half-written
 *   lock (an empty `LOCK` read while its creator was still writing it used
 *   to look stale).
 * - Taking over a stale lock (its pid is dead): only the process that
 *   creates `LOCK.claim-<stale token>` (by the same link) may replace that
 *   lock. Holding the claim, it re-reads `LOCK`; only if it still holds the
 *   very text judged stale does it rename a fresh file over it (atomic
 *   replace: `LOCK` never disappears), then removes the claim. A second
 *   process judging the same lock stale fails to create the claim, or, once
 *   the claim is gone, finds `LOCK` changed: it backs off and reads the new
 *   holder, who is alive. Nobody ever unlinks a lock file they did not write.
 * - A claim whose creator died (a crash inside the takeover, a window of a
 *   few operations) is not taken over; the error says which two files to
 *   delete.
 * - After taking the lock, and again before the log's first write
 *   (`verify`), `LOCK` is read back and must hold this holder's token.
 *
 * @module
 */

import { LOCK_FILE } from "./backend.ts";
import { WalLockedError } from "./errors.ts";

/** The few file operations the protocol needs (each backend implements them). */
export interface LockFileOps {
  /** Creates `path` holding `text`, atomically; false when `path` already exists. */
  createExclusive(path: string, text: string, tmp: string): Promise<boolean>;
  /** The text of `path`; undefined when it does not exist. */
  read(path: string): Promise<string | undefined>;
  /** Writes `text` to `tmp`, syncs it and renames it over `path`. */
  replace(path: string, text: string, tmp: string): Promise<void>;
  /** Removes `path`; a missing file is not an error. */
  remove(path: string): Promise<void>;
}

/** A parsed lock file. */
export interface LockHolder {
  protocol: string | undefined;
  pid: number | undefined;
  token: string | undefined;
}

/** Lock file content: who holds it and with which protocol. */
export function lockFileText(
  protocol: "flock" | "excl",
  pid: number,
  token: string,
): string {
  return `raft-io wal lock\nprotocol=${protocol}\npid=${pid}\ntoken=${token}\n`;
}

/** Parses {@linkcode lockFileText}; undefined fields when absent. */
export function parseLockFile(text: string): LockHolder {
  const protocol = /^protocol=(\w+)$/m.exec(text)?.[1];
  const pidText = /^pid=(\d+)$/m.exec(text)?.[1];
  const token = /^token=([0-9a-f]+)$/m.exec(text)?.[1];
  return {
    protocol,
    pid: pidText === undefined ? undefined : Number(pidText),
    token,
  };
}

/** A fresh random token (128 bits, hex). */
export function newLockToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

function lockPath(dir: string): string {
  return dir.endsWith("/") ? dir + LOCK_FILE : `${dir}/${LOCK_FILE}`;
}

/** A name for the claim on one stale lock text. */
function claimKey(text: string, held: LockHolder): string {
  if (held.token !== undefined) return held.token;
  if (held.pid !== undefined) return `pid${held.pid}`;
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) | 0;
  return `text${h >>> 0}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Takes the `LOCK` file of `dir` for `me`, or throws {@linkcode WalLockedError}.
 * `isStale` says whether a holder found there is gone.
 */
export async function acquireLockFile(
  ops: LockFileOps,
  dir: string,
  me: { text: string; token: string },
  isStale: (held: LockHolder) => boolean,
): Promise<void> {
  const path = lockPath(dir);
  const tmp = `${path}.${me.token}.tmp`;
  for (let attempt = 0; attempt < 50; attempt++) {
    if (attempt > 0) await sleep(2 + Math.random() * 8);
    if (await ops.createExclusive(path, me.text, tmp)) {
      await checkOurs(ops, dir, me.token);
      return;
    }
    const seen = await ops.read(path);
    if (seen === undefined) continue; // released meanwhile: try again
    const held = parseLockFile(seen);
    if (!isStale(held)) {
      throw new WalLockedError(
        dir,
        held.pid,
        `If no such process uses the log, delete ${path}`,
      );
    }
    const claim = `${path}.claim-${claimKey(seen, held)}`;
    if (!await ops.createExclusive(claim, me.text, tmp)) {
      const claimer = parseLockFile(await ops.read(claim) ?? "");
      if (claimer.pid !== undefined && !isStale(claimer)) continue; // another process is taking it over
      if (claimer.pid === undefined && claimer.token === undefined) continue; // claim just removed
      throw new WalLockedError(
        dir,
        held.pid,
        `A takeover of its stale lock was interrupted; if no process uses the log, delete ${path} and ${claim}`,
      );
    }
    try {
      if (await ops.read(path) !== seen) continue; // someone else took it over first
      await ops.replace(path, me.text, tmp);
    } finally {
      await ops.remove(claim);
    }
    await checkOurs(ops, dir, me.token);
    return;
  }
  throw new WalLockedError(
    dir,
    undefined,
    "Other processes kept taking and releasing the lock; try again",
  );
}

/** Throws {@linkcode WalLockedError} unless `LOCK` holds `token`. */
export async function checkOurs(
  ops: LockFileOps,
  dir: string,
  token: string,
): Promise<void> {
  const now = parseLockFile(await ops.read(lockPath(dir)) ?? "");
  if (now.token !== token) {
    throw new WalLockedError(
      dir,
      now.pid,
      now.token === undefined
        ? `Its ${LOCK_FILE} file was removed while this log held it; stop every process using the log, then open it again`
        : `Its ${LOCK_FILE} file was replaced by another process; stop every process using the log, then open it again`,
    );
  }
}

/** Removes `LOCK` if it still names `token` (never another holder's file). */
export async function releaseLockFile(
  ops: LockFileOps,
  dir: string,
  token: string,
): Promise<void> {
  const path = lockPath(dir);
  const now = parseLockFile(await ops.read(path) ?? "");
  if (now.token === token) await ops.remove(path);
}
