/**
 * The `serve` command line, runtime-neutral: the same code runs under Deno
 * (`scripts/serve.ts`) and under Node (the npm build's bin). Arguments in,
 * exit code out; SIGINT/SIGTERM (through `node:process`, which both
 * runtimes provide) stop the node cleanly.
 *
 * @module
 */

import process from "node:process";
import {
  loadSecret,
  parseServeArgs,
  SERVE_USAGE,
  startKvNode,
  UsageError,
} from "./node.ts";

/**
 * Runs one key-value node until SIGINT or SIGTERM. Resolves with the process
 * exit code: 0 after a clean stop, 1 when the node could not start, 2 for
 * bad flags (the message is printed to stderr).
 *
 * @example
 * ```ts ignore
 * // Node: bin/serve.mjs
 * import { runServeCli } from "@raft-io/raft/kv";
 * process.exitCode = await runServeCli(process.argv.slice(2));
 * ```
 */
export async function runServeCli(args: string[]): Promise<number> {
  let options;
  try {
    options = parseServeArgs(args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (options === "help") {
    console.log(SERVE_USAGE);
    return 0;
  }
  let node;
  let fatal: ((e: Error) => void) | undefined;
  try {
    const clusterSecret = options.secretFile === undefined
      ? undefined
      : await loadSecret(options.secretFile);
    node = await startKvNode({
      ...options,
      clusterSecret,
      onFatal: (e) => fatal?.(e),
    });
  } catch (e) {
    console.error(
      `error: node ${options.id} could not start: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
    return 1;
  }
  console.log(
    `node ${options.id} ready: raft ${node.transport.address} http http://${node.http.address}`,
  );
  const id = options.id;
  const running = node;
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`node ${id}: ${signal}, stopping`);
      const timer = setTimeout(() => resolve(1), 5000);
      running.stop().then(
        () => {
          clearTimeout(timer);
          process.off("SIGINT", onInt);
          process.off("SIGTERM", onTerm);
          resolve(0);
        },
        (e) => {
          console.error(
            `node ${id}: stop failed: ${
              e instanceof Error ? e.message : String(e)
            }`,
          );
          clearTimeout(timer);
          resolve(1);
        },
      );
    };
    fatal = (e) => {
      console.error(`node ${id}: fatal: ${e.message}; exiting`);
      stopping = true;
      running.stop().finally(() => resolve(1));
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}
