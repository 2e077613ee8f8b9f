/** Test helper: terse builders for hand-made key-value histories. */

import type { KvOperation, KvValue } from "../../src/testing/mod.ts";

let nextId = 1;
let nextProcess = 1;

function base(
  f: KvOperation["f"],
  key: string,
  window: [number, number],
): KvOperation {
  return {
    id: nextId++,
    process: nextProcess++,
    f,
    key,
    status: "ok",
    invokeTime: window[0],
    returnTime: window[1],
  };
}

/** A completed put of `value` to `key` between the two times. */
export function put(
  key: string,
  value: KvValue,
  window: [number, number],
): KvOperation {
  return { ...base("put", key, window), value };
}

/** A completed get of `key` that returned `value` (null: absent). */
export function get(
  key: string,
  value: KvValue | null,
  window: [number, number],
): KvOperation {
  return { ...base("get", key, window), value };
}

/** A completed delete of `key`. */
export function del(key: string, window: [number, number]): KvOperation {
  return base("delete", key, window);
}

/** A completed compare-and-set of `key` from `expect` to `value`. */
export function cas(
  key: string,
  expect: KvValue | null,
  value: KvValue,
  outcome: "ok" | "failed",
  window: [number, number],
): KvOperation {
  return { ...base("cas", key, window), expect, value, outcome };
}

/** The same operation with an unknown outcome (its window never closes). */
export function indefinite(op: KvOperation): KvOperation {
  const out: KvOperation = { ...op, status: "info" };
  delete out.returnTime;
  delete out.outcome;
  if (out.f === "get") delete out.value;
  return out;
}

/** The same operation reported as definitely not having happened. */
export function failed(op: KvOperation): KvOperation {
  const out: KvOperation = { ...op, status: "fail" };
  delete out.outcome;
  if (out.f === "get") delete out.value;
  return out;
}
