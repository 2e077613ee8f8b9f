import assert from "node:assert/strict";
import {
  definitelyFailed,
  historyJsonLines,
  type RecordedOp,
} from "../../scripts/chaos.ts";
import {
  checkHistory,
  checkJsonLines,
  parseJsonLines,
} from "../../src/testing/linearizability/mod.ts";

Deno.test("the chaos history file is valid JSON Lines that the checker reads back with the same verdict", () => {
  const ops: RecordedOp[] = [
    {
      id: 1,
      process: "c1.0",
      f: "put",
      key: "k0",
      value: "1.0",
      status: "ok",
      invokeTime: 10,
      returnTime: 20,
      node: 1,
      detail: "204",
    },
    {
      id: 2,
      process: "c2.0",
      f: "cas",
      key: "k0",
      expect: "1.0",
      value: "2.0",
      status: "info",
      invokeTime: 25,
      node: 2,
      detail: "timeout",
    },
    {
      id: 3,
      process: "c3.0",
      f: "get",
      key: "k0",
      value: "2.0",
      status: "ok",
      invokeTime: 30,
      returnTime: 40,
      node: 3,
    },
    {
      id: 4,
      process: "c3.0",
      f: "get",
      key: "k0",
      value: "1.0",
      status: "ok",
      invokeTime: 50,
      returnTime: 60,
      node: 1,
    },
  ];
  const text = historyJsonLines(ops);
  const parsed = parseJsonLines(text);
  assert.equal(parsed.length, 4);
  // The read of 1.0 after a read of the cas's 2.0 is a stale read.
  assert.equal(checkHistory(ops).verdict, "illegal");
  assert.equal(checkJsonLines(text).verdict, "illegal");
  assert.equal(checkJsonLines(historyJsonLines(ops.slice(0, 3))).verdict, "ok");
  assert.match(text, /"node":2/);
});

Deno.test("only answers that prove a write was not carried out count as definite failures", () => {
  const body = (code: string, message = "x") =>
    JSON.stringify({ error: { code, message } });
  // Definite: refused before proposing, or a connect that never happened.
  assert.ok(definitelyFailed({ status: 400, body: body("BAD_KEY") }));
  assert.ok(definitelyFailed({ status: 503, body: body("NOT_LEADER") }));
  assert.ok(definitelyFailed({ status: 503, body: body("OVERLOADED") }));
  assert.ok(definitelyFailed({ status: 503, body: body("PROPOSAL_DROPPED") }));
  assert.ok(definitelyFailed({
    error:
      "error sending request for url (http://x): client error (Connect): tcp connect error: Connection refused (os error 111)",
  }));
  // Indefinite: the request may have been proposed.
  assert.ok(!definitelyFailed({ error: "timeout" }));
  assert.ok(!definitelyFailed({ error: "Connection reset by peer" }));
  assert.ok(!definitelyFailed({ status: 504, body: body("TIMEOUT") }));
  assert.ok(!definitelyFailed({ status: 503, body: body("STOPPED") }));
  assert.ok(!definitelyFailed({ status: 500, body: body("INTERNAL") }));
  assert.ok(
    !definitelyFailed({
      status: 503,
      body: body(
        "NOT_LEADER",
        "forwarding to the leader (node 2) failed: fetch failed",
      ),
    }),
  );
});
