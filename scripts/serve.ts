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
 * `--allow-write` for the data folder. SIGINT / SIGTERM stop the node
 * cleanly (exit 0); bad flags exit 2; a node that cannot start exits 1.
 *
 * @module
 */

import { runServeCli } from "../src/kv/cli.ts";

if (import.meta.main) {
  Deno.exit(await runServeCli(Deno.args));
}
