import assert from "node:assert/strict";
import { silentLogger } from "../../src/logger.ts";
import { StateMachineFatalError } from "../../src/runtime/errors.ts";
import { parseServeArgs, startKvNode } from "../../src/kv/node.ts";
import { freePort } from "./process_cluster.ts";

Deno.test("a kv node reports a fatal state machine failure after start through `failed`", async () => {
  const dir = `.test-data/kv-fatal-${Date.now()}-${
    Math.floor(Math.random() * 1e6)
  }`;
  const raft = `127.0.0.1:${freePort()}`;
  const options = parseServeArgs([
    "--id",
    "1",
    "--data-dir",
    dir,
    "--peer",
    `1=${raft}`,
    "--http",
    `127.0.0.1:${freePort()}`,
    "--insecure",
    "--tick-ms",
    "10",
  ]);
  assert.ok(options !== "help");
  const node = await startKvNode({
    ...options,
    clusterSecret: undefined,
    logger: silentLogger,
  });
  try {
    await node.server.waitForLeader({ ready: true });
    node.kv.apply = () => {
      throw new StateMachineFatalError("the index file is unreadable");
    };
    const res = await fetch(`http://${node.http.address}/kv/k`, {
      method: "PUT",
      body: "v",
    });
    await res.body?.cancel();
    const error = await node.failed;
    assert.match(error.message, /the index file is unreadable/);
    assert.equal(node.server.isStopped, true);
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
