/**
 * Starts one raft-io key-value node. See `--help` (or `SERVE_USAGE` in
 * src/kv/node.ts) for the flags.
 *
 * ```sh
 * deno task serve --id 1 --data-dir .data/1 --http 127.0.0.1:8001 \
 *   --peer 1=127.0.0.1:7001 --peer 2=127.0.0.1:7002 --peer 3=127.0.0.1:7003 \
 *   --cluster-secret-file cluster.secret
 * ```
 *
 * Permissions: `--allow-net` for the Raft and HTTP addresses (and the other
 * nodes), `--allow-read` for the secret file and the data folder,
 * `--allow-write` for the data folder. SIGINT / SIGTERM stop the node cleanly.
 *
 * @module
 */

import {
  loadSecret,
  parseServeArgs,
  SERVE_USAGE,
  startKvNode,
  UsageError,
} from "../src/kv/node.ts";

if (import.meta.main) {
  let options;
  try {
    options = parseServeArgs(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`error: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
  if (options === "help") {
    console.log(SERVE_USAGE);
    Deno.exit(0);
  }
  let node;
  try {
    const clusterSecret = options.secretFile === undefined
      ? undefined
      : await loadSecret(options.secretFile);
    node = await startKvNode({ ...options, clusterSecret });
  } catch (e) {
    console.error(
      `error: node ${options.id} could not start: ${
        e instanceof Error ? e.message : String(e)
      }`,
    );
    Deno.exit(1);
  }
  console.log(
    `node ${options.id} ready: raft ${node.transport.address} http http://${node.http.address}`,
  );
  const stop = async (signal: string) => {
    console.log(`node ${options.id}: ${signal}, stopping`);
    const timer = setTimeout(() => Deno.exit(1), 5000);
    await node.stop();
    clearTimeout(timer);
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
}
