/**
 * The default source of randomness of the core: deterministic, seeded.
 *
 * @module
 */

/**
 * mulberry32: a small deterministic PRNG returning numbers in [0, 1),
 * seeded directly with `seed`.
 *
 * @example
 * ```ts
 * import { mulberry32 } from "@raft-io/raft/core";
 * mulberry32(1)() === mulberry32(1)(); // true
 * ```
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The core's default randomness: {@linkcode mulberry32} with the seed
 * scrambled, so small ids (1, 2, 3) give unrelated streams.
 *
 * @example
 * ```ts
 * import { seededRandom } from "@raft-io/raft/core";
 * const a = seededRandom(7), b = seededRandom(7);
 * a() === b(); // true
 * ```
 */
export function seededRandom(seed: number): () => number {
  return mulberry32(seed ^ 0x9e3779b9);
}
