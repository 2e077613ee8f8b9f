import assert from "node:assert/strict";
import { NodeWalBackend, WalLog } from "../../src/log/wal/mod.ts";
import { pidAlive } from "../../src/log/wal/pid_alive.ts";
import {
  CRASH_SEGMENT_BYTES,
  crashEntryData,
  crashEntryTerm,
  crashSnapshotData,
} from "../../scripts/wal_crash_child.ts";
import { withTestDir } from "./helpers.ts";

const CHILD = "scripts/wal_crash_child.ts";

// Children this test SIGKILLed. The node:fs backend checks a lock holder's pid
// with process.kill(pid, 0), which the scoped --allow-run of the test runner
// forbids; the test knows these pids are dead.
const killed = new Set<number>();
const nodeBackend = new NodeWalBackend({
  pidAlive: (pid) => killed.has(pid) ? false : pidAlive(pid),
});

function backendOf(name: "deno" | "node") {
  return name === "node" ? nodeBackend : "deno";
}

/** Runs the appending child and SIGKILLs it `delayMs` after it opened the log. */
async function runAndKill(
  dir: string,
  backend: "deno" | "node",
  delayMs: number,
): Promise<{ lastSynced: number; reports: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read=.test-data",
      "--allow-write=.test-data",
      CHILD,
      "append",
      dir,
      backend,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let pending = "";
  let lastSynced = -1;
  let reports = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += value;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (line.startsWith("opened ")) {
          lastSynced = Number(line.slice(7));
          timer ??= setTimeout(() => child.kill("SIGKILL"), delayMs);
        } else if (line.startsWith("synced ")) {
          // Printed only after sync() resolved: this index is acknowledged.
          lastSynced = Number(line.slice(7));
          reports++;
        }
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const status = await child.status;
  killed.add(child.pid);
  const err = await stderr;
  assert.equal(status.signal, "SIGKILL", `the child died on its own: ${err}`);
  assert.ok(lastSynced >= 0, `the child never opened the log: ${err}`);
  return { lastSynced, reports };
}

/** Opens the log after a kill and checks every acknowledged entry, then uses it. */
async function verify(
  dir: string,
  backend: "deno" | "node",
  lastSynced: number,
): Promise<void> {
  const log = await WalLog.open(dir, {
    backend: backendOf(backend),
    segmentBytes: CRASH_SEGMENT_BYTES,
  });
  try {
    assert.ok(
      log.lastIndex() >= lastSynced,
      `lost acknowledged entries: ${log.lastIndex()} < ${lastSynced}`,
    );
    const snap = log.snapshotMeta();
    assert.ok(log.firstIndex() <= Math.max(snap.index, 0) + 1);
    if (snap.index > 0) {
      assert.equal(snap.term, crashEntryTerm(snap.index));
      assert.deepEqual(log.snapshotData(), crashSnapshotData(snap.index));
    }
    for (let i = log.firstIndex(); i <= log.lastIndex(); i++) {
      const e = log.entry(i);
      assert.ok(e, `entry ${i} missing`);
      assert.equal(e.term, crashEntryTerm(i));
      assert.deepEqual(e.data, crashEntryData(i), `entry ${i} differs`);
    }
    const hs = log.hardState();
    assert.ok(
      hs.commit >= lastSynced && hs.commit <= log.lastIndex(),
      `hard state ${JSON.stringify(hs)}`,
    );
    // Usable: it takes and keeps a new entry.
    const next = log.lastIndex() + 1;
    log.append([{
      index: next,
      term: crashEntryTerm(next),
      kind: "normal",
      data: crashEntryData(next),
    }]);
    await log.sync();
  } finally {
    await log.close();
  }
}

for (const [backend, kills] of [["deno", 22], ["node", 6]] as const) {
  Deno.test(`WalLog (${backend}): after SIGKILL at random moments every acknowledged entry is back byte for byte (${kills} kills)`, async () => {
    await withTestDir(async (dir) => {
      let acknowledged = 0;
      for (let k = 0; k < kills; k++) {
        // Kill anywhere from right after open to deep into the loop.
        const delay = 5 + Math.floor(Math.random() * 250);
        const { lastSynced, reports } = await runAndKill(dir, backend, delay);
        acknowledged += reports;
        await verify(dir, backend, lastSynced);
      }
      assert.ok(
        acknowledged > kills,
        `only ${acknowledged} syncs acknowledged`,
      );
    }, `crash-${backend}`);
  });
}
