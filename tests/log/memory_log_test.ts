import assert from "node:assert/strict";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { LogContinuityError } from "../../src/log/log_state.ts";
import { runRaftLogConformance } from "../../src/testing/log_conformance.ts";

runRaftLogConformance(Deno.test, {
  name: "MemoryLog",
  create: () => Promise.resolve(new MemoryLog()),
  reopen: (log) => Promise.resolve((log as MemoryLog).crash()),
});

Deno.test("MemoryLog: a crash loses exactly what was not synced", async () => {
  const log = new MemoryLog();
  log.append([{
    index: 1,
    term: 1,
    kind: "normal",
    data: new Uint8Array([1]),
  }]);
  log.setHardState({ term: 1, vote: 1, commit: 0 });
  await log.sync();
  log.append([{
    index: 2,
    term: 1,
    kind: "normal",
    data: new Uint8Array([2]),
  }]);
  log.setHardState({ term: 2, vote: 0, commit: 1 });
  assert.ok(log.hasUnsynced());
  const restarted = log.crash();
  assert.equal(restarted.lastIndex(), 1);
  assert.deepEqual(restarted.hardState(), { term: 1, vote: 1, commit: 0 });
  assert.equal(log.durableLastIndex(), 1);
  log.syncNow();
  assert.equal(log.crash().lastIndex(), 2);
});

Deno.test("MemoryLog: a mutation the log rejects is not queued for the durable copy", () => {
  const log = new MemoryLog();
  assert.throws(
    () =>
      log.append([{
        index: 2,
        term: 1,
        kind: "normal",
        data: new Uint8Array(),
      }]),
    LogContinuityError,
  );
  assert.equal(log.hasUnsynced(), false);
});

Deno.test("MemoryLog: a closed log refuses mutations", async () => {
  const log = new MemoryLog();
  await log.close();
  assert.throws(() =>
    log.append([{ index: 1, term: 1, kind: "normal", data: new Uint8Array() }])
  );
});
