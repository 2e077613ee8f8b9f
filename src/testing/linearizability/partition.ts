/**
 * The key-value register model, encoded for the search: one partition per
 * key (P-compositionality, Herlihy & Wing §3.3), values interned to small
 * integers (0 = absent), operations reduced to an opcode.
 *
 * @module
 */

import type { KvOperation, KvValue } from "./history.ts";

/** Opcodes of encoded operations; the search's step function switches on them. */
export const Op = {
  /** put(v): the state becomes v. */
  put: 0,
  /** delete: the state becomes absent. */
  delete: 1,
  /** A completed get: legal only when the state equals the value read. */
  get: 2,
  /** A cas that swapped: legal only when the state equals `expect`. */
  casOk: 3,
  /** A cas whose comparison failed: legal only when the state differs from `expect`. */
  casFailed: 4,
  /** An indefinite cas: swaps when the state equals `expect`, else no effect. */
  casMaybe: 5,
} as const;

/** One key's history, encoded for {@linkcode searchPartition}. */
export interface EncodedPartition {
  /** The key. */
  key: string;
  /** The operations kept: definite ones first, each group in invocation order (index = operation number). */
  ops: KvOperation[];
  /** Opcode per operation ({@linkcode Op}). */
  code: Uint8Array;
  /** Value id written (put, cas) per operation. */
  arg: Int32Array;
  /** Value id compared (cas) or read (get) per operation. */
  cmp: Int32Array;
  /** 1 when the operation has a return (must be linearized), 0 when indefinite. */
  definite: Uint8Array;
  /** Number of definite operations. */
  definiteCount: number;
  /**
   * Events in time order as node ids: `2i` is the call of operation `i`,
   * `2i + 1` its return (definite operations only).
   */
  events: Int32Array;
  /**
   * For an indefinite operation, the previous indefinite operation (in
   * invocation order) with the same opcode and arguments, or -1. Such twins
   * are interchangeable once both are invoked, so the search only ever
   * linearizes the earliest one still available.
   */
  twin: Int32Array;
  /** The state before the first operation (a value id; 0 = absent). */
  initial: number;
}

/** The id shared by every value that no operation reads or expects. */
const UNOBSERVED = 0x7fffffff;

/** Interns values of one key to integers: 0 is absent, others from 1. */
class ValueTable {
  #ids = new Map<string, number>();

  id(value: KvValue | null | undefined): number {
    if (value === null || value === undefined) return 0;
    const k = typeof value === "string"
      ? "s" + value
      : typeof value === "number"
      ? "n" + value
      : "b" + value;
    let id = this.#ids.get(k);
    if (id === undefined) {
      id = this.#ids.size + 1;
      this.#ids.set(k, id);
    }
    return id;
  }
}

/** Groups operations by key, keeping each key's operations in input order. */
export function partitionByKey(
  ops: readonly KvOperation[],
): Map<string, KvOperation[]> {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) {
      list = [];
      byKey.set(op.key, list);
    }
    list.push(op);
  }
  return byKey;
}

/**
 * Encodes one key's operations. Drops what cannot matter: failed operations
 * (they did not happen), indefinite gets (no effect, no constraint), and
 * indefinite writes whose value nothing ever observes (no get reads it, no
 * cas expects it, and no cas on the key failed its comparison): choosing
 * "never" for such a write is always at least as good as any placement.
 */
export function encodePartition(
  key: string,
  ops: readonly KvOperation[],
  initialValue: KvValue | null = null,
): EncodedPartition {
  const values = new ValueTable();
  const observed = new Set<number>();
  let anyFailedCas = false;
  for (const op of ops) {
    if (op.status === "fail") continue;
    if (op.f === "get" && op.status === "ok") observed.add(values.id(op.value));
    if (op.f === "cas") {
      observed.add(values.id(op.expect));
      if (op.status === "ok" && op.outcome === "failed") anyFailedCas = true;
    }
  }
  const kept: KvOperation[] = [];
  for (const op of ops) {
    if (op.status === "fail") continue;
    if (op.status === "info") {
      if (op.f === "get") continue;
      const written = op.f === "delete" ? 0 : values.id(op.value);
      if (!anyFailedCas && !observed.has(written)) continue;
    }
    kept.push(op);
  }
  // Values nothing compares against are interchangeable: writing one or
  // another leads to equivalent states, so they share one id.
  const canonical = (value: KvValue | null | undefined): number => {
    const id = values.id(value);
    return id === 0 || observed.has(id) ? id : UNOBSERVED;
  };
  const initial = canonical(initialValue);
  const n = kept.length;
  const code = new Uint8Array(n);
  const arg = new Int32Array(n);
  const cmp = new Int32Array(n);
  const definite = new Uint8Array(n);
  const returnTime = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const op = kept[i];
    const isDefinite = op.status === "ok";
    definite[i] = isDefinite ? 1 : 0;
    returnTime[i] = isDefinite ? op.returnTime as number : Infinity;
    switch (op.f) {
      case "put":
        code[i] = Op.put;
        arg[i] = canonical(op.value);
        break;
      case "delete":
        code[i] = Op.delete;
        break;
      case "get":
        code[i] = Op.get;
        cmp[i] = values.id(op.value);
        break;
      case "cas":
        code[i] = !isDefinite
          ? Op.casMaybe
          : op.outcome === "failed"
          ? Op.casFailed
          : Op.casOk;
        arg[i] = canonical(op.value);
        cmp[i] = values.id(op.expect);
        break;
    }
  }
  closeObservedWindows(kept, code, arg, cmp, definite, returnTime, initial);
  // Number definite operations first, each group in invocation order: the
  // linearized definite set is then a run of full bitset words followed by
  // a short window, which the memo stores compactly.
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) =>
    definite[b] - definite[a] || kept[a].invokeTime - kept[b].invokeTime ||
    a - b
  );
  const p: EncodedPartition = {
    key,
    ops: order.map((i) => kept[i]),
    code: new Uint8Array(n),
    arg: new Int32Array(n),
    cmp: new Int32Array(n),
    definite: new Uint8Array(n),
    definiteCount: 0,
    events: new Int32Array(0),
    twin: new Int32Array(n).fill(-1),
    initial,
  };
  const times: { node: number; time: number; isReturn: number }[] = [];
  const lastOfClass = new Map<string, number>();
  for (let to = 0; to < n; to++) {
    const from = order[to];
    p.code[to] = code[from];
    p.arg[to] = arg[from];
    p.cmp[to] = cmp[from];
    p.definite[to] = definite[from];
    times.push({ node: 2 * to, time: kept[from].invokeTime, isReturn: 0 });
    if (definite[from] === 1) {
      p.definiteCount++;
      times.push({ node: 2 * to + 1, time: returnTime[from], isReturn: 1 });
    } else {
      const cls = `${code[from]}:${arg[from]}:${cmp[from]}`;
      p.twin[to] = lastOfClass.get(cls) ?? -1;
      lastOfClass.set(cls, to);
    }
  }
  // Calls sort before returns at equal times: such operations count as concurrent.
  times.sort((a, b) =>
    a.time - b.time || a.isReturn - b.isReturn || a.node - b.node
  );
  p.events = Int32Array.from(times, (t) => t.node);
  return p;
}

/**
 * An indefinite write of a value that only it writes, and that a completed
 * operation observes (a get reads it, a successful cas expects it), must
 * have taken effect before the first such observer returned. Turning it into
 * a definite operation with that return time adds only a constraint every
 * legal order already meets, and stops it from doubling the search space
 * for the rest of the history.
 */
function closeObservedWindows(
  kept: readonly KvOperation[],
  code: Uint8Array,
  arg: Int32Array,
  cmp: Int32Array,
  definite: Uint8Array,
  returnTime: Float64Array,
  initial: number,
): void {
  const n = kept.length;
  const writers = new Map<number, number>();
  const firstObserved = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    if (code[i] === Op.put || code[i] === Op.casOk || code[i] === Op.casMaybe) {
      writers.set(arg[i], (writers.get(arg[i]) ?? 0) + 1);
    }
    if (definite[i] === 1 && (code[i] === Op.get || code[i] === Op.casOk)) {
      const seen = firstObserved.get(cmp[i]);
      if (seen === undefined || returnTime[i] < seen) {
        firstObserved.set(cmp[i], returnTime[i]);
      }
    }
  }
  for (let i = 0; i < n; i++) {
    if (definite[i] === 1 || (code[i] !== Op.put && code[i] !== Op.casMaybe)) {
      continue;
    }
    const v = arg[i];
    if (v === 0 || v === UNOBSERVED || v === initial || writers.get(v) !== 1) {
      continue;
    }
    const by = firstObserved.get(v);
    if (by === undefined || by < kept[i].invokeTime) continue;
    definite[i] = 1;
    returnTime[i] = by;
    if (code[i] === Op.casMaybe) code[i] = Op.casOk;
  }
}
