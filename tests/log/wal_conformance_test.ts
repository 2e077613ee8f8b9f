import { WalLog } from "../../src/log/wal/mod.ts";
import type { RaftLog } from "../../src/log/raft_log.ts";
import { runRaftLogConformance } from "../../src/testing/log_conformance.ts";
import { makeTestDir, removeTestDir } from "./helpers.ts";

for (const backend of ["deno", "node"] as const) {
  // Small segments so the suite crosses segment boundaries and deletes old ones.
  const options = { backend, segmentBytes: 4096 };
  runRaftLogConformance(Deno.test, {
    name: `WalLog (${backend} backend)`,
    create: async () =>
      await WalLog.open(await makeTestDir(`conf-${backend}`), options),
    reopen: async (log: RaftLog) => {
      const dir = (log as WalLog).dir;
      await log.close();
      return await WalLog.open(dir, options);
    },
    dispose: async (log: RaftLog) => {
      await log.close();
      await removeTestDir((log as WalLog).dir);
    },
  }, { numRuns: 100 });
}
