import { mulberry32 } from "../../src/core/random.ts";
import assert from "node:assert/strict";
import { MemoryNetwork } from "../../src/transport/memory_network.ts";
import { testCodec } from "./helpers.ts";

/** A small seeded PRNG (mulberry32) so fault tests replay exactly. */
const seeded = mulberry32;

function manualNet(options: { seed?: number } = {}) {
  let now = 0;
  const net = new MemoryNetwork<number>({
    manual: true,
    clock: { now: () => now },
    random: seeded(options.seed ?? 1),
  });
  return { net, advance: (ms: number) => (now += ms) };
}

Deno.test("memory network delivers messages in order with the sender's id", async () => {
  const { net } = manualNet();
  const a = net.endpoint(1);
  const b = net.endpoint(2);
  const got: [number, number][] = [];
  b.onMessage((m, from) => got.push([m, from]));
  for (let i = 0; i < 5; i++) a.send(2, i);
  assert.equal(got.length, 0, "nothing moves before deliverDue in manual mode");
  assert.equal(net.deliverDue(), 5);
  assert.deepEqual(got, [[0, 1], [1, 1], [2, 1], [3, 1], [4, 1]]);
  assert.equal(a.stats().messagesSent, 5);
  assert.equal(b.stats().messagesReceived, 5);
  await net.close();
});

Deno.test("memory network holds delayed messages until the clock reaches them", async () => {
  const { net, advance } = manualNet();
  net.setFaults({ delayMs: [10, 10] });
  const a = net.endpoint(1);
  const got: number[] = [];
  net.endpoint(2).onMessage((m) => got.push(m));
  a.send(2, 1);
  advance(9);
  assert.equal(net.deliverDue(), 0);
  advance(1);
  assert.equal(net.deliverDue(), 1);
  assert.deepEqual(got, [1]);
  await net.close();
});

Deno.test("memory network drops, duplicates and reorders at the configured rates, reproducibly", async () => {
  const run = (seed: number) => {
    const { net, advance } = manualNet({ seed });
    net.setFaults({
      dropRate: 0.2,
      duplicateRate: 0.2,
      reorderRate: 0.3,
      reorderWindowMs: 50,
      delayMs: [1, 2],
    });
    const a = net.endpoint(1);
    const got: number[] = [];
    net.endpoint(2).onMessage((m) => got.push(m));
    for (let i = 0; i < 1000; i++) a.send(2, i);
    advance(100);
    net.deliverDue();
    void net.close();
    return { got, dropped: a.stats().messagesDropped };
  };
  const r1 = run(42);
  const r2 = run(42);
  assert.deepEqual(r1, r2, "same seed, same run");
  assert.ok(r1.dropped > 120 && r1.dropped < 280, `dropped ${r1.dropped}`);
  const distinct = new Set(r1.got).size;
  assert.ok(r1.got.length > distinct + 100, "some messages were duplicated");
  let inversions = 0;
  for (let i = 1; i < r1.got.length; i++) {
    if (r1.got[i] < r1.got[i - 1]) inversions++;
  }
  assert.ok(inversions > 50, `only ${inversions} reorderings`);
  await Promise.resolve();
});

Deno.test("memory network partitions cut links until healed, and count the drops", async () => {
  const { net } = manualNet();
  const [a, b, c] = [net.endpoint(1), net.endpoint(2), net.endpoint(3)];
  const got: string[] = [];
  for (const ep of [a, b, c]) {
    ep.onMessage((m, from) => got.push(`${from}->${ep.id}:${m}`));
  }
  net.partition([1], [2, 3]);
  a.send(2, 1);
  b.send(1, 2);
  b.send(3, 3);
  net.deliverDue();
  assert.deepEqual(got, ["2->3:3"]);
  assert.equal(a.stats().messagesDropped, 1);
  net.heal();
  net.blockLink(1, 2);
  a.send(2, 4);
  b.send(1, 5);
  net.deliverDue();
  assert.deepEqual(got, ["2->3:3", "2->1:5"]);
  net.heal();
  net.isolate(3);
  c.send(1, 6);
  a.send(3, 7);
  a.send(2, 8);
  net.deliverDue();
  assert.deepEqual(got, ["2->3:3", "2->1:5", "1->2:8"]);
  await net.close();
});

Deno.test("memory network in timer mode delivers on its own and settle() waits for it", async () => {
  const net = new MemoryNetwork<{ n: number }>({
    codec: testCodec,
    faults: { delayMs: [1, 3] },
  });
  const a = net.endpoint(1);
  const sent = { n: 1 };
  let received: { n: number } | undefined;
  net.endpoint(2).onMessage((m) => (received = m));
  a.send(2, sent);
  assert.equal(received, undefined);
  await net.settle();
  assert.deepEqual(received, { n: 1 });
  assert.notEqual(
    received,
    sent,
    "with a codec the receiver gets a decoded copy",
  );
  await net.close();
  a.send(2, { n: 2 });
  assert.equal(a.stats().messagesDropped, 1, "a closed network drops");
});
