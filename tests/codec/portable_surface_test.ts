/**
 * The root module, `./core` and `./codec` load in any JavaScript runtime (a
 * browser, an edge worker): their static module graph holds no `node:` or
 * `npm:` module and no module touches `Deno` or `process` at its top level;
 * the Deno and Node backends of the WAL and the TCP transport are imported
 * only when `WalLog.open` / `TcpTransport.create` picks one. Checked twice:
 * on the module graph `deno info --json` reports, and by running an
 * election with those globals deleted.
 */

import assert from "node:assert/strict";

const deno = Deno.execPath();
const repo = new URL("../../", import.meta.url);
const ENTRY_POINTS = ["mod.ts", "src/core/mod.ts", "src/codec/mod.ts"];

interface InfoDependency {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

async function moduleGraph(entry: string): Promise<Map<string, InfoModule>> {
  const out = await new Deno.Command(deno, {
    args: ["info", "--json", entry],
    cwd: repo,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: InfoModule[];
  };
  return new Map(info.modules.map((m) => [m.specifier, m]));
}

/** The modules evaluated when `entry` is imported: code dependencies, not type-only or dynamic ones. */
async function staticCodeGraph(entry: string): Promise<string[]> {
  const graph = await moduleGraph(entry);
  const root = new URL(entry, repo).href;
  const seen = new Set<string>([root]);
  const todo = [root];
  while (todo.length > 0) {
    const module = graph.get(todo.pop()!);
    for (const dep of module?.dependencies ?? []) {
      const target = dep.code?.specifier;
      if (target === undefined || dep.isDynamic || seen.has(target)) continue;
      seen.add(target);
      todo.push(target);
    }
  }
  return [...seen].sort();
}

const RUNTIME_GLOBAL = /^(Deno|process|require|Buffer)$/;
const REGEX_MAY_FOLLOW = new Set([..."(,=:[!&|?{};+-*%<>~^"]);

/**
 * Identifiers naming a runtime-specific global outside any `{}` block (so
 * evaluated when the module loads), with their line numbers. A small lexer:
 * comments, strings, template literals and regex literals are skipped.
 */
export function topLevelGlobalUses(source: string): string[] {
  const found: string[] = [];
  let depth = 0;
  let line = 1;
  let prev = ""; // last significant character or word
  let i = 0;
  const n = source.length;
  const skipString = (quote: string) => {
    i++;
    while (i < n && source[i] !== quote) {
      if (source[i] === "\\") i++;
      else if (source[i] === "\n") line++;
      i++;
    }
    i++;
  };
  const skipTemplate = () => {
    i++;
    while (i < n && source[i] !== "`") {
      if (source[i] === "\\") i++;
      else if (source[i] === "\n") line++;
      else if (source[i] === "$" && source[i + 1] === "{") {
        // An expression inside the template: scanned on its own when the
        // template itself is at the top level.
        let nested = 1;
        const start = i + 2;
        const startLine = line;
        i = start;
        while (i < n && nested > 0) {
          if (source[i] === "{") nested++;
          else if (source[i] === "}") nested--;
          else if (source[i] === "\n") line++;
          else if (source[i] === '"' || source[i] === "'") {
            skipString(source[i]);
            continue;
          }
          i++;
        }
        if (depth === 0) {
          for (const use of topLevelGlobalUses(source.slice(start, i - 1))) {
            const [word, at] = use.split(" at line ");
            found.push(`${word} at line ${startLine + Number(at) - 1}`);
          }
        }
        continue;
      }
      i++;
    }
    i++;
  };
  while (i < n) {
    const c = source[i];
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") i++;
    else if (c === "/" && source[i + 1] === "/") {
      while (i < n && source[i] !== "\n") i++;
    } else if (c === "/" && source[i + 1] === "*") {
      const end = source.indexOf("*/", i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let k = i; k < stop; k++) if (source[k] === "\n") line++;
      i = stop;
    } else if (c === '"' || c === "'") {
      skipString(c);
      prev = "string";
    } else if (c === "`") {
      skipTemplate();
      prev = "string";
    } else if (
      c === "/" &&
      (prev === "" || REGEX_MAY_FOLLOW.has(prev) || prev === "return" ||
        prev === "typeof")
    ) {
      i++;
      let inClass = false;
      while (i < n && (inClass || source[i] !== "/")) {
        if (source[i] === "\\") i++;
        else if (source[i] === "[") inClass = true;
        else if (source[i] === "]") inClass = false;
        i++;
      }
      i++;
      prev = "regex";
    } else if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(source[j])) j++;
      const word = source.slice(i, j);
      const afterDot = prev === ".";
      const viaGlobalThis = afterDot &&
        /globalThis\s*\.\s*$/.test(source.slice(Math.max(0, i - 20), i));
      if (
        depth === 0 && RUNTIME_GLOBAL.test(word) &&
        (!afterDot || viaGlobalThis)
      ) {
        found.push(`${word} at line ${line}`);
      }
      prev = word;
      i = j;
    } else {
      if (c === "{") depth++;
      else if (c === "}") depth--;
      prev = c;
      i++;
    }
  }
  return found;
}

for (const entry of ENTRY_POINTS) {
  Deno.test(`${entry} imports no node: or npm: module statically`, async () => {
    const modules = await staticCodeGraph(entry);
    assert.ok(modules.length > 1, `the graph of ${entry} was not read`);
    const foreign = modules.filter((m) => !m.startsWith("file:"));
    assert.deepEqual(
      foreign,
      [],
      `${entry} loads ${foreign.join(", ")} when imported; ` +
        "import runtime backends lazily (await import()) where they are chosen",
    );
  });

  Deno.test(`no module ${entry} loads uses Deno or process at its top level`, async () => {
    const offenders: string[] = [];
    for (const module of await staticCodeGraph(entry)) {
      if (!module.startsWith("file:")) continue;
      const source = await Deno.readTextFile(new URL(module));
      for (const use of topLevelGlobalUses(source)) {
        offenders.push(`${module.slice(repo.href.length)}: ${use}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
}

Deno.test("the top-level scan finds runtime globals outside blocks only", () => {
  const source = [
    "// Deno in a comment",
    'const a = "Deno.env";',
    "const re = /process/g;",
    "function f() { return Deno.env.get('X'); }",
    "class C { x = process.pid; }",
    "const t = `${Deno.pid}`;",
    "const home = Deno.env.get('HOME');",
    "const p = globalThis.process;",
    "const q = obj.process;",
  ].join("\n");
  assert.deepEqual(topLevelGlobalUses(source), [
    "Deno at line 6",
    "Deno at line 7",
    "process at line 8",
  ]);
});

Deno.test("the root module elects a leader where Deno, process and require do not exist", async () => {
  const out = await new Deno.Command(deno, {
    args: [
      "run",
      "--no-prompt",
      "tests/codec/testdata/without_runtime_globals.ts",
    ],
    cwd: repo,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `exit ${out.code}\n${stdout}\n${stderr}`);
  assert.match(stdout, /^globals removed$/m);
  assert.match(stdout, /^core leader [123]$/m);
  assert.match(stdout, /^server leader [123] applied 3$/m);
});
