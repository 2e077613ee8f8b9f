// A 3-node cluster of the npm build's `raft-io-serve` under Node (WalLog on
// node:fs, TcpTransport on node:net, HTTP on node:http): elect, write, kill
// the leader with SIGKILL, elect again, read every acknowledged write back.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { after, test } from "node:test";

const SERVE = new URL("../../npm/bin/serve.mjs", import.meta.url).pathname;
mkdirSync(".test-data", { recursive: true });
const root = mkdtempSync(".test-data/npm-cluster-");
const ids = [1, 2, 3];

/** An ephemeral port the kernel just handed out (so no other test holds it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
const ports = new Map();
for (const id of ids) {
  ports.set(id, { raft: await freePort(), http: await freePort() });
}
const raft = (id) => `127.0.0.1:${ports.get(id).raft}`;
const http = (id) => `127.0.0.1:${ports.get(id).http}`;
const secretFile = `${root}/secret`;
writeFileSync(secretFile, randomBytes(32).toString("hex"));
const children = new Map();

function start(id) {
  const args = [
    SERVE,
    "--id",
    String(id),
    "--data-dir",
    `${root}/n${id}`,
    "--http",
    http(id),
    "--cluster-secret-file",
    secretFile,
    "--quiet",
    "--tick-ms",
    "50",
  ];
  for (const p of ids) {
    args.push("--peer", `${p}=${raft(p)}`);
    if (p !== id) args.push("--peer-http", `${p}=${http(p)}`);
  }
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "ignore", "pipe"],
  });
  child.stderrText = "";
  child.stderr.on("data", (d) => (child.stderrText += d));
  children.set(id, child);
}

async function stop(id, signal) {
  const child = children.get(id);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  await exited;
  children.delete(id);
}

after(async () => {
  await Promise.all([...children.keys()].map((id) => stop(id, "SIGKILL")));
  rmSync(root, { recursive: true, force: true });
});

async function status(id) {
  try {
    const res = await fetch(`http://${http(id)}/status`, {
      signal: AbortSignal.timeout(500),
    });
    return res.ok ? await res.json() : undefined;
  } catch {
    return undefined;
  }
}

async function waitForLeader(minTerm) {
  for (let i = 0; i < 200; i++) {
    const all = (await Promise.all([...children.keys()].map(status))).filter(
      Boolean,
    );
    const leader = all.find((s) => s.role === "leader" && s.term > minTerm);
    if (leader && all.every((s) => s.leader === leader.id)) return leader;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = [...children.values()].map((c) => c.stderrText).join("\n");
  throw new Error(`no leader within 20 s\n${logs}`);
}

async function put(id, key, value) {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      const res = await fetch(`http://${http(id)}/kv/${key}`, {
        method: "PUT",
        body: value,
        signal: AbortSignal.timeout(2000),
      });
      await res.arrayBuffer();
      if (res.status === 204) return;
    } catch {
      // retried below
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`PUT ${key} never acknowledged`);
}

test("a 3-node cluster of the npm build under Node elects, replicates and survives kill -9 of its leader", async () => {
  ids.forEach(start);
  const first = await waitForLeader(0);
  const acked = new Map();
  for (let i = 0; i < 50; i++) {
    await put(first.id, `k${i}`, `v${i}`);
    acked.set(`k${i}`, `v${i}`);
  }
  await stop(first.id, "SIGKILL");
  const second = await waitForLeader(first.term);
  assert.notEqual(second.id, first.id);
  for (let i = 50; i < 80; i++) {
    await put(second.id, `k${i}`, `v${i}`);
    acked.set(`k${i}`, `v${i}`);
  }
  for (const [key, value] of acked) {
    const res = await fetch(`http://${http(second.id)}/kv/${key}`);
    assert.equal(res.status, 200, key);
    assert.equal(await res.text(), value);
  }
});
