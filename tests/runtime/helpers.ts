/** A small in-process cluster of RaftServers over a MemoryNetwork, for the runtime tests. */

import { mulberry32 } from "../../src/core/random.ts";
import { waitFor } from "../support/wait_for.ts";
import { silentLogger } from "../../src/logger.ts";
import type { Message } from "../../src/core/messages.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { RaftServer } from "../../src/runtime/raft_server.ts";
import type { RaftServerOptions } from "../../src/runtime/server_types.ts";
import type {
  SnapshotSource,
  StateMachine,
} from "../../src/runtime/state_machine.ts";

/** Appends every command (as text) to a list; `apply` returns the list length. */
export class ListMachine implements StateMachine<number> {
  items: string[] = [];
  apply(entry: Entry): number {
    this.items.push(new TextDecoder().decode(entry.data));
    return this.items.length;
  }
  snapshot(): SnapshotSource {
    return new TextEncoder().encode(JSON.stringify(this.items));
  }
  restore(bytes: Uint8Array): void {
    this.items = bytes.byteLength === 0
      ? []
      : JSON.parse(new TextDecoder().decode(bytes));
  }
}

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

export { silentLogger as silent } from "../../src/logger.ts";

export interface TestNode {
  id: number;
  server: RaftServer<number>;
  log: MemoryLog;
  sm: ListMachine;
}

/** Starts `n` servers (ids 1..n) on one network. */
export async function startCluster(
  n: number,
  extra: Partial<RaftServerOptions<number>> = {},
  config: Record<string, unknown> = {},
): Promise<
  { net: MemoryNetwork<Message>; nodes: TestNode[]; stop: () => Promise<void> }
> {
  const net = new MemoryNetwork<Message>();
  const voters = Array.from({ length: n }, (_, i) => i + 1);
  const nodes: TestNode[] = [];
  for (const id of voters) {
    nodes.push(
      await startNode(net, id, voters, new MemoryLog(), extra, config),
    );
  }
  return {
    net,
    nodes,
    stop: async () => {
      for (const node of nodes) await node.server.stop();
      await net.close();
    },
  };
}

/** Starts one server (also used to restart a node on a recovered log). */
export async function startNode(
  net: MemoryNetwork<Message>,
  id: number,
  voters: number[],
  log: MemoryLog,
  extra: Partial<RaftServerOptions<number>> = {},
  config: Record<string, unknown> = {},
): Promise<TestNode> {
  const sm = new ListMachine();
  const server = await RaftServer.start<number>({
    config: { id, voters, electionTick: 10, heartbeatTick: 1, ...config },
    log,
    transport: net.endpoint(id),
    stateMachine: sm,
    tickMs: 10,
    logger: silentLogger,
    random: seeded(id),
    ...extra,
  });
  return { id, server, log, sm };
}

function seeded(seed: number): () => number {
  return mulberry32(seed * 7919);
}

export { waitFor };

/** The one node every running node agrees is leader. */
export async function waitForLeader(
  nodes: TestNode[],
  timeoutMs = 5000,
): Promise<TestNode> {
  let leader: TestNode | undefined;
  await waitFor(
    () => {
      const live = nodes.filter((n) => !n.server.isStopped);
      leader = live.find((n) => n.server.role === "leader");
      return leader !== undefined &&
        live.every((n) => n.server.leaderId === leader!.id);
    },
    "a leader all nodes agree on",
    timeoutMs,
  );
  return leader!;
}
