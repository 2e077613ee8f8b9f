/**
 * The default source of randomness of the core: deterministic, seeded.
 *
 * @module
 */

/**
 * A small deterministic PRNG (mulberry32) returning numbers in [0, 1).
 *
 * @example
 * ```ts
 * import { seededRandom } from "@raft-io/raft";
 * const a = seededRandom(7), b = seededRandom(7);
 * a() === b(); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
