import assert from "node:assert/strict";
import { WalLog } from "../../src/log/wal/wal_log.ts";
import { WalIdentityError } from "../../src/log/wal/errors.ts";
import { withTestDir } from "./helpers.ts";

const entry = (index: number) => ({
  index,
  term: 1,
  kind: "normal" as const,
  data: new Uint8Array([index]),
});

for (const backend of ["deno", "node"] as const) {
  Deno.test(`wal identity (${backend}): a new directory records its node and cluster, and the same identity reopens it`, async () => {
    await withTestDir(async (dir) => {
      const identity = { nodeId: 1, clusterId: "blue" };
      const log = await WalLog.open(dir, { backend, identity });
      log.append([entry(1)]);
      await log.sync();
      await log.close();
      const text = await Deno.readTextFile(`${dir}/IDENTITY`);
      assert.deepEqual(JSON.parse(text), identity);
      const again = await WalLog.open(dir, { backend, identity });
      assert.equal(again.lastIndex(), 1);
      await again.close();
    });
  });

  Deno.test(`wal identity (${backend}): another node's or another cluster's directory is refused naming both ids`, async () => {
    await withTestDir(async (dir) => {
      const log = await WalLog.open(dir, {
        backend,
        identity: { nodeId: 1, clusterId: "blue" },
      });
      await log.close();
      await assert.rejects(
        WalLog.open(dir, {
          backend,
          identity: { nodeId: 2, clusterId: "blue" },
        }),
        (e) => {
          assert.ok(e instanceof WalIdentityError);
          assert.equal(e.code, "WAL_IDENTITY_MISMATCH");
          assert.deepEqual(e.found, { nodeId: 1, clusterId: "blue" });
          assert.deepEqual(e.expected, { nodeId: 2, clusterId: "blue" });
          assert.match(e.message, /node 1.*not node 2/);
          return true;
        },
      );
      await assert.rejects(
        WalLog.open(dir, {
          backend,
          identity: { nodeId: 1, clusterId: "red" },
        }),
        (e) => {
          assert.ok(e instanceof WalIdentityError);
          assert.match(e.message, /cluster "blue", not cluster "red"/);
          return true;
        },
      );
      // The refusal released the lock and changed nothing.
      const ok = await WalLog.open(dir, {
        backend,
        identity: { nodeId: 1, clusterId: "blue" },
      });
      await ok.close();
    });
  });
}

Deno.test("wal identity: a log from before identities adopts the first identity it is opened with", async () => {
  await withTestDir(async (dir) => {
    const log = await WalLog.open(dir);
    log.append([entry(1)]);
    await log.sync();
    await log.close();
    const adopted = await WalLog.open(dir, {
      identity: { nodeId: 3, clusterId: "c" },
    });
    assert.equal(adopted.lastIndex(), 1);
    await adopted.close();
    await assert.rejects(
      WalLog.open(dir, { identity: { nodeId: 4, clusterId: "c" } }),
      WalIdentityError,
    );
  });
});
