/**
 * Shared helpers for the log tests: per-test data folders under ./.test-data.
 *
 * @module
 */

/** Creates a fresh folder under ./.test-data. */
export async function makeTestDir(prefix = "log"): Promise<string> {
  await Deno.mkdir(".test-data", { recursive: true });
  return await Deno.makeTempDir({ dir: ".test-data", prefix: `${prefix}-` });
}

/** Removes a test folder (and everything in it). */
export async function removeTestDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch((e) => {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  });
}

/** Runs `fn` with a fresh folder that is removed afterwards. */
export async function withTestDir<T>(
  fn: (dir: string) => Promise<T>,
  prefix?: string,
): Promise<T> {
  const dir = await makeTestDir(prefix);
  try {
    return await fn(dir);
  } finally {
    await removeTestDir(dir);
  }
}

/** Names of the segment files in `dir`, sorted. */
export async function segmentFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".wal")) names.push(e.name);
  }
  return names.sort();
}

/** Bytes of a deterministic pattern. */
export function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 97 + i * 13 + (i >> 8)) & 0xff;
  return b;
}
