import assert from "node:assert/strict";
import {
  WalCorruptionError,
  WalLog,
  WalMissingSegmentError,
} from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { pattern, segmentFiles, withTestDir } from "./helpers.ts";

function entry(index: number, size = 100): Entry {
  return { index, term: 1, kind: "normal", data: pattern(size, index) };
}

async function fill(dir: string, n: number, segmentBytes = 4096) {
  const log = await WalLog.open(dir, { segmentBytes });
  for (let i = 1; i <= n; i++) {
    log.append([entry(i)]);
    await log.sync();
  }
  await log.close();
  return await segmentFiles(dir);
}

function openError(dir: string): Promise<unknown> {
  return WalLog.open(dir, { segmentBytes: 4096 }).then(async (log) => {
    const last = log.lastIndex();
    await log.close();
    return new Error(`opened at index ${last}`);
  }, (e) => e);
}

Deno.test("WalLog: a deleted last segment is a WalMissingSegmentError naming it, not an older state", async () => {
  await withTestDir(async (dir) => {
    const segments = await fill(dir, 100);
    assert.ok(segments.length >= 3);
    const last = `${dir}/${segments[segments.length - 1]}`;
    await Deno.remove(last);
    const e = await openError(dir);
    assert.ok(e instanceof WalMissingSegmentError, String(e));
    assert.equal(e.file, last);
  });
});

Deno.test("WalLog: the only segment deleted is a WalMissingSegmentError, not a new empty log", async () => {
  await withTestDir(async (dir) => {
    const segments = await fill(dir, 20, 1 << 20);
    assert.equal(segments.length, 1);
    await Deno.remove(`${dir}/${segments[0]}`);
    const e = await openError(dir);
    assert.ok(e instanceof WalMissingSegmentError, String(e));
    assert.equal(e.file, `${dir}/${segments[0]}`);
  });
});

Deno.test("WalLog: a renamed last segment is a WalMissingSegmentError naming it", async () => {
  await withTestDir(async (dir) => {
    const segments = await fill(dir, 100);
    const last = `${dir}/${segments[segments.length - 1]}`;
    await Deno.rename(last, `${last}.bak`);
    const e = await openError(dir);
    assert.ok(e instanceof WalMissingSegmentError, String(e));
    assert.equal(e.file, last);
  });
});

Deno.test("WalLog: a last segment holding only its header is a WalCorruptionError, and the log is not written", async () => {
  await withTestDir(async (dir) => {
    const segments = await fill(dir, 100);
    const last = `${dir}/${segments[segments.length - 1]}`;
    const bytes = await Deno.readFile(last);
    await Deno.writeFile(last, bytes.subarray(0, 32));
    const e = await openError(dir);
    assert.ok(e instanceof WalCorruptionError, String(e));
    assert.equal(e.file, last);
    assert.equal(e.offset, 32);
    assert.equal((await Deno.stat(last)).size, 32);
  });
});

Deno.test("WalLog: a header-only segment past the manifest's last one (a rotation a crash interrupted) is removed and the log opens", async () => {
  await withTestDir(async (dir) => {
    const segments = await fill(dir, 100);
    const last = segments[segments.length - 1];
    const seq = Number(last.slice(0, 20));
    const next = `${dir}/${String(seq + 1).padStart(20, "0")}.wal`;
    // A header like the rotation writes first (copied from the last segment, renumbered).
    const header = (await Deno.readFile(`${dir}/${last}`)).slice(0, 32);
    await Deno.writeFile(next, header);
    let log = await WalLog.open(dir, { segmentBytes: 4096 });
    assert.equal(log.lastIndex(), 100);
    assert.deepEqual(await segmentFiles(dir), segments);
    for (let i = 101; i <= 150; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    await log.close();
    log = await WalLog.open(dir, { segmentBytes: 4096 });
    assert.equal(log.lastIndex(), 150);
    await log.close();
  });
});

Deno.test("WalLog: a deleted MANIFEST is a WalMissingSegmentError naming it", async () => {
  await withTestDir(async (dir) => {
    await fill(dir, 100);
    await Deno.remove(`${dir}/MANIFEST`);
    const e = await openError(dir);
    assert.ok(e instanceof WalMissingSegmentError, String(e));
    assert.equal(e.file, `${dir}/MANIFEST`);
  });
});

Deno.test("WalLog: a log whose segments carry no manifest flag (written before manifests) opens and gains a MANIFEST", async () => {
  await withTestDir(async (dir) => {
    await fill(dir, 30);
    await Deno.remove(`${dir}/MANIFEST`);
    const { crc32c } = await import("../../src/codec/crc32c.ts");
    for (const name of await segmentFiles(dir)) {
      const bytes = await Deno.readFile(`${dir}/${name}`);
      bytes[12] = 0; // flags of format 1 before manifests
      new DataView(bytes.buffer).setUint32(
        28,
        crc32c(bytes.subarray(0, 28)),
        true,
      );
      await Deno.writeFile(`${dir}/${name}`, bytes);
    }
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    assert.equal(log.lastIndex(), 30);
    await log.close();
    await Deno.stat(`${dir}/MANIFEST`);
  });
});

Deno.test("WalLog: a cut tail that removed a durable compaction batch names the last segment and the cut's offset", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 120; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const last = `${dir}/${log.segmentFiles()[log.segmentFiles().length - 1]}`;
    const before = (await Deno.stat(last)).size;
    log.saveSnapshot(
      { index: 100, term: 1, config: new Uint8Array([1]) },
      pattern(100, 1),
    );
    log.compact(100);
    await log.syncSnapshot();
    const after = log.segmentFiles();
    assert.equal(
      `${dir}/${after[after.length - 1]}`,
      last,
      "same last segment",
    );
    await log.close();
    // Cut the file inside the compaction batch (a short tail).
    const bytes = await Deno.readFile(last);
    await Deno.writeFile(last, bytes.subarray(0, before + 10));
    const e = await openError(dir);
    assert.ok(e instanceof WalCorruptionError, String(e));
    assert.equal(e.file, last);
    assert.equal(e.offset, before);
    assert.match(e.message, /compacted entries/);
  });
});

Deno.test("WalLog: a damaged snapshot file names the chunk where the damage is, not the trailer", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1), entry(2)]);
    log.saveSnapshot(
      { index: 2, term: 1, config: new Uint8Array() },
      pattern(300_000, 9),
    );
    await log.close();
    const name = [...Deno.readDirSync(dir)].find((e) =>
      e.name.endsWith(".snap")
    )!.name;
    const path = `${dir}/${name}`;
    const original = await Deno.readFile(path);
    for (const [at, expected] of [[200_000, 196_608], [70, 0]]) {
      const bytes = original.slice();
      bytes[at] ^= 4;
      await Deno.writeFile(path, bytes);
      const e = await openError(dir);
      assert.ok(e instanceof WalCorruptionError, String(e));
      assert.equal(e.file, path);
      assert.equal(e.offset, expected, `flip at ${at}`);
    }
    // The table entry of chunk 1 damaged: named there.
    const tableAt = 48 + 300_000;
    const bytes = original.slice();
    bytes[tableAt + 4] ^= 1;
    await Deno.writeFile(path, bytes);
    const e = await openError(dir);
    assert.ok(e instanceof WalCorruptionError, String(e));
    assert.equal(e.offset, tableAt + 4);
  });
});
