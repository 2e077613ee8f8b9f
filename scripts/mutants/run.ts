/**
 * Planted-bug check: applies each `scripts/mutants/*.patch` (one real bug
 * each, in the core, the runtime or the WAL) to a temporary copy of the
 * repository, runs the simulator (the shipped RaftServer and WalLog on
 * simulated disks) on it and reports whether the bug was caught, by which
 * seed and invariant, and how long it took.
 *
 *   deno task mutants [--seeds N] [--only NAME]
 *
 * Each mutant runs up to N seeds (default 300) with 3 nodes, then up to N
 * with 5 nodes, stopping at the first violation. Exits 1 when a mutant
 * survives.
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;
const HERE = new URL("./", import.meta.url).pathname;

interface Outcome {
  name: string;
  description: string;
  caught: boolean;
  nodes?: number;
  seed?: number;
  seedsNeeded: number;
  invariant?: string;
  seconds: number;
  /** Set when the patch no longer applies. */
  stale?: string;
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    const src = `${from}/${entry.name}`;
    const dst = `${to}/${entry.name}`;
    if (entry.isDirectory) await copyTree(src, dst);
    else if (entry.isFile) await Deno.copyFile(src, dst);
  }
}

async function run(
  cmd: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; out: string }> {
  const result = await new Deno.Command(cmd, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: result.code,
    out: decode(result.stdout) + decode(result.stderr),
  };
}

async function tryMutant(patch: string, seeds: number): Promise<Outcome> {
  const name = patch.replace(/\.patch$/, "");
  const text = await Deno.readTextFile(`${HERE}/${patch}`);
  const description = text.startsWith("# ")
    ? text.slice(2, text.indexOf("\n"))
    : "";
  // A header line `# sim-args: ...` adds simulator flags (e.g. --leases).
  const extra = /^# sim-args: (.*)$/m.exec(text)?.[1].trim().split(/\s+/) ?? [];
  const dir = await Deno.makeTempDir({ prefix: `raft-mutant-${name}-` });
  const started = performance.now();
  try {
    await copyTree(`${ROOT}/src`, `${dir}/src`);
    await Deno.mkdir(`${dir}/scripts`);
    await Deno.copyFile(`${ROOT}/scripts/sim.ts`, `${dir}/scripts/sim.ts`);
    await Deno.copyFile(`${ROOT}/deno.json`, `${dir}/deno.json`);
    const applied = await run("git", ["apply", `${HERE}/${patch}`], dir);
    if (applied.code !== 0) {
      // The code moved under the patch: regenerate it (a failure, not a catch).
      return {
        name,
        description,
        caught: false,
        stale: applied.out.trim().split("\n")[0],
        seedsNeeded: 0,
        seconds: (performance.now() - started) / 1000,
      };
    }
    let tried = 0;
    for (const nodes of [3, 5]) {
      const sim = await run(Deno.execPath(), [
        "run",
        "--no-lock",
        "--quiet",
        "scripts/sim.ts",
        "--seeds",
        String(seeds),
        "--nodes",
        String(nodes),
        "--fail-fast",
        ...extra,
      ], dir);
      const m = /^seed (\d+): (\S+) violated/m.exec(sim.out);
      if (m) {
        const seed = Number(m[1]);
        return {
          name,
          description,
          caught: true,
          nodes,
          seed,
          seedsNeeded: tried + seed,
          invariant: m[2],
          seconds: (performance.now() - started) / 1000,
        };
      }
      if (!/^sim: /m.test(sim.out)) {
        // The mutant crashed the simulator outright: that is caught too.
        return {
          name,
          description,
          caught: true,
          nodes,
          seedsNeeded: tried + 1,
          invariant: "crash: " +
            sim.out.split("\n").find((l) => /error/i.test(l))?.slice(0, 120),
          seconds: (performance.now() - started) / 1000,
        };
      }
      tried += seeds;
    }
    return {
      name,
      description,
      caught: false,
      seedsNeeded: tried,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function main(): Promise<number> {
  let seeds = 300;
  let only: string | undefined;
  for (let i = 0; i < Deno.args.length; i++) {
    if (Deno.args[i] === "--seeds") seeds = Number(Deno.args[++i]);
    else if (Deno.args[i] === "--only") only = Deno.args[++i];
    else {
      console.error("usage: run.ts [--seeds N] [--only NAME]");
      return 2;
    }
  }
  const patches: string[] = [];
  for await (const e of Deno.readDir(HERE)) {
    if (e.name.endsWith(".patch")) patches.push(e.name);
  }
  patches.sort();
  let survivors = 0;
  let tried = 0;
  for (const patch of patches) {
    if (only && !patch.startsWith(only)) continue;
    const o = await tryMutant(patch, seeds);
    tried++;
    if (!o.caught) survivors++;
    if (o.stale !== undefined) {
      console.log(
        `STALE    ${o.name}: the patch no longer applies (${o.stale})`,
      );
      continue;
    }
    console.log(
      o.caught
        ? `caught   ${o.name}: ${o.invariant} at seed ${
          o.seed ?? "-"
        } (${o.nodes} nodes; ` +
          `${o.seedsNeeded} seeds needed, ${
            o.seconds.toFixed(1)
          } s) — ${o.description}`
        : `SURVIVED ${o.name} after ${o.seedsNeeded} seeds (${
          o.seconds.toFixed(1)
        } s) — ${o.description}`,
    );
  }
  console.log(
    `mutants: ${tried - survivors} caught, ${survivors} survived`,
  );
  return survivors > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
