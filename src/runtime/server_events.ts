/**
 * The typed event hub of a `RaftServer`: listeners per event name, called in
 * subscription order; a listener that throws is logged and does not stop
 * the others or the server.
 *
 * @module
 */

import type { Logger } from "../logger.ts";
import type { ServerEventListener, ServerEventMap } from "./server_types.ts";

type Listeners = {
  [K in keyof ServerEventMap]?: ServerEventListener<K>[];
};

/** Listeners by event name. */
export class ServerEvents {
  #listeners: Listeners = {};
  readonly #logger: Logger;

  /** @param logger where a throwing listener is reported */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof ServerEventMap>(
    type: K,
    listener: ServerEventListener<K>,
  ): () => void {
    if (typeof listener !== "function") {
      throw new TypeError(
        `on("${type}", listener): listener must be a function`,
      );
    }
    const list = (this.#listeners[type] ??= []) as ServerEventListener<K>[];
    list.push(listener);
    return () => {
      const i = list.indexOf(listener);
      if (i >= 0) list.splice(i, 1);
    };
  }

  /** True when someone listens to `type` (to skip building the event). */
  has(type: keyof ServerEventMap): boolean {
    return (this.#listeners[type]?.length ?? 0) > 0;
  }

  /** Calls every listener of `type` with `event`. */
  emit<K extends keyof ServerEventMap>(
    type: K,
    event: ServerEventMap[K],
  ): void {
    const list = this.#listeners[type] as ServerEventListener<K>[] | undefined;
    if (list === undefined) return;
    for (const listener of list.slice()) {
      try {
        listener(event);
      } catch (e) {
        this.#logger.warn(
          `a "${type}" listener threw: ${
            e instanceof Error ? e.message : String(e)
          }`,
        );
      }
    }
  }
}
