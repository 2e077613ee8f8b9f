/**
 * Membership through RaftServer: voters join through caught-up learners,
 * members' addresses travel in the replicated configuration, a removed node
 * learns it and stops campaigning.
 */

import assert from "node:assert/strict";
import { RemovedFromClusterError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/messages.ts";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { silentLogger } from "../../src/logger.ts";
import { RaftServer } from "../../src/runtime/raft_server.ts";
import { CatchUpTimeoutError } from "../../src/runtime/errors.ts";
import { raftMessageCodec } from "../../src/transport/raft_codec.ts";
import { TcpTransport } from "../../src/transport/tcp/tcp_transport.ts";
import {
  enc,
  ListMachine,
  startCluster,
  startNode,
  waitFor,
  waitForLeader,
} from "./helpers.ts";

Deno.test("addVoter of a node that never starts leaves it a learner and the quorum unchanged", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    const error = await leader.server.addVoter(4, { timeoutMs: 300 }).catch((
      e,
    ) => e);
    assert.ok(error instanceof CatchUpTimeoutError, String(error));
    assert.equal(error.nodeId, 4);
    const m = leader.server.status().membership;
    assert.deepEqual(m.voters, [1, 2, 3]);
    assert.deepEqual(m.learners, [4]);
    // One more failure is still survivable: 2 of 3 voters make a quorum.
    const victim = c.nodes.find((n) => n !== leader)!;
    c.net.isolate(victim.id);
    assert.ok((await leader.server.propose(enc("still"))) >= 1);
  } finally {
    await c.stop();
  }
});

Deno.test("addVoter adds a running node as a learner, waits for it to catch up, then promotes it", async () => {
  const c = await startCluster(3);
  let joiner: Awaited<ReturnType<typeof startNode>> | undefined;
  try {
    const leader = await waitForLeader(c.nodes);
    for (let i = 0; i < 20; i++) await leader.server.propose(enc(`j${i}`));
    joiner = await startNode(c.net, 4, [1, 2, 3], new MemoryLog());
    const memberships: number[][] = [];
    joiner.server.on(
      "membership",
      (e) => memberships.push(e.membership.voters),
    );
    await leader.server.addVoter(4, { timeoutMs: 5000 });
    assert.deepEqual(leader.server.status().membership.voters, [1, 2, 3, 4]);
    await waitFor(
      () => joiner!.sm.items.length === 20,
      "the new voter to apply the log",
    );
    await waitFor(
      () => memberships.some((v) => v.includes(4)),
      "the joiner to see itself become a voter",
    );
  } finally {
    await joiner?.server.stop();
    await c.stop();
  }
});

Deno.test("a removed node reports removed, stops campaigning and refuses requests naming the members", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("a"));
    const victim = c.nodes.find((n) => n !== leader)!;
    let removedEvent: number[] | undefined;
    victim.server.on("removed", (e) => (removedEvent = e.members));
    await leader.server.removeNode(victim.id);
    await waitFor(() => victim.server.isRemoved, "the victim to learn it");
    assert.equal(victim.server.status().removed, true);
    const others = c.nodes.filter((n) => n !== victim).map((n) => n.id);
    assert.deepEqual(removedEvent, others);
    const error = await victim.server.propose(enc("b")).catch((e) => e);
    assert.ok(error instanceof RemovedFromClusterError, String(error));
    assert.deepEqual(error.members, others);
    // Cut off from everyone, a member would campaign within 20 ticks; a removed node never does.
    c.net.isolate(victim.id);
    const term = victim.server.term;
    await new Promise((r) => setTimeout(r, 400)); // 40 ticks of 10 ms
    assert.equal(victim.server.term, term);
    assert.equal(victim.server.metrics().elections, 0);
  } finally {
    await c.stop();
  }
});

Deno.test("a node removed while cut off learns it from the leader when it contacts the cluster again", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("a"));
    const victim = c.nodes.find((n) => n !== leader)!;
    c.net.isolate(victim.id);
    await leader.server.removeNode(victim.id);
    assert.equal(victim.server.isRemoved, false, "it cannot know yet");
    c.net.heal();
    await waitFor(
      () => victim.server.isRemoved,
      "the leader to tell the returning node",
      5000,
    );
    assert.equal(leader.server.role, "leader", "its pre-votes deposed no one");
  } finally {
    await c.stop();
  }
});

Deno.test("over TCP, nodes reach each other through the addresses in the replicated configuration alone", async () => {
  const secret = "a cluster secret for this test only";
  const transports = await Promise.all(
    [1, 2, 3, 4].map((id) =>
      TcpTransport.create<Message>({
        id,
        listen: "127.0.0.1:0",
        codec: raftMessageCodec,
        clusterSecret: secret,
        logger: silentLogger,
        backoff: { initialMs: 10, maxMs: 100 },
      })
    ),
  );
  const nodes = Object.fromEntries(
    [1, 2, 3].map((id) => [id, {
      address: transports[id - 1].address,
      metadata: "",
    }]),
  );
  const servers: RaftServer<number>[] = [];
  try {
    for (const id of [1, 2, 3]) {
      // No peers given to the transport: the founders' addresses come from config.nodes.
      servers.push(
        await RaftServer.start<number>({
          config: { id, voters: [1, 2, 3], nodes },
          log: new MemoryLog(),
          transport: transports[id - 1],
          stateMachine: new ListMachine(),
          tickMs: 10,
          logger: silentLogger,
        }),
      );
    }
    const leaderId = await servers[0].waitForLeader({
      ready: true,
      timeoutMs: 5000,
    });
    const leader = servers[leaderId - 1];
    await leader.propose(enc("before"));
    // The joiner knows the founders only as seeds; the founders learn its address from the configuration.
    const seeds = transports[3];
    for (const id of [1, 2, 3]) seeds.addPeer(id, nodes[id].address);
    const joinerSm = new ListMachine();
    servers.push(
      await RaftServer.start<number>({
        config: { id: 4, voters: [1, 2, 3] },
        log: new MemoryLog(),
        transport: seeds,
        stateMachine: joinerSm,
        tickMs: 10,
        logger: silentLogger,
      }),
    );
    await leader.addVoter(4, {
      address: transports[3].address,
      metadata: "http://127.0.0.1:9004",
      timeoutMs: 5000,
    });
    await leader.propose(enc("after"));
    await waitFor(
      () => joinerSm.items.join() === "before,after",
      "the joiner to replicate",
    );
    for (const t of transports.slice(0, 3)) {
      assert.ok(t.peerIds().includes(4), `node ${t.id} knows node 4`);
    }
    const m = leader.status().membership;
    assert.equal(m.nodes[4].address, transports[3].address);
    assert.equal(m.nodes[4].metadata, "http://127.0.0.1:9004");
  } finally {
    for (const s of servers) await s.stop();
    for (const t of transports.slice(servers.length)) await t.close();
  }
});

Deno.test("a restarted node relearns members' addresses from its log", async () => {
  const added: [number, string][] = [];
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.addLearner(7, { address: "127.0.0.1:7007" });
    const victim = c.nodes.find((n) => n !== leader)!;
    await waitFor(
      () => victim.server.status().membership.learners.includes(7),
      "the victim to see the learner",
    );
    await victim.server.stop();
    const endpoint = c.net.endpoint(victim.id);
    const transport = Object.assign(endpoint, {
      addPeer: (id: number, address: string) => added.push([id, address]),
    });
    const restarted = await RaftServer.start<number>({
      config: { id: victim.id, voters: [1, 2, 3] },
      log: victim.log.crash(),
      transport,
      stateMachine: new ListMachine(),
      tickMs: 10,
      logger: silentLogger,
    });
    c.nodes[c.nodes.indexOf(victim)] = { ...victim, server: restarted };
    assert.deepEqual(added, [[7, "127.0.0.1:7007"]]);
  } finally {
    await c.stop();
  }
});

Deno.test("a removed node that is added back is a member again", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    await leader.server.propose(enc("a"));
    const victim = c.nodes.find((n) => n !== leader)!;
    await leader.server.removeNode(victim.id);
    await waitFor(() => victim.server.isRemoved, "the victim to learn it");
    await leader.server.addLearner(victim.id);
    await leader.server.propose(enc("b"));
    await waitFor(
      () => !victim.server.isRemoved && !victim.server.status().removed,
      "the victim to be a member again",
    );
    await waitFor(
      () => victim.sm.items.join() === "a,b",
      "the re-added node to replicate",
    );
  } finally {
    await c.stop();
  }
});
