/**
 * The small key-value state machine the simulator replicates: put, get,
 * delete and compare-and-set, with request ids so that a command applied
 * twice (a duplicated forwarded proposal) takes effect once.
 *
 * @module
 */

import type { KvValue } from "./linearizability/history.ts";

/** A command of {@linkcode KvModel}, carried as JSON in an entry. */
export type KvModelCommand =
  | { op: "put"; req: string; key: string; value: KvValue }
  | { op: "delete"; req: string; key: string }
  | {
    op: "cas";
    req: string;
    key: string;
    expect: KvValue | null;
    value: KvValue;
  };

/** What applying a command returned: for `cas`, whether it swapped. */
export interface KvModelResult {
  /** The request the result belongs to. */
  req: string;
  /** `cas`: true when it swapped; other commands: true. */
  ok: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a command as entry data. */
export function encodeKvModelCommand(command: KvModelCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** Decodes entry data written by {@linkcode encodeKvModelCommand}; undefined for anything else. */
export function decodeKvModelCommand(
  data: Uint8Array,
): KvModelCommand | undefined {
  if (data.byteLength === 0) return undefined;
  try {
    const parsed = JSON.parse(decoder.decode(data));
    if (
      typeof parsed === "object" && parsed !== null &&
      typeof parsed.req === "string"
    ) {
      return parsed as KvModelCommand;
    }
  } catch {
    // Not a KV command.
  }
  return undefined;
}

/**
 * The simulator's model of a replicated key-value map, with JSON commands
 * (the `./kv` service's state machine is `KvStateMachine`). Deterministic:
 * the same commands in the same order give the same state on every node.
 *
 * @example
 * ```ts
 * import { encodeKvModelCommand, KvModel } from "@raft-io/raft/testing";
 * const sm = new KvModel();
 * sm.apply(encodeKvModelCommand({ op: "put", req: "c1-1", key: "x", value: "a" }));
 * sm.get("x"); // "a"
 * ```
 */
export class KvModel {
  #data = new Map<string, KvValue>();
  #results = new Map<string, boolean>();

  /** Applies one entry's data; returns the result, or undefined for a non-command (no-op). */
  apply(data: Uint8Array): KvModelResult | undefined {
    const command = decodeKvModelCommand(data);
    if (command === undefined) return undefined;
    const seen = this.#results.get(command.req);
    if (seen !== undefined) return { req: command.req, ok: seen };
    let ok = true;
    switch (command.op) {
      case "put":
        this.#data.set(command.key, command.value);
        break;
      case "delete":
        this.#data.delete(command.key);
        break;
      case "cas":
        ok = (this.#data.get(command.key) ?? null) === command.expect;
        if (ok) this.#data.set(command.key, command.value);
        break;
    }
    this.#results.set(command.req, ok);
    return { req: command.req, ok };
  }

  /** The value under `key`, null when absent. */
  get(key: string): KvValue | null {
    return this.#data.get(key) ?? null;
  }

  /** Serializes the whole state (data and request results). */
  snapshot(): Uint8Array {
    return encoder.encode(
      JSON.stringify({ data: [...this.#data], results: [...this.#results] }),
    );
  }

  /** Replaces the state with a snapshot's. An empty snapshot is the empty state. */
  restore(bytes: Uint8Array): void {
    this.#data = new Map();
    this.#results = new Map();
    if (bytes.byteLength === 0) return;
    const parsed = JSON.parse(decoder.decode(bytes)) as {
      data: [string, KvValue][];
      results: [string, boolean][];
    };
    this.#data = new Map(parsed.data);
    this.#results = new Map(parsed.results);
  }
}
