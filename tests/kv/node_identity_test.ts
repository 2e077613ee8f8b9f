import assert from "node:assert/strict";
import { silentLogger } from "../../src/logger.ts";
import { WalIdentityError } from "../../src/log/wal/errors.ts";
import {
  defaultClusterId,
  type KvNode,
  parseServeArgs,
  startKvNode,
} from "../../src/kv/node.ts";
import { freePort } from "./process_cluster.ts";

const SERVE = new URL("../../scripts/serve.ts", import.meta.url).pathname;

async function scratch(): Promise<string> {
  await Deno.mkdir(".test-data", { recursive: true });
  return await Deno.makeTempDir({ dir: ".test-data", prefix: "kv-identity-" });
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

function argsFor(
  id: number,
  dir: string,
  peers: Map<number, string>,
  extra: string[] = [],
): string[] {
  const args = [
    "--id",
    String(id),
    "--data-dir",
    dir,
    "--http",
    `127.0.0.1:${freePort()}`,
    "--insecure",
    "--tick-ms",
    "10",
    ...extra,
  ];
  for (const [p, a] of peers) args.push("--peer", `${p}=${a}`);
  return args;
}

async function start(args: string[]): Promise<KvNode> {
  const options = parseServeArgs(args);
  assert.ok(options !== "help");
  return await startKvNode({
    ...options,
    clusterSecret: undefined,
    logger: silentLogger,
  });
}

Deno.test("the default cluster id is the same for every founder given the same --peer list, in any order", () => {
  const a = defaultClusterId(new Map([[1, "h:1"], [2, "h:2"], [3, "h:3"]]));
  const b = defaultClusterId(new Map([[3, "h:3"], [1, "h:1"], [2, "h:2"]]));
  assert.equal(a, b);
  assert.match(a, /^peers-[0-9a-f]{16}$/);
  assert.notEqual(a, defaultClusterId(new Map([[1, "h:1"], [2, "h:2"]])));
});

Deno.test("a node started on a copy of a peer's data folder refuses to start, naming both node ids", async () => {
  const root = await scratch();
  try {
    const peers = new Map([
      [1, `127.0.0.1:${freePort()}`],
      [2, `127.0.0.1:${freePort()}`],
    ]);
    const one = await start(argsFor(1, `${root}/node-1`, peers));
    const st = await (await fetch(`http://${one.http.address}/status`)).json();
    // --insecure shows on /status, and so does the cluster id.
    assert.equal(st.insecure, true);
    assert.equal(st.clusterId, defaultClusterId(peers));
    await one.stop();
    await copyDir(`${root}/node-1`, `${root}/node-2`);
    await assert.rejects(start(argsFor(2, `${root}/node-2`, peers)), (e) => {
      assert.ok(e instanceof WalIdentityError, String(e));
      assert.deepEqual(e.found.nodeId, 1);
      assert.deepEqual(e.expected.nodeId, 2);
      assert.match(e.message, /belongs to node 1, not node 2/);
      return true;
    });
    // Node 1 itself still opens its folder.
    const again = await start(argsFor(1, `${root}/node-1`, peers));
    await again.stop();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a node started on another cluster's data folder refuses to start, naming both cluster ids", async () => {
  const root = await scratch();
  try {
    const raft = `127.0.0.1:${freePort()}`;
    const blue = new Map([[1, raft], [2, `127.0.0.1:${freePort()}`]]);
    const red = new Map([[1, raft], [3, `127.0.0.1:${freePort()}`]]);
    const node = await start(argsFor(1, `${root}/node-1`, blue));
    await node.stop();
    await assert.rejects(start(argsFor(1, `${root}/node-1`, red)), (e) => {
      assert.ok(e instanceof WalIdentityError, String(e));
      assert.equal(e.found.clusterId, defaultClusterId(blue));
      assert.equal(e.expected.clusterId, defaultClusterId(red));
      return true;
    });
    // An explicit --cluster-id is checked the same way.
    const named = await start(
      argsFor(1, `${root}/named`, blue, ["--cluster-id", "blue"]),
    );
    await named.stop();
    await assert.rejects(
      start(argsFor(1, `${root}/named`, blue, ["--cluster-id", "red"])),
      /cluster "blue", not cluster "red"/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("peers of another cluster sharing the secret are refused by the transport", async () => {
  const root = await scratch();
  try {
    const peers = new Map([
      [1, `127.0.0.1:${freePort()}`],
      [2, `127.0.0.1:${freePort()}`],
    ]);
    const a = await start(
      argsFor(1, `${root}/a`, peers, ["--cluster-id", "blue"]),
    );
    const b = await start(
      argsFor(2, `${root}/b`, peers, ["--cluster-id", "red"]),
    );
    try {
      let refused = 0;
      for (let i = 0; i < 100 && refused === 0; i++) {
        refused = (a.transport.stats().errorsByCode.CLUSTER_MISMATCH ?? 0) +
          (b.transport.stats().errorsByCode.CLUSTER_MISMATCH ?? 0);
        if (refused === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(refused > 0, "no CLUSTER_MISMATCH was counted");
      assert.notEqual(a.server.role, "leader");
    } finally {
      await a.stop();
      await b.stop();
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("serve exits non-zero with the reason when its data folder belongs to another node", async () => {
  const root = await scratch();
  try {
    const peers = new Map([
      [1, `127.0.0.1:${freePort()}`],
      [2, `127.0.0.1:${freePort()}`],
    ]);
    const one = await start(argsFor(1, `${root}/node-1`, peers));
    await one.stop();
    await copyDir(`${root}/node-1`, `${root}/node-2`);
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-net=127.0.0.1",
        `--allow-read=${root}`,
        `--allow-write=${root}`,
        SERVE,
        ...argsFor(2, `${root}/node-2`, peers),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, text);
    assert.match(
      text,
      /fatal: could not start: .*belongs to node 1, not node 2.*\(WAL_IDENTITY_MISMATCH\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
