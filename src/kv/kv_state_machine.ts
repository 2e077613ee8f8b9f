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
const td = new TextDecoder("utf-8", { fatal: true });

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
  private data = new Map<string, Uint8Array<ArrayBuffer>>();

  /** Number of keys. */
  get size(): number {
    return this.data.size;
  }

  /** The value of `key`, or undefined. */
  get(key: string): Uint8Array<ArrayBuffer> | undefined {
    return this.data.get(key);
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
        this.data.set(key, ownValue(data, 5 + kl));
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
        this.data.set(cmd.key, cmd.value.slice());
        return OK;
      case "delete":
        return { ok: this.data.delete(cmd.key) };
      case "cas": {
        const current = this.data.get(cmd.key);
        const matches = cmd.expect === null
          ? current === undefined
          : current !== undefined && equalBytes(current, cmd.expect);
        if (!matches) return { ok: false, current };
        this.data.set(cmd.key, cmd.value.slice());
        return { ok: true };
      }
    }
  }

  /** Serializes every key (after an empty legacy section, see the module doc). */
  snapshot(): Uint8Array {
    let size = 4 + 4;
    const keys: Uint8Array[] = [];
    for (const [k, value] of this.data) {
      const key = te.encode(k);
      keys.push(key);
      size += 8 + key.byteLength + value.byteLength;
    }
    const out = new Uint8Array(size);
    const v = new DataView(out.buffer);
    let o = 0;
    v.setUint32(o, 0, true); // the legacy section: empty
    o += 4;
    v.setUint32(o, this.data.size, true);
    o += 4;
    let i = 0;
    for (const value of this.data.values()) {
      const key = keys[i++];
      v.setUint32(o, key.byteLength, true);
      out.set(key, o + 4);
      o += 4 + key.byteLength;
      v.setUint32(o, value.byteLength, true);
      out.set(value, o + 4);
      o += 4 + value.byteLength;
    }
    return out;
  }

  /** Replaces the state with a snapshot (empty bytes: empty store). */
  restore(bytes: Uint8Array): void {
    this.data = new Map();
    if (bytes.byteLength === 0) return;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Skip the legacy section (an old snapshot's address book).
    let o = 4 + v.getUint32(0, true);
    const n = v.getUint32(o, true);
    o += 4;
    for (let i = 0; i < n; i++) {
      const kl = v.getUint32(o, true);
      const key = td.decode(bytes.subarray(o + 4, o + 4 + kl));
      o += 4 + kl;
      const vl = v.getUint32(o, true);
      this.data.set(key, bytes.slice(o + 4, o + 4 + vl));
      o += 4 + vl;
    }
  }
}
