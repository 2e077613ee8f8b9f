import assert from "node:assert/strict";
import { WalLog } from "../../src/log/wal/mod.ts";
import type { Entry, RaftLog } from "../../src/log/raft_log.ts";
import { InjectedCrash, SimDisk } from "../../src/testing/sim_disk.ts";

const DIR = "wal";
const SEGMENT = 4096;

function entry(index: number, term: number): Entry {
  const data = new Uint8Array(20 + (index * 7) % 90);
  for (let i = 0; i < data.length; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term, kind: index % 11 === 0 ? "config" : "normal", data };
}

/** Everything observable about a log, as plain data. */
function observe(log: RaftLog): string {
  const first = log.firstIndex();
  const last = log.lastIndex();
  return JSON.stringify({
    first,
    last,
    lastTerm: log.lastTerm(),
    entries: log.entries(first, last + 1).map((
      e,
    ) => [e.index, e.term, e.kind, [...e.data]]),
    hardState: log.hardState(),
    snapshot: [log.snapshotMeta().index, log.snapshotMeta().term, [
      ...log.snapshotMeta().config,
    ]],
    snapshotData: [...log.snapshotData()],
  });
}

/**
 * A workload touching every write path: appends over several segments,
 * hard states, truncation, snapshots saved and applied, compaction (which
 * deletes segments and snapshot files). Calls `synced` with the state after
 * each resolved sync; `attempt` before each sync.
 */
async function workload(
  log: WalLog,
  attempt: (state: string) => void,
  synced: (state: string) => void,
): Promise<void> {
  // A round that saved a snapshot waits for it: its file, then one batch
  // with everything of the round (a sync would not wait for the file).
  const sync = async (snapshotTaken: boolean) => {
    attempt(observe(log));
    await (snapshotTaken ? log.syncSnapshot() : log.sync());
    synced(observe(log));
  };
  let term = 1;
  for (let round = 0; round < 14; round++) {
    const from = log.lastIndex() + 1;
    const batch: Entry[] = [];
    for (let i = 0; i < 6; i++) batch.push(entry(from + i, term));
    log.append(batch);
    log.setHardState({ term, vote: round % 3, commit: from });
    if (round % 5 === 2) {
      log.truncate(from + 3);
      term++;
      log.append([entry(from + 3, term), entry(from + 4, term)]);
    }
    if (round % 4 === 3) {
      const at = log.lastIndex() - 4;
      log.saveSnapshot({
        index: at,
        term: log.termAt(at)!,
        config: new Uint8Array([round]),
      }, new Uint8Array(300).fill(round));
      log.compact(at - 2);
    }
    if (round === 9) {
      term++;
      log.applySnapshot({
        index: log.lastIndex() + 20,
        term,
        config: new Uint8Array([9, 9]),
      }, new Uint8Array(500).fill(7));
    }
    await sync(round % 4 === 3);
  }
}

Deno.test("WalLog: a power loss at every write boundary recovers the last acknowledged state or the one being synced", async () => {
  // A clean run counts the mutating operations.
  const clean = new SimDisk();
  const cleanLog = await WalLog.open(DIR, {
    backend: clean,
    segmentBytes: SEGMENT,
  });
  const opsBefore = clean.ops;
  await workload(cleanLog, () => {}, () => {});
  const total = clean.ops;
  await cleanLog.close();
  assert.ok(total - opsBefore > 60, `only ${total - opsBefore} operations`);

  for (const keepUnsynced of [false, true]) {
    for (let failAt = opsBefore + 1; failAt <= total; failAt++) {
      const disk = new SimDisk();
      const log = await WalLog.open(DIR, {
        backend: disk,
        segmentBytes: SEGMENT,
      });
      disk.failAt = failAt;
      let acknowledged = observe(log);
      let attempted = acknowledged;
      await assert.rejects(
        () => workload(log, (s) => attempted = s, (s) => acknowledged = s),
        (e: unknown) =>
          e instanceof InjectedCrash ||
          (e as Error).cause instanceof InjectedCrash,
      );
      const after = disk.crash(keepUnsynced);
      const reopened = await WalLog.open(DIR, {
        backend: after,
        segmentBytes: SEGMENT,
      });
      try {
        const state = observe(reopened);
        assert.ok(
          state === acknowledged || state === attempted,
          `crash at operation ${failAt} (${
            keepUnsynced ? "process kill" : "power loss"
          }): recovered a state that was never synced`,
        );
        // Usable afterwards.
        const next = reopened.lastIndex() + 1;
        reopened.append([entry(next, Math.max(reopened.lastTerm(), 1))]);
        await reopened.sync();
      } finally {
        await reopened.close();
      }
    }
  }
});
