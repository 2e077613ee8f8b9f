/**
 * Recovered entries in packed form: typed arrays of term, kind, length and
 * position inside the segment files read at open. An {@linkcode Entry}
 * object (whose data is a view into the file's bytes) is made only when the
 * entry is read, so opening a log of millions of small entries allocates a
 * few arrays, not millions of objects.
 *
 * @module
 */

import type { EntrySource } from "../log_state.ts";
import type { Entry } from "../raft_log.ts";

const BLOCK_BITS = 16;
const BLOCK = 1 << BLOCK_BITS;
const MASK = BLOCK - 1;

/** One block of packed entries (fixed size: growing never copies). */
class Block {
  terms = new Float64Array(BLOCK);
  offsets = new Float64Array(BLOCK);
  lengths = new Uint32Array(BLOCK);
  chunks = new Uint32Array(BLOCK);
  kinds = new Uint8Array(BLOCK);
}

/** A growable packed list of entries; positions count from 0. */
export class PackedEntries implements EntrySource {
  #blocks: (Block | undefined)[] = [];
  #buffers: (Uint8Array | undefined)[] = [];
  #firstChunk = 0;
  /** Number of entries pushed (and not truncated away). */
  length = 0;

  /** Registers a file's bytes; returns its chunk id for {@linkcode push}. */
  addChunk(bytes: Uint8Array): number {
    this.#buffers.push(bytes);
    return this.#buffers.length - 1;
  }

  /** Appends an entry whose data is `chunk[offset, offset + length)`. */
  push(
    term: number,
    kind: number,
    chunk: number,
    offset: number,
    length: number,
  ): void {
    const n = this.length;
    const slot = n & MASK;
    const block = this.#blocks[n >>> BLOCK_BITS] ??
      (this.#blocks[n >>> BLOCK_BITS] = new Block());
    block.terms[slot] = term;
    block.kinds[slot] = kind;
    block.chunks[slot] = chunk;
    block.offsets[slot] = offset;
    block.lengths[slot] = length;
    this.length = n + 1;
  }

  /** Drops every entry at position `>= length`. */
  truncate(length: number): void {
    if (length < this.length) this.length = length;
  }

  /** See {@linkcode EntrySource.term}. */
  term(k: number): number {
    return this.#blocks[k >>> BLOCK_BITS]!.terms[k & MASK];
  }

  /** See {@linkcode EntrySource.size}. */
  size(k: number): number {
    return this.#blocks[k >>> BLOCK_BITS]!.lengths[k & MASK];
  }

  /** See {@linkcode EntrySource.get}. */
  get(k: number, index: number): Entry {
    const b = this.#blocks[k >>> BLOCK_BITS]!;
    const slot = k & MASK;
    const offset = b.offsets[slot];
    return {
      index,
      term: b.terms[slot],
      kind: b.kinds[slot] === 1 ? "config" : "normal",
      data: this.#buffers[b.chunks[slot]]!.subarray(
        offset,
        offset + b.lengths[slot],
      ),
    };
  }

  /** Frees the blocks and file buffers no entry at position `>= k` uses. */
  discardBefore(k: number): void {
    if (k >= this.length) return;
    for (let i = 0; i < k >>> BLOCK_BITS; i++) this.#blocks[i] = undefined;
    const keep = this.#blocks[k >>> BLOCK_BITS]!.chunks[k & MASK];
    for (let c = this.#firstChunk; c < keep; c++) this.#buffers[c] = undefined;
    if (keep > this.#firstChunk) this.#firstChunk = keep;
  }
}
