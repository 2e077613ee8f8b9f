/**
 * Test helper: random key-value histories that are linearizable by
 * construction (each operation takes effect at a random instant inside its
 * window, results computed from a sequential model in that order), and
 * anomalies injected into them.
 */

import { mulberry32 } from "../../src/core/random.ts";
import type { KvOperation, KvValue } from "../../src/testing/mod.ts";

/** A small seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  return mulberry32(seed);
}

export interface GeneratorOptions {
  seed: number;
  operations: number;
  keys: number;
  processes: number;
  /** Longest operation latency; operations of different processes overlap within it. */
  maxLatency?: number;
  /** Longest think time between a process's operations. */
  maxGap?: number;
  /** Share of operations that end indefinite (half of them take effect). */
  indefiniteRate?: number;
  /** Share of operations that fail (and do not take effect). */
  failRate?: number;
}

interface Planned {
  op: KvOperation;
  at: number;
  effective: boolean;
  casHit: boolean;
}

/** Generates a linearizable history; values written are unique strings. */
export function generateHistory(options: GeneratorOptions): KvOperation[] {
  const rand = prng(options.seed);
  const maxLatency = options.maxLatency ?? 100;
  const maxGap = options.maxGap ?? 50;
  const indefiniteRate = options.indefiniteRate ?? 0;
  const failRate = options.failRate ?? 0;
  const freeAt = new Array<number>(options.processes).fill(0);
  const planned: Planned[] = [];
  let counter = 0;
  for (let i = 0; i < options.operations; i++) {
    const process = Math.floor(rand() * options.processes);
    const invokeTime = freeAt[process] + 1 + Math.floor(rand() * maxGap);
    const returnTime = invokeTime + 1 + Math.floor(rand() * maxLatency);
    freeAt[process] = returnTime;
    const key = "k" + Math.floor(rand() * options.keys);
    const roll = rand();
    const f = roll < 0.35
      ? "put"
      : roll < 0.75
      ? "get"
      : roll < 0.85
      ? "delete"
      : "cas";
    const op: KvOperation = {
      id: i,
      process,
      f,
      key,
      status: "ok",
      invokeTime,
      returnTime,
    };
    if (f === "put" || f === "cas") op.value = "v" + counter++;
    const end = rand();
    let effective = true;
    if (end < indefiniteRate) {
      op.status = "info";
      delete op.returnTime;
      effective = rand() < 0.5;
    } else if (end < indefiniteRate + failRate) {
      op.status = "fail";
      effective = false;
    }
    // The instant the operation takes effect, strictly inside its window.
    const at = invokeTime +
      (returnTime - invokeTime) * (0.001 + 0.998 * rand());
    planned.push({ op, at, effective, casHit: rand() < 0.5 });
  }
  const order = planned.slice().sort((a, b) => a.at - b.at);
  const state = new Map<string, KvValue>();
  const written = new Map<string, string[]>();
  for (const { op, effective, casHit } of order) {
    const current = state.get(op.key) ?? null;
    if (op.f === "cas") {
      // The expected value: the current one (a swap) or some other (a miss).
      const history = written.get(op.key) ?? [];
      if (casHit || history.length === 0) op.expect = current;
      else {
        const other = history[Math.floor(rand() * history.length)];
        op.expect = other === current ? null : other;
      }
    }
    if (!effective) continue;
    switch (op.f) {
      case "put":
        state.set(op.key, op.value as KvValue);
        break;
      case "delete":
        state.delete(op.key);
        break;
      case "get":
        if (op.status === "ok") op.value = current;
        break;
      case "cas": {
        const hit = op.expect === current;
        if (hit) state.set(op.key, op.value as KvValue);
        if (op.status === "ok") op.outcome = hit ? "ok" : "failed";
        break;
      }
    }
    if (op.f === "put" || op.f === "cas") {
      const list = written.get(op.key) ?? [];
      list.push(op.value as string);
      written.set(op.key, list);
    }
  }
  return planned.map((p) => p.op);
}

function copy(ops: readonly KvOperation[]): KvOperation[] {
  return ops.map((op) => ({ ...op }));
}

/** A completed get now returns a value nobody wrote. Undefined when there is no completed get. */
export function injectPhantomRead(
  ops: readonly KvOperation[],
  seed: number,
): { ops: KvOperation[]; target: KvOperation } | undefined {
  const out = copy(ops);
  const gets = out.filter((op) => op.f === "get" && op.status === "ok");
  if (gets.length === 0) return undefined;
  const target = gets[Math.floor(prng(seed)() * gets.length)];
  target.value = "never-written";
  return { ops: out, target };
}

function isDefiniteWrite(op: KvOperation): boolean {
  return op.status === "ok" &&
    (op.f === "put" || op.f === "delete" ||
      (op.f === "cas" && op.outcome === "ok"));
}

/**
 * A completed get now returns a value that was overwritten before the get
 * began: its only writer finished before another definite write started, and
 * that write finished before the get started. Undefined when no such triple exists.
 */
export function injectStaleRead(
  ops: readonly KvOperation[],
  seed: number,
): { ops: KvOperation[]; target: KvOperation } | undefined {
  const out = copy(ops);
  const rand = prng(seed);
  const gets = out.filter((op) => op.f === "get" && op.status === "ok");
  const start = Math.floor(rand() * Math.max(1, gets.length));
  for (let k = 0; k < gets.length; k++) {
    const get = gets[(start + k) % gets.length];
    const writes = out.filter((op) =>
      op.key === get.key && isDefiniteWrite(op) &&
      (op.returnTime as number) < get.invokeTime
    );
    let overwrite: KvOperation | undefined;
    for (const w of writes) {
      if (!overwrite || w.invokeTime > overwrite.invokeTime) overwrite = w;
    }
    if (!overwrite) continue;
    const stale = writes.find((w) =>
      w.f !== "delete" && (w.returnTime as number) < overwrite.invokeTime &&
      w.value !== get.value
    );
    if (!stale) continue;
    get.value = stale.value;
    return { ops: out, target: get };
  }
  return undefined;
}
