/**
 * Reading a {@linkcode KvSnapshotView} whole, as the runtime does.
 *
 * @module
 */

import type { KvSnapshotView } from "../../src/kv/kv_state_machine.ts";

/** The view's bytes (checked against its `byteLength`), then releases it. */
export async function readView(
  view: KvSnapshotView,
  onChunk?: (chunk: Uint8Array) => void | Promise<void>,
): Promise<Uint8Array> {
  const out = new Uint8Array(view.byteLength);
  let at = 0;
  try {
    for await (const chunk of view.chunks()) {
      if (at + chunk.byteLength > out.byteLength) {
        throw new Error(`chunks exceed byteLength ${view.byteLength}`);
      }
      out.set(chunk, at);
      at += chunk.byteLength;
      await onChunk?.(chunk);
    }
  } finally {
    view.release();
  }
  if (at !== view.byteLength) {
    throw new Error(`chunks gave ${at} bytes, byteLength ${view.byteLength}`);
  }
  return out;
}
