/**
 * The client workload: a few clients issue put, get (ReadIndex or lease),
 * delete and compare-and-set against the nodes they believe in, one call at
 * a time, and record every invocation and completion as a history for the
 * linearizability checker. A call that times out is recorded as
 * indefinite; one refused before it was proposed is recorded as failed.
 *
 * @module
 */

import { isCoreError } from "../../core/errors.ts";
import type { Entry } from "../../log/raft_log.ts";
import type { KvOperation, KvValue } from "../linearizability/history.ts";
import {
  encodeKvModelCommand,
  type KvModelCommand,
  type KvModelResult,
} from "../kv_model.ts";
import type { SimCluster, SimNode } from "./cluster.ts";

interface ClientCall {
  op: KvOperation;
  node: number;
  req: string;
  deadline: number;
  /** The step it was invoked at. */
  invokedAt: number;
}

interface Client {
  id: number;
  call?: ClientCall;
  nextAt: number;
  count: number;
  lastSeen: Map<string, KvValue | null>;
  /** The node this client talks to until it fails it (a cached leader). */
  preferred: number;
}

const decoder = new TextDecoder();

/** Clients and their history. */
export class Workload {
  readonly #c: SimCluster;
  readonly #clients: Client[] = [];
  /** Every operation invoked, in invocation order. */
  readonly history: KvOperation[] = [];
  /** Latest invocation step of a read completed after the heal (-1: none). */
  lastReadInvokedAt = -1;
  /** When true, clients start no new calls. */
  stopped = false;
  #clock = 0;

  /** The workload of `cluster` (its sizes come from the cluster's options). */
  constructor(cluster: SimCluster) {
    this.#c = cluster;
    for (let c = 1; c <= cluster.o.clients; c++) {
      this.#clients.push({
        id: c,
        nextAt: 1 + c,
        count: 0,
        lastSeen: new Map(),
        preferred: 1 + ((c - 1) % cluster.o.nodes),
      });
    }
  }

  /** Whether no call is in flight. */
  idle(): boolean {
    return this.#clients.every((c) => c.call === undefined);
  }

  /** One step: time out calls, start new ones. */
  step(): void {
    for (const c of this.#clients) this.#client(c);
  }

  /** Node `n` applied `entry` with `result`: the client waiting on it there is answered. */
  applied(n: SimNode, entry: Entry, result: KvModelResult): void {
    for (const c of this.#clients) {
      const call = c.call;
      if (!call || call.req !== result.req || call.node !== n.id) continue;
      call.op.status = "ok";
      call.op.returnTime = ++this.#clock;
      if (call.op.f === "cas") call.op.outcome = result.ok ? "ok" : "failed";
      if (call.op.f !== "cas" || result.ok) {
        this.#c.inv.acknowledged(
          entry.index,
          entry.term,
          `${call.op.f} ${call.req}`,
        );
        c.lastSeen.set(
          call.op.key,
          call.op.f === "delete" ? null : call.op.value ?? null,
        );
      }
      c.call = undefined;
      this.#c.log(
        n.id,
        `ack ${call.req} ${call.op.f}(${call.op.key}) at index ${entry.index} term ${entry.term}`,
      );
    }
  }

  /** Node `n` may serve the read with `context` now (its entries are applied). */
  readReady(n: SimNode, context: Uint8Array): void {
    const ctx = decoder.decode(context);
    for (const c of this.#clients) {
      const call = c.call;
      if (!call || call.req !== ctx || call.node !== n.id) continue;
      const value = n.sm.get(call.op.key);
      call.op.status = "ok";
      call.op.value = value;
      call.op.returnTime = ++this.#clock;
      c.lastSeen.set(call.op.key, value);
      c.call = undefined;
      if (this.#c.healed && call.invokedAt > this.lastReadInvokedAt) {
        this.lastReadInvokedAt = call.invokedAt;
      }
    }
  }

  /** Picks the node to talk to next: the leader some node believes in, else any node. */
  #rediscover(client: Client): void {
    const c = this.#c;
    if (this.#isPinned(client)) return;
    const alive = c.nodes.filter((n) => n.alive);
    if (alive.length === 0) return;
    const asked = alive[c.int(alive.length)];
    const leader = asked.node.status().leader;
    client.preferred = leader > 0 && leader <= c.nodes.length
      ? leader
      : asked.id;
  }

  #isPinned(client: Client): boolean {
    const c = this.#c;
    const p = c.pinned;
    if (p === undefined || p.client !== client.id) return false;
    if (c.now >= p.until || c.healed) {
      c.pinned = undefined;
      return false;
    }
    client.preferred = p.node;
    return true;
  }

  #client(client: Client): void {
    const c = this.#c;
    const call = client.call;
    if (call) {
      if (c.now < call.deadline) return;
      // Timed out: the outcome is unknown.
      call.op.status = "info";
      client.call = undefined;
      this.#rediscover(client);
      client.nextAt = c.now + 1 + c.int(5);
      return;
    }
    if (c.now < client.nextAt || this.stopped) return;
    client.count++;
    const req = `c${client.id}-${client.count}`;
    const key = `k${c.int(c.o.keys)}`;
    const roll = c.rand();
    // Client 1 mostly reads (a read-heavy client); the others mix. After the
    // heal, and while pinned to a deposed leader, clients only read.
    const reads = client.id === 1 ? 0.85 : 0.4;
    const f = c.healed || this.#isPinned(client) || roll < reads
      ? "get"
      : roll < reads + (1 - reads) * 0.5
      ? "put"
      : roll < reads + (1 - reads) * 0.83
      ? "cas"
      : "delete";
    const op: KvOperation = {
      id: req,
      process: client.id,
      f,
      key,
      status: "info",
      invokeTime: ++this.#clock,
    };
    const value = req;
    if (f === "put" || f === "cas") op.value = value;
    if (f === "cas") op.expect = client.lastSeen.get(key) ?? null;
    this.history.push(op);
    // Like a real client: it keeps using its cached node (which may be a
    // deposed leader that does not know it yet) until that fails it.
    const cached = c.nodes[client.preferred - 1];
    const alive = c.nodes.filter((n) => n.alive);
    const target = cached && cached.alive
      ? cached
      : alive.length > 0
      ? alive[c.int(alive.length)]
      : undefined;
    const refuse = () => {
      op.status = "fail";
      op.returnTime = ++this.#clock;
      client.nextAt = c.now + 1 + c.int(3);
      this.#rediscover(client);
    };
    if (!target) return refuse();
    try {
      if (f === "get") target.node.readIndex(req);
      else {
        let command: KvModelCommand;
        if (f === "put") command = { op: "put", req, key, value };
        else if (f === "delete") command = { op: "delete", req, key };
        else {command = {
            op: "cas",
            req,
            key,
            expect: op.expect ?? null,
            value,
          };}
        target.node.propose(encodeKvModelCommand(command));
      }
    } catch (error) {
      if (!isCoreError(error)) throw error;
      return refuse();
    }
    client.call = {
      op,
      node: target.id,
      req,
      deadline: c.now + c.o.opTimeout,
      invokedAt: c.now,
    };
  }
}
