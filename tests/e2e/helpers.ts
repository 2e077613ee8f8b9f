/** Shared helpers of the end-to-end tests (real `serve.ts` processes). */

import {
  LocalCluster,
  type NodeStatus,
} from "../../scripts/lib/local_cluster.ts";

/** A fresh data folder under .test-data for one test. */
export function testRoot(name: string): string {
  return `.test-data/e2e-${name}-${Date.now()}-${
    Math.floor(Math.random() * 1e6)
  }`;
}

/** Starts a cluster of `nodes` processes with free ports. */
export function startCluster(
  name: string,
  nodes = 3,
  extraArgs: string[] = ["--quiet"],
): Promise<LocalCluster> {
  return LocalCluster.start({
    nodes,
    root: testRoot(name),
    freePorts: true,
    extraArgs,
  });
}

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

/** One HTTP request bounded by `timeoutMs`; body always read; never throws. */
export async function request(
  url: string,
  init: RequestInit = {},
  timeoutMs = 3000,
): Promise<{ status: number; body: string } | undefined> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: ac.signal });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Writers that PUT unique keys through the nodes `targets()` names (a
 * random one per request) until `stop()`; every acknowledged write (204) is
 * kept in `acked`. Bounded: at most `maxWrites` requests per writer.
 */
export class Writers {
  readonly acked = new Map<string, string>();
  attempts = 0;
  #running = true;
  #done: Promise<void>;
  #next = 0;

  constructor(
    cluster: LocalCluster,
    targets: () => number[],
    count = 6,
    maxWrites = 20_000,
  ) {
    const one = async (w: number) => {
      for (let n = 0; n < maxWrites && this.#running; n++) {
        const ids = targets();
        const id = ids[Math.floor(Math.random() * ids.length)];
        const key = `w${w}-${this.#next++}`;
        const value = `v-${key}-${Date.now()}`;
        this.attempts++;
        const r = await request(`${cluster.node(id).httpUrl}/kv/${key}`, {
          method: "PUT",
          body: value,
        }, 2000);
        if (r?.status === 204) this.acked.set(key, value);
        else await sleep(50);
      }
    };
    this.#done = Promise.all(
      Array.from({ length: count }, (_, w) => one(w)),
    ).then(() => {});
  }

  /** Acknowledged writes so far. */
  get count(): number {
    return this.acked.size;
  }

  /** Stops the writers and waits for their last request. */
  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}

/** Waits (bounded) until `pred` holds for node `id`'s status; returns it or throws. */
export async function waitStatus(
  cluster: LocalCluster,
  id: number,
  pred: (s: NodeStatus) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<NodeStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: NodeStatus | undefined;
  while (Date.now() < deadline) {
    last = await cluster.status(id, 1000);
    if (last && pred(last)) return last;
    await sleep(100);
  }
  throw new Error(
    `node ${id}: ${what} not reached within ${timeoutMs} ms; last status ${
      JSON.stringify(last)
    }`,
  );
}

/**
 * Reads every key of `acked` from node `id` (with `consistency`) and returns
 * the ones missing or different, as text.
 */
export async function missingWrites(
  cluster: LocalCluster,
  id: number,
  acked: Map<string, string>,
  consistency: "linearizable" | "stale",
): Promise<string[]> {
  const bad: string[] = [];
  const entries = [...acked];
  // Eight readers in parallel, each request bounded.
  let i = 0;
  const reader = async () => {
    while (i < entries.length) {
      const [key, value] = entries[i++];
      const r = await request(
        `${cluster.node(id).httpUrl}/kv/${key}?consistency=${consistency}`,
        {},
        5000,
      );
      if (r?.status !== 200 || r.body !== value) {
        bad.push(`${key}: expected ${value}, got ${r?.status} ${r?.body}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 8 }, reader));
  return bad;
}
