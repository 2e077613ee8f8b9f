// The conformance suite registered through node:test (which Deno runs too), to
// show third parties on Node can use it as is.
import { test } from "node:test";
import { MemoryLog } from "../../src/log/memory_log.ts";
import { runRaftLogConformance } from "../../src/testing/log_conformance.ts";

runRaftLogConformance(test, {
  name: "MemoryLog via node:test",
  create: () => Promise.resolve(new MemoryLog()),
  reopen: (log) => Promise.resolve((log as MemoryLog).crash()),
}, { numRuns: 20 });
