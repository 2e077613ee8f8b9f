/**
 * The replicated key-value store's state machine and its command encoding.
 *
 * Commands are small binary records (never JSON on the log):
 *
 * ```
 * put     [1][u32 keyLen][key][value…]
 * delete  [2][u32 keyLen][key]
 * cas     [3][u32 keyLen][key][u8 expectPresent][u32 expectLen][expect][value…]
 * ```
 *
 * Opcode 4 is retired: it was a private address book of the members, which
 * the replicated configuration now carries (`Membership.nodes`: the raft
 * address and, as metadata, the client HTTP `host:port`). Entries with it in
 * old logs apply as no-ops (`{ok: true}`); the number is never reused.
 *
 * Snapshot format: `[u32 legacyLen][legacy bytes][u32 count]` then `count`
 * times `[u32 keyLen][key][u32 valueLen][value]`. The legacy section held
 * the address book (JSON) in old snapshots; it is written empty and skipped
 * on restore, so old snapshots still restore.
 *
 * @module
 */

import type { Entry } from "../log/raft_log.ts";
import type { StateMachine } from "../runtime/state_machine.ts";
import { CowMap, type FrozenMap } from "./cow_map.ts";

/** Command opcodes. Stable; never renumbered (4 is retired, see the module doc). */
export const KV_OP = { put: 1, delete: 2, cas: 3 } as const;

/** The retired address-book opcode: old entries apply as no-ops. */
const RETIRED_MEMBER_OP = 4;

/** What applying a command returns (the proposal's result). */
export interface KvResult {
  /** put: always true; delete: whether the key existed; cas: whether it matched; a retired op-4 entry: true. */
  ok: boolean;
  /** cas only: the value found (undefined when the key was absent). */
  current?: Uint8Array;
}

/** A decoded command. */
export type KvCommand =
  | { op: "put"; key: string; value: Uint8Array }
  | { op: "delete"; key: string }
  | { op: "cas"; key: string; expect: Uint8Array | null; value: Uint8Array };

const te = new TextEncoder();
// ignoreBOM: a key that starts with U+FEFF keeps it (the default would strip it).
const td = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Encodes a command for `RaftServer.propose`.
 *
 * @example
 * ```ts
 * import { decodeKvCommand, encodeKvCommand } from "@raft-io/raft/kv";
 * const bytes = encodeKvCommand({ op: "put", key: "a", value: new Uint8Array([1]) });
 * decodeKvCommand(bytes).op; // "put"
 * ```
 */
export function encodeKvCommand(cmd: KvCommand): Uint8Array {
  if (cmd.op === "put") {
    const n = asciiKeyLength(cmd.key);
    if (n > 0) {
      // One allocation: header, the key's characters, then the value.
      const value = cmd.value;
      const out = new Uint8Array(5 + n + value.byteLength);
      out[0] = KV_OP.put;
      out[1] = n & 0xff;
      out[2] = (n >>> 8) & 0xff;
      out[3] = (n >>> 16) & 0xff;
      out[4] = n >>> 24;
      const key = cmd.key;
      for (let i = 0; i < n; i++) out[5 + i] = key.charCodeAt(i);
      out.set(value, 5 + n);
      return out;
    }
  }
  const key = encodeKey(cmd.key);
  const head = 1 + 4 + key.byteLength;
  let out: Uint8Array;
  if (cmd.op === "put") {
    out = new Uint8Array(head + cmd.value.byteLength);
    out.set(cmd.value, head);
  } else if (cmd.op === "delete") {
    out = new Uint8Array(head);
  } else {
    const expect = cmd.expect ?? new Uint8Array(0);
    out = new Uint8Array(
      head + 1 + 4 + expect.byteLength + cmd.value.byteLength,
    );
    out[head] = cmd.expect === null ? 0 : 1;
    new DataView(out.buffer).setUint32(head + 1, expect.byteLength, true);
    out.set(expect, head + 5);
    out.set(cmd.value, head + 5 + expect.byteLength);
  }
  out[0] = KV_OP[cmd.op];
  new DataView(out.buffer).setUint32(1, key.byteLength, true);
  out.set(key, 5);
  return out;
}

/** The length of an all-ASCII key of at most 1024 characters, else 0. */
function asciiKeyLength(key: string): number {
  const n = key.length;
  if (n > 1024) return 0;
  for (let i = 0; i < n; i++) if (key.charCodeAt(i) >= 0x80) return 0;
  return n;
}

/** UTF-8 bytes of a key; ASCII (the common case) without a runtime call. */
function encodeKey(key: string): Uint8Array {
  const n = key.length;
  if (n > 64) return te.encode(key);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x80) return te.encode(key);
    out[i] = c;
  }
  return out;
}

/** Decodes a UTF-8 key (fatal on malformed bytes); ASCII without a runtime call. */
function decodeKey(bytes: Uint8Array, start: number, end: number): string {
  if (end - start > 64) return td.decode(bytes.subarray(start, end));
  let s = "";
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c >= 0x80) return td.decode(bytes.subarray(start, end));
    s += String.fromCharCode(c);
  }
  return s;
}

/** Decodes a command; throws `RangeError` on malformed bytes. */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const need = (n: number) => {
    if (n > bytes.byteLength) throw new RangeError("truncated kv command");
  };
  need(5);
  const op = bytes[0];
  const kl = v.getUint32(1, true);
  need(5 + kl);
  const key = decodeKey(bytes, 5, 5 + kl);
  const rest = 5 + kl;
  switch (op) {
    case KV_OP.put:
      return { op: "put", key, value: bytes.subarray(rest) };
    case KV_OP.delete:
      return { op: "delete", key };
    case KV_OP.cas: {
      need(rest + 5);
      const present = bytes[rest] === 1;
      const el = v.getUint32(rest + 1, true);
      need(rest + 5 + el);
      const expect = present ? bytes.subarray(rest + 5, rest + 5 + el) : null;
      return { op: "cas", key, expect, value: bytes.subarray(rest + 5 + el) };
    }
    default:
      throw new RangeError(`unknown kv opcode ${op}`);
  }
}

/**
 * The value of a put command `data` starting at `from`, as the store keeps
 * it. When the command owns its whole buffer (the leader's own proposals),
 * a view of it costs only the header and key bytes and saves a copy; a
 * command inside a larger buffer (a received frame, a log read) is copied
 * so the store never pins that buffer.
 */
function ownValue(data: Uint8Array, from: number): Uint8Array<ArrayBuffer> {
  const buffer = data.buffer;
  if (
    buffer instanceof ArrayBuffer && data.byteOffset === 0 &&
    data.byteLength === buffer.byteLength
  ) {
    return new Uint8Array(buffer, from, data.byteLength - from);
  }
  return data.slice(from);
}

/** Bytes of `key` in UTF-8 (ASCII without a runtime call). */
function utf8Length(key: string): number {
  const n = key.length;
  for (let i = 0; i < n; i++) {
    if (key.charCodeAt(i) >= 0x80) return te.encode(key).byteLength;
  }
  return n;
}

/** Bytes one key takes in a snapshot: `[u32 keyLen][key][u32 valueLen][value]`. */
function recordBytes(keyBytes: number, value: Uint8Array): number {
  return 8 + keyBytes + value.byteLength;
}

/**
 * Target size of a snapshot chunk: small enough that serializing one keeps
 * the event loop free within a few milliseconds. One buffer is reused for
 * every chunk (a chunk is valid until the next is asked for), so a 100+ MB
 * snapshot makes no garbage that would drive V8 into full collections.
 */
const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/** Snapshots up to this size are restored synchronously. */
const RESTORE_IN_ONE_GO_BYTES = 8 * 1024 * 1024;
/** Keys read between two yields while restoring a large snapshot. */
const RESTORE_SLICE_KEYS = 5_000;

/** Reads a snapshot's key records, a slice at a time. */
class SnapshotReader {
  readonly data = new Map<string, Uint8Array<ArrayBuffer>>();
  total = 0;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #count: number;
  #read = 0;
  #o: number;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Skip the legacy section (an old snapshot's address book).
    const o = 4 + this.#view.getUint32(0, true);
    this.#count = this.#view.getUint32(o, true);
    this.#o = o + 4;
  }

  get done(): boolean {
    return this.#read >= this.#count;
  }

  /** Reads up to `keys` more records. */
  read(keys: number): void {
    const bytes = this.#bytes;
    const v = this.#view;
    let o = this.#o;
    const end = Math.min(this.#count, this.#read + keys);
    for (let i = this.#read; i < end; i++) {
      const kl = v.getUint32(o, true);
      const key = decodeKey(bytes, o + 4, o + 4 + kl);
      o += 4 + kl;
      const vl = v.getUint32(o, true);
      // A copy per value: a value never pins the snapshot's buffer.
      this.data.set(key, bytes.slice(o + 4, o + 4 + vl));
      o += 4 + vl;
      this.total += 8 + kl + vl;
    }
    this.#read = end;
    this.#o = o;
  }

  /** Throws when bytes follow the last record. */
  finish(): void {
    if (this.#o !== this.#bytes.byteLength) {
      throw new RangeError(
        `kv snapshot: ${
          this.#bytes.byteLength - this.#o
        } bytes after the last key`,
      );
    }
  }
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * A frozen view of a {@linkcode KvStateMachine}, as
 * {@linkcode KvStateMachine.snapshot} returns it: a `SnapshotView` (see
 * the runtime's state machine contract) that knows its exact size.
 */
export interface KvSnapshotView {
  /** Exact total bytes of the chunks. */
  readonly byteLength: number;
  /** Number of keys in the view. */
  readonly keys: number;
  /** The serialized state in chunks of about 1 MiB, yielding to the event loop between chunks. */
  chunks(): AsyncIterable<Uint8Array>;
  /** Ends the view (idempotent). */
  release(): void;
}

/** The result of every put (shared: results are read, never modified). */
const OK: KvResult = Object.freeze({ ok: true });

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The key-value state machine: a map of UTF-8 keys to byte values.
 *
 * `snapshot()` costs O(1): it freezes the map (copy-on-write,
 * {@linkcode CowMap}) and returns a {@linkcode KvSnapshotView} that
 * serializes the frozen state in chunks while `apply` goes on; `release()`
 * ends the view. Views may overlap (each is consistent on its own); writes
 * made while any is outstanding are folded back when the last is released.
 *
 * Snapshot format (little-endian):
 * `[u32 legacyLen = 0][u32 keyCount]` then per key
 * `[u32 keyLen][key UTF-8][u32 valueLen][value]` (old snapshots carry the
 * retired address book in the legacy section; it is skipped).
 *
 * @example
 * ```ts
 * import { encodeKvCommand, KvStateMachine } from "@raft-io/raft/kv";
 * const kv = new KvStateMachine();
 * const data = encodeKvCommand({ op: "put", key: "k", value: new TextEncoder().encode("v") });
 * kv.apply({ index: 1, term: 1, kind: "normal", data });
 * new TextDecoder().decode(kv.get("k")); // "v"
 * ```
 */
export class KvStateMachine implements StateMachine<KvResult> {
  #data = new CowMap<Uint8Array<ArrayBuffer>>();
  /** Snapshot bytes of every key record (kept up to date, so a view knows its size at once). */
  #recordBytes = 0;

  /** Number of keys. */
  get size(): number {
    return this.#data.size;
  }

  /** The value of `key`, or undefined. */
  get(key: string): Uint8Array<ArrayBuffer> | undefined {
    return this.#data.get(key);
  }

  /** Applies one committed command. Malformed commands are ignored (result `ok: false`) on every node alike. */
  apply(entry: Entry): KvResult {
    const data = entry.data;
    if (data.byteLength >= 5 && data[0] === KV_OP.put) {
      // The common case without the intermediate command object: what
      // decodeKvCommand would give, and the same failure on a bad key.
      const kl =
        (data[1] | (data[2] << 8) | (data[3] << 16) | (data[4] << 24)) >>>
        0;
      if (5 + kl <= data.byteLength) {
        let key: string;
        try {
          key = decodeKey(data, 5, 5 + kl);
        } catch {
          return { ok: false };
        }
        this.#put(key, ownValue(data, 5 + kl));
        return OK;
      }
    }
    if (data.byteLength > 0 && data[0] === RETIRED_MEMBER_OP) return OK;
    let cmd: KvCommand;
    try {
      cmd = decodeKvCommand(entry.data);
    } catch {
      return { ok: false };
    }
    switch (cmd.op) {
      case "put":
        this.#put(cmd.key, cmd.value.slice());
        return OK;
      case "delete": {
        const previous = this.#data.delete(cmd.key);
        if (previous === undefined) return { ok: false };
        this.#recordBytes -= recordBytes(utf8Length(cmd.key), previous);
        return { ok: true };
      }
      case "cas": {
        const current = this.#data.get(cmd.key);
        const matches = cmd.expect === null
          ? current === undefined
          : current !== undefined && equalBytes(current, cmd.expect);
        if (!matches) return { ok: false, current };
        this.#put(cmd.key, cmd.value.slice());
        return { ok: true };
      }
    }
  }

  #put(key: string, value: Uint8Array<ArrayBuffer>): void {
    const previous = this.#data.set(key, value);
    const keyBytes = utf8Length(key);
    if (previous !== undefined) {
      this.#recordBytes -= recordBytes(keyBytes, previous);
    }
    this.#recordBytes += recordBytes(keyBytes, value);
  }

  /**
   * A consistent view of every key as of the last applied entry, taken in
   * O(1). Read its chunks while applying goes on, then `release()` it.
   */
  snapshot(): KvSnapshotView {
    const frozen = this.#data.freeze();
    const byteLength = 4 + 4 + this.#recordBytes;
    return {
      byteLength,
      keys: frozen.size,
      chunks: () => serialize(frozen, byteLength),
      release: () => frozen.release(),
    };
  }

  /**
   * Replaces the state with a snapshot (empty bytes: empty store). A large
   * snapshot (over 8 MiB) is read in slices with the event loop let run in
   * between, and a Promise is returned; the new state replaces the old one
   * only when all of it was read.
   */
  restore(bytes: Uint8Array): void | Promise<void> {
    this.#data.reset();
    this.#recordBytes = 0;
    if (bytes.byteLength === 0) return;
    const reader = new SnapshotReader(bytes);
    if (bytes.byteLength <= RESTORE_IN_ONE_GO_BYTES) {
      reader.read(Infinity);
      this.#install(reader);
      return;
    }
    return (async () => {
      while (!reader.done) {
        reader.read(RESTORE_SLICE_KEYS);
        await yieldToEventLoop();
      }
      this.#install(reader);
    })();
  }

  #install(reader: SnapshotReader): void {
    reader.finish();
    this.#data.reset(reader.data);
    this.#recordBytes = reader.total;
  }
}

/** Writes the frozen state in chunks of about {@linkcode SNAPSHOT_CHUNK_BYTES}. */
async function* serialize(
  frozen: FrozenMap<Uint8Array<ArrayBuffer>>,
  byteLength: number,
): AsyncGenerator<Uint8Array> {
  const entries = frozen.entries();
  let chunk = new Uint8Array(Math.min(SNAPSHOT_CHUNK_BYTES, byteLength));
  let view = new DataView(chunk.buffer);
  view.setUint32(0, 0, true); // the legacy section: empty
  view.setUint32(4, frozen.size, true);
  let o = 8;
  let emitted = 0;
  for (const [key, value] of entries) {
    const ascii = utf8Length(key) === key.length;
    const keyBytes = ascii ? undefined : te.encode(key);
    const kl = keyBytes === undefined ? key.length : keyBytes.byteLength;
    const need = 8 + kl + value.byteLength;
    if (o + need > chunk.byteLength) {
      emitted += o;
      yield chunk.subarray(0, o);
      await yieldToEventLoop();
      if (need > chunk.byteLength) {
        chunk = new Uint8Array(need); // one record larger than any chunk so far
        view = new DataView(chunk.buffer);
      }
      o = 0;
    }
    view.setUint32(o, kl, true);
    o += 4;
    if (keyBytes === undefined) {
      for (let i = 0; i < kl; i++) chunk[o + i] = key.charCodeAt(i);
    } else {
      chunk.set(keyBytes, o);
    }
    o += kl;
    view.setUint32(o, value.byteLength, true);
    chunk.set(value, o + 4);
    o += 4 + value.byteLength;
  }
  emitted += o;
  if (emitted !== byteLength) {
    throw new Error(
      `kv snapshot: wrote ${emitted} bytes, announced ${byteLength}`,
    );
  }
  if (o > 0) yield chunk.subarray(0, o);
}
