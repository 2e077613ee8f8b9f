/**
 * {@linkcode CowMap}: a string-keyed map that can be frozen in O(1) while
 * writes go on, for snapshots taken off the apply loop.
 *
 * @module
 */

/** Marks a key deleted in an overlay layer (compared by identity). */
const TOMBSTONE: unique symbol = Symbol("deleted");
type Slot<V> = V | typeof TOMBSTONE;

/**
 * A consistent, unchanging view of a {@linkcode CowMap} as it was when
 * {@linkcode CowMap.freeze} was called.
 */
export interface FrozenMap<V> {
  /** Number of keys in the view. */
  readonly size: number;
  /** The view's entries (each key once); valid until `release`. */
  entries(): IterableIterator<[string, V]>;
  /** Ends the view (idempotent); the map folds its overlays once no view is left. */
  release(): void;
}

/**
 * A map whose state can be frozen at once. Copy-on-write in layers: layer 0
 * is the base; `freeze()` makes every current layer read-only (the view
 * holds them) and sends later writes to a new overlay layer, where a
 * deletion is a tombstone. Reads look from the top layer down. When the
 * last view is released the overlays are folded into the base (O(writes
 * made meanwhile), synchronously), so with no view outstanding it is one
 * plain `Map`.
 *
 * Views nest: a `freeze()` while others are outstanding gets its own
 * consistent view; the layers pile up until every view is released.
 *
 * @example
 * ```ts
 * import { CowMap } from "./cow_map.ts";
 * const map = new CowMap<number>();
 * map.set("a", 1);
 * const view = map.freeze();
 * map.set("a", 2);
 * [...view.entries()]; // [["a", 1]]
 * view.release();
 * map.get("a"); // 2
 * ```
 */
export class CowMap<V> {
  #layers: Map<string, Slot<V>>[] = [new Map()];
  #top: Map<string, Slot<V>> = this.#layers[0];
  #size = 0;
  #views = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** The value of `key`, or undefined. */
  get(key: string): V | undefined {
    const layers = this.#layers;
    if (layers.length === 1) return layers[0].get(key) as V | undefined;
    for (let i = layers.length - 1; i >= 0; i--) {
      const v = layers[i].get(key);
      if (v !== undefined) return v === TOMBSTONE ? undefined : v;
    }
    return undefined;
  }

  /** Sets `key`; returns the value it replaced, if any. */
  set(key: string, value: V): V | undefined {
    const previous = this.get(key);
    this.#top.set(key, value);
    if (previous === undefined) this.#size++;
    return previous;
  }

  /** Deletes `key`; returns the value it had, if any. */
  delete(key: string): V | undefined {
    const previous = this.get(key);
    if (previous === undefined) return undefined;
    if (this.#layers.length === 1) this.#top.delete(key);
    else this.#top.set(key, TOMBSTONE);
    this.#size--;
    return previous;
  }

  /** Number of layers (1 when no view is outstanding); for tests and metrics. */
  get layerCount(): number {
    return this.#layers.length;
  }

  /** Freezes the current state in O(1) and returns it as a view. */
  freeze(): FrozenMap<V> {
    const layers = this.#layers;
    let seen: Map<string, Slot<V>>[];
    if (layers.length > 1 && this.#top.size === 0) {
      // Nothing written since the last freeze: share its layers.
      seen = layers.slice(0, -1);
    } else {
      seen = layers.slice();
      this.#top = new Map();
      layers.push(this.#top);
    }
    this.#views++;
    const size = this.#size;
    let released = false;
    return {
      size,
      entries: () => {
        if (released) throw new Error("the frozen map was released");
        return viewEntries(seen);
      },
      release: () => {
        if (released) return;
        released = true;
        // A view of state that `reset()` replaced holds only its own layers.
        if (this.#layers !== layers) return;
        if (--this.#views === 0) this.#fold();
      },
    };
  }

  /**
   * Replaces the whole content with `base` (adopted, not copied; empty when
   * omitted); outstanding views keep what they saw.
   */
  reset(base: Map<string, V> = new Map()): void {
    this.#layers = [base];
    this.#top = base;
    this.#size = base.size;
    this.#views = 0;
  }

  #fold(): void {
    const layers = this.#layers;
    const base = layers[0];
    for (let i = 1; i < layers.length; i++) {
      for (const [key, v] of layers[i]) {
        if (v === TOMBSTONE) base.delete(key);
        else base.set(key, v);
      }
    }
    layers.length = 1;
    this.#top = base;
  }
}

function* viewEntries<V>(
  layers: Map<string, Slot<V>>[],
): IterableIterator<[string, V]> {
  const n = layers.length;
  if (n === 1) {
    // The base never holds tombstones.
    yield* layers[0] as Map<string, V>;
    return;
  }
  for (let i = 0; i < n; i++) {
    outer: for (const [key, v] of layers[i]) {
      if (v === TOMBSTONE) continue;
      for (let j = i + 1; j < n; j++) {
        if (layers[j].has(key)) continue outer;
      }
      yield [key, v];
    }
  }
}
