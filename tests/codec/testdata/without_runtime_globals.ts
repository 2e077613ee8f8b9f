/**
 * Run by portable_surface_test.ts in a subprocess: removes the `Deno`,
 * `process` and `require` globals (and Node's other ones) as a browser or an
 * edge runtime would not have them, then imports the root module and
 * `./core` and elects a leader twice: a 3-node RaftNode cluster over
 * MemoryLogs driven by hand, and a 3-node RaftServer cluster over a
 * MemoryNetwork. Prints one line per result; any failure is an uncaught
 * error (non-zero exit).
 */

const g = globalThis as Record<string, unknown>;
// `process` first: reading it lazily needs `Deno`.
for (
  const name of [
    "process",
    "require",
    "Buffer",
    "global",
    "setImmediate",
    "clearImmediate",
    "Deno",
  ]
) delete g[name];
const left = ["Deno", "process", "require", "Buffer"].filter((n) =>
  n in globalThis
);
if (left.length > 0) throw new Error(`globals still present: ${left}`);
console.log("globals removed");

// Dynamic imports: a static one would run before the globals are gone.
const root = await import("../../../mod.ts");
const core = await import("../../../src/core/mod.ts");
console.log("imported");

// 1. The core alone: three RaftNodes over MemoryLogs, messages delivered by hand.
{
  const ids = [1, 2, 3];
  const logs = new Map(ids.map((id) => [id, new root.MemoryLog()]));
  const nodes = new Map(
    ids.map((id) => [
      id,
      new core.RaftNode({ id, voters: ids }, logs.get(id)!),
    ]),
  );
  const queue: import("../../../mod.ts").Message[] = [];
  let leader = 0;
  for (let step = 0; step < 1000 && leader === 0; step++) {
    for (const node of nodes.values()) node.tick();
    for (let round = 0; round < 50; round++) {
      for (const [id, node] of nodes) {
        while (node.hasReady()) {
          const rd = node.ready();
          queue.push(...rd.messages);
          if (rd.mustSync) logs.get(id)!.syncNow();
          queue.push(...rd.persistedMessages);
          node.advance(rd);
        }
      }
      if (queue.length === 0) break;
      for (const m of queue.splice(0)) nodes.get(m.to)?.step(m);
    }
    for (const [id, node] of nodes) {
      if (node.status().role === "leader") leader = id;
    }
  }
  if (leader === 0) throw new Error("the RaftNode cluster elected no leader");
  console.log(`core leader ${leader}`);
}

// 2. The runtime from the root: three RaftServers over a MemoryNetwork.
{
  const ids = [1, 2, 3];
  const net = new root.MemoryNetwork<import("../../../mod.ts").Message>();
  const quiet = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: () => {},
  };
  const servers = await Promise.all(ids.map((id) =>
    root.RaftServer.start({
      config: { id, voters: ids },
      log: new root.MemoryLog(),
      transport: net.endpoint(id),
      stateMachine: {
        apply: (e) => e.data.length,
        snapshot: () => new Uint8Array(0),
        restore: () => {},
      },
      tickMs: 5,
      logger: quiet,
    })
  ));
  const leaderId = await servers[0].waitForLeader();
  const result = await servers[leaderId - 1].propose(new Uint8Array(3));
  console.log(`server leader ${leaderId} applied ${result}`);
  await Promise.all(servers.map((s) => s.stop()));
  await net.close();
}
