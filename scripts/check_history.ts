/**
 * Checks a JSON Lines key-value history for linearizability.
 *
 *   deno run --allow-read scripts/check_history.ts HISTORY.jsonl
 *     [--time-budget-ms N] [--max-memo N] [--explain-budget-ms N] [--json]
 *
 * Reads `-` as standard input. Exit status: 0 ok, 1 illegal, 2 unknown
 * (a budget ran out), 3 malformed history or bad usage.
 *
 * @module
 */

import {
  checkJsonLines,
  type CheckOptions,
  formatOperation,
  HistoryError,
} from "../src/testing/mod.ts";

const USAGE =
  "usage: check_history.ts FILE|- [--time-budget-ms N] [--max-memo N] " +
  "[--explain-budget-ms N] [--json]";

function fail(message: string): never {
  console.error(message);
  Deno.exit(3);
}

async function main(args: string[]): Promise<number> {
  const options: CheckOptions = {};
  let file: string | undefined;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const number = (): number => {
      const value = Number(args[++i]);
      if (!Number.isFinite(value) || value < 0) {
        fail(`${arg} needs a number\n${USAGE}`);
      }
      return value;
    };
    if (arg === "--time-budget-ms") options.timeBudgetMs = number();
    else if (arg === "--max-memo") options.maxMemoEntries = number();
    else if (arg === "--explain-budget-ms") options.explainBudgetMs = number();
    else if (arg === "--json") json = true;
    else if (arg === "--help" || arg === "-h") {
      console.log(USAGE);
      return 0;
    } else if (arg.startsWith("--")) fail(`unknown option ${arg}\n${USAGE}`);
    else if (file === undefined) file = arg;
    else fail(USAGE);
  }
  if (file === undefined) fail(USAGE);
  let text: string;
  try {
    text = file === "-"
      ? await new Response(Deno.stdin.readable).text()
      : await Deno.readTextFile(file);
  } catch (error) {
    fail(`cannot read ${file}: ${(error as Error).message}`);
  }
  let result;
  try {
    result = checkJsonLines(text, options);
  } catch (error) {
    if (error instanceof HistoryError) {
      fail(`${file}: malformed history (${error.code}): ${error.message}`);
    }
    throw error;
  }
  if (json) {
    console.log(JSON.stringify(result));
  } else {
    const summary =
      `${result.verdict}: ${result.operations} operations on ${result.keys} keys ` +
      `checked in ${
        result.elapsedMs.toFixed(0)
      } ms (${result.memoEntries} memo entries)`;
    console.log(summary);
    if (result.illegal) console.log(result.illegal.message);
    if (result.unknown) {
      console.log(
        `undecided: key ${
          JSON.stringify(result.unknown.key)
        } ran out of ${result.unknown.reason}`,
      );
    }
    if (result.illegal && !result.illegal.minimal) {
      console.log(
        `(not minimized; failing operation: ${
          formatOperation(result.illegal.failing)
        })`,
      );
    }
  }
  return result.verdict === "ok" ? 0 : result.verdict === "illegal" ? 1 : 2;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
