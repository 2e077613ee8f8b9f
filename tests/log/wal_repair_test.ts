import assert from "node:assert/strict";
import { WalCorruptionError, WalLog } from "../../src/log/wal/mod.ts";
import type { Entry } from "../../src/log/raft_log.ts";
import { pattern, withTestDir } from "./helpers.ts";

function entry(index: number, term = 2): Entry {
  return { index, term, kind: "normal", data: pattern(100, index) };
}

/** A log of 6 entries, one batch each, with the final synced batch's data flipped. */
async function flippedLog(dir: string): Promise<{ file: string; at: number }> {
  const log = await WalLog.open(dir);
  for (let i = 1; i <= 6; i++) {
    log.append([entry(i)]);
    log.setHardState({ term: 2, vote: 1, commit: i - 1 });
    await log.sync();
  }
  const file = `${dir}/${log.segmentFiles()[0]}`;
  await log.close();
  const bytes = await Deno.readFile(file);
  bytes[bytes.length - 60] ^= 8; // inside entry 6's data
  await Deno.writeFile(file, bytes);
  const e = await WalLog.open(dir).then(() => undefined, (e) => e);
  assert.ok(e instanceof WalCorruptionError);
  return { file: e.file, at: e.offset };
}

Deno.test("WalLog.repair cuts the damaged final batch at the reported offset and records that the node must catch up before voting", async () => {
  await withTestDir(async (dir) => {
    const { file, at } = await flippedLog(dir);
    const report = await WalLog.repair(dir, { truncateAt: at, file });
    assert.equal(report.file, file);
    assert.equal(report.lastIndex, 5);
    assert.ok(report.cutAt <= at);
    // Entry 6 was in the cut batch: the bound covers it, and the term seen.
    assert.deepEqual(report.catchUp, { index: 6, term: 2 });
    const log = await WalLog.open(dir);
    assert.equal(log.lastIndex(), 5);
    assert.deepEqual(log.needsCatchUp, { index: 6, term: 2 });
    log.append([entry(6, 3)]);
    await log.sync();
    await log.close();
    // Survives restarts until cleared.
    const again = await WalLog.open(dir);
    assert.deepEqual(again.needsCatchUp, { index: 6, term: 2 });
    await again.markCaughtUp();
    await again.close();
    const cleared = await WalLog.open(dir);
    assert.equal(cleared.needsCatchUp, undefined);
    assert.equal(cleared.lastIndex(), 6);
    await cleared.close();
  });
});

Deno.test("WalLog.repair refuses an offset other than the reported one, and a log that opens, changing nothing", async () => {
  await withTestDir(async (dir) => {
    const { file, at } = await flippedLog(dir);
    const before = await Deno.readFile(file);
    await assert.rejects(
      () => WalLog.repair(dir, { truncateAt: at - 1 }),
      (e: unknown) => {
        assert.equal((e as { code?: string }).code, "WAL_REPAIR_REFUSED");
        assert.equal((e as { offset?: number }).offset, at);
        return true;
      },
    );
    assert.deepEqual(await Deno.readFile(file), before);
    await WalLog.repair(dir, { truncateAt: at });
    await assert.rejects(
      () => WalLog.repair(dir, { truncateAt: at }),
      (e: unknown) => (e as { code?: string }).code === "WAL_REPAIR_REFUSED",
    );
  });
});

Deno.test("WalLog.repair refuses damage outside the last segment", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir, { segmentBytes: 4096 });
    for (let i = 1; i <= 100; i++) {
      log.append([entry(i)]);
      await log.sync();
    }
    const victim = `${dir}/${log.segmentFiles()[1]}`;
    await log.close();
    const bytes = await Deno.readFile(victim);
    bytes[bytes.length - 30] ^= 4;
    await Deno.writeFile(victim, bytes);
    const e = await WalLog.open(dir).then(() => undefined, (e) => e);
    assert.ok(e instanceof WalCorruptionError);
    await assert.rejects(
      () => WalLog.repair(dir, { truncateAt: e.offset, file: e.file }),
      (r: unknown) => (r as { code?: string }).code === "WAL_REPAIR_REFUSED",
    );
    assert.deepEqual(await Deno.readFile(victim), bytes);
  });
});

Deno.test("deno task wal:repair: reports the damage and the command, then cuts with --truncate-at", async () => {
  await withTestDir(async (dir) => {
    const { file, at } = await flippedLog(dir);
    const run = async (...extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read=.test-data",
          "--allow-write=.test-data",
          "src/log/wal/repair_cli.ts",
          dir,
          ...extra,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      return { code: out.code, text };
    };
    const dry = await run();
    assert.equal(dry.code, 1, dry.text);
    assert.match(dry.text, new RegExp(`--truncate-at ${at} --file ${file}`));
    const cut = await run("--truncate-at", String(at), "--file", file);
    assert.equal(cut.code, 0, cut.text);
    assert.match(cut.text, /must not vote/);
    const after = await run();
    assert.equal(after.code, 0, after.text);
    assert.match(after.text, /must catch up to index 6/);
  });
});
