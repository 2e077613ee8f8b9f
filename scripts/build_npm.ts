/**
 * Builds the npm package into `npm/` with TypeScript's compiler: ESM `.js`
 * plus `.d.ts`, relative `.ts` imports rewritten to `.js`, and a
 * `package.json` with subpath `exports` for Node >= 20, and `README.md` from
 * `docs/npm_readme.md` (a README that speaks Node).
 *
 * It also compiles `examples/job_queue/` into `npm/examples/job_queue/`
 * (not published), with the example's one import of raft-io — its
 * `raft.ts`, re-exporting `../../mod.ts` — pointed at the built package
 * (`../../esm/mod.js`), so `node npm/examples/job_queue/cluster.js` runs the
 * same sources under Node.
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

// The example, against the built package: only raft.ts names the library.
const examplesRoot = rootPath + "examples/";
const exampleFiles: string[] = [];
await collect(new URL("examples/job_queue/", root), "job_queue/", exampleFiles);
let rewired = false;
const exampleEmit = ts.createProgram(
  exampleFiles.map((f) => examplesRoot + f),
  {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ES2022,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    rewriteRelativeImportExtensions: true,
    allowImportingTsExtensions: true,
    noCheck: true,
    skipLibCheck: true,
    rootDir: examplesRoot,
    outDir: rootPath + "npm/examples",
    types: [],
  },
).emit(undefined, (fileName, text) => {
  // The program reaches into ../../mod.ts and src/: those are in npm/esm already.
  if (!fileName.startsWith(rootPath + "npm/examples/job_queue/")) return;
  if (fileName.endsWith("/job_queue/raft.js")) {
    const next = text.replaceAll('"../../mod.js"', '"../../esm/mod.js"');
    rewired = next !== text;
    text = next;
  }
  Deno.mkdirSync(fileName.slice(0, fileName.lastIndexOf("/")), {
    recursive: true,
  });
  Deno.writeTextFileSync(fileName, text);
});
const exampleErrors = exampleEmit.diagnostics.filter((d) =>
  d.category === ts.DiagnosticCategory.Error
);
if (exampleErrors.length > 0 || !rewired) {
  console.error(
    rewired
      ? ts.formatDiagnostics(exampleErrors, {
        getCanonicalFileName: (f) => f,
        getCurrentDirectory: () => rootPath,
        getNewLine: () => "\n",
      })
      : 'examples/job_queue/raft.ts no longer imports "../../mod.ts"',
  );
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
  name: config.name,
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
await Deno.copyFile(
  new URL("docs/npm_readme.md", root),
  new URL("README.md", outDir),
);
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
  `build:npm: ${files.length} modules -> npm/ (${pkg.name}@${config.version}), ` +
    `${exampleFiles.length} example modules -> npm/examples/`,
);
