import assert from "node:assert/strict";
import {
  DenoWalBackend,
  NodeWalBackend,
  type WalBackend,
  type WalDirLock,
  type WalFile,
  WalLog,
} from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { pattern, withTestDir } from "./helpers.ts";
import { SimDisk } from "../../src/testing/sim_disk.ts";

/**
 * Wraps a backend and holds back the `syncData()` of snapshot files until
 * `release()`: while held, the snapshot file is written but not durable.
 */
class SnapshotGate implements WalBackend {
  readonly name: string;
  readonly #inner: WalBackend;
  #release!: () => void;
  readonly #gate = new Promise<void>((r) => this.#release = r);
  /** Resolves when a snapshot file's syncData was called (and is held). */
  readonly reached: Promise<void>;
  #reached!: () => void;
  /** True once a held snapshot syncData returned. */
  snapshotDurable = false;

  constructor(inner: WalBackend) {
    this.#inner = inner;
    this.name = inner.name;
    this.reached = new Promise((r) => this.#reached = r);
  }

  release(): void {
    this.#release();
  }

  async openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile> {
    const file = await this.#inner.openFile(path, options);
    if (!path.endsWith(".snap.tmp")) return file;
    return {
      writeAt: (bytes, position) => file.writeAt(bytes, position),
      truncate: (length) => file.truncate(length),
      syncData: async () => {
        this.#reached();
        await this.#gate;
        await file.syncData();
        this.snapshotDurable = true;
      },
      close: () => file.close(),
    };
  }
  mkdirp(dir: string): Promise<void> {
    return this.#inner.mkdirp(dir);
  }
  readDir(dir: string): Promise<string[]> {
    return this.#inner.readDir(dir);
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.#inner.readFile(path);
  }
  rename(from: string, to: string): Promise<void> {
    return this.#inner.rename(from, to);
  }
  remove(path: string): Promise<void> {
    return this.#inner.remove(path);
  }
  syncDir(dir: string): Promise<void> {
    return this.#inner.syncDir(dir);
  }
  lock(dir: string): Promise<WalDirLock> {
    return this.#inner.lock(dir);
  }
}

function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) {
    out.push({ index: i, term, kind: "normal", data: pattern(64, i) });
  }
  return out;
}

function snapshotFiles(names: string[]): string[] {
  return names.filter((n) => n.endsWith(".snap")).sort();
}

const BIG = 64 * 1024 * 1024;

for (const backendName of ["deno", "node"] as const) {
  Deno.test(`WalLog (${backendName}): a sync issued while a 64 MiB local snapshot file is being written resolves before that file is durable, and both survive a reopen`, async () => {
    await withTestDir(async (dir) => {
      const inner = backendName === "deno"
        ? new DenoWalBackend()
        : new NodeWalBackend();
      const gate = new SnapshotGate(inner);
      const log = await WalLog.open(dir, { backend: gate });
      log.append(entries(1, 100));
      log.setHardState({ term: 1, vote: 1, commit: 100 });
      await log.sync();

      const data = pattern(BIG, 3);
      log.saveSnapshot(
        { index: 80, term: 1, config: new Uint8Array([1]) },
        data,
      );
      log.compact(80);
      // Reads see the snapshot and the compaction at once.
      assert.equal(log.snapshotMeta().index, 80);
      assert.equal(log.firstIndex(), 81);
      assert.equal(log.snapshotData(), data);

      await gate.reached; // the file is written, its syncData is held
      log.append(entries(101, 110, 2));
      log.setHardState({ term: 2, vote: 1, commit: 110 });
      // A sync that waited for the held file would never resolve: fail instead of hanging.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stuck = new Promise<"stuck">((r) =>
        timer = setTimeout(() => r("stuck"), 20_000)
      );
      const outcome = await Promise.race([log.sync(), stuck]);
      clearTimeout(timer);
      if (outcome === "stuck") gate.release();
      assert.notEqual(
        outcome,
        "stuck",
        "the sync waited for the snapshot file",
      );
      assert.equal(
        gate.snapshotDurable,
        false,
        "the sync resolved while the snapshot file was not durable",
      );
      assert.deepEqual(
        snapshotFiles(await inner.readDir(dir)),
        [],
        "no snapshot file is in place yet",
      );

      gate.release();
      await log.syncSnapshot();
      assert.equal(gate.snapshotDurable, true);
      assert.equal(snapshotFiles(await inner.readDir(dir)).length, 1);
      await log.close();

      const reopened = await WalLog.open(dir, { backend: inner });
      try {
        assert.equal(reopened.snapshotMeta().index, 80);
        assert.deepEqual([...reopened.snapshotMeta().config], [1]);
        assert.equal(reopened.firstIndex(), 81);
        assert.equal(reopened.lastIndex(), 110);
        assert.deepEqual(reopened.hardState(), {
          term: 2,
          vote: 1,
          commit: 110,
        });
        assert.deepEqual(reopened.entry(81)!.data, pattern(64, 81));
        assert.equal(reopened.entry(110)!.term, 2);
        const got = reopened.snapshotData();
        assert.equal(got.length, BIG);
        assert.ok(
          got.every((b, i) => b === data[i]),
          "snapshot data differs",
        );
      } finally {
        await reopened.close();
      }
    }, `bgsnap-${backendName}`);
  });
}

Deno.test("WalLog: a snapshot applied from a leader supersedes a local one still being written", async () => {
  await withTestDir(async (dir) => {
    const inner = new DenoWalBackend();
    const gate = new SnapshotGate(inner);
    const log = await WalLog.open(dir, { backend: gate });
    log.append(entries(1, 20));
    await log.sync();
    log.saveSnapshot(
      { index: 10, term: 1, config: new Uint8Array() },
      pattern(5000, 1),
    );
    log.compact(10);
    await gate.reached;
    gate.release(); // the applied snapshot's file is held too: let both go
    log.applySnapshot(
      { index: 50, term: 3, config: new Uint8Array([5]) },
      pattern(700, 2),
    );
    await log.sync();
    await log.syncSnapshot();
    await log.close();
    const reopened = await WalLog.open(dir);
    try {
      assert.equal(reopened.snapshotMeta().index, 50);
      assert.deepEqual(reopened.snapshotData(), pattern(700, 2));
      assert.equal(reopened.firstIndex(), 51);
      assert.equal(reopened.lastIndex(), 50);
      assert.equal(snapshotFiles(await inner.readDir(dir)).length, 1);
    } finally {
      await reopened.close();
    }
  });
});

/** What a recovered log must satisfy after a crash during the workload below. */
function checkRecovered(
  log: WalLog,
  acknowledged: number,
  snapshots: Map<number, Uint8Array>,
): void {
  assert.ok(
    log.lastIndex() >= acknowledged,
    `lost acknowledged entries: ${log.lastIndex()} < ${acknowledged}`,
  );
  const snap = log.snapshotMeta().index;
  if (snap === 0) {
    assert.equal(log.firstIndex(), 1, "compacted without a durable snapshot");
  } else {
    assert.deepEqual(log.snapshotData(), snapshots.get(snap));
    assert.ok(log.firstIndex() <= snap + 1);
  }
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
    assert.deepEqual(log.entry(i)?.data, pattern(64, i), `entry ${i}`);
  }
}

Deno.test("WalLog: a power loss at every write boundary while a local snapshot is written between flushes keeps every acknowledged entry and the old or the new snapshot", async () => {
  const DIR = "wal";
  const SNAP_BYTES = 3 * 1024 * 1024 + 17; // several background chunks
  const snapshots = new Map<number, Uint8Array>();
  const workload = async (
    log: WalLog,
    acked: (n: number) => void,
  ): Promise<void> => {
    let next = 1;
    const round = async (n: number) => {
      log.append(entries(next, next + n - 1));
      next += n;
      log.setHardState({ term: 1, vote: 1, commit: next - 1 });
      await log.sync();
      acked(next - 1);
    };
    await round(40);
    for (const at of [30, 60]) {
      const data = snapshots.get(at) ?? pattern(SNAP_BYTES, at);
      snapshots.set(at, data);
      log.saveSnapshot({ index: at, term: 1, config: new Uint8Array() }, data);
      log.compact(at - 5);
      const done = log.syncSnapshot();
      // Flushes keep going while the file is written.
      for (let k = 0; k < 4; k++) await round(3);
      await done;
      acked(next - 1);
      await round(20);
    }
  };
  const clean = new SimDisk();
  const cleanLog = await WalLog.open(DIR, {
    backend: clean,
    segmentBytes: 4096,
  });
  const opsBefore = clean.ops;
  await workload(cleanLog, () => {});
  const total = clean.ops;
  await cleanLog.close();
  assert.ok(total - opsBefore > 40, `only ${total - opsBefore} operations`);

  for (let failAt = opsBefore + 1; failAt <= total; failAt++) {
    const disk = new SimDisk();
    const log = await WalLog.open(DIR, { backend: disk, segmentBytes: 4096 });
    disk.failAt = failAt;
    let acknowledged = 0;
    await assert.rejects(() => workload(log, (n) => acknowledged = n));
    await log.close().catch(() => {});
    const reopened = await WalLog.open(DIR, {
      backend: disk.crash(false),
      segmentBytes: 4096,
    });
    try {
      checkRecovered(reopened, acknowledged, snapshots);
    } catch (e) {
      throw new Error(`crash at operation ${failAt}: ${(e as Error).message}`);
    } finally {
      await reopened.close();
    }
  }
});
