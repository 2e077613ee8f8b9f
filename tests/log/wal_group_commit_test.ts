import assert from "node:assert/strict";
import {
  DenoWalBackend,
  type WalBackend,
  type WalFile,
  WalLog,
} from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { pattern, withTestDir } from "./helpers.ts";

/** A Deno backend that counts segment writes and syncs, and can hold syncs back. */
class CountingBackend extends DenoWalBackend {
  writes = 0;
  syncs = 0;
  gate: Promise<void> | undefined;

  override async openFile(
    path: string,
    options: { create: boolean; truncate: boolean },
  ): Promise<WalFile> {
    const inner = await super.openFile(path, options);
    const counted = path.includes(".wal");
    return {
      writeAt: (bytes, position) => {
        if (counted) this.writes++;
        return inner.writeAt(bytes, position);
      },
      truncate: (length) => inner.truncate(length),
      syncData: async () => {
        if (counted) this.syncs++;
        if (this.gate) await this.gate;
        return inner.syncData();
      },
      close: () => inner.close(),
    };
  }
}

function entries(from: number, n: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    out.push({
      index: from + i,
      term: 1,
      kind: "normal",
      data: pattern(100, from + i),
    });
  }
  return out;
}

async function openCounting(
  dir: string,
): Promise<{ log: WalLog; backend: CountingBackend }> {
  const backend = new CountingBackend();
  const log = await WalLog.open(dir, { backend: backend as WalBackend });
  backend.writes = 0;
  backend.syncs = 0;
  return { log, backend };
}

Deno.test("WalLog: one sync writes everything appended since the last one with one write and one syncData", async () => {
  await withTestDir(async (dir) => {
    const { log, backend } = await openCounting(dir);
    for (let i = 1; i <= 4096; i += 64) log.append(entries(i, 64));
    log.setHardState({ term: 1, vote: 1, commit: 10 });
    log.truncate(4000);
    await log.sync();
    assert.equal(backend.writes, 1);
    assert.equal(backend.syncs, 1);
    await log.sync(); // nothing new: no I/O at all
    assert.equal(backend.syncs, 1);
    await log.close();
  });
});

Deno.test("WalLog: concurrent sync calls share one flush", async () => {
  await withTestDir(async (dir) => {
    const { log, backend } = await openCounting(dir);
    log.append(entries(1, 10));
    await Promise.all([log.sync(), log.sync(), log.sync(), log.sync()]);
    assert.equal(backend.writes, 1);
    assert.equal(backend.syncs, 1);
    await log.close();
  });
});

Deno.test("WalLog: a sync called while a flush runs waits for it, then one more flush covers the rest", async () => {
  await withTestDir(async (dir) => {
    const { log, backend } = await openCounting(dir);
    let release!: () => void;
    backend.gate = new Promise((r) => release = r);
    log.append(entries(1, 5));
    const order: string[] = [];
    const first = log.sync().then(() => order.push("first"));
    log.append(entries(6, 5));
    const second = log.sync().then(() => order.push("second"));
    log.setHardState({ term: 2, vote: 0, commit: 3 });
    const third = log.sync().then(() => order.push("third"));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(order, [], "nothing resolves before the disk says so");
    assert.equal(backend.syncs, 1);
    backend.gate = undefined;
    release();
    await Promise.all([first, second, third]);
    assert.deepEqual(order, ["first", "second", "third"]);
    assert.equal(
      backend.writes,
      2,
      "the second and third share the second flush",
    );
    assert.equal(backend.syncs, 2);
    await log.close();
    const reopened = await WalLog.open(dir);
    assert.equal(reopened.lastIndex(), 10);
    assert.deepEqual(reopened.hardState(), { term: 2, vote: 0, commit: 3 });
    await reopened.close();
  });
});

Deno.test("WalLog: the hard state set before a sync is durable after it, without any entry", async () => {
  await withTestDir(async (dir) => {
    const { log, backend } = await openCounting(dir);
    log.setHardState({ term: 7, vote: 3, commit: 0 });
    log.setHardState({ term: 8, vote: 2, commit: 0 });
    await log.sync();
    assert.equal(backend.syncs, 1);
    await log.close();
    const reopened = await WalLog.open(dir);
    assert.deepEqual(reopened.hardState(), { term: 8, vote: 2, commit: 0 });
    await reopened.close();
  });
});

Deno.test("WalLog: a failed sync poisons the log until it is reopened, and reopening recovers the synced prefix", async () => {
  await withTestDir(async (dir) => {
    const { log, backend } = await openCounting(dir);
    log.append(entries(1, 3));
    await log.sync();
    backend.gate = Promise.reject(new Error("EIO (injected)"));
    backend.gate.catch(() => {});
    log.append(entries(4, 3));
    await assert.rejects(
      () => log.sync(),
      (e: unknown) => (e as { code?: string }).code === "WAL_FAILED",
    );
    assert.throws(() => log.append(entries(7, 1)), /failed earlier/);
    await log.close();
    const reopened = await WalLog.open(dir);
    assert.ok(reopened.lastIndex() >= 3);
    await reopened.close();
  });
});
