/**
 * Child process for the WalLog crash and lock tests.
 *
 * `deno run --allow-read=.test-data --allow-write=.test-data scripts/wal_crash_child.ts <mode> <dir> [backend]`
 *
 * - `append`: opens the log and, forever, appends a few entries, syncs and
 *   prints the last synced index (`synced <n>`) once `sync()` resolved; now
 *   and then it saves a snapshot and compacts behind it, so segments roll
 *   and get deleted. The parent SIGKILLs it at random moments.
 * - `hold`: opens the log, prints `ready`, and holds it until stdin closes.
 * - `open`: tries to open the log and prints `ok` or the error's code.
 * - `race <unused> <backend> <deadPid>`: for each stdin line `open <dir>`
 *   tries to open that log (a lock naming `deadPid` is stale) and prints
 *   `ok` or the error's code, holding the log; `close` closes it and prints
 *   `closed`. The lock race test drives two of these at once.
 *
 * Entry data is a pure function of the index ({@linkcode crashEntryData}),
 * so the parent can check every recovered entry byte for byte.
 *
 * @module
 */

import { NodeWalBackend, WalLog } from "../src/log/wal/mod.ts";
import { pidAlive } from "../src/log/wal/pid_alive.ts";
import type { Entry } from "../src/log/raft_log.ts";

/** Segment size used by the crash child: small, so crashes land across segment rolls. */
export const CRASH_SEGMENT_BYTES = 64 * 1024;

/** The data of entry `index` in crash tests. */
export function crashEntryData(index: number): Uint8Array {
  const size = 1 + (index * 37) % 300;
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    b[i] = (index * 131 + i * 17 + (index >> 8)) & 0xff;
  }
  return b;
}

/** The term of entry `index` in crash tests. */
export function crashEntryTerm(index: number): number {
  return 1 + Math.floor(index / 1000);
}

/** The data of a snapshot at `index` in crash tests. */
export function crashSnapshotData(index: number): Uint8Array {
  return crashEntryData(index + 7);
}

function say(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

async function appendForever(
  dir: string,
  backend: "deno" | "node",
): Promise<never> {
  const log = await WalLog.open(dir, {
    backend,
    segmentBytes: CRASH_SEGMENT_BYTES,
  });
  say(`opened ${log.lastIndex()}`);
  let next = log.lastIndex() + 1;
  for (let round = 0;; round++) {
    const n = 1 + (round * 7) % 13;
    const batch: Entry[] = [];
    for (let i = 0; i < n; i++, next++) {
      batch.push({
        index: next,
        term: crashEntryTerm(next),
        kind: "normal",
        data: crashEntryData(next),
      });
    }
    log.append(batch);
    log.setHardState({
      term: crashEntryTerm(next - 1),
      vote: 1,
      commit: next - 1,
    });
    if (round % 40 === 39 && log.lastIndex() > 300) {
      const at = log.lastIndex() - 200;
      log.saveSnapshot({
        index: at,
        term: crashEntryTerm(at),
        config: new Uint8Array([1]),
      }, crashSnapshotData(at));
      log.compact(at - 50);
    }
    await log.sync();
    say(`synced ${log.lastIndex()}`);
  }
}

async function hold(dir: string, backend: "deno" | "node"): Promise<void> {
  const log = await WalLog.open(dir, { backend });
  say("ready");
  for await (const _ of Deno.stdin.readable) {
    // Hold the log until the parent closes stdin.
  }
  await log.close();
}

async function tryOpen(dir: string, backend: "deno" | "node"): Promise<void> {
  try {
    const log = await WalLog.open(dir, { backend });
    await log.close();
    say("ok");
  } catch (e) {
    say(String((e as { code?: unknown }).code ?? (e as Error).name));
  }
}

async function race(backend: "deno" | "node", deadPid: number): Promise<void> {
  const chosen = backend === "node"
    ? new NodeWalBackend({
      pidAlive: (pid) => pid === deadPid ? false : pidAlive(pid),
    })
    : "deno";
  let log: WalLog | undefined;
  let pending = "";
  for await (
    const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.startsWith("open ")) {
        try {
          log = await WalLog.open(line.slice(5), { backend: chosen });
          say("ok");
        } catch (e) {
          say(String((e as { code?: unknown }).code ?? (e as Error).name));
        }
      } else if (line === "close") {
        await log?.close();
        log = undefined;
        say("closed");
      }
    }
  }
  await log?.close();
}

if (import.meta.main) {
  const [mode, dir, backendArg] = Deno.args;
  const backend = backendArg === "node" ? "node" : "deno";
  if (mode === "append") await appendForever(dir, backend);
  else if (mode === "hold") await hold(dir, backend);
  else if (mode === "open") await tryOpen(dir, backend);
  else if (mode === "race") await race(backend, Number(Deno.args[3]));
  else {
    console.error(
      "usage: wal_crash_child.ts append|hold|open|race <dir> [deno|node] [deadPid]",
    );
    Deno.exit(2);
  }
}
