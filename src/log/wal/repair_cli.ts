/**
 * `deno task wal:repair DIR [--truncate-at OFFSET] [--file PATH] [--backend deno|node]`
 *
 * Without `--truncate-at`: opens nothing for writing; reports whether the
 * log in DIR opens, and when it is refused with a `WalCorruptionError`,
 * prints the file and offset and the command that would cut there.
 * With it: runs `WalLog.repair`, which cuts the last segment at the end of
 * the last intact batch before that offset (only if the damage is exactly
 * there) and records that this node must catch up from a leader before it
 * may vote again. Exit codes: 0 repaired (or nothing to do), 1 refused or
 * damaged, 2 usage.
 *
 * @module
 */

import { WalCorruptionError } from "./errors.ts";
import { WalLog } from "./wal_log.ts";

function usage(): never {
  console.error(
    "usage: deno task wal:repair DIR [--truncate-at OFFSET] [--file PATH] [--backend deno|node]",
  );
  Deno.exit(2);
}

async function main(args: string[]): Promise<number> {
  let dir: string | undefined;
  let truncateAt: number | undefined;
  let file: string | undefined;
  let backend: "deno" | "node" = "deno";
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--truncate-at") truncateAt = Number(args[++i]);
    else if (a === "--file") file = args[++i];
    else if (a === "--backend") {
      const b = args[++i];
      if (b !== "deno" && b !== "node") usage();
      backend = b;
    } else if (!a.startsWith("--") && dir === undefined) dir = a;
    else usage();
  }
  if (dir === undefined) usage();
  if (truncateAt !== undefined && !Number.isSafeInteger(truncateAt)) usage();
  if (truncateAt === undefined) {
    try {
      const log = await WalLog.open(dir, { backend });
      const catchUp = log.needsCatchUp;
      await log.close();
      console.log(
        catchUp === undefined
          ? `${dir}: the log opens; nothing to repair`
          : `${dir}: the log opens; it was repaired and must catch up to index ${catchUp.index} (term ${catchUp.term}) before it votes`,
      );
      return 0;
    } catch (e) {
      if (!(e instanceof WalCorruptionError)) throw e;
      console.log(`${dir}: ${e.message}`);
      console.log(
        `\nTo cut the log there (losing that batch and anything after it; the node then rejoins without voting until it has caught up from the leader):\n  deno task wal:repair ${dir} --truncate-at ${e.offset} --file ${e.file}`,
      );
      return 1;
    }
  }
  try {
    const r = await WalLog.repair(dir, { truncateAt, file, backend });
    console.log(
      `${r.file}: cut at byte ${r.cutAt} (${r.bytesRemoved} bytes removed, damage at ${r.damageOffset}); the log ends at index ${r.lastIndex}.\n` +
        `Recorded: this node must not vote until it has caught up from a leader of term >= ${r.catchUp.term} through index >= ${r.catchUp.index}.`,
    );
    return 0;
  } catch (e) {
    if ((e as { code?: string }).code !== "WAL_REPAIR_REFUSED") throw e;
    console.error((e as Error).message);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
