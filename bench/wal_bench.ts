/**
 * `deno bench` view of the WalLog append + sync cost against a bare
 * write + `syncData()` of the same bytes (`baseline: true` in each group, so
 * deno bench prints the ratio). scripts/bench_wal.ts prints the fuller table.
 *
 * `deno bench --allow-read=./.bench-data --allow-write=./.bench-data bench/wal_bench.ts`
 *
 * @module
 */

import { WalLog } from "../src/log/wal/mod.ts";
import type { Entry } from "../src/log/raft_log.ts";

await Deno.mkdir(".bench-data", { recursive: true });
const root = await Deno.makeTempDir({
  dir: ".bench-data",
  prefix: "walbench-",
});
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(root, { recursive: true });
  } catch {
    // already gone
  }
});

const data = new Uint8Array(100).fill(7);

for (const n of [1, 64, 4096]) {
  const log = await WalLog.open(`${root}/wal-${n}`);
  let index = 1;
  const batch: Entry[] = new Array(n);
  const appendSync = async () => {
    for (let i = 0; i < n; i++) {
      batch[i] = { index: index++, term: 1, kind: "normal", data };
    }
    log.append(batch);
    if (index - log.firstIndex() > 1 << 18) {
      log.saveSnapshot(
        { index: index - 1, term: 1, config: new Uint8Array() },
        new Uint8Array(16),
      );
      log.compact(index - 1);
    }
    await log.sync();
  };
  // Learn the bytes one sync writes, for a baseline of the same size.
  const segment = `${root}/wal-${n}/${log.segmentFiles()[0]}`;
  const before = (await Deno.stat(segment)).size;
  await appendSync();
  const bytes = new Uint8Array((await Deno.stat(segment)).size - before).fill(
    3,
  );
  const file = await Deno.open(`${root}/plain-${n}.bin`, {
    create: true,
    write: true,
  });

  Deno.bench({
    name: `bare write + syncData, ${bytes.length} B`,
    group: `${n} entries of 100 B per sync`,
    baseline: true,
    async fn() {
      let done = 0;
      while (done < bytes.length) {
        done += await file.write(bytes.subarray(done));
      }
      await file.syncData();
    },
  });
  Deno.bench({
    name: `WalLog append + sync, ${n} x 100 B`,
    group: `${n} entries of 100 B per sync`,
    fn: appendSync,
  });
}
