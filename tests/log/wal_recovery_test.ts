import assert from "node:assert/strict";
import {
  WalCorruptionError,
  WalLog,
  WalMissingSegmentError,
} from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { pattern, segmentFiles, withTestDir } from "./helpers.ts";

const BACKENDS = ["deno", "node"] as const;

function entry(index: number, size = 100): Entry {
  return {
    index,
    term: 1 + (index >> 4),
    kind: "normal",
    data: pattern(size, index),
  };
}

/** Appends `n` entries, one sync each; returns the segment size after each sync. */
async function buildLog(
  dir: string,
  backend: "deno" | "node",
  n: number,
): Promise<{ file: string; boundaries: number[] }> {
  const log = await WalLog.open(dir, { backend });
  const file = `${dir}/${log.segmentFiles()[0]}`;
  const boundaries = [(await Deno.stat(file)).size];
  for (let i = 1; i <= n; i++) {
    log.append([entry(i)]);
    await log.sync();
    boundaries.push((await Deno.stat(file)).size);
  }
  await log.close();
  return { file, boundaries };
}

function assertEntries(log: WalLog, last: number): void {
  assert.equal(log.lastIndex(), last);
  for (let i = 1; i <= last; i++) {
    const e = log.entry(i)!;
    const want = entry(i);
    assert.equal(e.term, want.term);
    assert.deepEqual(e.data, want.data, `entry ${i}`);
  }
}

for (const backend of BACKENDS) {
  Deno.test(`WalLog (${backend}): a torn tail cut at any byte of the last records opens with the intact prefix`, async () => {
    await withTestDir(async (dir) => {
      const n = 12;
      const { file, boundaries } = await buildLog(dir, backend, n);
      const original = await Deno.readFile(file);
      const firstCut = boundaries[n - 4];
      for (let cut = firstCut; cut < original.length; cut++) {
        await Deno.writeFile(file, original.subarray(0, cut));
        const log = await WalLog.open(dir, { backend });
        // Batches wholly before the cut survive; the one it tears is gone.
        let intact = 0;
        while (intact < n && boundaries[intact + 1] <= cut) intact++;
        try {
          assertEntries(log, intact);
          if (cut % 40 === 0) {
            log.append([entry(intact + 1)]);
            await log.sync();
          }
        } finally {
          await log.close();
        }
        assert.equal(
          (await Deno.stat(file)).size,
          cut % 40 === 0 ? boundaries[intact + 1] : boundaries[intact],
          `file cut back at ${cut}`,
        );
      }
    });
  });

  Deno.test(`WalLog (${backend}): a bit flip in a record before the tail is a WalCorruptionError naming file and offset`, async () => {
    await withTestDir(async (dir) => {
      const n = 8;
      const { file, boundaries } = await buildLog(dir, backend, n);
      const original = await Deno.readFile(file);
      const recordStart = boundaries[4]; // entry 5's batch: [ENTRIES][COMMIT]
      for (let p = recordStart; p < boundaries[5]; p++) {
        const bytes = original.slice();
        bytes[p] ^= 1 << (p % 8);
        await Deno.writeFile(file, bytes);
        const error = await WalLog.open(dir, { backend }).then(
          async (log) => {
            await log.close();
            return undefined;
          },
          (e) => e,
        );
        assert.ok(
          error instanceof WalCorruptionError,
          `flip at ${p}: ${error}`,
        );
        assert.equal(error.code, "WAL_CORRUPTION");
        assert.equal(error.file, file);
        const commitStart = boundaries[5] - 21;
        assert.equal(
          error.offset,
          p < commitStart ? recordStart : commitStart,
          `flip at ${p}`,
        );
        assert.match(error.message, /backup|catch up/);
      }
    });
  });

  Deno.test(`WalLog (${backend}): a bit flip anywhere in the final synced batch is a WalCorruptionError naming file and offset, and the file is left as it was`, async () => {
    await withTestDir(async (dir) => {
      const n = 6;
      const { file, boundaries } = await buildLog(dir, backend, n);
      const original = await Deno.readFile(file);
      const recordStart = boundaries[n - 1];
      const commitStart = boundaries[n] - 21;
      for (let p = recordStart; p < boundaries[n]; p++) {
        const bytes = original.slice();
        bytes[p] ^= 1 << (p % 8);
        await Deno.writeFile(file, bytes);
        const error = await WalLog.open(dir, { backend }).then(
          async (log) => {
            await log.close();
            return undefined;
          },
          (e) => e,
        );
        assert.ok(
          error instanceof WalCorruptionError,
          `flip at ${p}: ${error}`,
        );
        assert.equal(error.file, file);
        assert.equal(
          error.offset,
          p < commitStart ? recordStart : commitStart,
          `flip at ${p}`,
        );
        assert.match(error.message, /repair/);
        assert.deepEqual(await Deno.readFile(file), bytes, "nothing was cut");
      }
    });
  });

  Deno.test(`WalLog (${backend}): a torn last batch (its sectors written up to any boundary, zeros after) opens with the intact prefix`, async () => {
    await withTestDir(async (dir) => {
      const { file } = await buildLog(dir, backend, 4);
      const log = await WalLog.open(dir, { backend });
      const start = (await Deno.stat(file)).size;
      const big: Entry[] = [];
      for (let i = 5; i <= 40; i++) big.push(entry(i));
      log.append(big);
      await log.sync();
      await log.close();
      const original = await Deno.readFile(file);
      const cuts = [start];
      for (
        let s = Math.ceil(start / 512) * 512;
        s < original.length;
        s += 512
      ) {
        cuts.push(s);
      }
      assert.ok(cuts.length > 5);
      for (const cut of cuts) {
        // The write reached the disk up to `cut`; the sectors after read as zeros.
        const bytes = original.slice();
        bytes.fill(0, cut);
        await Deno.writeFile(file, bytes);
        const reopened = await WalLog.open(dir, { backend });
        try {
          assertEntries(reopened, 4);
        } finally {
          await reopened.close();
        }
        assert.equal((await Deno.stat(file)).size, start);
        await Deno.writeFile(file, original);
      }
    });
  });
}

Deno.test("WalLog: zeros after the last batch (a file extended but never written) are cut", async () => {
  await withTestDir(async (dir) => {
    const { file, boundaries } = await buildLog(dir, "deno", 5);
    const original = await Deno.readFile(file);
    const grown = new Uint8Array(original.length + 8192);
    grown.set(original);
    await Deno.writeFile(file, grown);
    const log = await WalLog.open(dir);
    assertEntries(log, 5);
    await log.close();
    assert.equal((await Deno.stat(file)).size, boundaries[5]);
  });
});

Deno.test("WalLog: a last batch whose middle never reached the disk is cut even though its commit record did", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1)]);
    await log.sync();
    const file = `${dir}/${log.segmentFiles()[0]}`;
    const before = (await Deno.stat(file)).size;
    const big: Entry[] = [];
    for (let i = 2; i <= 40; i++) big.push(entry(i));
    log.append(big);
    await log.sync();
    await log.close();
    const bytes = await Deno.readFile(file);
    bytes.fill(0, before + 1000, before + 3000); // a page written out of order
    await Deno.writeFile(file, bytes);
    const reopened = await WalLog.open(dir);
    assertEntries(reopened, 1);
    await reopened.close();
  });
});

Deno.test("WalLog: damage in a segment that is not the last one is a WalCorruptionError", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 100; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const segments = log.segmentFiles();
    await log.close();
    assert.ok(segments.length >= 3);
    const victim = `${dir}/${segments[1]}`;
    const bytes = await Deno.readFile(victim);
    bytes[bytes.length - 30] ^= 4; // inside its last batch
    await Deno.writeFile(victim, bytes);
    await assert.rejects(() => WalLog.open(dir), (e: unknown) => {
      assert.ok(e instanceof WalCorruptionError);
      assert.equal(e.file, victim);
      return true;
    });
  });
});

Deno.test("WalLog: a segment missing from the middle of the sequence is a WalMissingSegmentError", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 100; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const segments = log.segmentFiles();
    await log.close();
    await Deno.remove(`${dir}/${segments[1]}`);
    await assert.rejects(() => WalLog.open(dir), (e: unknown) => {
      assert.ok(e instanceof WalMissingSegmentError);
      assert.equal(e.code, "WAL_MISSING_SEGMENT");
      assert.equal(e.file, `${dir}/${segments[1]}`);
      return true;
    });
  });
});

Deno.test("WalLog: losing the first segment while its entries are still needed is a WalMissingSegmentError", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 60; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const segments = log.segmentFiles();
    await log.close();
    await Deno.remove(`${dir}/${segments[0]}`);
    await assert.rejects(() => WalLog.open(dir), WalMissingSegmentError);
  });
});

Deno.test("WalLog: compaction deletes segments wholly below the snapshot and keeps the rest", async () => {
  await withTestDir(async (dir) => {
    let log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 120; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const before = await segmentFiles(dir);
    assert.ok(before.length >= 4, `${before.length} segments`);
    log.saveSnapshot({
      index: 90,
      term: log.termAt(90)!,
      config: new Uint8Array([1]),
    }, pattern(3000, 1));
    await log.syncSnapshot();
    assert.deepEqual(
      await segmentFiles(dir),
      before,
      "nothing is deleted before compact",
    );
    log.compact(90);
    await log.sync();
    const after = await segmentFiles(dir);
    assert.ok(
      after.length < before.length,
      `${after.length} of ${before.length} left`,
    );
    assert.equal(after[after.length - 1], before[before.length - 1]);
    await log.close();
    log = await WalLog.open(dir, { segmentBytes: 4096 });
    assert.equal(log.firstIndex(), 91);
    assert.equal(log.lastIndex(), 120);
    assert.deepEqual(log.entry(91)!.data, entry(91).data);
    assert.deepEqual(log.snapshotData(), pattern(3000, 1));
    assert.equal(log.termAt(90), entry(90).term);
    await log.close();
  });
});

Deno.test("WalLog: a new snapshot replaces the old snapshot file once it is durable", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1), entry(2), entry(3)]);
    log.saveSnapshot(
      { index: 1, term: 1, config: new Uint8Array() },
      pattern(10, 1),
    );
    await log.syncSnapshot();
    const snaps = async () => {
      const names: string[] = [];
      for await (const e of Deno.readDir(dir)) {
        if (e.name.endsWith(".snap")) names.push(e.name);
      }
      return names;
    };
    const first = await snaps();
    assert.equal(first.length, 1);
    log.saveSnapshot(
      { index: 2, term: 1, config: new Uint8Array() },
      pattern(10, 2),
    );
    log.saveSnapshot(
      { index: 3, term: 1, config: new Uint8Array() },
      pattern(10, 3),
    );
    await log.syncSnapshot();
    const second = await snaps();
    assert.equal(second.length, 1);
    assert.notEqual(second[0], first[0]);
    await log.close();
    const reopened = await WalLog.open(dir);
    assert.equal(reopened.snapshotMeta().index, 3);
    assert.deepEqual(reopened.snapshotData(), pattern(10, 3));
    await reopened.close();
  });
});

Deno.test("WalLog: a missing snapshot file is a WalMissingSegmentError and a damaged one a WalCorruptionError", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1), entry(2)]);
    log.saveSnapshot(
      { index: 2, term: 1, config: new Uint8Array() },
      pattern(500, 9),
    );
    await log.close();
    const name = [...Deno.readDirSync(dir)].find((e) =>
      e.name.endsWith(".snap")
    )!.name;
    const path = `${dir}/${name}`;
    const bytes = await Deno.readFile(path);
    bytes[200] ^= 1;
    await Deno.writeFile(path, bytes);
    await assert.rejects(() => WalLog.open(dir), (e: unknown) =>
      e instanceof WalCorruptionError && e.file === path);
    await Deno.remove(path);
    await assert.rejects(() =>
      WalLog.open(dir), (e: unknown) =>
      e instanceof WalMissingSegmentError && e.file === path);
  });
});

Deno.test("WalLog: files left by a crash mid-write (temporaries, an unreferenced snapshot) are removed on open", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1)]);
    await log.close();
    await Deno.writeFile(
      `${dir}/00000000000000000002.wal.tmp`,
      new Uint8Array(10),
    );
    await Deno.writeFile(
      `${dir}/snapshot-00000000000000000007.snap`,
      new Uint8Array(10),
    );
    const reopened = await WalLog.open(dir);
    assertEntries(reopened, 1);
    await reopened.close();
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, ["00000000000000000001.wal", "MANIFEST"]);
  });
});

Deno.test("WalLog: a log spanning many segments replays to the same state", async () => {
  await withTestDir(async (dir) => {
    let log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 300; i += 10) {
      const batch: Entry[] = [];
      for (let j = i; j < i + 10; j++) batch.push(entry(j, j % 50));
      log.append(batch);
      if (i % 70 === 1) log.truncate(i + 5);
      if (log.lastIndex() < i + 9) {
        const more: Entry[] = [];
        for (let j = log.lastIndex() + 1; j < i + 10; j++) {
          more.push({ ...entry(j, 7), term: 99 });
        }
        log.append(more);
      }
      log.setHardState({ term: 5, vote: 1, commit: i });
      await log.sync();
    }
    const expected = log.entries(1, log.lastIndex() + 1).map((
      e,
    ) => [e.index, e.term, [...e.data]]);
    await log.close();
    assert.ok((await segmentFiles(dir)).length > 3);
    log = await WalLog.open(dir, { segmentBytes: 4096 });
    assert.deepEqual(
      log.entries(1, log.lastIndex() + 1).map((
        e,
      ) => [e.index, e.term, [...e.data]]),
      expected,
    );
    assert.deepEqual(log.hardState(), { term: 5, vote: 1, commit: 291 });
    await log.close();
  });
});

Deno.test("WalLog: a recovered log of many small entries reads, truncates and compacts across packed blocks", async () => {
  await withTestDir(async (dir) => {
    const n = 150_000;
    const small = (i: number): Entry => ({
      index: i,
      term: 1 + Math.floor(i / 50_000),
      kind: i % 1000 === 0 ? "config" : "normal",
      data: pattern(i % 7, i),
    });
    let log = await WalLog.open(dir);
    const batch: Entry[] = [];
    for (let i = 1; i <= n; i++) batch.push(small(i));
    log.append(batch);
    await log.close();
    log = await WalLog.open(dir);
    try {
      assert.equal(log.lastIndex(), n);
      assert.equal(log.lastTerm(), small(n).term);
      for (const i of [1, 65_535, 65_536, 65_537, 131_072, 149_999, n]) {
        const e = log.entry(i)!;
        assert.deepEqual([e.index, e.term, e.kind, [...e.data]], [
          i,
          small(i).term,
          small(i).kind,
          [...small(i).data],
        ]);
      }
      const span = log.entries(65_530, 65_545, 100);
      assert.equal(span[0].index, 65_530);
      assert.ok(span.length < 15, "maxBytes stops early");
      log.saveSnapshot({
        index: 70_000,
        term: small(70_000).term,
        config: new Uint8Array(),
      }, pattern(10, 1));
      log.compact(70_000); // frees the first packed block
      assert.equal(log.firstIndex(), 70_001);
      assert.deepEqual(log.entry(70_001)!.data, small(70_001).data);
      log.truncate(140_000);
      assert.equal(log.lastIndex(), 139_999);
      log.append([{ ...small(140_000), term: 9 }]);
      assert.deepEqual(log.entries(139_998, 140_001).map((e) => e.term), [
        small(139_998).term,
        small(139_999).term,
        9,
      ]);
    } finally {
      await log.close();
    }
    log = await WalLog.open(dir);
    assert.equal(log.firstIndex(), 70_001);
    assert.equal(log.lastIndex(), 140_000);
    assert.equal(log.termAt(140_000), 9);
    assert.deepEqual(log.entry(100_000)!.data, small(100_000).data);
    await log.close();
  });
});
