/**
 * Small metric primitives for the runtime: a fixed-bucket latency histogram
 * and Prometheus text rendering.
 *
 * @module
 */

/** Default latency buckets in milliseconds. */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000,
];

/**
 * A cumulative histogram with fixed upper bounds (Prometheus style).
 *
 * @example
 * ```ts
 * import { Histogram } from "@raft-io/raft";
 * const h = new Histogram();
 * h.observe(0.7);
 * h.observe(3);
 * h.count; // 2
 * h.quantile(0.5); // 1 (the bucket bound holding the median)
 * ```
 */
export class Histogram {
  /** Upper bounds (ms), ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket; the last slot counts those above every bound. */
  readonly counts: Float64Array;
  /** Number of observations. */
  count = 0;
  /** Sum of observations. */
  sum = 0;

  /**
   * Creates an empty histogram.
   *
   * @param bounds ascending bucket upper bounds
   */
  constructor(bounds: readonly number[] = LATENCY_BUCKETS_MS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value. */
  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]) i++;
    this.counts[i]++;
    this.count++;
    this.sum += value;
  }

  /** The upper bound of the bucket holding quantile `q` (Infinity past the last bound, 0 when empty). */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = q * this.count;
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) {
        return i < this.bounds.length ? this.bounds[i] : Infinity;
      }
    }
    return Infinity;
  }

  /**
   * Prometheus text lines for this histogram, in seconds.
   *
   * @param name metric name (without `_bucket` etc.)
   * @param labels extra labels, e.g. `node="1"`
   */
  toPrometheus(name: string, labels = ""): string {
    const sep = labels ? "," : "";
    const lines: string[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i];
      lines.push(
        `${name}_bucket{${labels}${sep}le="${
          this.bounds[i] / 1000
        }"} ${cumulative}`,
      );
    }
    cumulative += this.counts[this.bounds.length];
    lines.push(`${name}_bucket{${labels}${sep}le="+Inf"} ${cumulative}`);
    lines.push(`${name}_sum${labels ? `{${labels}}` : ""} ${this.sum / 1000}`);
    lines.push(`${name}_count${labels ? `{${labels}}` : ""} ${this.count}`);
    return lines.join("\n");
  }
}
