/**
 * raft-io: a Raft consensus and replicated-log engine for Deno and Node.
 *
 * @example
 * ```ts
 * import { crc32c } from "@raft-io/raft";
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 *
 * @module
 */

export * from "./src/codec/mod.ts";
export * from "./src/core/mod.ts";
export * from "./src/log/mod.ts";
export * from "./src/runtime/mod.ts";
export * from "./src/transport/mod.ts";
export { RaftIoError } from "./src/errors.ts";
export {
  type ConsoleLoggerOptions,
  consoleLogger,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./src/logger.ts";
export { wasmAvailable } from "./src/wasm/codec_wasm.ts";
