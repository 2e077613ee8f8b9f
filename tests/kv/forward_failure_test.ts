import assert from "node:assert/strict";
import { call, startKvCluster, waitFor } from "./helpers.ts";

/**
 * A listener that reads one request and closes the connection without an
 * answer: what a follower sees when the leader dies after receiving a
 * forwarded write (which may still commit).
 */
function swallowingListener(): { address: string; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      await conn.read(new Uint8Array(65536)).catch(() => null);
      conn.close();
    }
  })().catch(() => {});
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close: async () => {
      listener.close();
      await done;
    },
  };
}

Deno.test("kv http: a write whose forward to the leader fails is answered as outcome unknown, never as retryable NOT_LEADER", async () => {
  const c = await startKvCluster();
  const sink = swallowingListener();
  try {
    // Point the leader's recorded client address at an endpoint that takes the request and dies.
    await c.leader.server.changeMembership({
      type: "updateNode",
      id: c.leader.id,
      metadata: sink.address,
    });
    const f = c.followers[0];
    const applied = c.leader.server.status().applied;
    await waitFor(
      () => f.server.status().applied >= applied,
      "the follower to apply the new configuration",
    );
    const res = await call(`${f.url}/kv/maybe`, { method: "PUT", body: "x" });
    assert.equal(res.status, 504, res.text);
    const body = JSON.parse(res.text);
    assert.equal(body.error.code, "FORWARD_FAILED");
    assert.equal(body.error.leaderId, c.leader.id);
    assert.equal(res.headers.get("retry-after"), null);
  } finally {
    await sink.close();
    await c.stop();
  }
});
