/**
 * An on-path TCP relay for the transport tests: it forwards both directions
 * and lets a test rewrite the dialer's frames (the direction that carries
 * batches) one frame at a time, as an attacker on the path could — it sees
 * every byte and can recompute CRCs, but does not know the cluster secret.
 */

import {
  FRAME_HEADER_BYTES,
  sealFrame,
} from "../../src/transport/tcp/frame.ts";
import type {
  SocketAddress,
  SocketBackend,
  SocketConn,
} from "../../src/transport/tcp/socket.ts";
import { formatAddress } from "../../src/transport/tcp/socket.ts";

/**
 * Decides what to forward for frame `frameIndex` (0: hello, 1: proof, 2…:
 * batches) of relayed connection `connIndex`: the frames to write instead
 * (the frame itself to pass it on). `history` holds the connection's earlier
 * frames as received.
 */
export type Tamper = (
  frame: Uint8Array<ArrayBuffer>,
  frameIndex: number,
  connIndex: number,
  history: Uint8Array<ArrayBuffer>[],
) => Uint8Array[];

/** A running relay. */
export interface Proxy {
  /** Where to dial it. */
  address: string;
  /** Connections relayed so far. */
  connections(): number;
  /** Stops listening and closes every relayed connection. */
  close(): Promise<void>;
}

/** Re-seals the header (length, version, CRC) of a frame changed in place, as an attacker can. */
export function fixCrc(frame: Uint8Array): Uint8Array {
  sealFrame(frame, frame[FRAME_HEADER_BYTES]);
  return frame;
}

/** Starts a relay on 127.0.0.1 in front of `target`. */
export async function startProxy(
  backend: SocketBackend,
  target: SocketAddress | string,
  tamper: Tamper,
): Promise<Proxy> {
  const listener = await backend.listen({ hostname: "127.0.0.1", port: 0 });
  const targetAddr = typeof target === "string"
    ? (() => {
      const [h, p] = target.split(":");
      return { hostname: h, port: Number(p) };
    })()
    : target;
  const open = new Set<SocketConn>();
  const tasks = new Set<Promise<void>>();
  let count = 0;
  let closed = false;

  const relay = async (client: SocketConn, connIndex: number) => {
    let server: SocketConn;
    try {
      server = await backend.connect(targetAddr);
    } catch {
      await client.close();
      return;
    }
    open.add(server);
    const closeBoth = async () => {
      await client.close();
      await server.close();
    };
    const upstream = (async () => {
      let buf = new Uint8Array(0);
      const history: Uint8Array<ArrayBuffer>[] = [];
      try {
        while (true) {
          const chunk = await client.read();
          if (chunk === null) break;
          const next = new Uint8Array(buf.byteLength + chunk.byteLength);
          next.set(buf);
          next.set(chunk, buf.byteLength);
          buf = next;
          while (buf.byteLength >= FRAME_HEADER_BYTES) {
            const length = new DataView(buf.buffer).getUint32(0, true);
            if (buf.byteLength < FRAME_HEADER_BYTES + length) break;
            const frame = buf.slice(0, FRAME_HEADER_BYTES + length);
            buf = buf.slice(FRAME_HEADER_BYTES + length);
            const out = tamper(frame.slice(), history.length, connIndex, [
              ...history,
            ]);
            history.push(frame);
            for (const f of out) await server.write(f);
          }
        }
      } catch {
        // either side went away
      }
      await closeBoth();
    })();
    const downstream = (async () => {
      try {
        while (true) {
          const chunk = await server.read();
          if (chunk === null) break;
          await client.write(chunk.slice());
        }
      } catch {
        // either side went away
      }
      await closeBoth();
    })();
    await Promise.all([upstream, downstream]);
    open.delete(client);
    open.delete(server);
  };

  const acceptLoop = (async () => {
    while (!closed) {
      const client = await listener.accept();
      if (client === null) break;
      open.add(client);
      const t = relay(client, count++).finally(() => tasks.delete(t));
      tasks.add(t);
    }
  })();

  return {
    address: formatAddress(listener.addr),
    connections: () => count,
    async close() {
      closed = true;
      const l = listener.close();
      await Promise.all([...open].map((c) => c.close()));
      await l;
      await acceptLoop;
      await Promise.allSettled([...tasks]);
    },
  };
}
