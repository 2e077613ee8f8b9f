/**
 * `deno task demo:codec`: the WAL record codec on its own. It frames a batch of
 * log records in WebAssembly, checksums it with CRC32C, decodes and verifies
 * it, catches a flipped bit, and prints sizes and throughput for the WASM
 * module and the TypeScript reference side by side.
 *
 * @module
 */

import {
  crc32c,
  crc32cReference,
  crc32cWasm,
  decodeRecords,
  RecordEncoder,
} from "../src/codec/mod.ts";
import { wasmAvailable } from "../mod.ts";

const RECORDS = 4096;
const PAYLOAD = 100;
const ROUNDS = 200;

function fmtRate(bytes: number, ms: number): string {
  return `${(bytes / (ms / 1000) / 1e9).toFixed(2)} GB/s`;
}

function time(fn: () => void, rounds: number): number {
  fn();
  const start = performance.now();
  for (let i = 0; i < rounds; i++) fn();
  return (performance.now() - start) / rounds;
}

console.log(
  `raft-io demo: WAL record codec (WASM available: ${wasmAvailable()})\n`,
);

const payload = new Uint8Array(PAYLOAD);
for (let i = 0; i < PAYLOAD; i++) payload[i] = (i * 37) & 0xff;

const table: string[][] = [[
  "backend",
  "batch bytes",
  "encode+crc",
  "decode+verify",
]];
let wasmBatch = new Uint8Array(0);
for (const backend of ["wasm", "ts"] as const) {
  const encoder = new RecordEncoder({ backend });
  const encode = () => {
    encoder.reset();
    for (let i = 0; i < RECORDS; i++) {
      const view = encoder.reserve(1, PAYLOAD);
      view.set(payload);
      view[0] = i & 0xff;
    }
    return encoder.finish();
  };
  const batch = encode().slice();
  if (backend === "wasm") wasmBatch = batch;
  const encodeMs = time(encode, ROUNDS);
  let count = 0;
  const decodeMs = time(() => {
    count = decodeRecords(batch, { backend }).count;
  }, ROUNDS);
  if (count !== RECORDS) {
    throw new Error(`decoded ${count} of ${RECORDS} records`);
  }
  table.push([
    backend,
    `${batch.length}`,
    `${encodeMs.toFixed(3)} ms (${fmtRate(batch.length, encodeMs)})`,
    `${decodeMs.toFixed(3)} ms (${fmtRate(batch.length, decodeMs)})`,
  ]);
}

const widths = table[0].map((_, c) =>
  Math.max(...table.map((r) => r[c].length))
);
for (const row of table) {
  console.log(row.map((cell, c) => cell.padEnd(widths[c])).join("  "));
}

console.log(
  `\n${RECORDS} records of ${PAYLOAD} B -> ${wasmBatch.length} bytes framed ` +
    `([u32 length][u32 crc32c][u8 type][payload]), batch CRC32C 0x${
      crc32c(wasmBatch).toString(16).padStart(8, "0")
    }`,
);

const big = new Uint8Array(1 << 20);
for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
const wasmMs = time(() => crc32cWasm(big), 50);
const refMs = time(() => crc32cReference(big), 50);
console.log(
  `CRC32C of 1 MiB: wasm ${fmtRate(big.length, wasmMs)}, reference ${
    fmtRate(big.length, refMs)
  } (${(refMs / wasmMs).toFixed(2)}x)`,
);

const damaged = wasmBatch.slice();
const victim = 1234 * (PAYLOAD + 9) + 50;
damaged[victim] ^= 0x04;
const decoded = decodeRecords(damaged);
console.log(
  `flipped one bit at byte ${victim}: ${decoded.count} records verified, then ` +
    `${decoded.error?.name} at offset ${decoded.error?.offset} (${decoded.error?.reason})`,
);
if (decoded.error?.offset !== 1234 * (PAYLOAD + 9)) {
  throw new Error("the flipped bit was not reported at its record");
}
console.log(
  "\nNext: `deno task test` runs the suites; `deno task bench` the benchmarks.",
);
