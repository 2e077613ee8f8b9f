/**
 * WalLog benchmarks, each against a baseline measured in the same run.
 *
 * `deno run --allow-read=./.bench-data --allow-write=./.bench-data scripts/bench_wal.ts [--quick] [--node] [--dir <folder>]`
 *
 * 1. Append + sync with 1, 64 and 4,096 entries of 100 B per sync, against
 *    a bare baseline: one write + `syncData()` of the same number of bytes
 *    on a plain file (one sync of each in turn, medians of the single-sync
 *    times). Like a Raft server, the WalLog run saves a 1 KiB snapshot and
 *    compacts every 256 Ki entries, so memory stays bounded (cost included).
 * 2. Replay on open of a >= 256 MiB log (warm page cache): MB/s of segment
 *    bytes, for 1 KiB and 100 B entries.
 *
 * @module
 */

import { WalLog } from "../src/log/wal/mod.ts";
import type { Entry } from "../src/log/raft_log.ts";

const quick = Deno.args.includes("--quick");
const backend = Deno.args.includes("--node") ? "node" : "deno";
const dirArg = Deno.args.indexOf("--dir");
const ROOT = dirArg >= 0 ? Deno.args[dirArg + 1] : ".bench-data";
await Deno.mkdir(ROOT, { recursive: true });
const workDir = await Deno.makeTempDir({ dir: ROOT, prefix: "wal-" });

const COMPACT_EVERY = 1 << 18;
const SNAPSHOT_CONFIG = new Uint8Array([1, 2, 3]);
const SNAPSHOT_DATA = new Uint8Array(1024);

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const e of Deno.readDir(dir)) {
    if (e.name.endsWith(".wal")) {
      total += (await Deno.stat(`${dir}/${e.name}`)).size;
    }
  }
  return total;
}

function payload(size: number, seed: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (seed + i * 31) & 0xff;
  return b;
}

/** Times `iterations` rounds of append(n entries) + sync; returns ms per sync and bytes written per sync. */
async function walRound(
  log: WalLog,
  n: number,
  iterations: number,
  data: Uint8Array,
): Promise<number> {
  let index = log.lastIndex() + 1;
  const batch: Entry[] = new Array(n);
  const t0 = performance.now();
  for (let it = 0; it < iterations; it++) {
    for (let i = 0; i < n; i++) {
      batch[i] = { index: index++, term: 1, kind: "normal", data };
    }
    log.append(batch);
    if (index - log.firstIndex() > COMPACT_EVERY) {
      // Like a Raft server: snapshot now and then and compact behind it, so memory stays bounded.
      log.saveSnapshot(
        { index: index - 1, term: 1, config: SNAPSHOT_CONFIG },
        SNAPSHOT_DATA,
      );
      log.compact(index - 1);
    }
    await log.sync();
  }
  return (performance.now() - t0) / iterations;
}

async function baselineRound(
  file: Deno.FsFile,
  bytes: Uint8Array,
  iterations: number,
): Promise<number> {
  const t0 = performance.now();
  for (let it = 0; it < iterations; it++) {
    let done = 0;
    while (done < bytes.length) done += await file.write(bytes.subarray(done));
    await file.syncData();
  }
  return (performance.now() - t0) / iterations;
}

interface Row {
  n: number;
  walUs: number;
  baseUs: number;
  bytesPerSync: number;
}

async function appendBench(n: number): Promise<Row> {
  const iterations = quick
    ? Math.max(20, Math.round(200 / Math.sqrt(n)))
    : Math.max(100, Math.round(3000 / Math.sqrt(n)));
  const rounds = quick ? 3 : 7;
  const data = payload(100, n);
  const dir = `${workDir}/append-${n}`;
  const log = await WalLog.open(dir, { backend });
  // Warm up, and learn how many bytes one sync writes.
  const before = await dirBytes(dir);
  await walRound(log, n, 20, data);
  const bytesPerSync = Math.round((await dirBytes(dir) - before) / 20);
  const file = await Deno.open(`${workDir}/baseline-${n}.bin`, {
    create: true,
    write: true,
    truncate: true,
  });
  const bytes = payload(bytesPerSync, 7);
  await baselineRound(file, bytes, 20);
  const wal: number[] = [];
  const base: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate one WalLog sync and one baseline sync, so both see the same
    // background load; medians of the single-sync samples are reported.
    for (let i = 0; i < iterations; i++) {
      wal.push(await walRound(log, n, 1, data));
      base.push(await baselineRound(file, bytes, 1));
    }
  }
  file.close();
  await log.close();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(`${workDir}/baseline-${n}.bin`);
  return {
    n,
    walUs: median(wal) * 1000,
    baseUs: median(base) * 1000,
    bytesPerSync,
  };
}

async function replayBench(
  entrySize: number,
  targetBytes: number,
): Promise<{ mb: number; ms: number; entries: number }> {
  const dir = `${workDir}/replay-${entrySize}`;
  const log = await WalLog.open(dir);
  const data = payload(entrySize, 3);
  const perBatch = Math.max(1, Math.floor((4 << 20) / entrySize));
  let index = 1;
  while (await dirBytes(dir) < targetBytes) {
    const batch: Entry[] = [];
    for (let i = 0; i < perBatch; i++) {
      batch.push({ index: index++, term: 1, kind: "normal", data });
    }
    log.append(batch);
    await log.sync();
  }
  await log.close();
  const bytes = await dirBytes(dir);
  const times: number[] = [];
  let entries = 0;
  for (let r = 0; r < (quick ? 1 : 3); r++) {
    const t0 = performance.now();
    const reopened = await WalLog.open(dir);
    times.push(performance.now() - t0);
    entries = reopened.lastIndex();
    await reopened.close();
  }
  await Deno.remove(dir, { recursive: true });
  const ms = median(times);
  return { mb: bytes / 1e6, ms, entries };
}

try {
  console.log(
    `WalLog benchmark, ${backend} backend (deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch})\n`,
  );
  console.log(
    "append + sync, 100 B entries; baseline = one write + syncData of the same bytes on a plain file",
  );
  console.log(
    "| entries/sync | bytes/sync | baseline µs/sync | WalLog µs/sync | WalLog MB/s | baseline MB/s | ratio |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|");
  for (const n of [1, 64, 4096]) {
    const r = await appendBench(n);
    const walMBs = r.bytesPerSync / r.walUs;
    const baseMBs = r.bytesPerSync / r.baseUs;
    console.log(
      `| ${n} | ${r.bytesPerSync} | ${r.baseUs.toFixed(0)} | ${
        r.walUs.toFixed(0)
      } | ${walMBs.toFixed(1)} | ${baseMBs.toFixed(1)} | ${
        (r.baseUs / r.walUs * 100).toFixed(0)
      } % |`,
    );
  }
  const target = quick ? 32 << 20 : 256 << 20;
  console.log(
    `\nreplay on open (warm page cache), log of >= ${target >> 20} MiB`,
  );
  console.log("| entry size | log MB | entries | open ms | MB/s |");
  console.log("|---:|---:|---:|---:|---:|");
  for (const size of [1024, 100]) {
    const r = await replayBench(size, target);
    console.log(
      `| ${size} B | ${r.mb.toFixed(0)} | ${r.entries} | ${r.ms.toFixed(0)} | ${
        (r.mb / (r.ms / 1000)).toFixed(0)
      } |`,
    );
  }
} finally {
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
}
