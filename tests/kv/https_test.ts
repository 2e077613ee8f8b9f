import assert from "node:assert/strict";
import type { Message } from "../../src/core/messages.ts";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { serveKvHttp } from "../../src/kv/http_api.ts";
import { serveKvHttpNode } from "../../src/kv/node_http.ts";
import { startKvTestNode, stopKvTestNode } from "./helpers.ts";

// A test CA and a server certificate for 127.0.0.1 it signed, checked in for tests only (see testdata/README.md).
const cert = await Deno.readTextFile(
  new URL("./testdata/test_cert.pem", import.meta.url),
);
const ca = await Deno.readTextFile(
  new URL("./testdata/test_ca.pem", import.meta.url),
);
const key = await Deno.readTextFile(
  new URL("./testdata/test_key.pem", import.meta.url),
);

for (const backend of ["deno", "node"] as const) {
  Deno.test(`https (${backend}): the client API serves over TLS with --cert-file/--key-file`, async () => {
    const net = new MemoryNetwork<Message>();
    const n = await startKvTestNode(net, 1, [1]);
    const client = Deno.createHttpClient({ caCerts: [ca] });
    await n.server.waitForLeader({ ready: true });
    const https = backend === "deno"
      ? serveKvHttp(n.api, { hostname: "127.0.0.1", port: 0 }, { cert, key })
      : await serveKvHttpNode(n.api, { hostname: "127.0.0.1", port: 0 }, {
        tls: { cert, key },
      });
    try {
      const url = `https://${https.address}`;
      const put = await fetch(`${url}/kv/secret`, {
        method: "PUT",
        body: "over tls",
        client,
      });
      assert.equal(put.status, 204);
      await put.body?.cancel();
      const get = await fetch(`${url}/kv/secret`, { client });
      assert.equal(await get.text(), "over tls");
      // Plain HTTP on the TLS port gets no answer.
      await assert.rejects(
        fetch(`http://${https.address}/kv/secret`, {
          signal: AbortSignal.timeout(2000),
        }).then((r) => r.text()),
      );
    } finally {
      client.close();
      await https.shutdown();
      await stopKvTestNode(n);
      await net.close();
    }
  });
}
