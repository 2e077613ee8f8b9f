/**
 * The `serve` command line, runtime-neutral: the same code runs under Deno
 * (`scripts/serve.ts`) and under Node (the npm build's bin). Arguments in,
 * exit code out; SIGINT/SIGTERM (through `node:process`, which both
 * runtimes provide) stop the node cleanly.
 *
 * @module
 */

import process from "node:process";
import { RaftIoError } from "../errors.ts";
import { parseAddress } from "../transport/tcp/socket.ts";
import { isLoopbackHost } from "./http_api.ts";
import {
  loadServeFiles,
  parseServeArgs,
  serveUsage,
  startKvNode,
  UsageError,
} from "./node.ts";

/** `message (CODE)`, with the cause's message when there is one. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const code = e instanceof RaftIoError ? ` (${e.code})` : "";
  const cause = e.cause instanceof Error && !e.message.includes(e.cause.message)
    ? `; cause: ${describe(e.cause)}`
    : "";
  return `${e.message}${code}${cause}`;
}

/**
 * Runs one key-value node until SIGINT or SIGTERM. Resolves with the process
 * exit code: 0 after a clean stop, 1 when the node could not start (e.g. a
 * snapshot that does not restore or an entry that fails to replay) or
 * stopped itself later on a storage or state machine failure, 2 for bad
 * flags (the message is printed to stderr). A node removed from the
 * cluster keeps running (it answers clients 410 REMOVED naming the
 * members) until it is stopped.
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
    console.log(serveUsage());
    return 0;
  }
  const id = options.id;
  if (options.insecure) {
    console.warn(
      `[node ${id}] warning: --insecure: peers are not authenticated; anyone who reaches ${options.listen} can join or impersonate a node`,
    );
  }
  const exposed = !isLoopbackHost(parseAddress(options.http).hostname);
  if (exposed && options.authTokensFile === undefined) {
    // Only reachable with --insecure-client-api (parseServeArgs refuses otherwise).
    console.warn(
      `[node ${id}] warning: --insecure-client-api: the client API on ${options.http} has no authentication: anyone who reaches it can read, write, change membership and transfer leadership`,
    );
  } else if (exposed && options.certFile === undefined) {
    console.warn(
      `[node ${id}] warning: the client API on ${options.http} is plain HTTP: bearer tokens and values cross the network unencrypted; give --cert-file and --key-file`,
    );
  }
  let node;
  try {
    let files;
    try {
      files = await loadServeFiles(options);
    } catch (e) {
      if (e instanceof UsageError) {
        console.error(`error: ${e.message}`);
        return 2;
      }
      throw e;
    }
    node = await startKvNode({ ...options, ...files });
  } catch (e) {
    console.error(`[node ${id}] fatal: could not start: ${describe(e)}`);
    return 1;
  }
  console.log(
    `node ${id} ready: raft ${node.transport.address} http ${
      options.certFile === undefined ? "http" : "https"
    }://${node.http.address}`,
  );
  const running = node;
  return await new Promise<number>((resolve) => {
    let stopping = false;
    const done = (code: number) => {
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve(code);
    };
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      console.log(`node ${id}: ${signal}, stopping`);
      const timer = setTimeout(() => done(1), 5000);
      running.stop().then(
        () => {
          clearTimeout(timer);
          done(0);
        },
        (e) => {
          console.error(`node ${id}: stop failed: ${describe(e)}`);
          clearTimeout(timer);
          done(1);
        },
      );
    };
    void running.failed.then((e) => {
      if (stopping) return;
      stopping = true;
      console.error(`[node ${id}] fatal: ${describe(e)}; exiting`);
      const timer = setTimeout(() => done(1), 5000);
      running.stop().finally(() => {
        clearTimeout(timer);
        done(1);
      });
    });
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
  });
}
