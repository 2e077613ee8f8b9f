/**
 * {@linkcode SocketBackend} on `Deno.listen` / `Deno.connect`.
 *
 * @module
 */

import {
  formatAddress,
  type SocketAddress,
  type SocketBackend,
  type SocketConn,
  type SocketListener,
} from "./socket.ts";

const READ_BUFFER_BYTES = 64 * 1024;

class DenoConn implements SocketConn {
  readonly remote: string;
  private readonly conn: Deno.TcpConn;
  private readonly buf = new Uint8Array(READ_BUFFER_BYTES);
  private closed = false;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    conn.setNoDelay(true);
    const r = conn.remoteAddr;
    this.remote = formatAddress({ hostname: r.hostname, port: r.port });
  }

  async read(): Promise<Uint8Array | null> {
    if (this.closed) return null;
    const n = await this.conn.read(this.buf);
    return n === null ? null : this.buf.subarray(0, n);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.byteLength) {
      off += await this.conn.write(bytes.subarray(off));
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      try {
        this.conn.close();
      } catch {
        // already closed by the peer or the runtime
      }
    }
    return Promise.resolve();
  }
}

class DenoListener implements SocketListener {
  readonly addr: SocketAddress;
  private readonly listener: Deno.TcpListener;
  private closed = false;

  constructor(listener: Deno.TcpListener) {
    this.listener = listener;
    this.addr = { hostname: listener.addr.hostname, port: listener.addr.port };
  }

  async accept(): Promise<SocketConn | null> {
    while (!this.closed) {
      try {
        return new DenoConn(await this.listener.accept());
      } catch (e) {
        if (this.closed || e instanceof Deno.errors.BadResource) return null;
        // A failed accept (e.g. the client reset at once) must not stop the listener.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    return null;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      try {
        this.listener.close();
      } catch {
        // already closed
      }
    }
    return Promise.resolve();
  }
}

/**
 * The Deno socket backend (the default under Deno).
 *
 * @example
 * ```ts
 * import { denoSocketBackend } from "./deno_socket.ts";
 * const listener = await denoSocketBackend.listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port > 0); // true
 * await listener.close();
 * ```
 */
export const denoSocketBackend: SocketBackend = {
  name: "deno",
  listen(addr: SocketAddress): Promise<SocketListener> {
    return Promise.resolve(
      new DenoListener(
        Deno.listen({ hostname: addr.hostname, port: addr.port }),
      ),
    );
  },
  async connect(
    addr: SocketAddress,
    signal?: AbortSignal,
  ): Promise<SocketConn> {
    return new DenoConn(
      await Deno.connect({ hostname: addr.hostname, port: addr.port, signal }),
    );
  },
};
