/**
 * Reads a state machine's {@linkcode SnapshotSource} into the bytes the log
 * keeps, off the apply loop: between chunks it yields to the event loop
 * (through the scheduler), so proposals, ticks and applies go on while a
 * large view is serialized. With the view's `byteLength` the bytes are
 * copied into one buffer as they come, so the whole snapshot is never held
 * twice.
 *
 * @module
 */

import type { Scheduler } from "./scheduler.ts";
import type { SnapshotSource } from "./state_machine.ts";

/** Bytes serialized between two yields to the event loop. */
const YIELD_EVERY_BYTES = 1024 * 1024;

/**
 * The bytes of `source`; releases a view when done or failed.
 *
 * @param source what `StateMachine.snapshot()` returned
 * @param scheduler whose `after(0)` yields to the event loop
 * @param stopped polled between chunks: a stopping server abandons the read
 */
export async function readSnapshotSource(
  source: SnapshotSource,
  scheduler: Scheduler,
  stopped: () => boolean,
): Promise<Uint8Array | undefined> {
  if (source instanceof Uint8Array) return source;
  if (
    source === null || typeof source !== "object" ||
    typeof source.chunks !== "function"
  ) {
    throw new TypeError(
      "StateMachine.snapshot() must return a Uint8Array or a SnapshotView with chunks()",
    );
  }
  const pause = () =>
    new Promise<void>((resolve) => scheduler.after(0, resolve));
  try {
    const size = source.byteLength;
    const exact = typeof size === "number" && Number.isSafeInteger(size) &&
      size >= 0;
    const out = exact ? new Uint8Array(size) : undefined;
    const parts: Uint8Array[] = [];
    let at = 0;
    let sinceYield = 0;
    for await (const chunk of source.chunks()) {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError("a SnapshotView chunk must be a Uint8Array");
      }
      if (out !== undefined) {
        if (at + chunk.byteLength > out.byteLength) {
          throw new RangeError(
            `the SnapshotView's chunks exceed its byteLength (${size})`,
          );
        }
        out.set(chunk, at);
      } else {
        parts.push(chunk.slice()); // the view may reuse the chunk's buffer
      }
      at += chunk.byteLength;
      sinceYield += chunk.byteLength;
      if (sinceYield >= YIELD_EVERY_BYTES) {
        sinceYield = 0;
        await pause();
        if (stopped()) return undefined;
      }
    }
    if (out !== undefined) {
      if (at !== out.byteLength) {
        throw new RangeError(
          `the SnapshotView's chunks hold ${at} bytes, not its byteLength ${size}`,
        );
      }
      return out;
    }
    const whole = new Uint8Array(at);
    let o = 0;
    for (const p of parts) {
      whole.set(p, o);
      o += p.byteLength;
    }
    return whole;
  } finally {
    source.release?.();
  }
}
