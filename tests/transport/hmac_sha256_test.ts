import assert from "node:assert/strict";
import fc from "fast-check";
import { HmacSha256 } from "../../src/transport/tcp/hmac_sha256.ts";

async function webCryptoHmac(
  key: Uint8Array<ArrayBuffer>,
  data: Uint8Array<ArrayBuffer>,
): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data));
}

Deno.test("HmacSha256 matches RFC 4231 test case 2", () => {
  const mac = new HmacSha256(new TextEncoder().encode("Jefe"));
  const out = new Uint8Array(32);
  mac.sign(
    new TextEncoder().encode("what do ya want for nothing?"),
    out,
    0,
    32,
  );
  assert.equal(
    [...out].map((b) => b.toString(16).padStart(2, "0")).join(""),
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
  );
});

Deno.test("HmacSha256 gives Web Crypto's tags for any key and message length, reused", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.array(fc.uint8Array({ maxLength: 300 }), {
        minLength: 1,
        maxLength: 4,
      }),
      async (key, messages) => {
        const mac = new HmacSha256(key);
        for (const m of messages) {
          const out = new Uint8Array(40);
          mac.sign(m, out, 3, 32);
          assert.deepEqual(
            out.subarray(3, 35),
            await webCryptoHmac(new Uint8Array(key), new Uint8Array(m)),
          );
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("HmacSha256 matches Web Crypto at every length around the block and padding boundaries", async () => {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const mac = new HmacSha256(key);
  const data = crypto.getRandomValues(new Uint8Array(260));
  for (let n = 0; n <= 260; n++) {
    const out = new Uint8Array(32);
    mac.sign(data.subarray(0, n), out, 0, 32);
    assert.deepEqual(
      out,
      await webCryptoHmac(key, data.slice(0, n)),
      `length ${n}`,
    );
  }
});
