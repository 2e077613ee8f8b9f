/**
 * What sealing TCP frames costs: frames/s and MB/s of one batch frame's
 * whole trip through the transport's frame code — seal (sequence number,
 * tag, header, CRC32C), parse with the `FrameReader`, open (sequence and
 * tag check) — for batch bodies of 16 B to 64 KiB, with no tag
 * (insecure mode), an HMAC-SHA-256 tag and AES-256-GCM, measured in the
 * same run. Sockets are left out: this is the CPU the MAC adds per frame.
 *
 * `deno run scripts/bench_frames.ts [--seconds 1]`
 *
 * @module
 */

import { FrameReader } from "../src/transport/tcp/frame.ts";
import {
  FrameAuth,
  type FrameProtection,
  SEALED_BODY_OFFSET,
  tagBytes,
} from "../src/transport/tcp/frame_auth.ts";
import { importClusterSecret } from "../src/transport/tcp/handshake.ts";

const seconds = Number(
  Deno.args[Deno.args.indexOf("--seconds") + 1] ?? "1",
) || 1;
const sizes: [string, number][] = [
  ["16 B", 16],
  ["1 KiB", 1024],
  ["4 KiB", 4096],
  ["8 KiB", 8192],
  ["64 KiB", 64 * 1024],
];
const modes: FrameProtection[] = ["none", "mac", "aead"];

const clusterKey = await importClusterSecret("bench-cluster-secret-0123456789");
const transcript = crypto.getRandomValues(new Uint8Array(120));
const label = new TextEncoder().encode("bench");

interface Result {
  framesPerSecond: number;
  megabytesPerSecond: number;
}

async function measure(
  protection: FrameProtection,
  bodyBytes: number,
): Promise<Result> {
  const send = await FrameAuth.derive(
    clusterKey,
    protection,
    label,
    transcript,
  );
  const receive = await FrameAuth.derive(
    clusterKey,
    protection,
    label,
    transcript,
  );
  const frame = new Uint8Array(
    SEALED_BODY_OFFSET + bodyBytes + tagBytes(protection),
  );
  const body = frame.subarray(
    SEALED_BODY_OFFSET,
    SEALED_BODY_OFFSET + bodyBytes,
  );
  for (let i = 0; i < body.byteLength; i++) body[i] = (i * 31) & 0xff;
  const plain = body.slice();
  const reader = new FrameReader(1 << 24);
  const trip = async () => {
    frame.subarray(SEALED_BODY_OFFSET, SEALED_BODY_OFFSET + bodyBytes).set(
      plain,
    );
    await send.seal(frame, 16);
    reader.push(frame);
    const f = reader.next();
    if (f === null) throw new Error("no frame");
    const out = await receive.open(f.payload, 1);
    if (out.byteLength !== bodyBytes) throw new Error("bad body");
  };
  for (let i = 0; i < 200; i++) await trip(); // warm up
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await trip();
    n += 50;
  }
  const elapsed = (performance.now() - start) / 1000;
  return {
    framesPerSecond: n / elapsed,
    megabytesPerSecond: (n * bodyBytes) / elapsed / 1e6,
  };
}

console.log(
  `frame seal + parse + open, ${seconds} s per cell (${
    "Deno" in globalThis ? `Deno ${Deno.version.deno}` : "node"
  })\n`,
);
console.log(
  "| batch body | protection | frames/s | MB/s | vs none |\n| ---: | --- | ---: | ---: | ---: |",
);
for (const [sizeLabel, size] of sizes) {
  let baseline = 0;
  for (const mode of modes) {
    const r = await measure(mode, size);
    if (mode === "none") baseline = r.framesPerSecond;
    console.log(
      `| ${sizeLabel} | ${mode} | ${Math.round(r.framesPerSecond)} | ${
        r.megabytesPerSecond.toFixed(1)
      } | ${(r.framesPerSecond / baseline).toFixed(2)} |`,
    );
  }
}
