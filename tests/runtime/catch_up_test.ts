/** RaftServer on a repaired log: it catches up before it votes, and clears the marker durably first. */

import assert from "node:assert/strict";
import { MemoryLog } from "../../src/log/memory_log.ts";
import {
  enc,
  startCluster,
  startNode,
  type TestNode,
  waitFor,
  waitForLeader,
} from "./helpers.ts";

/** A MemoryLog whose `markCaughtUp` waits until the test settles it. */
class SlowMarkLog extends MemoryLog {
  calls = 0;
  settle: ((ok: boolean) => void) | undefined;
  override markCaughtUp(): Promise<void> {
    this.calls++;
    return new Promise<void>((resolve, reject) => {
      this.settle = (ok) =>
        ok ? resolve() : reject(new Error("crashed before the marker cleared"));
    });
  }
}

/** Stops `victim`, cuts its durable log's last `cut` entries and marks it repaired. */
async function repair(victim: TestNode, cut: number): Promise<MemoryLog> {
  await victim.server.stop();
  const log = victim.log.crash();
  const marker = { index: log.lastIndex(), term: log.lastTerm() };
  log.truncate(log.lastIndex() - cut + 1);
  log.syncNow();
  log.simulateRepair(marker);
  return log;
}

Deno.test("a server on a repaired log reports catchingUp, catches up, clears the marker and emits caughtUp", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    for (const s of ["a", "b", "c"]) await leader.server.propose(enc(s));
    const victim = c.nodes.find((n) => n !== leader)!;
    await waitFor(() => victim.sm.items.length === 3, "the victim applies");
    const log = await repair(victim, 2);
    const voters = c.nodes.map((n) => n.id);
    const restarted = await startNode(c.net, victim.id, voters, log);
    c.nodes[c.nodes.indexOf(victim)] = restarted;
    const events: { index: number; lastIndex: number }[] = [];
    restarted.server.on("caughtUp", (e) => events.push(e));
    assert.equal(restarted.server.status().catchingUp, true);
    await waitFor(
      () => !restarted.server.status().catchingUp,
      "the repaired node to catch up",
    );
    assert.equal(log.needsCatchUp, undefined);
    assert.equal(events.length, 1);
    assert.equal(events[0].lastIndex >= events[0].index, true);
    assert.deepEqual(restarted.sm.items.slice(0, 3), ["a", "b", "c"]);
  } finally {
    await c.stop();
  }
});

Deno.test("a server that stops before markCaughtUp resolves restarts still catching up", async () => {
  const c = await startCluster(3);
  try {
    const leader = await waitForLeader(c.nodes);
    for (const s of ["a", "b", "c"]) await leader.server.propose(enc(s));
    const victim = c.nodes.find((n) => n !== leader)!;
    await waitFor(() => victim.sm.items.length === 3, "the victim applies");
    const cut = await repair(victim, 2);
    const slow = new SlowMarkLog();
    // Same durable content as the repaired log.
    for (const e of cut.entries(cut.firstIndex(), cut.lastIndex() + 1)) {
      slow.append([e]);
    }
    slow.setHardState(cut.hardState());
    slow.syncNow();
    slow.simulateRepair(cut.needsCatchUp!);
    const voters = c.nodes.map((n) => n.id);
    const restarted = await startNode(c.net, victim.id, voters, slow);
    c.nodes[c.nodes.indexOf(victim)] = restarted;
    await waitFor(() => slow.calls === 1, "markCaughtUp to be called");
    // Caught up, but not durably: the core still refuses votes.
    assert.equal(restarted.server.status().catchingUp, true);
    const after = slow.crash();
    slow.settle!(false); // the "crash": the server stops, the marker stays
    await waitFor(() => restarted.server.isStopped, "the server to stop");
    assert.notEqual(after.needsCatchUp, undefined);
    const again = await startNode(c.net, victim.id, voters, after);
    c.nodes[c.nodes.indexOf(restarted)] = again;
    assert.equal(again.server.status().catchingUp, true);
    await waitFor(
      () => !again.server.status().catchingUp,
      "the restarted node to catch up",
    );
    assert.equal(after.needsCatchUp, undefined);
  } finally {
    await c.stop();
  }
});
