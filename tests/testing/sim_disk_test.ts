import assert from "node:assert/strict";
import { WalCorruptionError, WalLog } from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import {
  NodeScheduler,
  SimDisk,
  simRandom,
  VirtualLoop,
} from "../../src/testing/mod.ts";

function entry(index: number, size = 200): Entry {
  const data = new Uint8Array(size).fill(index & 0xff);
  return { index, term: 1, kind: "normal", data };
}

Deno.test("a crash keeps only synced data; a torn crash keeps a prefix of the unsynced tail", async () => {
  const disk = new SimDisk({ random: simRandom(3) });
  const file = await disk.openFile("d/f", { create: true, truncate: false });
  await disk.syncDir("d");
  await file.writeAt(new Uint8Array([1, 2, 3]), 0);
  await file.syncData();
  await file.writeAt(new Uint8Array(100).fill(9), 3);
  assert.deepEqual(
    await disk.crash().readFile("d/f"),
    new Uint8Array([1, 2, 3]),
  );
  const lengths = new Set<number>();
  for (let i = 0; i < 30; i++) {
    const torn = await disk.crash("torn").readFile("d/f");
    assert.deepEqual(torn.subarray(0, 3), new Uint8Array([1, 2, 3]));
    assert.ok(torn.subarray(3).every((b) => b === 9));
    lengths.add(torn.length);
  }
  assert.ok(lengths.size > 5, `torn lengths ${[...lengths]}`);
});

Deno.test("a file never synced into its directory is gone after a crash", async () => {
  const disk = new SimDisk();
  const file = await disk.openFile("d/f", { create: true, truncate: false });
  await file.writeAt(new Uint8Array([1]), 0);
  await file.syncData();
  await assert.rejects(disk.crash().readFile("d/f"));
});

Deno.test("an EIO sync rejects, fails the WAL and is reported", async () => {
  const faults: string[] = [];
  const disk = new SimDisk({
    faults: { syncEio: 1 },
    onFault: (code, op) => faults.push(`${code} ${op}`),
  });
  disk.faults = { ...disk.faults, syncEio: 0 };
  const log = await WalLog.open("n1", { backend: disk, segmentBytes: 4096 });
  disk.faults = { ...disk.faults, syncEio: 1 };
  log.append([entry(1)]);
  await assert.rejects(log.sync(), /Input\/output error/);
  assert.throws(() => log.append([entry(2)]));
  assert.deepEqual(faults, ["EIO fsync"]);
  assert.equal(disk.stats.syncEio, 1);
});

Deno.test("ENOSPC on a write fails the sync that needed it", async () => {
  const disk = new SimDisk();
  const log = await WalLog.open("n1", { backend: disk, segmentBytes: 4096 });
  disk.faults = { ...disk.faults, writeEnospc: 1 };
  log.append([entry(1)]);
  await assert.rejects(log.sync(), /No space left/);
  assert.equal(disk.stats.writeEnospc, 1);
});

Deno.test("a slow sync resolves only when its virtual delay has passed", async () => {
  const loop = new VirtualLoop();
  try {
    const disk = new SimDisk({
      faults: { slowSync: 1, slowSyncMs: [50, 50] },
      timer: loop,
    });
    const file = await disk.openFile("d/f", { create: true, truncate: false });
    let done = false;
    void file.syncData().then(() => (done = true));
    await loop.runUntil(49);
    assert.equal(done, false);
    await loop.runUntil(51);
    assert.equal(done, true);
  } finally {
    loop.close();
  }
});

Deno.test("a bit flipped in a closed segment is refused on open as WalCorruptionError", async () => {
  let detected = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const disk = new SimDisk({ random: simRandom(seed) });
    const log = await WalLog.open("n1", { backend: disk, segmentBytes: 4096 });
    for (let i = 1; i <= 60; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    await log.close();
    assert.ok(log.segmentFiles().length > 2);
    const flipped = disk.flipBit("n1");
    assert.ok(flipped !== undefined);
    assert.notEqual(flipped.file, `n1/${log.segmentFiles().at(-1)}`);
    await assert.rejects(
      WalLog.open("n1", { backend: disk.crash(), segmentBytes: 4096 }),
      WalCorruptionError,
    );
    detected++;
  }
  assert.equal(detected, 10);
});

Deno.test("a halted disk never settles again", async () => {
  const disk = new SimDisk();
  disk.halt();
  const result = await Promise.race([
    disk.readDir("d").then(() => "settled"),
    new Promise((resolve) => setTimeout(() => resolve("pending"), 5)),
  ]);
  assert.equal(result, "pending");
});

Deno.test("the virtual loop runs timers in time order and drains deep promise chains before the next", async () => {
  const loop = new VirtualLoop();
  try {
    const seen: string[] = [];
    loop.after(10, () => {
      let p = Promise.resolve();
      for (let i = 0; i < 1000; i++) p = p.then(() => {});
      void p.then(() => seen.push("chain done"));
    });
    loop.after(10, () => seen.push("second timer at 10"));
    loop.after(5, () => seen.push("timer at 5"));
    await loop.runUntil(100);
    assert.deepEqual(seen, ["timer at 5", "chain done", "second timer at 10"]);
    assert.equal(loop.now, 100);
  } finally {
    loop.close();
  }
});

Deno.test("a node scheduler runs at its own rate and a killed one runs nothing more", async () => {
  const loop = new VirtualLoop();
  try {
    const fast = new NodeScheduler(loop, 2, 1000);
    let ticks = 0;
    fast.every(10, () => ticks++);
    let fired = false;
    fast.after(100, () => (fired = true));
    await loop.runUntil(50);
    assert.equal(ticks, 10);
    assert.equal(fast.now(), 1100);
    assert.equal(fired, true);
    fast.kill();
    await loop.runUntil(100);
    assert.equal(ticks, 10);
    fast.after(1, () => (fired = false));
    await loop.runUntil(200);
    assert.equal(fired, true);
  } finally {
    loop.close();
  }
});
