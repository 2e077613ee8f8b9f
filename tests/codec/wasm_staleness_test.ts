import assert from "node:assert/strict";
import { CODEC_WASM_SOURCE_HASH } from "../../src/wasm/codec_wasm_bytes.ts";
import { asmSourceHash, readAsmSources } from "../../scripts/asm_sources.ts";

Deno.test("the embedded WASM was built from the current asm/ sources (else run deno task build:asm)", async () => {
  const hash = await asmSourceHash(await readAsmSources());
  assert.equal(
    CODEC_WASM_SOURCE_HASH,
    hash,
    "src/wasm/codec_wasm_bytes.ts is stale: run `deno task build:asm`",
  );
});
