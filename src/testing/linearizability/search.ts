/**
 * The Wing–Gong search with Lowe's improvements (G. Lowe, "Testing for
 * linearizability", 2017): events in a doubly linked list, operations lifted
 * out when linearized and put back on backtrack (dancing links), and a memo
 * of visited (linearized set, model state) configurations so that no
 * configuration is explored twice.
 *
 * @module
 */

import { type EncodedPartition, Op } from "./partition.ts";

/** How one partition's search ended. */
export type SearchOutcome = "ok" | "illegal" | "time" | "memory";

/** Limits for one search. */
export interface SearchBudget {
  /** `performance.now()` value past which the search gives up with `"time"`. */
  deadline: number;
  /** Memo size past which the search gives up with `"memory"`. */
  maxMemoEntries: number;
}

/** The result of {@linkcode searchPartition}. */
export interface SearchResult {
  /** The outcome. */
  outcome: SearchOutcome;
  /** Configurations memoized. */
  memoEntries: number;
  /**
   * When illegal: the operation whose return the search could never get
   * past in any order, the furthest such in time. The key's history up to
   * just before that return is linearizable, so the shortest illegal prefix
   * ends at this return or later.
   */
  frontier?: number;
}

/** How often (in loop iterations) the clock is read. */
const CLOCK_INTERVAL = 1024;

const FULL = 0xffffffff;

/**
 * The visited configurations, stored in one flat arena: no per-entry
 * objects, open addressing with linear probing.
 *
 * A configuration is (linearized set, state). Definite operations are
 * numbered in invocation order, so their linearized set is a run of full
 * bitset words (`lo` of them) and a short window of words after it: only the
 * window is stored, not the whole bitset. Indefinite operations have their
 * own small bitset.
 *
 * One configuration dominates another with the same state when it
 * linearized the same definite operations and a subset of the indefinite
 * ones: it keeps every option the other has. The hash covers only the
 * definite part, so a dominating entry lies on the probe sequence of the
 * configurations it dominates; `add` refuses those.
 */
class MemoTable {
  readonly #indefiniteWords: number;
  #arena = new Uint32Array(1 << 16);
  #used = 0;
  #offsets = new Float64Array(1024);
  #hashes = new Uint32Array(1024);
  #table = new Int32Array(2048).fill(-1);
  #mask = 2047;
  count = 0;

  constructor(indefiniteWords: number) {
    this.#indefiniteWords = indefiniteWords;
  }

  /**
   * Adds the configuration; returns false when it, or a configuration that
   * dominates it, is already present.
   */
  add(
    definiteBits: Uint32Array,
    lo: number,
    hi: number,
    indefiniteBits: Uint32Array,
    state: number,
    zobrist: number,
  ): boolean {
    const hash = mix(zobrist ^ Math.imul(lo + 1, 0x27d4eb2d), state);
    const len = hi >= lo ? hi - lo + 1 : 0;
    const iw = this.#indefiniteWords;
    let slot = hash & this.#mask;
    for (;;) {
      const entry = this.#table[slot];
      if (entry < 0) break;
      if (this.#hashes[entry] === hash) {
        const arena = this.#arena;
        const off = this.#offsets[entry];
        if (
          arena[off] === state && arena[off + 1] === lo &&
          arena[off + 2] === len
        ) {
          let dominated = true;
          for (let w = 0; w < len; w++) {
            if (arena[off + 3 + w] !== definiteBits[lo + w]) {
              dominated = false;
              break;
            }
          }
          if (dominated) {
            const base = off + 3 + len;
            for (let w = 0; w < iw; w++) {
              if ((arena[base + w] & ~indefiniteBits[w]) !== 0) {
                dominated = false;
                break;
              }
            }
          }
          if (dominated) return false;
        }
      }
      slot = (slot + 1) & this.#mask;
    }
    const size = 3 + len + iw;
    if (this.#used + size > this.#arena.length) {
      const arena = new Uint32Array(
        Math.max(this.#arena.length * 2, this.#used + size),
      );
      arena.set(this.#arena);
      this.#arena = arena;
    }
    const index = this.count;
    if (index === this.#hashes.length) {
      const offsets = new Float64Array(index * 2);
      offsets.set(this.#offsets);
      this.#offsets = offsets;
      const hashes = new Uint32Array(index * 2);
      hashes.set(this.#hashes);
      this.#hashes = hashes;
    }
    const arena = this.#arena;
    const off = this.#used;
    arena[off] = state;
    arena[off + 1] = lo;
    arena[off + 2] = len;
    for (let w = 0; w < len; w++) arena[off + 3 + w] = definiteBits[lo + w];
    for (let w = 0; w < iw; w++) arena[off + 3 + len + w] = indefiniteBits[w];
    this.#used += size;
    this.#offsets[index] = off;
    this.#hashes[index] = hash;
    this.#table[slot] = index;
    this.count++;
    if (this.count * 2 > this.#table.length) this.#rehash();
    return true;
  }

  #rehash(): void {
    const table = new Int32Array(this.#table.length * 2).fill(-1);
    const mask = table.length - 1;
    for (let i = 0; i < this.count; i++) {
      let slot = this.#hashes[i] & mask;
      while (table[slot] >= 0) slot = (slot + 1) & mask;
      table[slot] = i;
    }
    this.#table = table;
    this.#mask = mask;
  }
}

function mix(zobrist: number, state: number): number {
  let h = (zobrist ^ Math.imul(state + 0x9e3779b9, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Per-operation random words; the XOR of a set's words hashes the set incrementally. */
function zobristWords(n: number): Uint32Array {
  const out = new Uint32Array(n);
  let s = 0x2545f491;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = s >>> 0;
  }
  return out;
}

/** Applies operation `i` to `state`: the next state, or -1 when the operation's result is impossible. */
function step(p: EncodedPartition, i: number, state: number): number {
  switch (p.code[i]) {
    case Op.put:
      return p.arg[i];
    case Op.delete:
      return 0;
    case Op.get:
      return state === p.cmp[i] ? state : -1;
    case Op.casOk:
      return state === p.cmp[i] ? p.arg[i] : -1;
    case Op.casFailed:
      return state !== p.cmp[i] ? state : -1;
    case Op.casMaybe:
      return state === p.cmp[i] ? p.arg[i] : state;
    default:
      throw new Error(`unknown opcode ${p.code[i]}`);
  }
}

/**
 * Decides whether one key's history is linearizable with respect to the
 * register model, within the budget. Indefinite operations need not be
 * linearized (they may never have happened); the search succeeds once every
 * definite operation is.
 *
 * Beyond Lowe's algorithm it prunes by facts of the model: a read-only
 * operation legal now may be linearized now without branching; an
 * indefinite operation is only tried where it changes the state, only the
 * earliest of interchangeable twins, and only right before an operation
 * whose outcome it changes (such a write can always be moved there); and
 * configurations dominated by a visited one are not explored (see
 * {@linkcode MemoTable}).
 */
export function searchPartition(
  p: EncodedPartition,
  budget: SearchBudget,
): SearchResult {
  const n = p.ops.length;
  const d = p.definiteCount;
  if (d === 0) return { outcome: "ok", memoEntries: 0 };
  // Nodes 0..2n-1 are events; node 2n is the list head.
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = head;
  const eventPos = new Int32Array(2 * n);
  let frontier = -1;
  for (let e = 0; e < p.events.length; e++) {
    const node = p.events[e];
    eventPos[node] = e;
    next[last] = node;
    prev[node] = last;
    last = node;
  }
  const { code, cmp, twin, definite } = p;
  const zobrist = zobristWords(d);
  const definiteWords = (d + 31) >>> 5;
  const dbits = new Uint32Array(definiteWords);
  const ibits = new Uint32Array((n - d + 31) >>> 5);
  const memo = new MemoTable(ibits.length);
  const stackOp = new Int32Array(n);
  const stackState = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  const stackHi = new Int32Array(n);
  let sp = 0;
  let state = p.initial;
  let hash = 0;
  let lo = 0;
  let hi = -1;
  let remaining = d;
  let node = -1;
  let fresh = true;
  // Definite candidates are tried first (pass 0), indefinite ones after
  // (pass 1): the branch without an optional operation is explored first, so
  // its configurations are in the memo to dominate the branches with it.
  let pass = 0;
  const hasIndefinite = d < n;
  let iterations = 0;

  /** Marks `op` linearized; returns false (and undoes it) when the memo refuses the result. */
  const tryLinearize = (op: number, nextState: number): boolean => {
    let nextHash = hash;
    let nextHi = hi;
    if (op < d) {
      dbits[op >>> 5] |= 1 << (op & 31);
      nextHash ^= zobrist[op];
      if ((op >>> 5) > nextHi) nextHi = op >>> 5;
      while (lo < definiteWords && dbits[lo] === FULL) lo++;
    } else {
      const j = op - d;
      ibits[j >>> 5] |= 1 << (j & 31);
    }
    if (
      memo.add(
        dbits,
        lo,
        nextHi,
        ibits,
        nextState,
        nextHash,
      )
    ) {
      stackHi[sp] = hi;
      hash = nextHash;
      hi = nextHi;
      return true;
    }
    unmark(op);
    return false;
  };
  const unmark = (op: number): void => {
    if (op < d) {
      const w = op >>> 5;
      dbits[w] &= ~(1 << (op & 31));
      if (w < lo) lo = w;
    } else {
      const j = op - d;
      ibits[j >>> 5] &= ~(1 << (j & 31));
    }
  };
  /**
   * Whether moving the state from `st` to `w` by an optional (indefinite)
   * write changes what some candidate does next: a get or successful cas
   * that needs `w`, a failed cas that needs anything but `st`, or an
   * indefinite cas that would swap from `w`. In some successful order, if
   * there is one, each optional write sits right before such an operation
   * (it can be moved later up to there), so it is tried only there.
   */
  const writeIsUseful = (w: number, st: number): boolean => {
    for (let c = next[head]; c >= 0 && (c & 1) === 0; c = next[c]) {
      const o = c >>> 1;
      const k = code[o];
      if (
        k === Op.casFailed
          ? cmp[o] === st
          : (k === Op.get || k === Op.casOk || k === Op.casMaybe) &&
            cmp[o] === w
      ) {
        return true;
      }
    }
    return false;
  };
  const lift = (call: number, op: number): void => {
    next[prev[call]] = next[call];
    if (next[call] >= 0) prev[next[call]] = prev[call];
    if (definite[op] === 1) {
      remaining--;
      const ret = call + 1;
      next[prev[ret]] = next[ret];
      if (next[ret] >= 0) prev[next[ret]] = prev[ret];
    }
  };

  for (;;) {
    if (remaining === 0) return { outcome: "ok", memoEntries: memo.count };
    if (++iterations === CLOCK_INTERVAL) {
      iterations = 0;
      if (performance.now() > budget.deadline) {
        return { outcome: "time", memoEntries: memo.count };
      }
    }
    if (memo.count > budget.maxMemoEntries) {
      return { outcome: "memory", memoEntries: memo.count };
    }
    if (fresh) {
      // A new configuration. A read-only operation (get, failed cas) that is
      // legal now can be linearized now without loss of generality: moving
      // it to the front of any successful completion keeps that completion
      // legal. So take it and do not branch here.
      fresh = false;
      let forced = -1;
      for (let c = next[head]; c >= 0 && (c & 1) === 0; c = next[c]) {
        const o = c >>> 1;
        const k = code[o];
        if (
          (k === Op.get && state === cmp[o]) ||
          (k === Op.casFailed && state !== cmp[o])
        ) {
          forced = c;
          break;
        }
      }
      if (forced >= 0) {
        const op = forced >>> 1;
        if (tryLinearize(op, state)) {
          stackOp[sp] = op;
          stackState[sp] = state;
          stackForced[sp] = 1;
          sp++;
          lift(forced, op);
          fresh = true;
          continue;
        }
        // Explored before and failed: so does this configuration.
        node = -1;
      } else {
        node = next[head];
        pass = 0;
      }
    }
    if ((node < 0 || (node & 1) === 1) && pass === 0 && hasIndefinite) {
      pass = 1;
      node = next[head];
      continue;
    }
    if (node < 0 || (node & 1) === 1) {
      // A return whose operation is not linearized (or the end): this
      // configuration fails; undo linearizations up to the last real choice.
      if (node >= 0 && eventPos[node] > frontier) frontier = eventPos[node];
      let wasForced: number;
      do {
        if (sp === 0) {
          return {
            outcome: "illegal",
            memoEntries: memo.count,
            frontier: frontier >= 0 ? p.events[frontier] >>> 1 : undefined,
          };
        }
        sp--;
        const op = stackOp[sp];
        wasForced = stackForced[sp];
        state = stackState[sp];
        hi = stackHi[sp];
        unmark(op);
        if (op < d) hash ^= zobrist[op];
        const call = 2 * op;
        if (definite[op] === 1) {
          remaining++;
          const ret = call + 1;
          next[prev[ret]] = ret;
          if (next[ret] >= 0) prev[next[ret]] = ret;
        }
        next[prev[call]] = call;
        if (next[call] >= 0) prev[next[call]] = call;
        node = next[call];
        pass = definite[op] === 1 ? 0 : 1;
      } while (wasForced === 1);
      continue;
    }
    const op = node >>> 1;
    if (definite[op] === pass) {
      // Not this pass's kind (definite[op] is 1 in pass 1, 0 in pass 0).
      node = next[node];
      continue;
    }
    const nextState = step(p, op, state);
    // An indefinite operation without effect here is no better than never;
    // one whose earlier twin is still available is no better than the twin;
    // and one is only worth placing right before an operation it affects.
    if (
      nextState >= 0 &&
      (op < d ||
        (nextState !== state &&
          (twin[op] < 0 ||
            (ibits[(twin[op] - d) >>> 5] & (1 << ((twin[op] - d) & 31))) !==
              0) &&
          writeIsUseful(nextState, state))) &&
      tryLinearize(op, nextState)
    ) {
      stackOp[sp] = op;
      stackState[sp] = state;
      stackForced[sp] = 0;
      sp++;
      state = nextState;
      lift(node, op);
      fresh = true;
      continue;
    }
    node = next[node];
  }
}
