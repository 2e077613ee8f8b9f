/** Shared helpers of the transport tests. */

import { waitFor } from "../support/wait_for.ts";
import type { Logger } from "../../src/logger.ts";
import type { MessageCodec } from "../../src/transport/raft_transport.ts";

/** The message type of the transport tests. */
export interface TestMessage {
  n: number;
  pad?: string;
}

/** A JSON codec that rejects anything but an array of `{ n }` objects. */
export const testCodec: MessageCodec<TestMessage> = {
  encodeBatch(msgs: TestMessage[]): Uint8Array {
    return new TextEncoder().encode(JSON.stringify(msgs));
  },
  decodeBatch(bytes: Uint8Array): TestMessage[] {
    const value: unknown = JSON.parse(new TextDecoder().decode(bytes));
    if (!Array.isArray(value)) throw new TypeError("not a batch");
    for (const m of value) {
      if (
        typeof m !== "object" || m === null ||
        typeof (m as TestMessage).n !== "number"
      ) {
        throw new TypeError("not a test message");
      }
    }
    return value as TestMessage[];
  },
};

/** A 32-byte test secret. */
export const SECRET = "test-cluster-secret-0123456789abcdef";

/** A logger that keeps lines instead of printing them. */
export function quietLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: () => {},
    info: () => {},
    warn: (m: string) => void lines.push(m),
    error: (m: string) => void lines.push(m),
  };
}

export { waitFor };

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
