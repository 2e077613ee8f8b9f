/**
 * Runs every default test suite, each in its own `deno test` process with
 * the permissions that suite needs and no more, then prints one line:
 * `tests: N passed, N failed`. Exits non-zero on any failure.
 *
 * `deno task test`               all suites
 * `deno task test core log`      only the named suites
 *
 * @module
 */

interface Suite {
  name: string;
  /** Folder under tests/ holding `*_test.ts` files. */
  dir: string;
  /** Permission flags for `deno test`. */
  permissions: string[];
}

const deno = Deno.execPath();
const LOOPBACK =
  "--allow-net=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,localhost";
const SCRATCH = [
  "--allow-read=.",
  "--allow-write=.test-data",
  `--allow-run=${deno}`,
];

const SUITES: Suite[] = [
  {
    name: "codec",
    dir: "tests/codec",
    // The portable-surface test reads the sources and runs `deno info` and a
    // subprocess without runtime globals.
    permissions: ["--allow-read=asm,tests,src,mod.ts", `--allow-run=${deno}`],
  },
  { name: "core", dir: "tests/core", permissions: ["--allow-read=tests"] },
  { name: "log", dir: "tests/log", permissions: SCRATCH },
  {
    name: "testing",
    dir: "tests/testing",
    permissions: ["--allow-read=tests"],
  },
  {
    name: "transport",
    dir: "tests/transport",
    permissions: [LOOPBACK, ...SCRATCH],
  },
  {
    name: "runtime",
    dir: "tests/runtime",
    permissions: [LOOPBACK, ...SCRATCH],
  },
  { name: "kv", dir: "tests/kv", permissions: [LOOPBACK, ...SCRATCH] },
  { name: "e2e", dir: "tests/e2e", permissions: [LOOPBACK, ...SCRATCH] },
  // examples/job_queue as three Deno processes (each with its own scoped flags).
  {
    name: "examples",
    dir: "tests/examples",
    permissions: [LOOPBACK, ...SCRATCH],
  },
  // The mutant runner copies src/ to temporary folders and runs git apply and the simulator there.
  {
    name: "mutants",
    dir: "tests/mutants",
    permissions: ["--allow-read=.", "--allow-run"],
  },
];

interface Counts {
  passed: number;
  failed: number;
}

async function hasTests(dir: string, pattern = /_test\.ts$/): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && pattern.test(e.name)) return true;
      if (e.isDirectory && await hasTests(`${dir}/${e.name}`, pattern)) {
        return true;
      }
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  return false;
}

/** Runs a command, echoing its output, and returns the output text and exit code. */
async function run(
  cmd: string,
  args: string[],
): Promise<{ code: number; text: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const pump = async (
    stream: ReadableStream<Uint8Array>,
    sink: typeof Deno.stdout,
  ) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      await sink.write(chunk);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  return { code: status.code, text };
}

/** Sums Deno's summary lines: `ok | 12 passed | 0 failed` or `FAILED | 3 passed (2 steps) | 1 failed`. */
export function parseDenoSummary(text: string): Counts | undefined {
  const matches = [
    ...text.matchAll(/^(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed/gm),
  ];
  if (matches.length === 0) return undefined;
  const last = matches[matches.length - 1];
  return { passed: Number(last[1]), failed: Number(last[2]) };
}

async function runSuite(suite: Suite): Promise<Counts> {
  console.log(`\n=== suite ${suite.name} (${suite.dir}) ===`);
  await Deno.mkdir(".test-data", { recursive: true });
  const { code, text } = await run(deno, [
    "test",
    ...suite.permissions,
    suite.dir,
  ]);
  const counts = parseDenoSummary(text);
  if (counts === undefined) {
    console.log(
      `suite ${suite.name}: no test summary (exit ${code}); counted as 1 failure`,
    );
    return { passed: 0, failed: 1 };
  }
  if (code !== 0 && counts.failed === 0) {
    console.log(
      `suite ${suite.name}: exit ${code} with no failed test; counted as 1 failure`,
    );
    return { passed: counts.passed, failed: 1 };
  }
  return counts;
}

async function runNodeSuite(): Promise<Counts | undefined> {
  if (!(await hasTests("tests/npm", /_test\.mjs$/))) return undefined;
  console.log("\n=== suite npm (build, then node --test tests/npm) ===");
  const build = await run(deno, ["task", "build:npm"]);
  if (build.code !== 0) return { passed: 0, failed: 1 };
  const files: string[] = [];
  for await (const e of Deno.readDir("tests/npm")) {
    if (e.isFile && e.name.endsWith("_test.mjs")) {
      files.push(`tests/npm/${e.name}`);
    }
  }
  const { code, text } = await run("node", ["--test", ...files.sort()]);
  const pass = text.match(/^# pass (\d+)/m);
  const fail = text.match(/^# fail (\d+)/m);
  if (!pass || !fail) return { passed: 0, failed: 1 };
  const counts = { passed: Number(pass[1]), failed: Number(fail[1]) };
  if (code !== 0 && counts.failed === 0) counts.failed = 1;
  return counts;
}

if (import.meta.main) {
  const only = Deno.args;
  const total: Counts = { passed: 0, failed: 0 };
  for (const suite of SUITES) {
    if (only.length > 0 && !only.includes(suite.name)) continue;
    if (!(await hasTests(suite.dir))) continue;
    const counts = await runSuite(suite);
    total.passed += counts.passed;
    total.failed += counts.failed;
  }
  if (only.length === 0 || only.includes("npm")) {
    const counts = await runNodeSuite();
    if (counts) {
      total.passed += counts.passed;
      total.failed += counts.failed;
    }
  }
  console.log(`tests: ${total.passed} passed, ${total.failed} failed`);
  Deno.exit(total.failed > 0 ? 1 : 0);
}
