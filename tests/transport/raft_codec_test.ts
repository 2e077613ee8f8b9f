import assert from "node:assert/strict";
import type { Message } from "../../src/core/messages.ts";
import { raftMessageCodec } from "../../src/transport/raft_codec.ts";
import { TcpTransport } from "../../src/transport/tcp/tcp_transport.ts";
import { quietLogger, SECRET, waitFor } from "./helpers.ts";

Deno.test("raft messages with entries cross a TCP transport intact through the wire codec", async () => {
  const mk = (id: number) =>
    TcpTransport.create<Message>({
      id,
      listen: "127.0.0.1:0",
      codec: raftMessageCodec,
      clusterSecret: SECRET,
      logger: quietLogger(),
    });
  const t1 = await mk(1);
  const t2 = await mk(2);
  t1.addPeer(2, t2.address);
  t2.addPeer(1, t1.address);
  const got: Message[] = [];
  t2.onMessage((m) => got.push(m));
  const append: Message = {
    type: "AppendEntries",
    from: 1,
    to: 2,
    term: 3,
    prevLogIndex: 10,
    prevLogTerm: 2,
    leaderCommit: 9,
    entries: [
      { index: 11, term: 3, kind: "normal", data: new Uint8Array([1, 2, 3]) },
      {
        index: 12,
        term: 3,
        kind: "config",
        data: new Uint8Array(1000).fill(7),
      },
    ],
  };
  const beat: Message = {
    type: "Heartbeat",
    from: 1,
    to: 2,
    term: 3,
    commit: 9,
    context: 4,
  };
  try {
    t1.send(2, append);
    t1.send(2, beat);
    await waitFor(() => got.length === 2, "both messages");
    assert.deepEqual(got, [append, beat]);
  } finally {
    await t1.close();
    await t2.close();
  }
});
