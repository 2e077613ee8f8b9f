/**
 * The identity file of a log directory: which node of which cluster the log
 * belongs to, so a node never starts on a peer's folder or on another
 * cluster's. `IDENTITY` holds one JSON line `{"nodeId": N, "clusterId":
 * "..."}`; it is written once, when the directory is new, to a temporary
 * name, synced, renamed and the directory synced, and compared on every
 * later open.
 *
 * @module
 */

import { joinPath, type WalBackend } from "./backend.ts";
import { WalCorruptionError, WalIdentityError } from "./errors.ts";

/** Who a log directory belongs to. */
export interface WalIdentity {
  /** The node id. */
  nodeId: number;
  /** The cluster id (1..255 UTF-8 bytes). */
  clusterId: string;
}

/** Name of the identity file inside a log directory. */
export const IDENTITY_FILE = "IDENTITY";

function isNotFound(e: unknown): boolean {
  return (e as { code?: unknown }).code === "ENOENT" ||
    (e instanceof Error && e.name === "NotFound");
}

/** Checks `identity` has a safe positive node id and a cluster id of 1..255 bytes. */
function validate(identity: WalIdentity): void {
  const n = new TextEncoder().encode(identity.clusterId).byteLength;
  if (
    !Number.isSafeInteger(identity.nodeId) || identity.nodeId <= 0 || n === 0 ||
    n > 255
  ) {
    throw new RangeError(
      "identity needs a positive integer nodeId and a clusterId of 1..255 UTF-8 bytes",
    );
  }
}

/**
 * Compares the identity recorded in `dir` with `identity`; records it when
 * the directory has none (a new directory, or one from before identities).
 * Throws {@linkcode WalIdentityError} on a mismatch,
 * {@linkcode WalCorruptionError} when the file is unreadable.
 */
export async function checkIdentity(
  backend: WalBackend,
  dir: string,
  identity: WalIdentity,
): Promise<void> {
  validate(identity);
  const path = joinPath(dir, IDENTITY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = await backend.readFile(path);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (bytes === undefined) {
    await writeIdentity(backend, dir, identity);
    return;
  }
  let found: WalIdentity | undefined;
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (
      typeof v === "object" && v !== null && Number.isSafeInteger(v.nodeId) &&
      typeof v.clusterId === "string"
    ) found = { nodeId: v.nodeId, clusterId: v.clusterId };
  } catch {
    found = undefined;
  }
  if (found === undefined) {
    throw new WalCorruptionError(
      path,
      0,
      'the identity file is not {"nodeId": N, "clusterId": "..."} (it is written to a temporary name, synced and renamed, so a crash never leaves it half written)',
    );
  }
  if (
    found.nodeId !== identity.nodeId || found.clusterId !== identity.clusterId
  ) {
    throw new WalIdentityError(dir, { ...identity }, found);
  }
}

async function writeIdentity(
  backend: WalBackend,
  dir: string,
  identity: WalIdentity,
): Promise<void> {
  const path = joinPath(dir, IDENTITY_FILE);
  const tmp = path + ".tmp";
  const text = JSON.stringify({
    nodeId: identity.nodeId,
    clusterId: identity.clusterId,
  }) + "\n";
  const file = await backend.openFile(tmp, { create: true, truncate: true });
  try {
    await file.writeAt(new TextEncoder().encode(text), 0);
    await file.syncData();
  } finally {
    await file.close();
  }
  await backend.rename(tmp, path);
  await backend.syncDir(dir);
}
