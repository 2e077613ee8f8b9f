/**
 * Validation and defaults of `RaftServerOptions`: every number is checked
 * here, once, with an `InvalidConfigError` naming the option, so that no
 * deadline or timer of a running server can be NaN, zero or negative.
 *
 * @module
 */

import { InvalidConfigError } from "../core/errors.ts";
import { resolveConfig, type ResolvedConfig } from "../core/config.ts";
import { consoleLogger, type Logger } from "../logger.ts";
import { realScheduler, type Scheduler } from "./scheduler.ts";
import type { RaftServerOptions } from "./server_types.ts";

/** The options with defaults filled in, plus the core's resolved config. */
export interface ResolvedServerOptions {
  /** The core's config with its defaults (the one source of `electionTick` etc.). */
  config: ResolvedConfig;
  tickMs: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  maxProposalBytes: number;
  snapshotRetryMs: number;
  logger: Logger;
  scheduler: Scheduler;
}

/** Fills in defaults and validates; throws `InvalidConfigError`. */
export function resolveServerOptions<R>(
  options: RaftServerOptions<R>,
): ResolvedServerOptions {
  if (options === null || typeof options !== "object") {
    throw new InvalidConfigError(
      "options",
      "RaftServer.start needs an options object",
    );
  }
  for (const field of ["config", "log", "transport", "stateMachine"] as const) {
    if (options[field] === undefined || options[field] === null) {
      throw new InvalidConfigError(field, "is required");
    }
  }
  const sm = options.stateMachine;
  for (const method of ["apply", "snapshot", "restore"] as const) {
    if (typeof sm[method] !== "function") {
      throw new InvalidConfigError(
        "stateMachine",
        `must have an ${method}() method (see the StateMachine interface)`,
      );
    }
  }
  const config = resolveConfig({ ...options.config, forwardProposals: false });
  return {
    config,
    tickMs: positiveMs("tickMs", options.tickMs, 100),
    proposalTimeoutMs: positiveMs(
      "proposalTimeoutMs",
      options.proposalTimeoutMs,
      10_000,
    ),
    readTimeoutMs: positiveMs("readTimeoutMs", options.readTimeoutMs, 10_000),
    maxProposalBytes: positiveInteger(
      "maxProposalBytes",
      options.maxProposalBytes,
      8 * 1024 * 1024,
    ),
    snapshotRetryMs: positiveMs(
      "snapshotRetryMs",
      options.snapshotRetryMs,
      5000,
    ),
    logger: options.logger ??
      consoleLogger({ prefix: `[raft-io node ${config.id}]` }),
    scheduler: options.scheduler ?? realScheduler,
  };
}

/**
 * A duration option: finite and positive (fractions allowed).
 *
 * @param name the option, for the error
 * @param value what was given
 * @param fallback the default when `value` is undefined
 */
export function positiveMs(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new InvalidConfigError(
      name,
      `must be a finite number of milliseconds > 0 (got ${String(value)})`,
    );
  }
  return value;
}

function positiveInteger(
  name: string,
  value: number | undefined,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidConfigError(
      name,
      `must be a positive integer (got ${String(value)})`,
    );
  }
  return value;
}
