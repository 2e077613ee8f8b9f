/**
 * Runs the deterministic cluster simulator over a range of seeds.
 *
 *   deno task sim --seeds N [--from S] [--nodes 3|5] [--faults LIST] [--steps K]
 *     [--leases] [--sm kv|list] [--verbose] [--fail-fast] [--html DIR]
 *
 * Each seed runs the shipped RaftServer and WalLog (on simulated disks) over
 * MemoryNetwork on virtual time; see src/testing/simulator.
 *
 * With `--html DIR`, each failing seed also gets `DIR/seed-S.html`: the last
 * events as a timeline with one column per node (needs --allow-write=DIR).
 *
 * Prints one summary line
 * `sim: N seeds, N violations, N lin-checked histories, N non-linearizable`
 * (and a report per failing seed), and exits 1 on any violation.
 *
 * @module
 */

import {
  ALL_FAULTS,
  type FaultKind,
  type SimResult,
  type SimStateMachineKind,
  simulate,
} from "../src/testing/simulator/mod.ts";

const USAGE =
  "usage: sim.ts --seeds N [--from S] [--nodes 3|5] [--faults LIST|all|none] " +
  "[--steps K] [--verbose] [--fail-fast] [--leases] [--sm kv|list] [--html DIR]";

interface Args {
  seeds: number;
  from: number;
  nodes: number;
  faults: FaultKind[];
  steps: number;
  verbose: boolean;
  failFast: boolean;
  leases: boolean;
  sm: SimStateMachineKind | undefined;
  html: string | undefined;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seeds: 100,
    from: 1,
    nodes: 3,
    faults: ALL_FAULTS.slice(),
    steps: 300,
    verbose: false,
    failFast: false,
    leases: false,
    sm: undefined,
    html: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    const int = () => {
      const n = Number(value());
      if (!Number.isSafeInteger(n) || n < 0) {
        throw new Error(`${flag} needs a whole number\n${USAGE}`);
      }
      return n;
    };
    switch (flag) {
      case "--seeds":
        args.seeds = int();
        break;
      case "--from":
        args.from = int();
        break;
      case "--nodes":
        args.nodes = int();
        if (args.nodes < 1 || args.nodes > 9) {
          throw new Error("--nodes must be 1..9");
        }
        break;
      case "--steps":
        args.steps = int();
        break;
      case "--faults": {
        const list = value();
        if (list === "all") args.faults = ALL_FAULTS.slice();
        else if (list === "none") args.faults = [];
        else {
          args.faults = list.split(",").map((f) => f.trim()).filter((f) =>
            f !== ""
          ) as FaultKind[];
          for (const f of args.faults) {
            if (!ALL_FAULTS.includes(f)) {
              throw new Error(
                `unknown fault ${f}; known: ${ALL_FAULTS.join(",")}`,
              );
            }
          }
        }
        break;
      }
      case "--verbose":
        args.verbose = true;
        break;
      case "--fail-fast":
        args.failFast = true;
        break;
      case "--leases":
        args.leases = true;
        break;
      case "--sm": {
        const v = value();
        if (v !== "kv" && v !== "list") {
          throw new Error(`--sm kv|list\n${USAGE}`);
        }
        args.sm = v;
        break;
      }
      case "--html":
        args.html = value();
        break;
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown argument ${flag}\n${USAGE}`);
    }
  }
  return args;
}

/** A readable failure report: seed, time, invariant, last events, a timeline per node, replay command. */
export function formatFailure(r: SimResult): string {
  const v = r.violation!;
  const line = (e: { at: number; node: number; text: string }) =>
    `[${e.at.toFixed(1).padStart(8)} ms] ${
      e.node > 0 ? `n${e.node}` : "--"
    } ${e.text}`;
  const lines = [
    `seed ${r.seed}: ${v.invariant} violated at ${
      v.at.toFixed(1)
    } ms (${r.stateMachine})`,
    `  ${v.detail.split("\n").join("\n  ")}`,
    "  last events:",
    ...r.trace.slice(-40).map((e) => `    ${line(e)}`),
  ];
  const nodes = [...new Set(r.trace.map((e) => e.node))].filter((n) => n > 0)
    .sort((a, b) => a - b);
  for (const node of nodes) {
    lines.push(
      `  timeline of n${node} (role changes, crashes, faults; last events):`,
    );
    const important = r.timeline.filter((e) => e.node === node).slice(-15);
    const recent = r.trace.filter((e) => e.node === node).slice(-15);
    const seen = new Set<string>();
    for (const e of [...important, ...recent].sort((a, b) => a.at - b.at)) {
      const l = line(e);
      if (seen.has(l)) continue;
      seen.add(l);
      lines.push(`    ${l}`);
    }
  }
  lines.push(`  replay: ${r.replay}`);
  return lines.join("\n");
}

function escapeHtml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(
    ">",
    "&gt;",
  );
}

/** The failure's last events as an HTML table: one row per event, one column per node. */
export function formatHtml(r: SimResult): string {
  const v = r.violation!;
  const rows: { step: string; node: string; text: string }[] = [];
  const nodes = new Set<string>();
  for (const e of r.trace) {
    const node = e.node > 0 ? `n${e.node}` : "--";
    rows.push({ step: e.at.toFixed(1), node, text: e.text });
    if (node !== "--") nodes.add(node);
  }
  const columns = ["--", ...[...nodes].sort()];
  const head = columns.map((c) => `<th>${c === "--" ? "cluster" : c}</th>`)
    .join("");
  const body = rows.map((row) => {
    const cells = columns.map((c) => {
      const bad = row.text.startsWith("VIOLATION") ? " class=bad" : "";
      return `<td${bad}>${c === row.node ? escapeHtml(row.text) : ""}</td>`;
    }).join("");
    return `<tr><td class=step>${row.step}</td>${cells}</tr>`;
  }).join("\n");
  return `<!doctype html><meta charset=utf-8><title>seed ${r.seed}: ${v.invariant}</title>
<style>body{font:13px monospace}td,th{border-bottom:1px solid #ddd;padding:2px 8px;vertical-align:top}
.step{color:#888;text-align:right}.bad{background:#fdd}</style>
<h1>seed ${r.seed}: ${escapeHtml(v.invariant)} at ${v.at.toFixed(1)} ms</h1>
<pre>${escapeHtml(v.detail)}</pre><p>replay: <code>${
    escapeHtml(r.replay)
  }</code></p>
<table><tr><th>ms</th>${head}</tr>
${body}
</table>
`;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(Deno.args);
  } catch (error) {
    console.error((error as Error).message);
    return 2;
  }
  let violations = 0;
  let ran = 0;
  let checked = 0;
  let illegal = 0;
  let unknown = 0;
  const started = performance.now();
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    const r = await simulate({
      seed,
      nodes: args.nodes,
      faults: args.faults,
      steps: args.steps,
      leaseReads: args.leases,
      stateMachine: args.sm,
    });
    ran++;
    const verdict = r.linearizability?.verdict;
    if (verdict === "ok" || verdict === "illegal") checked++;
    if (verdict === "illegal") illegal++;
    if (verdict === "unknown") unknown++;
    if (r.violation) {
      violations++;
      console.log(formatFailure(r));
      if (args.html !== undefined) {
        Deno.mkdirSync(args.html, { recursive: true });
        const file = `${args.html}/seed-${r.seed}.html`;
        Deno.writeTextFileSync(file, formatHtml(r));
        console.log(`  timeline: ${file}`);
      }
      if (args.failFast) break;
    } else if (args.verbose) {
      console.log(
        `seed ${seed}: ok (${r.stateMachine}, ${
          r.virtualMs.toFixed(0)
        } virtual ms, ${JSON.stringify(r.stats)})`,
      );
    }
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `(${seconds.toFixed(1)} s, ${
      (ran / Math.max(seconds, 1e-9)).toFixed(2)
    } seeds/s` +
      (unknown > 0 ? `, ${unknown} histories undecided within budget` : "") +
      ")",
  );
  console.log(
    `sim: ${ran} seeds, ${violations} violations, ${checked} lin-checked histories, ${illegal} non-linearizable`,
  );
  return violations > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
