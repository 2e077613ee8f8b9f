/**
 * Engine benchmark: the consensus core alone, like openraft's
 * `benchmarks/minimal`. Three RaftNodes in one process over MemoryLogs that
 * sync at once (`syncNow`), messages handed directly to the recipient (no
 * network, no serialization). Closed-loop clients: each keeps one proposal
 * outstanding and proposes the next as soon as the leader applies it.
 * Reports committed proposals per second on the leader.
 *
 * Cases: 1, 64 and 256 clients calling `propose` each, and 256 clients whose
 * proposals the driver submits with one `proposeBatch` per loop ("batched").
 *
 * Run: `deno run scripts/bench_engine.ts [--seconds=2]`
 * Output: one JSON line per case: {"case","clients","opsPerSec", ...}.
 */

import { MemoryLog } from "../src/log/memory_log.ts";
import { RaftNode } from "../src/core/node.ts";
import type { Message } from "../src/core/messages.ts";

interface Case {
  name: string;
  clients: number;
  batched: boolean;
}

const CASES: Case[] = [
  { name: "propose-1", clients: 1, batched: false },
  { name: "propose-64", clients: 64, batched: false },
  { name: "propose-256", clients: 256, batched: false },
  { name: "batched-256", clients: 256, batched: true },
];

function arg(name: string, fallback: number): number {
  for (const a of Deno.args) {
    if (a.startsWith(`--${name}=`)) return Number(a.slice(name.length + 3));
  }
  return fallback;
}

function runCase(c: Case, seconds: number): { ops: number; elapsed: number } {
  const ids = [1, 2, 3];
  const logs = ids.map(() => new MemoryLog());
  const nodes = ids.map((id, i) =>
    new RaftNode({
      id,
      voters: ids,
      compactionLag: 0,
      maxInflightMessages: 256,
    }, logs[i])
  );
  const byId = new Map(ids.map((id, i) => [id, nodes[i]]));
  const leader = nodes[0];
  leader.campaign();

  let inbox: Message[] = [];
  const deliver = (ms: Message[]) => {
    for (let i = 0; i < ms.length; i++) inbox.push(ms[i]);
  };
  // One driver pass: every node's Ready by the protocol, then every message.
  const pass = (onCommitted: (index: number) => void): boolean => {
    let busy = false;
    for (let n = 0; n < nodes.length; n++) {
      const node = nodes[n];
      if (!node.hasReady()) continue;
      busy = true;
      const rd = node.ready();
      deliver(rd.messages);
      if (rd.mustSync) logs[n].syncNow();
      deliver(rd.persistedMessages);
      if (node === leader) {
        const es = rd.committedEntries;
        for (let i = 0; i < es.length; i++) onCommitted(es[i].index);
      }
      node.advance(rd);
    }
    if (inbox.length > 0) {
      busy = true;
      const batch = inbox;
      inbox = [];
      for (let i = 0; i < batch.length; i++) {
        byId.get(batch[i].to)!.step(batch[i]);
      }
    }
    return busy;
  };
  // Elect node 1.
  for (let i = 0; i < 100 && leader.status().role !== "leader"; i++) {
    pass(() => {});
  }
  for (let i = 0; i < 100 && pass(() => {}); i++);
  if (leader.status().role !== "leader") throw new Error("no leader");

  const payload = new Uint8Array(16);
  // Which client waits for which index: a ring keyed by index (at most
  // `clients` proposals are outstanding, far fewer than the ring size).
  const RING = 1 << 20;
  const MASK = RING - 1;
  const ownerIndex = new Float64Array(RING).fill(-1);
  const ownerClient = new Int32Array(RING);
  const record = (index: number, client: number) => {
    ownerIndex[index & MASK] = index;
    ownerClient[index & MASK] = client;
  };
  const waiting: number[] = [];
  const proposeFor = (clients: number[]) => {
    if (clients.length === 0) return;
    if (c.batched) {
      const datas = new Array<Uint8Array>(clients.length);
      for (let i = 0; i < clients.length; i++) datas[i] = payload;
      const first = leader.proposeBatch(datas);
      for (let i = 0; i < clients.length; i++) record(first + i, clients[i]);
    } else {
      for (let i = 0; i < clients.length; i++) {
        record(leader.propose(payload), clients[i]);
      }
    }
  };

  let ops = 0;
  let lastCompact = 0;
  const onCommitted = (index: number) => {
    const slot = index & MASK;
    if (ownerIndex[slot] !== index) return;
    ownerIndex[slot] = -1;
    ops++;
    waiting.push(ownerClient[slot]);
  };
  for (let i = 0; i < c.clients; i++) waiting.push(i);

  const start = performance.now();
  const deadline = start + seconds * 1000;
  let loops = 0;
  while (true) {
    if (waiting.length > 0) {
      const now = waiting.splice(0, waiting.length);
      proposeFor(now);
    }
    pass(onCommitted);
    if ((++loops & 63) === 0) {
      if (performance.now() >= deadline) break;
      // Keep memory bounded: snapshot and compact what every node applied.
      const applied = Math.min(...nodes.map((n) => n.status().applied));
      if (applied - lastCompact > 200_000) {
        for (const n of nodes) n.snapshotTaken(applied, payload);
        lastCompact = applied;
      }
    }
  }
  const elapsed = (performance.now() - start) / 1000;
  // Sanity: what was counted is committed, and a follower quorum holds it.
  const st = nodes.map((n) => n.status());
  if (
    ops > st[0].commit ||
    Math.max(st[1].stableIndex, st[2].stableIndex) < st[0].commit
  ) {
    throw new Error(
      `inconsistent run: ${
        JSON.stringify(st.map((s) => [s.commit, s.stableIndex]))
      }`,
    );
  }
  return { ops, elapsed };
}

const seconds = arg("seconds", 2);
for (const c of CASES) {
  // Warm up the JIT on a short run first.
  runCase(c, Math.min(0.3, seconds / 4));
  const { ops, elapsed } = runCase(c, seconds);
  console.log(JSON.stringify({
    case: c.name,
    clients: c.clients,
    opsPerSec: Math.round(ops / elapsed),
    committed: ops,
    seconds: Number(elapsed.toFixed(2)),
  }));
}
