/**
 * {@linkcode SocketBackend} on Node's `node:net` (used by the npm build under
 * Node; it also runs inside Deno, which is how its tests run).
 *
 * @module
 */

import * as net from "node:net";
import {
  formatAddress,
  type SocketAddress,
  type SocketBackend,
  type SocketConn,
  type SocketListener,
} from "./socket.ts";

/** Chunks buffered before the socket is paused (back-pressure towards the sender). */
const MAX_BUFFERED_CHUNKS = 16;

class NodeConn implements SocketConn {
  readonly remote: string;
  private readonly socket: net.Socket;
  private readonly chunks: Uint8Array[] = [];
  private ended = false;
  private error: Error | undefined;
  private waiter: (() => void) | undefined;
  private paused = false;
  private readonly closedPromise: Promise<void>;
  private isClosed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    this.remote = formatAddress({
      hostname: socket.remoteAddress ?? "?",
      port: socket.remotePort ?? 0,
    });
    socket.on("data", (chunk: Uint8Array) => {
      this.chunks.push(chunk);
      if (this.chunks.length >= MAX_BUFFERED_CHUNKS && !this.paused) {
        this.paused = true;
        socket.pause();
      }
      this.wake();
    });
    socket.on("end", () => {
      this.ended = true;
      this.wake();
    });
    socket.on("error", (e: Error) => {
      this.error = e;
      this.wake();
    });
    this.closedPromise = new Promise((resolve) => {
      socket.on("close", () => {
        this.isClosed = true;
        this.ended = true;
        this.wake();
        resolve();
      });
    });
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async read(): Promise<Uint8Array | null> {
    while (true) {
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        if (this.paused && this.chunks.length < MAX_BUFFERED_CHUNKS / 2) {
          this.paused = false;
          this.socket.resume();
        }
        return chunk;
      }
      if (this.error !== undefined) throw this.error;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }

  write(bytes: Uint8Array): Promise<void> {
    if (this.isClosed || this.socket.destroyed) {
      return Promise.reject(new Error("socket closed"));
    }
    return new Promise((resolve, reject) => {
      this.socket.write(
        bytes,
        (err?: Error | null) => (err ? reject(err) : resolve()),
      );
    });
  }

  close(): Promise<void> {
    if (!this.socket.destroyed) this.socket.destroy();
    this.ended = true;
    this.wake();
    return this.closedPromise;
  }
}

class NodeListener implements SocketListener {
  readonly addr: SocketAddress;
  private readonly server: net.Server;
  private readonly pending: net.Socket[] = [];
  private waiter: ((s: net.Socket | null) => void) | undefined;
  private closed = false;
  private closedPromise: Promise<void> | undefined;

  constructor(server: net.Server, addr: SocketAddress) {
    this.server = server;
    this.addr = addr;
    server.on("connection", (socket: net.Socket) => {
      if (this.closed) {
        socket.destroy();
        return;
      }
      const w = this.waiter;
      if (w !== undefined) {
        this.waiter = undefined;
        w(socket);
      } else {
        this.pending.push(socket);
      }
    });
    server.on("error", () => {
      // Listening errors after start are reported by close(); never crash.
    });
  }

  async accept(): Promise<SocketConn | null> {
    if (this.closed) return null;
    const s = this.pending.shift() ??
      await new Promise<net.Socket | null>((
        resolve,
      ) => (this.waiter = resolve));
    return s === null ? null : new NodeConn(s);
  }

  close(): Promise<void> {
    if (this.closedPromise === undefined) {
      this.closed = true;
      for (const s of this.pending.splice(0)) s.destroy();
      const w = this.waiter;
      this.waiter = undefined;
      w?.(null);
      this.closedPromise = new Promise((resolve) =>
        this.server.close(() => resolve())
      );
    }
    return this.closedPromise;
  }
}

/**
 * The `node:net` socket backend (the default under Node).
 *
 * @example
 * ```ts
 * import { nodeSocketBackend } from "./node_socket.ts";
 * const listener = await nodeSocketBackend.listen({ hostname: "127.0.0.1", port: 0 });
 * console.log(listener.addr.port > 0); // true
 * await listener.close();
 * ```
 */
export const nodeSocketBackend: SocketBackend = {
  name: "node",
  listen(addr: SocketAddress): Promise<SocketListener> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once("error", reject);
      server.listen({ host: addr.hostname, port: addr.port }, () => {
        server.off("error", reject);
        const a = server.address();
        const bound = typeof a === "object" && a !== null
          ? { hostname: a.address, port: a.port }
          : { hostname: addr.hostname, port: addr.port };
        resolve(new NodeListener(server, bound));
      });
    });
  },
  connect(addr: SocketAddress, signal?: AbortSignal): Promise<SocketConn> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(new Error("connect aborted"));
        return;
      }
      const socket = net.createConnection({
        host: addr.hostname,
        port: addr.port,
      });
      const onAbort = () => {
        socket.destroy();
        reject(new Error("connect aborted"));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      socket.once("error", (e: Error) => {
        signal?.removeEventListener("abort", onAbort);
        socket.destroy();
        reject(e);
      });
      socket.once("connect", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve(new NodeConn(socket));
      });
    });
  },
};
