/**
 * Process liveness for lock files, through `node:process` (works on Deno and
 * Node).
 *
 * @module
 */

import process from "node:process";

/**
 * Whether `pid` names a live process: `true`, `false`, or `undefined` when it
 * cannot be checked (Deno without `--allow-run`).
 */
export function pidAlive(pid: number): boolean | undefined {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === "ESRCH") return false;
    if (code === "EPERM") return true; // alive, owned by another user
    return undefined;
  }
}
