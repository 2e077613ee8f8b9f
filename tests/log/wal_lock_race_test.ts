import assert from "node:assert/strict";
import { WalLog } from "../../src/log/wal/mod.ts";
import { withTestDir } from "./helpers.ts";

const CHILD = "scripts/wal_crash_child.ts";
// No process has this pid here (pids stay below 2^22 on Linux); the
// children are told it is dead, as a crashed holder's would be.
const DEAD_PID = 4_194_999;

/** A racing child: answers `open <dir>` and `close` lines one by one. */
class Racer {
  readonly child: Deno.ChildProcess;
  #lines: ReadableStreamDefaultReader<string>;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #pending = "";

  constructor(backend: "deno" | "node") {
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read=.test-data",
        "--allow-write=.test-data",
        CHILD,
        "race",
        "-",
        backend,
        String(DEAD_PID),
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#lines = this.child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    this.#writer = this.child.stdin.getWriter();
  }

  send(line: string): Promise<void> {
    return this.#writer.write(new TextEncoder().encode(line + "\n"));
  }

  async reply(): Promise<string> {
    while (!this.#pending.includes("\n")) {
      const { value, done } = await this.#lines.read();
      if (done) throw new Error("racer exited");
      this.#pending += value;
    }
    const nl = this.#pending.indexOf("\n");
    const line = this.#pending.slice(0, nl);
    this.#pending = this.#pending.slice(nl + 1);
    return line;
  }

  async stop(): Promise<void> {
    await this.#writer.close().catch(() => {});
    await this.#lines.cancel().catch(() => {});
    await this.child.status;
  }
}

function staleLock(round: number): string | undefined {
  const token = crypto.randomUUID().replaceAll("-", "");
  switch (round % 4) {
    case 0:
      return undefined; // no lock at all: both create it at once
    case 1:
      return ""; // released by an older Deno backend (truncated)
    default:
      return `raft-io wal lock\nprotocol=excl\npid=${DEAD_PID}\ntoken=${token}\n`;
  }
}

Deno.test("WalLog (node): two processes racing to open one log (free, or held by a dead process) — exactly one wins, 100 rounds", async () => {
  await withTestDir(async (dir) => {
    // A log to recover each round, with a few entries.
    const log = await WalLog.open(dir, { backend: "node" });
    log.append([{
      index: 1,
      term: 1,
      kind: "normal",
      data: new Uint8Array(9),
    }]);
    await log.close();
    const racers = [new Racer("node"), new Racer("node")];
    try {
      for (let round = 0; round < 100; round++) {
        const stale = staleLock(round);
        if (stale !== undefined) await Deno.writeTextFile(`${dir}/LOCK`, stale);
        await Promise.all(racers.map((r) => r.send(`open ${dir}`)));
        const replies = await Promise.all(racers.map((r) => r.reply()));
        const winners = replies.filter((r) => r === "ok").length;
        assert.equal(
          winners,
          1,
          `round ${round} (${
            stale === undefined ? "free" : stale === "" ? "empty" : "stale"
          }): ${replies.join(", ")}`,
        );
        for (const r of replies) {
          if (r !== "ok") assert.equal(r, "WAL_LOCKED");
        }
        await Promise.all(racers.map((r) => r.send("close")));
        await Promise.all(racers.map((r) => r.reply()));
      }
    } finally {
      await Promise.all(racers.map((r) => r.stop()));
    }
  }, "lock-race");
});

Deno.test("WalLog (deno): deleting LOCK while a Deno-backend process holds the log does not let a second Deno-backend writer in", async () => {
  await withTestDir(async (dir) => {
    const holder = new Racer("deno");
    try {
      await holder.send(`open ${dir}`);
      assert.equal(await holder.reply(), "ok");
      await Deno.remove(`${dir}/LOCK`);
      const e = await WalLog.open(dir, { backend: "deno" }).then(
        async (log) => {
          await log.close();
          return undefined;
        },
        (e) => e,
      );
      assert.equal((e as { code?: string })?.code, "WAL_LOCKED", String(e));
    } finally {
      await holder.stop();
    }
  }, "lock-deleted");
});
