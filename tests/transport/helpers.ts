/** Shared helpers of the transport tests. */

import { waitFor } from "../support/wait_for.ts";
import type { Logger } from "../../src/logger.ts";
import type { MessageCodec } from "../../src/transport/raft_transport.ts";
import {
  SEALED_BODY_OFFSET,
  tagBytes,
} from "../../src/transport/tcp/frame_auth.ts";
import { FRAME_KIND } from "../../src/transport/tcp/frame.ts";
import type { Session } from "../../src/transport/tcp/handshake.ts";

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

/** A batch frame of `messages` sealed (sequence number, tag) for `session`, as a real sender writes it. */
export async function sealedBatch(
  session: Session,
  messages: TestMessage[],
): Promise<Uint8Array<ArrayBuffer>> {
  const body = testCodec.encodeBatch(messages);
  const frame = new Uint8Array(
    SEALED_BODY_OFFSET + body.byteLength + tagBytes(session.protection),
  );
  frame.set(body, SEALED_BODY_OFFSET);
  await session.send.seal(frame, FRAME_KIND.batch);
  return frame;
}
