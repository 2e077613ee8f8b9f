/**
 * A conformance suite for any {@linkcode RaftLog}: run it on your own store
 * to check it keeps the rules the consensus core relies on.
 *
 * It registers its tests through a plain `(name, fn)` function, so it works
 * with `Deno.test`, with `node:test`'s `test`, or with any runner of that
 * shape, and uses only `node:assert/strict` and `fast-check`.
 *
 * @example
 * ```ts ignore
 * import { MemoryLog } from "@raft-io/raft";
 * import { runRaftLogConformance } from "@raft-io/raft/testing";
 *
 * runRaftLogConformance(Deno.test, {
 *   name: "MemoryLog",
 *   create: () => Promise.resolve(new MemoryLog()),
 *   reopen: async (log) => (log as MemoryLog).crash(),
 * });
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import type {
  Entry,
  HardState,
  RaftLog,
  SnapshotMeta,
} from "../log/raft_log.ts";

/**
 * A log refused a mutation that breaks its rules: a `RangeError`, or a typed
 * error with code `LOG_CONTINUITY` (what raft-io's own stores throw).
 */
function continuityError(error: unknown): boolean {
  return error instanceof RangeError ||
    (error instanceof Error &&
      (error as { code?: unknown }).code === "LOG_CONTINUITY");
}

/** Registers one test: `Deno.test`, `node:test`'s `test`, or an adapter. */
export type TestRegistrar = (name: string, fn: () => Promise<void>) => unknown;

/** How the suite makes, restarts and disposes of logs of the store under test. */
export interface RaftLogFactory {
  /** Prefix of every test name (e.g. `"WalLog (deno backend)"`). */
  name: string;
  /** A fresh, empty log. */
  create(): Promise<RaftLog>;
  /**
   * The log a restarted process would find after `log` was synced (the suite
   * always awaits `log.sync()` first). The old instance is not used again.
   * Omit it for a store without durability; restart checks are then skipped.
   */
  reopen?(log: RaftLog): Promise<RaftLog>;
  /** Called once per test with the last log it used (close files, remove data). */
  dispose?(log: RaftLog): Promise<void>;
}

/** Options of {@linkcode runRaftLogConformance}. */
export interface ConformanceOptions {
  /** Runs of the model-based property test (default 60). */
  numRuns?: number;
  /** Most operations per run of the property test (default 40). */
  maxOps?: number;
  /** fast-check seed, for replaying a failure. */
  seed?: number;
}

function entry(
  index: number,
  term: number,
  data: number[] | Uint8Array,
  kind: Entry["kind"] = "normal",
): Entry {
  return {
    index,
    term,
    kind,
    data: data instanceof Uint8Array ? data : new Uint8Array(data),
  };
}

function run(n: number, from: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(entry(from + i, term, [from + i & 0xff, 7, term & 0xff]));
  }
  return out;
}

function plain(e: Entry | undefined): unknown {
  return e === undefined
    ? undefined
    : { index: e.index, term: e.term, kind: e.kind, data: [...e.data] };
}

function plainMeta(m: SnapshotMeta): unknown {
  return { index: m.index, term: m.term, config: [...m.config] };
}

/**
 * Registers the RaftLog conformance tests with `test`.
 *
 * @example
 * ```ts ignore
 * import { test } from "node:test";
 * import { runRaftLogConformance } from "@raft-io/raft/testing";
 * runRaftLogConformance(test, { name: "MyLog", create: async () => new MyLog() });
 * ```
 */
export function runRaftLogConformance(
  test: TestRegistrar,
  factory: RaftLogFactory,
  options: ConformanceOptions = {},
): void {
  const t = (name: string, body: (h: Harness) => Promise<void> | void) =>
    test(`${factory.name}: ${name}`, async () => {
      const h = new Harness(factory, await factory.create());
      try {
        await body(h);
      } finally {
        await h.dispose();
      }
    });
  const durable = (
    name: string,
    body: (h: Harness) => Promise<void> | void,
  ) => {
    if (factory.reopen) t(name, body);
  };

  t("an empty log starts at index 1 with nothing in it", ({ log }) => {
    assert.equal(log.firstIndex(), 1);
    assert.equal(log.lastIndex(), 0);
    assert.equal(log.lastTerm(), 0);
    assert.equal(log.termAt(0), 0);
    assert.equal(log.termAt(1), undefined);
    assert.equal(log.entry(1), undefined);
    assert.deepEqual(log.entries(1, 1), []);
    assert.deepEqual(log.hardState(), { term: 0, vote: 0, commit: 0 });
    assert.equal(log.snapshotMeta().index, 0);
    assert.equal(log.snapshotData().length, 0);
  });

  t(
    "appended entries read back with their index, term, kind and bytes",
    ({ log }) => {
      log.append([
        entry(1, 1, [1, 2, 3]),
        entry(2, 1, [], "config"),
        entry(3, 2, new Uint8Array(300).fill(9)),
      ]);
      assert.equal(log.lastIndex(), 3);
      assert.equal(log.lastTerm(), 2);
      assert.equal(log.termAt(2), 1);
      assert.deepEqual(plain(log.entry(1)), plain(entry(1, 1, [1, 2, 3])));
      assert.deepEqual(plain(log.entry(2)), plain(entry(2, 1, [], "config")));
      assert.deepEqual(log.entries(1, 4).map(plain), [
        plain(entry(1, 1, [1, 2, 3])),
        plain(entry(2, 1, [], "config")),
        plain(entry(3, 2, new Uint8Array(300).fill(9))),
      ]);
    },
  );

  t(
    "append rejects entries that do not continue the log and changes nothing",
    ({ log }) => {
      log.append(run(3, 1, 1));
      assert.throws(() => log.append([entry(5, 1, [])]), continuityError);
      assert.throws(() => log.append([entry(3, 1, [])]), continuityError);
      assert.throws(
        () => log.append([entry(4, 1, []), entry(6, 1, [])]),
        continuityError,
      );
      assert.equal(log.lastIndex(), 3);
    },
  );

  t(
    "truncate removes the suffix and append continues after it",
    ({ log }) => {
      log.append(run(5, 1, 1));
      log.truncate(3);
      assert.equal(log.lastIndex(), 2);
      assert.equal(log.entry(3), undefined);
      log.append([entry(3, 2, [42])]);
      assert.equal(log.termAt(3), 2);
      assert.deepEqual([...log.entry(3)!.data], [42]);
      log.truncate(10); // past the end: nothing to remove
      assert.equal(log.lastIndex(), 3);
    },
  );

  t(
    "entries honours maxBytes but always returns at least one entry",
    ({ log }) => {
      log.append([
        entry(1, 1, new Uint8Array(100)),
        entry(2, 1, new Uint8Array(100)),
        entry(3, 1, new Uint8Array(100)),
      ]);
      assert.equal(log.entries(1, 4, 1).length, 1);
      assert.equal(log.entries(1, 4, 250).length, 2);
      assert.equal(log.entries(1, 4).length, 3);
      assert.equal(log.entries(2, 2, 1).length, 0);
    },
  );

  t("entries outside the held range throw a RangeError", ({ log }) => {
    log.append(run(3, 1, 1));
    assert.throws(() => log.entries(0, 2), RangeError);
    assert.throws(() => log.entries(1, 5), RangeError);
  });

  t("setHardState is visible at once", ({ log }) => {
    log.setHardState({ term: 3, vote: 2, commit: 0 });
    assert.deepEqual(log.hardState(), { term: 3, vote: 2, commit: 0 });
    assert.throws(
      () => log.setHardState({ term: -1, vote: 0, commit: 0 }),
      continuityError,
    );
  });

  t(
    "saveSnapshot records the snapshot and keeps the entries until compact",
    ({ log }) => {
      log.append(run(10, 1, 1));
      log.saveSnapshot(
        { index: 6, term: 1, config: new Uint8Array([1, 2]) },
        new Uint8Array([5, 5]),
      );
      assert.deepEqual(plainMeta(log.snapshotMeta()), {
        index: 6,
        term: 1,
        config: [1, 2],
      });
      assert.deepEqual([...log.snapshotData()], [5, 5]);
      assert.equal(log.firstIndex(), 1);
      assert.ok(log.entry(3));
      assert.throws(() =>
        log.saveSnapshot(
          { index: 7, term: 9, config: new Uint8Array() },
          new Uint8Array(),
        ), continuityError);
    },
  );

  t(
    "compact drops entries up to the snapshot and the snapshot's term still answers",
    ({ log }) => {
      log.append(run(10, 1, 1));
      assert.throws(() => log.compact(4), continuityError); // no snapshot covers it
      log.saveSnapshot(
        { index: 6, term: 1, config: new Uint8Array() },
        new Uint8Array([1]),
      );
      log.compact(4);
      assert.equal(log.firstIndex(), 5);
      assert.equal(log.entry(4), undefined);
      assert.ok(log.entry(5));
      log.compact(6);
      assert.equal(log.firstIndex(), 7);
      assert.equal(log.termAt(6), 1);
      assert.throws(() => log.compact(7), continuityError);
      assert.throws(() => log.truncate(6), continuityError);
    },
  );

  t(
    "applySnapshot replaces the log, continues after it and raises commit",
    ({ log }) => {
      log.append(run(5, 1, 1));
      log.setHardState({ term: 2, vote: 1, commit: 3 });
      log.applySnapshot(
        { index: 20, term: 4, config: new Uint8Array([3]) },
        new Uint8Array([8, 8, 8]),
      );
      assert.equal(log.firstIndex(), 21);
      assert.equal(log.lastIndex(), 20);
      assert.equal(log.lastTerm(), 4);
      assert.equal(log.termAt(20), 4);
      assert.equal(log.entry(3), undefined);
      assert.equal(log.hardState().commit, 20);
      assert.deepEqual([...log.snapshotData()], [8, 8, 8]);
      log.append([entry(21, 4, [1])]);
      assert.equal(log.lastIndex(), 21);
    },
  );

  durable("everything synced survives a restart byte for byte", async (h) => {
    const big = new Uint8Array(5000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    h.log.append([
      entry(1, 1, big),
      entry(2, 1, [], "config"),
      ...run(50, 3, 2),
    ]);
    h.log.truncate(40);
    h.log.append(run(5, 40, 3));
    h.log.setHardState({ term: 3, vote: 2, commit: 30 });
    h.log.saveSnapshot(
      { index: 20, term: 2, config: new Uint8Array([4, 2]) },
      new Uint8Array([6, 6]),
    );
    h.log.compact(10);
    const expected = snapshotOf(h.log);
    await h.reopen();
    assert.deepEqual(snapshotOf(h.log), expected);
    h.log.append([entry(45, 3, [1])]);
    await h.log.sync();
    assert.equal(h.log.lastIndex(), 45);
  });

  durable(
    "concurrent sync calls all resolve and cover every mutation before them",
    async (h) => {
      h.log.append(run(10, 1, 1));
      const first = h.log.sync();
      h.log.append(run(10, 11, 1));
      h.log.setHardState({ term: 1, vote: 1, commit: 5 });
      const second = h.log.sync();
      const third = h.log.sync();
      h.log.append(run(5, 21, 1));
      const fourth = h.log.sync();
      await Promise.all([first, second, third, fourth]);
      const expected = snapshotOf(h.log);
      await h.reopen();
      assert.deepEqual(snapshotOf(h.log), expected);
    },
  );

  durable(
    "a snapshot applied from a leader survives a restart with its data",
    async (h) => {
      h.log.append(run(30, 1, 1));
      await h.log.sync();
      h.log.applySnapshot({
        index: 100,
        term: 7,
        config: new Uint8Array([1, 2, 3]),
      }, new Uint8Array(2000).fill(3));
      h.log.append(run(3, 101, 7));
      const expected = snapshotOf(h.log);
      await h.reopen();
      assert.deepEqual(snapshotOf(h.log), expected);
    },
  );

  durable(
    "a log restarted many times keeps growing where it left off",
    async (h) => {
      for (let round = 0; round < 5; round++) {
        const from = h.log.lastIndex() + 1;
        h.log.append(run(20, from, round + 1));
        await h.reopen();
        assert.equal(h.log.lastIndex(), from + 19);
        assert.equal(h.log.lastTerm(), round + 1);
      }
    },
  );

  t(
    "random operation sequences match a simple model" +
      (factory.reopen ? ", across restarts" : ""),
    async (h) => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(opArbitrary, {
            minLength: 1,
            maxLength: options.maxOps ?? 40,
          }),
          async (ops) => {
            await h.fresh();
            const model = new Model();
            for (const op of ops) {
              await applyBoth(h, model, op, factory.reopen !== undefined);
              assert.deepEqual(
                snapshotOf(h.log),
                model.view(),
                `after ${JSON.stringify(op)}`,
              );
            }
          },
        ),
        { numRuns: options.numRuns ?? 60, seed: options.seed },
      );
    },
  );
}

/** Everything observable about a log, as plain data. */
function snapshotOf(log: RaftLog): unknown {
  const first = log.firstIndex();
  const last = log.lastIndex();
  const snap = log.snapshotMeta();
  const terms: (number | undefined)[] = [];
  for (let i = Math.min(snap.index, first); i <= last; i++) {
    terms.push(log.termAt(i));
  }
  return {
    first,
    last,
    lastTerm: log.lastTerm(),
    terms,
    entries: log.entries(first, last + 1).map(plain),
    hardState: log.hardState(),
    snapshot: plainMeta(snap),
    snapshotData: [...log.snapshotData()],
  };
}

class Harness {
  log: RaftLog;
  #factory: RaftLogFactory;
  constructor(factory: RaftLogFactory, log: RaftLog) {
    this.#factory = factory;
    this.log = log;
  }
  async reopen(): Promise<void> {
    await this.log.sync();
    this.log = await this.#factory.reopen!(this.log);
  }
  async fresh(): Promise<void> {
    await this.dispose();
    this.log = await this.#factory.create();
  }
  async dispose(): Promise<void> {
    if (this.#factory.dispose) await this.#factory.dispose(this.log);
    else await this.log.close();
  }
}

type Op =
  | {
    type: "append";
    count: number;
    termBump: number;
    size: number;
    config: boolean;
  }
  | { type: "truncate"; at: number }
  | { type: "hardState"; term: number; vote: number; commit: number }
  | { type: "saveSnapshot"; at: number; data: number }
  | { type: "applySnapshot"; ahead: number; termBump: number; data: number }
  | { type: "compact"; at: number }
  | { type: "sync" }
  | { type: "reopen" };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      type: fc.constant("append" as const),
      count: fc.integer({ min: 1, max: 8 }),
      termBump: fc.integer({ min: 0, max: 1 }),
      size: fc.integer({ min: 0, max: 40 }),
      config: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("truncate" as const),
      at: fc.nat(1000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("hardState" as const),
      term: fc.nat(50),
      vote: fc.nat(5),
      commit: fc.nat(200),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("saveSnapshot" as const),
      at: fc.nat(1000),
      data: fc.nat(64),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("applySnapshot" as const),
      ahead: fc.integer({ min: -3, max: 20 }),
      termBump: fc.integer({ min: 0, max: 2 }),
      data: fc.nat(64),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("compact" as const),
      at: fc.nat(1000),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ type: "sync" as const }) },
  { weight: 2, arbitrary: fc.constant({ type: "reopen" as const }) },
);

/** The reference model: plain arrays, no cleverness. */
class Model {
  first = 1;
  entries: Entry[] = [];
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshot: SnapshotMeta = { index: 0, term: 0, config: new Uint8Array(0) };
  snapshotData: Uint8Array = new Uint8Array(0);

  last(): number {
    return this.first + this.entries.length - 1;
  }
  lastTerm(): number {
    return this.entries.length
      ? this.entries[this.entries.length - 1].term
      : this.snapshot.term;
  }
  termAt(i: number): number | undefined {
    if (i === this.snapshot.index) return this.snapshot.term;
    if (i === 0) return 0;
    return this.entries[i - this.first]?.term;
  }
  view(): unknown {
    const terms: (number | undefined)[] = [];
    for (
      let i = Math.min(this.snapshot.index, this.first);
      i <= this.last();
      i++
    ) terms.push(this.termAt(i));
    return {
      first: this.first,
      last: this.last(),
      lastTerm: this.lastTerm(),
      terms,
      entries: this.entries.map(plain),
      hardState: { ...this.hardState },
      snapshot: plainMeta(this.snapshot),
      snapshotData: [...this.snapshotData],
    };
  }
}

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed * 131 + i * 7) & 0xff;
  return b;
}

async function applyBoth(
  h: Harness,
  m: Model,
  op: Op,
  durable: boolean,
): Promise<void> {
  const log = h.log;
  switch (op.type) {
    case "append": {
      const term = Math.max(m.lastTerm(), 1) + op.termBump;
      const es: Entry[] = [];
      for (let i = 0; i < op.count; i++) {
        const index = m.last() + 1 + i;
        es.push(
          entry(
            index,
            term,
            bytes(op.size, index),
            op.config && i === 0 ? "config" : "normal",
          ),
        );
      }
      log.append(es);
      m.entries.push(...es);
      return;
    }
    case "truncate": {
      // Mostly valid positions, sometimes one the snapshot covers (must throw).
      const span = m.last() + 2 - m.first;
      const from = m.first - 1 + (op.at % (span + 1));
      if (from <= m.snapshot.index || from < m.first) {
        assert.throws(() => log.truncate(from), continuityError);
        return;
      }
      log.truncate(from);
      if (from <= m.last()) m.entries.length = from - m.first;
      return;
    }
    case "hardState":
      log.setHardState({ term: op.term, vote: op.vote, commit: op.commit });
      m.hardState = { term: op.term, vote: op.vote, commit: op.commit };
      return;
    case "saveSnapshot": {
      const span = m.last() + 1 - m.snapshot.index;
      const index = m.snapshot.index + (op.at % Math.max(span, 1));
      const term = m.termAt(index);
      const meta = {
        index,
        term: term ?? 1,
        config: bytes(op.data % 5, op.data),
      };
      const data = bytes(op.data, index);
      if (term === undefined || index === 0) {
        assert.throws(() => log.saveSnapshot(meta, data), continuityError);
        return;
      }
      log.saveSnapshot(meta, data);
      m.snapshot = meta;
      m.snapshotData = data;
      return;
    }
    case "applySnapshot": {
      const index = Math.max(1, m.last() + op.ahead);
      const meta = {
        index,
        term: Math.max(m.lastTerm(), 1) + op.termBump,
        config: bytes(3, op.data),
      };
      const data = bytes(op.data, index + 1);
      log.applySnapshot(meta, data);
      m.snapshot = meta;
      m.snapshotData = data;
      m.entries = [];
      m.first = index + 1;
      if (m.hardState.commit < index) {
        m.hardState = { ...m.hardState, commit: index };
      }
      return;
    }
    case "compact": {
      const upTo = m.first - 1 + (op.at % (m.snapshot.index - m.first + 3));
      if (upTo > m.snapshot.index) {
        assert.throws(() => log.compact(upTo), continuityError);
        return;
      }
      log.compact(upTo);
      if (upTo >= m.first) {
        m.entries.splice(0, upTo - m.first + 1);
        m.first = upTo + 1;
      }
      return;
    }
    case "sync":
      await log.sync();
      return;
    case "reopen":
      if (durable) await h.reopen();
      else await log.sync();
      return;
    default: {
      const never: never = op;
      throw new Error(`unknown op ${JSON.stringify(never)}`);
    }
  }
}
