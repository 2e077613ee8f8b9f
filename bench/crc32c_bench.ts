/**
 * CRC32C: the WASM module against the TypeScript reference, and batch
 * record encoding. Run with `deno task bench`; each group's baseline is the
 * reference measured in the same run.
 */

import { crc32cWasm } from "../src/codec/crc32c.ts";
import { crc32cReference } from "../src/codec/crc32c_reference.ts";
import { RecordEncoder } from "../src/codec/records.ts";
import { decodeRecords } from "../src/codec/records.ts";

function bytes(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 2654435761) >>> 24;
  return out;
}

const sizes: [string, number][] = [
  ["64 B", 64],
  ["1 KiB", 1024],
  ["64 KiB", 64 * 1024],
  ["1 MiB", 1024 * 1024],
];

for (const [label, size] of sizes) {
  const input = bytes(size);
  Deno.bench({
    name: `crc32c reference ${label}`,
    group: `crc32c ${label}`,
    baseline: true,
    fn() {
      crc32cReference(input);
    },
  });
  Deno.bench({
    name: `crc32c wasm ${label}`,
    group: `crc32c ${label}`,
    fn() {
      crc32cWasm(input);
    },
  });
}

const payload = bytes(100);
for (const backend of ["ts", "wasm"] as const) {
  const encoder = new RecordEncoder({ backend });
  Deno.bench({
    name: `encode+crc 4096 records of 100 B (${backend})`,
    group: "encode batch",
    baseline: backend === "ts",
    fn() {
      encoder.reset();
      for (let i = 0; i < 4096; i++) encoder.reserve(1, 100).set(payload);
      encoder.finish();
    },
  });
}

const batch = (() => {
  const encoder = new RecordEncoder();
  for (let i = 0; i < 4096; i++) encoder.add(1, payload);
  return encoder.finish().slice();
})();
for (const backend of ["ts", "wasm"] as const) {
  Deno.bench({
    name: `decode+verify 4096 records of 100 B (${backend})`,
    group: "decode batch",
    baseline: backend === "ts",
    fn() {
      decodeRecords(batch, { backend });
    },
  });
}
