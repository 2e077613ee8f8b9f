/**
 * Builds the npm package into `npm/` with TypeScript's compiler: ESM `.js`
 * plus `.d.ts`, relative `.ts` imports rewritten to `.js`, and a
 * `package.json` with subpath `exports` for Node >= 20.
 *
 * `deno check` is the type checker of record; here tsc only emits (noCheck),
 * since Deno-only and Node-only backends live side by side and are chosen at
 * run time. (`@deno/dnt` is on JSR, which this project cannot reach.)
 *
 * @module
 */

import ts from "typescript";

const root = new URL("../", import.meta.url);
const outDir = new URL("npm/", root);
const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));

async function collect(
  dir: URL,
  prefix: string,
  into: string[],
): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    const path = `${prefix}${e.name}`;
    if (e.isDirectory) {
      await collect(new URL(`${e.name}/`, dir), `${path}/`, into);
    } else if (
      e.isFile && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")
    ) {
      into.push(path);
    }
  }
}

const files = ["mod.ts"];
await collect(new URL("src/", root), "src/", files);
files.sort();

await Deno.remove(outDir, { recursive: true }).catch((e) => {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
});

const rootPath = decodeURIComponent(root.pathname);
const program = ts.createProgram(files.map((f) => rootPath + f), {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ES2022,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  declaration: true,
  rewriteRelativeImportExtensions: true,
  allowImportingTsExtensions: true,
  noCheck: true,
  skipLibCheck: true,
  strict: true,
  rootDir: rootPath,
  outDir: rootPath + "npm/esm",
  lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
  types: [],
});
const emitted = program.emit();
const errors = emitted.diagnostics.filter((d) =>
  d.category === ts.DiagnosticCategory.Error
);
if (errors.length > 0) {
  console.error(ts.formatDiagnostics(errors, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => rootPath,
    getNewLine: () => "\n",
  }));
  Deno.exit(1);
}

function entry(path: string): { types: string; import: string } {
  const base = path.replace(/^\.\//, "./esm/").replace(/\.ts$/, "");
  return { types: `${base}.d.ts`, import: `${base}.js` };
}

const exports: Record<string, { types: string; import: string }> = {};
for (
  const [name, path] of Object.entries(config.exports as Record<string, string>)
) {
  exports[name] = entry(path);
}

const dependencies: Record<string, string> = {};
for (
  const [name, spec] of Object.entries(config.imports as Record<string, string>)
) {
  const m = /^npm:(@?[^@]+)@(.+)$/.exec(spec);
  if (m && name === "fast-check") dependencies[m[1]] = `^${m[2]}`;
}

const pkg = {
  name: "raft-io",
  version: config.version,
  description:
    "Raft consensus and replicated-log engine with a WASM-accelerated write-ahead log",
  license: config.license,
  type: "module",
  engines: { node: ">=20" },
  exports,
  main: exports["."].import,
  types: exports["."].types,
  bin: { "raft-io-serve": "./bin/serve.mjs" },
  dependencies,
  files: ["esm/", "bin/", "README.md"],
};
await Deno.writeTextFile(
  new URL("package.json", outDir),
  JSON.stringify(pkg, null, 2) + "\n",
);
await Deno.copyFile(new URL("README.md", root), new URL("README.md", outDir));
// The same `serve` command line as `deno task serve`, for Node.
await Deno.mkdir(new URL("bin/", outDir), { recursive: true });
await Deno.writeTextFile(
  new URL("bin/serve.mjs", outDir),
  [
    "#!/usr/bin/env node",
    'import process from "node:process";',
    'import { runServeCli } from "../esm/src/kv/cli.js";',
    "process.exitCode = await runServeCli(process.argv.slice(2));",
    "",
  ].join("\n"),
);
console.log(
  `build:npm: ${files.length} modules -> npm/ (raft-io@${config.version})`,
);
