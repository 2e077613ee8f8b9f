/** An in-process key-value cluster (MemoryNetwork + MemoryLog) with real HTTP listeners on loopback. */

import { waitFor } from "../support/wait_for.ts";
import { silentLogger } from "../../src/logger.ts";
import type { Message } from "../../src/core/messages.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { RaftServer } from "../../src/runtime/raft_server.ts";
import {
  KvHttpApi,
  type KvHttpApiOptions,
  type KvHttpServer,
  serveKvHttp,
} from "../../src/kv/http_api.ts";
import {
  type KvResult,
  KvStateMachine,
} from "../../src/kv/kv_state_machine.ts";

export interface KvTestNode {
  id: number;
  server: RaftServer<KvResult>;
  kv: KvStateMachine;
  http: KvHttpServer;
  url: string;
  api: KvHttpApi;
}

const silent = silentLogger;

/** Starts one node; `voters` is the founding configuration it boots with. */
export async function startKvTestNode(
  net: MemoryNetwork<Message>,
  id: number,
  voters: number[],
  api: Partial<KvHttpApiOptions> = {},
): Promise<KvTestNode> {
  const kv = new KvStateMachine();
  const server = await RaftServer.start<KvResult>({
    config: { id, voters, electionTick: 10, heartbeatTick: 1 },
    log: new MemoryLog(),
    transport: net.endpoint(id),
    stateMachine: kv,
    tickMs: 10,
    logger: silent,
  });
  const handler = new KvHttpApi({ server, kv, ...api });
  const http = serveKvHttp(handler, { hostname: "127.0.0.1", port: 0 });
  return { id, server, kv, http, url: `http://${http.address}`, api: handler };
}

/**
 * Three nodes; the test records every node's HTTP address as its metadata
 * in the replicated configuration (`updateNode`), as `POST /members` does
 * for a node added later.
 */
export async function startKvCluster(api: Partial<KvHttpApiOptions> = {}) {
  const net = new MemoryNetwork<Message>();
  const nodes: KvTestNode[] = [];
  for (const id of [1, 2, 3]) {
    nodes.push(await startKvTestNode(net, id, [1, 2, 3], api));
  }
  const leader = await waitForLeader(nodes);
  for (const n of nodes) {
    await leader.server.changeMembership({
      type: "updateNode",
      id: n.id,
      metadata: n.http.address,
    });
  }
  await waitFor(
    () =>
      nodes.every((n) =>
        nodes.every((m) =>
          n.server.status().membership.nodes[m.id]?.metadata === m.http.address
        )
      ),
    "every node to know every client address",
  );
  return {
    net,
    nodes,
    leader,
    followers: nodes.filter((n) => n !== leader),
    stop: async () => {
      for (const n of nodes) await stopKvTestNode(n);
      await net.close();
    },
  };
}

export async function stopKvTestNode(n: KvTestNode): Promise<void> {
  await n.http.shutdown();
  await n.server.stop();
}

export { waitFor };

export async function waitForLeader(nodes: KvTestNode[]): Promise<KvTestNode> {
  let leader: KvTestNode | undefined;
  await waitFor(() => {
    leader = nodes.find((n) => n.server.role === "leader");
    return leader !== undefined &&
      nodes.every((n) => n.server.leaderId === leader!.id);
  }, "a leader");
  return leader!;
}

/** fetch that always consumes the body: returns status, text and headers. */
export async function call(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(url, { ...init, redirect: "manual" });
  const text = await res.text();
  return { status: res.status, text, headers: res.headers };
}
