/**
 * {@linkcode Logger}: the one levelled logger interface of raft-io, shared by
 * `RaftServer` and `TcpTransport` (give both the same object), and
 * {@linkcode consoleLogger}, the default.
 *
 * This module imports nothing, so every layer can use it.
 *
 * @module
 */

/** Severity levels, lowest first; `"silent"` logs nothing. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/**
 * Where raft-io reports what happens. `debug`: detail for tracing; `info`:
 * notable events (elections, snapshots, membership); `warn`: problems the
 * node survives (a dropped message, a failed snapshot it will retry);
 * `error`: the node stops (a fatal storage or state machine failure).
 *
 * @example
 * ```ts
 * import type { Logger } from "@raft-io/raft";
 * const lines: string[] = [];
 * const logger: Logger = {
 *   debug: () => {},
 *   info: (m) => lines.push(`info ${m}`),
 *   warn: (m) => lines.push(`warn ${m}`),
 *   error: (m) => lines.push(`error ${m}`),
 * };
 * logger.warn("example");
 * ```
 */
export interface Logger {
  /** Detail for tracing. */
  debug(message: string): void;
  /** Notable events. */
  info(message: string): void;
  /** Problems the node survives. */
  warn(message: string): void;
  /** Failures that stop the node. */
  error(message: string): void;
}

const RANK: Record<LogLevel, number> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
  silent: 4,
};

/** Options of {@linkcode consoleLogger}. */
export interface ConsoleLoggerOptions {
  /**
   * The lowest level written.
   * @default {"info"}
   */
  level?: LogLevel;
  /** Text put before every line, e.g. `"[node 1]"`. */
  prefix?: string;
}

/**
 * A logger writing to the console (`debug`/`info` to stdout, `warn`/`error`
 * to stderr), dropping lines below `level`.
 *
 * @example
 * ```ts
 * import { consoleLogger } from "@raft-io/raft";
 * const logger = consoleLogger({ level: "warn", prefix: "[node 1]" });
 * logger.info("not shown");
 * logger.warn("shown on stderr");
 * ```
 */
export function consoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const min = RANK[options.level ?? "info"];
  if (min === undefined) {
    throw new RangeError(
      `unknown log level ${
        JSON.stringify(options.level)
      }: use debug, info, warn, error or silent`,
    );
  }
  const p = options.prefix === undefined ? "" : `${options.prefix} `;
  const noop = () => {};
  return {
    debug: min <= 0 ? (m) => console.log(`${p}${m}`) : noop,
    info: min <= 1 ? (m) => console.log(`${p}${m}`) : noop,
    warn: min <= 2 ? (m) => console.warn(`${p}${m}`) : noop,
    error: min <= 3 ? (m) => console.error(`${p}${m}`) : noop,
  };
}

/**
 * A logger that drops everything.
 *
 * @example
 * ```ts
 * import { silentLogger } from "@raft-io/raft";
 * silentLogger.error("nobody hears this");
 * ```
 */
export const silentLogger: Logger = Object.freeze({
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
});
