/**
 * The small socket interface {@linkcode TcpTransport} runs on, so one
 * transport works over Deno's `Deno.listen`/`Deno.connect` and over Node's
 * `node:net` (the npm build). Both backends live beside this file.
 *
 * @module
 */

/** A host and port. */
export interface SocketAddress {
  /** IP address or host name. */
  hostname: string;
  /** TCP port. */
  port: number;
}

/** One TCP connection. */
export interface SocketConn {
  /** The remote address as `host:port`, for logs. */
  readonly remote: string;
  /**
   * Reads the next chunk of bytes, or `null` at end of stream. The chunk is
   * valid only until the next call (backends may reuse a buffer). Rejects
   * when the connection breaks or is closed.
   */
  read(): Promise<Uint8Array | null>;
  /** Writes all of `bytes`. Rejects when the connection breaks. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes the connection (pending reads end); resolves once released. Idempotent. */
  close(): Promise<void>;
}

/** A listening socket. */
export interface SocketListener {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: SocketAddress;
  /** The next inbound connection, or `null` once the listener is closed. */
  accept(): Promise<SocketConn | null>;
  /** Stops listening; a pending `accept` resolves `null`. Idempotent. */
  close(): Promise<void>;
}

/** Opens listeners and connections. */
export interface SocketBackend {
  /** A short name for logs (`"deno"`, `"node"`). */
  readonly name: string;
  /** Listens on `addr` (port 0: any free port). */
  listen(addr: SocketAddress): Promise<SocketListener>;
  /** Connects to `addr`; rejects on failure or when `signal` aborts. */
  connect(addr: SocketAddress, signal?: AbortSignal): Promise<SocketConn>;
}

/**
 * Parses `host:port` (IPv6 as `[::1]:7001`).
 *
 * @example
 * ```ts
 * import { parseAddress } from "./socket.ts";
 * parseAddress("127.0.0.1:7001"); // { hostname: "127.0.0.1", port: 7001 }
 * ```
 */
export function parseAddress(text: string): SocketAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:\s]+):(\d+)$/.exec(text);
  if (m === null) {
    throw new TypeError(
      `bad address "${text}": expected host:port, e.g. 127.0.0.1:7001`,
    );
  }
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new TypeError(`bad port in address "${text}": expected 0-65535`);
  }
  return { hostname: m[1], port };
}

/**
 * Formats an address as `host:port` (IPv6 in brackets).
 *
 * @example
 * ```ts
 * import { formatAddress } from "./socket.ts";
 * formatAddress({ hostname: "::1", port: 7001 }); // "[::1]:7001"
 * ```
 */
export function formatAddress(addr: SocketAddress): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
