// Runs the built npm package (npm/, from `deno task build:npm`) under Node's
// own test runner: the same CRC vectors and a record round trip as under Deno.
// Modules are loaded through the package's `exports` map, as a consumer would.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

const pkgDir = new URL("../../npm/", import.meta.url);
const pkg = JSON.parse(readFileSync(new URL("package.json", pkgDir), "utf8"));
const load = (path) => import(new URL(pkg.exports[path].import, pkgDir).href);

const { MemoryLog, wasmAvailable } = await load(".");
const {
  crc32c,
  crc32cReference,
  decodeRecords,
  encodeRecords,
  RecordCorruptionError,
} = await load("./codec");

test("every export path of the package loads, with its types", async () => {
  assert.deepEqual(Object.keys(pkg.exports).sort(), [
    ".",
    "./codec",
    "./core",
    "./kv",
    "./testing",
  ]);
  for (const [path, entry] of Object.entries(pkg.exports)) {
    assert.ok(existsSync(new URL(entry.types, pkgDir)), `${path} types`);
    const mod = await load(path);
    assert.ok(Object.keys(mod).length > 0, `${path} exports nothing`);
  }
});

test("the root is the application surface; the core and codecs are on subpaths", async () => {
  const root = await load(".");
  for (const name of ["RaftServer", "MemoryLog", "WalLog", "TcpTransport"]) {
    assert.equal(typeof root[name], "function", name);
  }
  for (const name of ["RaftNode", "crc32c", "encodeMessage", "LogState"]) {
    assert.equal(root[name], undefined, `${name} is not at the root`);
  }
  assert.equal(typeof (await load("./core")).RaftNode, "function");
  assert.equal(typeof (await load("./codec")).encodeMessage, "function");
});

const ascending = Uint8Array.from({ length: 32 }, (_, i) => i);
const vectors = [
  [new TextEncoder().encode("123456789"), 0xe3069283],
  [new Uint8Array(32), 0x8a9136aa],
  [new Uint8Array(32).fill(0xff), 0x62a8ab43],
  [ascending, 0x46dd794e],
  [ascending.slice().reverse(), 0x113fdb5c],
];

test("the WASM codec loads under Node", () => {
  assert.equal(wasmAvailable(), true);
});

test("crc32c matches the RFC 3720 vectors under Node", () => {
  for (const [input, expected] of vectors) {
    assert.equal(crc32c(input), expected);
    assert.equal(crc32cReference(input), expected);
  }
});

test("crc32c of a large input chains like the reference under Node", () => {
  const big = Uint8Array.from({ length: 200_000 }, (_, i) => (i * 31) & 0xff);
  assert.equal(crc32c(big), crc32cReference(big));
  assert.equal(
    crc32c(big.subarray(5000), crc32c(big.subarray(0, 5000))),
    crc32c(big),
  );
});

test("records round-trip and a flipped bit is reported at its offset under Node", () => {
  const records = [
    { type: 1, payload: new TextEncoder().encode("alpha") },
    { type: 2, payload: new Uint8Array(300).fill(7) },
  ];
  const bytes = encodeRecords(records);
  const decoded = decodeRecords(bytes);
  assert.equal(decoded.count, 2);
  assert.deepEqual(decoded.payload(1), records[1].payload);
  bytes[20] ^= 0x10;
  const bad = decodeRecords(bytes);
  assert.ok(bad.error instanceof RecordCorruptionError);
  assert.equal(bad.error.offset, 14);
  assert.equal(bad.count, 1);
});

test("MemoryLog from the npm build keeps only synced entries across a crash", async () => {
  const log = new MemoryLog();
  log.append([{
    index: 1,
    term: 1,
    kind: "normal",
    data: new Uint8Array([1]),
  }]);
  await log.sync();
  log.append([{
    index: 2,
    term: 1,
    kind: "normal",
    data: new Uint8Array([2]),
  }]);
  assert.equal(log.crash().lastIndex(), 1);
});
