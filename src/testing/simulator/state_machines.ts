/**
 * The state machines the simulator replicates — the `./kv` service's
 * `KvStateMachine` and a simpler {@linkcode ListStateMachine} — and the
 * {@linkcode RecordingStateMachine} wrapper that reports every applied entry
 * to the oracles and returns the entry's index and term with the result.
 *
 * @module
 */

import type { Entry } from "../../log/raft_log.ts";
import type {
  SnapshotSource,
  StateMachine,
} from "../../runtime/state_machine.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/**
 * An append-only list of strings. `apply` appends the entry's text and
 * returns the list's new length (the item's 1-based position); a command
 * starting with `!` is refused (it throws, so the proposal rejects with an
 * `ApplyError`) and changes nothing.
 *
 * @example
 * ```ts
 * import { ListStateMachine } from "@raft-io/raft/testing";
 * const list = new ListStateMachine();
 * list.apply({ index: 1, term: 1, kind: "normal", data: new TextEncoder().encode("a") }); // 1
 * list.items(); // ["a"]
 * ```
 */
export class ListStateMachine implements StateMachine<number> {
  #items: string[] = [];

  /** Appends the command's text; throws for a refused command (`!…`). */
  apply(entry: Entry): number {
    const text = td.decode(entry.data);
    if (text.startsWith("!")) {
      throw new RangeError(`the list refuses ${JSON.stringify(text)}`);
    }
    this.#items.push(text);
    return this.#items.length;
  }

  /** The items, oldest first. */
  items(): readonly string[] {
    return this.#items;
  }

  /** The whole list as JSON bytes. */
  snapshot(): Uint8Array {
    return te.encode(JSON.stringify(this.#items));
  }

  /** Replaces the list with a snapshot's (empty bytes: the empty list). */
  restore(bytes: Uint8Array): void {
    this.#items = bytes.byteLength === 0
      ? []
      : JSON.parse(td.decode(bytes)) as string[];
  }
}

/** What a {@linkcode RecordingStateMachine} resolves a proposal with. */
export interface Applied<T> {
  /** The inner state machine's result. */
  value: T;
  /** The entry's index. */
  index: number;
  /** The entry's term. */
  term: number;
}

/** Called for every entry a {@linkcode RecordingStateMachine} is asked to apply. */
export type ApplyObserver = (entry: Entry) => void;

/**
 * Wraps a state machine: reports each entry to `observe` before applying
 * it, and resolves with the entry's index and term beside the result.
 */
export class RecordingStateMachine<T> implements StateMachine<Applied<T>> {
  /** The wrapped state machine. */
  readonly inner: StateMachine<T>;
  readonly #observe: ApplyObserver;
  readonly #onRestore: (bytes: Uint8Array) => void;

  /**
   * Wraps `inner`.
   *
   * @param inner the state machine to wrap
   * @param observe sees every entry before it is applied
   * @param onRestore sees every snapshot restored
   */
  constructor(
    inner: StateMachine<T>,
    observe: ApplyObserver,
    onRestore: (bytes: Uint8Array) => void,
  ) {
    this.inner = inner;
    this.#observe = observe;
    this.#onRestore = onRestore;
  }

  /** Reports, then applies. */
  apply(entry: Entry): Applied<T> {
    this.#observe(entry);
    const value = this.inner.apply(entry) as T;
    return { value, index: entry.index, term: entry.term };
  }

  /** The inner state machine's snapshot. */
  snapshot(): SnapshotSource | Promise<SnapshotSource> {
    return this.inner.snapshot();
  }

  /** Restores the inner state machine. */
  restore(bytes: Uint8Array): void | Promise<void> {
    this.#onRestore(bytes);
    return this.inner.restore(bytes);
  }
}
