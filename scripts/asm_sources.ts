/**
 * What the embedded WASM is built from: the AssemblyScript sources under
 * `asm/`, the compiler version and the compiler options. Their hash is
 * recorded beside the embedded bytes so a test can tell when they are stale.
 *
 * @module
 */

/** Pinned compiler version; keep equal to the import map entry in deno.json. */
export const ASC_VERSION = "0.28.20";

/** Compiler options used for the embedded module. */
export const ASC_OPTIONS = {
  optimizeLevel: 3,
  shrinkLevel: 0,
  runtime: "stub",
  noAssert: true,
  initialMemory: 1,
} as const;

/** Reads every `.ts` file of `asm/`, sorted by name. */
export async function readAsmSources(
  asmDir: URL = new URL("../asm/", import.meta.url),
): Promise<Record<string, string>> {
  const names: string[] = [];
  for await (const e of Deno.readDir(asmDir)) {
    if (e.isFile && e.name.endsWith(".ts")) names.push(e.name);
  }
  names.sort();
  const sources: Record<string, string> = {};
  for (const name of names) {
    sources[name] = await Deno.readTextFile(new URL(name, asmDir));
  }
  return sources;
}

/** SHA-256 (hex) of the sources, the compiler version and the options. */
export async function asmSourceHash(
  sources: Record<string, string>,
): Promise<string> {
  const parts = [`asc ${ASC_VERSION}`, JSON.stringify(ASC_OPTIONS)];
  for (const name of Object.keys(sources).sort()) {
    parts.push(`${name}\0${sources[name]}`);
  }
  const bytes = new TextEncoder().encode(parts.join("\0\0"));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
