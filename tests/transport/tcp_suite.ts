/**
 * The TCP transport suite, run once per socket backend
 * (tcp_transport_deno_test.ts, tcp_transport_node_test.ts).
 */

import assert from "node:assert/strict";
import {
  TcpTransport,
  type TcpTransportOptions,
} from "../../src/transport/tcp/tcp_transport.ts";
import type { SocketBackend } from "../../src/transport/tcp/socket.ts";
import { parseAddress } from "../../src/transport/tcp/socket.ts";
import {
  FRAME_HEADER_BYTES,
  FRAME_VERSION,
} from "../../src/transport/tcp/frame.ts";
import { SEALED_BODY_OFFSET } from "../../src/transport/tcp/frame_auth.ts";
import {
  dialerHandshake,
  FramedConn,
  importClusterSecret,
  NONCE_BYTES,
} from "../../src/transport/tcp/handshake.ts";
import {
  ClusterMismatchError,
  type FrameAuthError,
  InsecureTransportError,
  ListenError,
} from "../../src/transport/transport_errors.ts";
import {
  quietLogger,
  sealedBatch,
  SECRET,
  sleep,
  testCodec,
  type TestMessage,
  waitFor,
} from "./helpers.ts";
import { fixCrc, startProxy } from "./proxy.ts";
import * as net from "node:net";

type Options = Partial<TcpTransportOptions<TestMessage>>;

/** Registers every TCP transport test for `backend`. */
export function tcpTransportSuite(
  backendName: "deno" | "node",
  backend: SocketBackend,
): void {
  const make = (id: number, options: Options = {}) =>
    TcpTransport.create<TestMessage>({
      id,
      listen: "127.0.0.1:0",
      codec: testCodec,
      clusterSecret: SECRET,
      backend,
      logger: quietLogger(),
      backoff: { initialMs: 10, maxMs: 100 },
      handshakeTimeoutMs: 2000,
      ...options,
    });

  /** Two transports that know each other. */
  async function pair(a: Options = {}, b: Options = {}) {
    const t1 = await make(1, a);
    const t2 = await make(2, b);
    t1.addPeer(2, t2.address);
    t2.addPeer(1, t1.address);
    return [t1, t2] as const;
  }

  function collect(t: TcpTransport<TestMessage>) {
    const got: { m: TestMessage; from: number }[] = [];
    t.onMessage((m, from) => got.push({ m, from }));
    return got;
  }

  const name = (s: string) => `tcp (${backendName}): ${s}`;

  Deno.test(
    name("a listen address in use is a ListenError naming the address"),
    async () => {
      const t1 = await make(1);
      try {
        const error = await make(2, { listen: t1.address }).catch((e) => e);
        assert.ok(error instanceof ListenError, String(error));
        assert.equal(error.code, "LISTEN_FAILED");
        assert.equal(error.address, t1.address);
        assert.ok(error.message.includes(t1.address), error.message);
      } finally {
        await t1.close();
      }
    },
  );

  Deno.test(
    name(
      "messages are delivered both ways, tagged with the sender's authenticated id",
    ),
    async () => {
      const [t1, t2] = await pair();
      const got1 = collect(t1);
      const got2 = collect(t2);
      try {
        for (let i = 0; i < 5; i++) t1.send(2, { n: i });
        for (let i = 0; i < 3; i++) t2.send(1, { n: 100 + i });
        await waitFor(() => got2.length === 5 && got1.length === 3, "delivery");
        assert.deepEqual(got2.map((g) => g.m.n), [0, 1, 2, 3, 4]);
        assert.deepEqual(got1.map((g) => g.m.n), [100, 101, 102]);
        assert.ok(got2.every((g) => g.from === 1));
        assert.ok(got1.every((g) => g.from === 2));
        const s1 = t1.stats();
        assert.equal(s1.messagesSent, 5);
        assert.equal(s1.messagesReceived, 3);
        assert.equal(s1.peers[2].sent, 5);
        assert.equal(s1.peers[2].received, 3);
        assert.equal(s1.peers[2].connected, true);
        assert.equal(s1.messagesDropped, 0);
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name("a burst of sends goes out in a few batched writes"),
    async () => {
      const [t1, t2] = await pair();
      const got2 = collect(t2);
      try {
        t1.send(2, { n: -1 });
        await waitFor(
          () => got2.length === 1,
          "the first message (connection up)",
        );
        const before = t1.stats().writes;
        for (let i = 0; i < 1000; i++) t1.send(2, { n: i });
        await waitFor(() => got2.length === 1001, "the burst");
        const writes = t1.stats().writes - before;
        assert.ok(
          writes >= 1 && writes <= 3,
          `1000 sends took ${writes} writes`,
        );
        assert.equal(t2.stats().framesReceived, 1 + writes);
        assert.deepEqual(
          got2.slice(1).map((g) => g.m.n),
          Array.from({ length: 1000 }, (_, i) => i),
        );
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name("a sender reconnects after its peer restarts on the same address"),
    async () => {
      const [t1, t2] = await pair();
      const got2 = collect(t2);
      let t2b: TcpTransport<TestMessage> | undefined;
      try {
        t1.send(2, { n: 1 });
        await waitFor(() => got2.length === 1, "delivery before the restart");
        const port = parseAddress(t2.address).port;
        await t2.close();
        t2b = await make(2, {
          listen: `127.0.0.1:${port}`,
          peers: { 1: t1.address },
        });
        const got2b = collect(t2b);
        // Messages sent while the peer is away may be dropped; keep sending (bounded) until one arrives.
        for (let i = 0; i < 400 && got2b.length === 0; i++) {
          t1.send(2, { n: 1000 + i });
          await sleep(10);
        }
        assert.ok(got2b.length > 0, "nothing arrived after the restart");
        const s = t1.stats();
        assert.ok(
          s.handshakesCompleted >= 2,
          `handshakes: ${s.handshakesCompleted}`,
        );
        assert.equal(s.peers[2].connected, true);
      } finally {
        await t1.close();
        await t2.close();
        await t2b?.close();
      }
    },
  );

  Deno.test(
    name("a full per-peer queue drops new messages and counts them"),
    async () => {
      const [t1, t2] = await pair({ maxQueueMessages: 10 });
      const got2 = collect(t2);
      try {
        for (let i = 0; i < 100; i++) t1.send(2, { n: i });
        const s = t1.stats();
        assert.equal(s.messagesDropped, 90);
        assert.equal(s.peers[2].dropped, 90);
        await waitFor(() => got2.length === 10, "the queued ten");
        assert.deepEqual(got2.map((g) => g.m.n), [
          0,
          1,
          2,
          3,
          4,
          5,
          6,
          7,
          8,
          9,
        ]);
        t1.send(7, { n: 1 }); // unknown peer
        assert.equal(t1.stats().messagesDropped, 91);
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name(
      "an oversized frame closes that connection, is counted, and the listener keeps serving",
    ),
    async () => {
      const [t1, t2] = await pair({ maxFrameBytes: 1 << 20 }, {
        maxFrameBytes: 64 * 1024,
      });
      const t3 = await make(3, { peers: { 2: t2.address } });
      t2.addPeer(3, t3.address);
      const got2 = collect(t2);
      try {
        t1.send(2, { n: 1, pad: "x".repeat(200 * 1024) });
        await waitFor(
          () => t2.stats().errorsByCode.FRAME_TOO_LARGE === 1,
          "the oversized frame to be refused",
        );
        assert.equal(got2.length, 0);
        assert.equal(t2.stats().recentErrors.at(-1)?.peerId, 1);
        // Another peer is unaffected, and the offender itself gets through again with small messages.
        t3.send(2, { n: 3 });
        await waitFor(
          () => got2.some((g) => g.from === 3),
          "delivery from node 3",
        );
        for (let i = 0; i < 400 && !got2.some((g) => g.from === 1); i++) {
          t1.send(2, { n: 10 });
          await sleep(10);
        }
        assert.ok(
          got2.some((g) => g.from === 1 && g.m.n === 10),
          "node 1 could not send again",
        );
        // A sender never emits a frame over its own limit: it drops the message and counts it.
        const before = t1.stats().messagesDropped;
        t1.send(2, { n: 2, pad: "y".repeat(2 << 20) });
        await waitFor(
          () => t1.stats().messagesDropped === before + 1,
          "the local oversize drop",
        );
        assert.equal(t1.stats().errorsByCode.FRAME_TOO_LARGE, 1);
      } finally {
        await t1.close();
        await t2.close();
        await t3.close();
      }
    },
  );

  Deno.test(
    name(
      "an oversized frame header from an unauthenticated client is refused before buffering",
    ),
    async () => {
      const t2 = await make(2, { peers: { 1: "127.0.0.1:1" } });
      const conn = await backend.connect(parseAddress(t2.address));
      try {
        const header = new Uint8Array(9);
        new DataView(header.buffer).setUint32(0, 0x7fff_0000, true);
        header[4] = FRAME_VERSION;
        await conn.write(header);
        assert.equal(await readUntilClosed(conn), true);
        await waitFor(
          () => t2.stats().errorsByCode.FRAME_TOO_LARGE === 1,
          "the refusal to be counted",
        );
        assert.equal(t2.stats().connectionsRefused, 1);
      } finally {
        await conn.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name("peers with different secrets refuse each other in both directions"),
    async () => {
      const [t1, t2] = await pair({}, {
        clusterSecret: "another-secret-0123456789abcdef",
      });
      const got1 = collect(t1);
      const got2 = collect(t2);
      try {
        t1.send(2, { n: 1 });
        t2.send(1, { n: 2 });
        await waitFor(
          () =>
            t1.stats().errorsByCode.AUTHENTICATION_FAILED >= 2 &&
            t2.stats().errorsByCode.AUTHENTICATION_FAILED >= 2,
          "both sides to refuse both connections",
        );
        await sleep(50);
        assert.equal(got1.length, 0);
        assert.equal(got2.length, 0);
        assert.equal(t1.stats().handshakesCompleted, 0);
        assert.equal(t2.stats().handshakesCompleted, 0);
        assert.ok(
          t1.stats().connectionsRefused >= 1 &&
            t2.stats().connectionsRefused >= 1,
        );
        assert.ok(
          t1.stats().recentErrors.some((r) =>
            r.error.name === "AuthenticationError"
          ),
        );
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name("a node with an unknown id is refused and both sides record it"),
    async () => {
      const t2 = await make(2, { peers: { 1: "127.0.0.1:1" } });
      const stranger = await make(9, { peers: { 2: t2.address } });
      const got2 = collect(t2);
      try {
        stranger.send(2, { n: 1 });
        await waitFor(
          () =>
            t2.stats().errorsByCode.UNKNOWN_PEER === 1 &&
            stranger.stats().errorsByCode.UNKNOWN_PEER === 1,
          "both sides to record the unknown id",
        );
        assert.equal(got2.length, 0);
        assert.equal(t2.stats().recentErrors[0].error.peerId, 9);
        assert.equal(t2.stats().connectionsRefused, 1);
        // Dialling an address where a different node answers is refused by the dialer.
        const t3 = await make(3, { peers: { 1: t2.address } }); // claims node 1 lives at node 2's address
        try {
          t3.send(1, { n: 1 });
          await waitFor(
            () => t3.stats().errorsByCode.UNKNOWN_PEER >= 1,
            "the dialer to notice the wrong node",
          );
          assert.equal(got2.length, 0);
        } finally {
          await t3.close();
        }
      } finally {
        await stranger.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name(
      "an authenticated peer sending a frame with a bad CRC or version is cut off",
    ),
    async () => {
      const t2 = await make(2, { peers: { 1: "127.0.0.1:1" } });
      const got2 = collect(t2);
      const key = await importClusterSecret(SECRET);
      try {
        for (const corrupt of ["crc", "version"] as const) {
          const conn = await backend.connect(parseAddress(t2.address));
          try {
            const fc = new FramedConn(conn, 1024);
            const session = await dialerHandshake(fc, {
              localId: 1,
              key,
              isKnownPeer: () => true,
            }, 2);
            await fc.writeRaw(await sealedBatch(session, [{ n: 1 }]));
            const bad = await sealedBatch(session, [{ n: 2 }]);
            if (corrupt === "crc") bad[bad.length - 2] ^= 0x40;
            else bad[4] = 9;
            await fc.writeRaw(bad);
            await fc.writeRaw(await sealedBatch(session, [{ n: 3 }]));
            assert.equal(await readUntilClosed(conn), true);
          } finally {
            await conn.close();
          }
        }
        await waitFor(
          () => t2.stats().errorsByCode.FRAME_CHECKSUM_MISMATCH === 1,
          "the checksum error",
        );
        await waitFor(
          () => t2.stats().errorsByCode.FRAME_VERSION_UNSUPPORTED === 1,
          "the version error",
        );
        assert.deepEqual(got2.map((g) => g.m.n), [1, 1]);
      } finally {
        await t2.close();
      }
    },
  );

  Deno.test(
    name("garbage and silent clients are refused without harm"),
    async () => {
      const t2 = await make(2, {
        peers: { 1: "127.0.0.1:1" },
        inboundHandshakeTimeoutMs: 150,
      });
      try {
        const garbage = await backend.connect(parseAddress(t2.address));
        try {
          await garbage.write(
            new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
          );
          assert.equal(await readUntilClosed(garbage), true);
        } finally {
          await garbage.close();
        }
        const silent = await backend.connect(parseAddress(t2.address));
        try {
          assert.equal(await readUntilClosed(silent), true);
        } finally {
          await silent.close();
        }
        const s = t2.stats();
        assert.equal(s.errorsByCode.FRAME_VERSION_UNSUPPORTED, 1);
        await waitFor(
          () => t2.stats().errorsByCode.HANDSHAKE_TIMEOUT === 1,
          "the timeout to be recorded",
        );
        assert.equal(t2.stats().connectionsRefused, 2);
      } finally {
        await t2.close();
      }
    },
  );

  Deno.test(
    name(
      "without a secret the transport refuses to start unless insecure is explicit",
    ),
    async () => {
      await assert.rejects(
        () => make(1, { clusterSecret: undefined }),
        (e: unknown) =>
          e instanceof InsecureTransportError &&
          e.code === "INSECURE_TRANSPORT",
      );
      await assert.rejects(
        () => make(1, { clusterSecret: "short" }),
        RangeError,
      );
      const [t1, t2] = await pair(
        { clusterSecret: undefined, insecure: true },
        { clusterSecret: undefined, insecure: true },
      );
      const secure = await make(3, { peers: { 2: t2.address } });
      t2.addPeer(3, secure.address);
      const got2 = collect(t2);
      try {
        t1.send(2, { n: 7 });
        await waitFor(() => got2.length === 1, "insecure delivery");
        // A secure node refuses an insecure one (it cannot prove the secret).
        secure.send(2, { n: 8 });
        await waitFor(
          () => secure.stats().errorsByCode.AUTHENTICATION_FAILED >= 1,
          "the secure node to refuse",
        );
        assert.deepEqual(got2.map((g) => g.m.n), [7]);
      } finally {
        await t1.close();
        await t2.close();
        await secure.close();
      }
    },
  );

  Deno.test(
    name("a message handler that throws is counted and does not stop delivery"),
    async () => {
      const [t1, t2] = await pair();
      const got: number[] = [];
      t2.onMessage((m) => {
        if (m.n === 1) throw new Error("boom");
        got.push(m.n);
      });
      try {
        t1.send(2, { n: 0 });
        t1.send(2, { n: 1 });
        t1.send(2, { n: 2 });
        await waitFor(() => got.length === 2, "the other messages");
        assert.deepEqual(got, [0, 2]);
        assert.equal(t2.stats().handlerErrors, 1);
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name("a removed peer is disconnected and refused from then on"),
    async () => {
      const [t1, t2] = await pair();
      const got2 = collect(t2);
      try {
        t1.send(2, { n: 1 });
        await waitFor(() => got2.length === 1, "delivery before the removal");
        t2.removePeer(1);
        assert.deepEqual(t2.peerIds(), []);
        for (
          let i = 0;
          i < 100 && t2.stats().errorsByCode.UNKNOWN_PEER === 0;
          i++
        ) {
          t1.send(2, { n: 2 });
          await sleep(10);
        }
        assert.ok(
          t2.stats().errorsByCode.UNKNOWN_PEER >= 1,
          "node 1 was not refused after its removal",
        );
        assert.equal(got2.length, 1);
      } finally {
        await t1.close();
        await t2.close();
      }
    },
  );

  Deno.test(
    name(
      "messages for an unreachable peer are dropped and counted while it retries with back-off",
    ),
    async () => {
      // Reserve a port, then free it so nothing listens there.
      const probe = await backend.listen({ hostname: "127.0.0.1", port: 0 });
      const deadAddress = `127.0.0.1:${probe.addr.port}`;
      await probe.close();
      const t1 = await make(1, { peers: { 2: deadAddress } });
      const unreachable: number[] = [];
      t1.onUnreachable((peer) => unreachable.push(peer));
      try {
        for (let i = 0; i < 5; i++) t1.send(2, { n: i });
        await waitFor(() => t1.stats().messagesDropped === 5, "the drops");
        const s = t1.stats();
        assert.ok(s.dialFailures >= 1);
        assert.equal(s.peers[2].connected, false);
        assert.ok(
          unreachable.length >= 1 && unreachable.every((p) => p === 2),
          `unreachable: ${unreachable}`,
        );
        assert.ok(s.errorsByCode.CONNECTION_FAILED >= 1);
      } finally {
        await t1.close();
      }
    },
  );

  for (const encryptFrames of [false, true]) {
    const mode = encryptFrames
      ? "encrypted (AES-256-GCM)"
      : "authenticated (HMAC)";
    Deno.test(
      name(
        `${mode} frames: a proxy's forged, replayed, reordered and altered frames are dropped and counted, real messages still arrive`,
      ),
      async () => {
        const t2 = await make(2, { encryptFrames });
        const tampered: string[] = [];
        // Connection c: pass the handshake (frames 0, 1) and the first batch (2), then attack frame 3.
        let held: Uint8Array | undefined;
        const proxy = await startProxy(
          backend,
          t2.address,
          (f, i, c, history) => {
            if (i < 3 || c > 3) return [f];
            if (c === 0 && i === 3) {
              // Inject: a batch of our own, numbered as the next frame, with a made-up tag.
              const body = testCodec.encodeBatch([{ n: 666 }]);
              const forged = new Uint8Array(
                SEALED_BODY_OFFSET + body.byteLength + 16,
              );
              forged.set(
                f.subarray(FRAME_HEADER_BYTES, SEALED_BODY_OFFSET),
                FRAME_HEADER_BYTES,
              );
              forged.set(body, SEALED_BODY_OFFSET);
              crypto.getRandomValues(forged.subarray(forged.byteLength - 16));
              tampered.push("forged");
              return [fixCrc(forged), f];
            }
            if (c === 1 && i === 3) {
              tampered.push("replayed");
              return [history[2], f]; // the previous batch again
            }
            if (c === 2 && i === 3) {
              tampered.push("reordered");
              held = f;
              return [];
            }
            if (c === 2 && i === 4) return [f, held!];
            if (c === 3 && i === 3) {
              tampered.push("altered");
              f[SEALED_BODY_OFFSET + 1] ^= 0x01;
              return [fixCrc(f)];
            }
            return [f];
          },
        );
        const t1 = await make(1, {
          peers: { 2: proxy.address },
          encryptFrames,
        });
        t2.addPeer(1, t1.address);
        const got2 = collect(t2);
        const sent = new Set<number>();
        try {
          let n = 0;
          const afterAttacks = () =>
            tampered.length === 4 &&
            t2.stats().errorsByCode.FRAME_AUTH_FAILED === 4 &&
            got2.some((g) => g.m.n > lastAtAttack);
          let lastAtAttack = Infinity;
          for (let round = 0; round < 1500 && !afterAttacks(); round++) {
            sent.add(n);
            t1.send(2, { n: n++, pad: "secret-payload" });
            if (
              lastAtAttack === Infinity &&
              t2.stats().errorsByCode.FRAME_AUTH_FAILED === 4
            ) lastAtAttack = n;
            await sleep(5);
          }
          assert.ok(
            afterAttacks(),
            `tampered ${tampered}, errors ${
              JSON.stringify(t2.stats().errorsByCode)
            }`,
          );
          const s = t2.stats();
          assert.equal(s.errorsByCode.FRAME_AUTH_FAILED, 4);
          const reasons = s.recentErrors
            .filter((r) => r.error.code === "FRAME_AUTH_FAILED")
            .map((r) => (r.error as FrameAuthError).reason);
          assert.deepEqual(reasons, [
            "bad_tag",
            "bad_sequence",
            "bad_sequence",
            "bad_tag",
          ]);
          assert.ok(
            s.recentErrors.every((r) =>
              r.error.code !== "FRAME_AUTH_FAILED" || r.peerId === 1
            ),
          );
          // Nothing forged, nothing twice, only what node 1 sent, from node 1.
          const ns = got2.map((g) => g.m.n);
          assert.ok(!ns.includes(666), "the forged message was delivered");
          assert.equal(
            new Set(ns).size,
            ns.length,
            `a message was delivered twice: ${ns}`,
          );
          assert.ok(ns.every((x) => sent.has(x)));
          assert.ok(got2.every((g) => g.from === 1));
          assert.ok(
            proxy.connections() >= 5,
            `${proxy.connections()} connections`,
          );
          // The node kept serving: node 1 is connected again and delivery goes on.
          assert.equal(t1.stats().peers[2].connected, true);
        } finally {
          await t1.close();
          await t2.close();
          await proxy.close();
        }
      },
    );
  }

  Deno.test(
    name(
      "with encryptFrames a proxy sees no message bytes; without it the MAC-only frames are readable",
    ),
    async () => {
      for (const encryptFrames of [true, false]) {
        const t2 = await make(2);
        const seen: Uint8Array[] = [];
        const proxy = await startProxy(backend, t2.address, (f) => {
          seen.push(f);
          return [f];
        });
        // Only the dialer asks: either side asking is enough.
        const t1 = await make(1, {
          peers: { 2: proxy.address },
          encryptFrames,
        });
        t2.addPeer(1, t1.address);
        const got2 = collect(t2);
        try {
          t1.send(2, { n: 1, pad: "top-secret-entry" });
          await waitFor(() => got2.length === 1, "delivery");
          const wire = new TextDecoder("latin1").decode(
            new Uint8Array(seen.flatMap((f) => [...f])),
          );
          assert.equal(wire.includes("top-secret-entry"), !encryptFrames);
          assert.equal(got2[0].m.pad, "top-secret-entry");
        } finally {
          await t1.close();
          await t2.close();
          await proxy.close();
        }
      }
    },
  );

  Deno.test(
    name(
      "a proxy that clears the encryption flag in the hello fails the handshake (no downgrade)",
    ),
    async () => {
      const t2 = await make(2);
      // hello payload: kind, dialer id (8), listener id (8), nonce (32), then the flags byte.
      const flagsAt = FRAME_HEADER_BYTES + 1 + 16 + NONCE_BYTES;
      const proxy = await startProxy(backend, t2.address, (f, i, c) => {
        if (c === 0 && i === 0) {
          f[flagsAt] = 0;
          return [fixCrc(f)];
        }
        return [f];
      });
      const t1 = await make(1, {
        peers: { 2: proxy.address },
        encryptFrames: true,
      });
      t2.addPeer(1, t1.address);
      const got2 = collect(t2);
      try {
        for (let i = 0; i < 400 && got2.length === 0; i++) {
          t1.send(2, { n: i });
          await sleep(10);
        }
        assert.ok(got2.length > 0, "no delivery after the downgraded attempt");
        assert.ok(t2.stats().errorsByCode.AUTHENTICATION_FAILED >= 1);
        assert.equal(t2.stats().handshakesCompleted, 1);
      } finally {
        await t1.close();
        await t2.close();
        await proxy.close();
      }
    },
  );

  Deno.test(
    name(
      "nodes of different clusters refuse each other with an error naming both cluster ids",
    ),
    async () => {
      const [t1, t2] = await pair({ clusterId: "alpha" }, {
        clusterId: "beta",
      });
      const got1 = collect(t1);
      const got2 = collect(t2);
      const t3 = await make(3, { peers: { 2: t2.address } }); // no cluster id: accepted
      t2.addPeer(3, t3.address);
      try {
        t1.send(2, { n: 1 });
        t2.send(1, { n: 2 });
        await waitFor(
          () =>
            t1.stats().errorsByCode.CLUSTER_MISMATCH >= 2 &&
            t2.stats().errorsByCode.CLUSTER_MISMATCH >= 2,
          "both sides to refuse both connections",
        );
        const mismatch = (t: TcpTransport<TestMessage>) =>
          t.stats().recentErrors.map((r) => r.error).filter((e) =>
            e instanceof ClusterMismatchError
          ) as ClusterMismatchError[];
        for (const e of mismatch(t1)) {
          assert.equal(e.localClusterId, "alpha");
          assert.equal(e.remoteClusterId, "beta");
          assert.equal(e.peerId, 2);
          assert.ok(
            e.message.includes('"alpha"') && e.message.includes('"beta"'),
            e.message,
          );
        }
        for (const e of mismatch(t2)) {
          assert.equal(e.localClusterId, "beta");
          assert.equal(e.remoteClusterId, "alpha");
          assert.equal(e.peerId, 1);
        }
        assert.equal(t1.stats().handshakesCompleted, 0);
        t3.send(2, { n: 3 });
        await waitFor(
          () => got2.some((g) => g.from === 3),
          "node 3's delivery",
        );
        assert.equal(got1.length, 0);
        assert.deepEqual(got2.map((g) => g.m.n), [3]);
        await assert.rejects(() => make(4, { clusterId: "" }), RangeError);
        await assert.rejects(
          () => make(4, { clusterId: "x".repeat(256) }),
          RangeError,
        );
      } finally {
        await t1.close();
        await t2.close();
        await t3.close();
      }
    },
  );

  Deno.test(
    name(
      "70 idle connections from one address do not stop two real peers from (re)connecting",
    ),
    async () => {
      const t2 = await make(2, {
        handshakeTimeoutMs: 5000,
        inboundHandshakeTimeoutMs: undefined,
      });
      const t1 = await make(1, { peers: { 2: t2.address } });
      const t3 = await make(3, { peers: { 2: t2.address } });
      t2.addPeer(1, t1.address);
      t2.addPeer(3, t3.address);
      const got2 = collect(t2);
      const attack = idleFlood(parseAddress(t2.address), 70, "127.0.0.5");
      let t1b: TcpTransport<TestMessage> | undefined;
      try {
        await sleep(300); // let the flood take every slot it can
        const deliver = async (from: TcpTransport<TestMessage>, n: number) => {
          for (let i = 0; i < 200 && !got2.some((g) => g.m.n === n); i++) {
            from.send(2, { n });
            await sleep(10);
          }
          assert.ok(
            got2.some((g) => g.m.n === n),
            `node ${from.id}'s message ${n} did not arrive`,
          );
        };
        await deliver(t1, 1);
        await deliver(t3, 3);
        // Node 1 restarts (a new process on a new port) and reconnects during the flood.
        await t1.close();
        t1b = await make(1, { peers: { 2: t2.address } });
        t2.addPeer(1, t1b.address);
        const got1 = collect(t1b);
        await deliver(t1b, 11);
        t2.send(1, { n: 21 });
        await waitFor(
          () => got1.length === 1,
          "node 2's reply to the restarted node 1",
        );
        // The flood's idle connections are closed at the 2 s default deadline.
        await waitFor(
          () => t2.stats().errorsByCode.HANDSHAKE_TIMEOUT >= 8,
          "idle connections to be closed at the deadline",
          4000,
        );
        assert.ok(
          attack.closedByPeer() >= 62,
          `flood connections closed: ${attack.closedByPeer()}`,
        );
        assert.ok(t2.stats().connectionsRefused >= 62);
      } finally {
        await attack.stop();
        await t1.close();
        await t1b?.close();
        await t2.close();
        await t3.close();
      }
    },
  );

  Deno.test(
    name("insecure mode logs a warning at creation"),
    async () => {
      const logger = quietLogger();
      const t = await make(1, {
        clusterSecret: undefined,
        insecure: true,
        logger,
      });
      try {
        assert.ok(
          logger.lines.some((l) => /INSECURE/.test(l) && /any peer/.test(l)),
          `lines: ${logger.lines}`,
        );
        await assert.rejects(
          () =>
            make(2, {
              clusterSecret: undefined,
              insecure: true,
              encryptFrames: true,
            }),
          InsecureTransportError,
        );
      } finally {
        await t.close();
      }
      const secureLogger = quietLogger();
      const s = await make(3, { logger: secureLogger });
      await s.close();
      assert.deepEqual(secureLogger.lines, []);
    },
  );
}

/** Reads until the peer closes; true when it did (bounded by a 5 s deadline). */
async function readUntilClosed(
  conn: { read(): Promise<Uint8Array | null>; close(): Promise<void> },
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), 5000);
  });
  const closed = (async () => {
    try {
      while ((await conn.read()) !== null) { /* discard */ }
    } catch {
      // reset counts as closed
    }
    return true as const;
  })();
  const result = await Promise.race([closed, deadline]);
  clearTimeout(timer);
  if (!result) {
    await conn.close();
    await closed;
  }
  return result;
}

/**
 * Keeps `count` idle connections open from `localAddress` to `target` (each
 * reopened shortly after the target closes it), as a client that never
 * starts a handshake would.
 */
function idleFlood(
  target: { hostname: string; port: number },
  count: number,
  localAddress: string,
): { closedByPeer(): number; stop(): Promise<void> } {
  let stopped = false;
  let closedByPeer = 0;
  const sockets = new Set<net.Socket>();
  const open = () => {
    if (stopped) return;
    const s = net.connect({
      host: target.hostname,
      port: target.port,
      localAddress,
    });
    sockets.add(s);
    s.on("error", () => {});
    s.on("data", () => {});
    s.on("close", () => {
      sockets.delete(s);
      if (stopped) return;
      closedByPeer++;
      setTimeout(open, 20);
    });
  };
  for (let i = 0; i < count; i++) open();
  return {
    closedByPeer: () => closedByPeer,
    async stop() {
      stopped = true;
      const closing = [...sockets].map((s) =>
        new Promise<void>((resolve) => {
          s.once("close", () => resolve());
          s.destroy();
        })
      );
      await Promise.all(closing);
      // Let pending reopen timers fire (they do nothing once stopped).
      await sleep(30);
    },
  };
}
