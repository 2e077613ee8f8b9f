/**
 * The clients: each issues one request at a time to the node it believes
 * leads — KV put / get / delete / compare-and-set, or list appends and
 * reads — through the servers' `propose` and `read` (linearizable, lease or
 * stale) with short timeouts, and records every invocation and completion.
 *
 * A definite failure (`NotLeaderError`, `OverloadedError`,
 * `ProposalDroppedError`, `InvalidProposalError`, `ApplyError`, and the
 * other refusals before the log) is recorded as failed and retried against
 * the leader named (or another node); a `TimeoutError`, `StoppedError` or a
 * process that died leaves the outcome unknown (indefinite). Stale reads are
 * excluded from the linearizability check.
 *
 * @module
 */

import {
  NotLeaderError,
  OverloadedError,
  ProposalDroppedError,
  RemovedFromClusterError,
  TransferInProgressError,
} from "../../core/errors.ts";
import { encodeKvCommand, type KvResult } from "../../kv/kv_state_machine.ts";
import { ApplyError, InvalidProposalError } from "../../runtime/errors.ts";
import type { KvOperation } from "../linearizability/history.ts";
import type { SimCluster, SimNode } from "./cluster.ts";
import { TICK_MS } from "./cluster.ts";
import type { Nemesis } from "./nemesis.ts";
import type { Applied } from "./state_machines.ts";

const te = new TextEncoder();
const td = new TextDecoder();

/** A list append as the clients saw it. */
export interface ListAppend {
  /** The item (unique). */
  value: string;
  /** `ok`: acknowledged at `position`; `fail`: definitely not applied; `info`: unknown. */
  status: "ok" | "fail" | "info";
  /** 1-based position the state machine returned. */
  position?: number;
  /** Client clock at invocation and return. */
  invokeTime: number;
  /** Client clock at return (ok and fail). */
  returnTime?: number;
}

/** A list read as the clients saw it (linearizable or lease only). */
export interface ListRead {
  /** The items seen. */
  items: string[];
  /** Client clock at invocation. */
  invokeTime: number;
  /** Client clock at return. */
  returnTime: number;
}

/** Whether an error says for sure that the request was not applied (nor will be). */
export function isDefinite(e: unknown): boolean {
  return e instanceof NotLeaderError || e instanceof OverloadedError ||
    e instanceof ProposalDroppedError || e instanceof InvalidProposalError ||
    e instanceof ApplyError || e instanceof TransferInProgressError ||
    e instanceof RemovedFromClusterError;
}

/** Clients and their history. */
export class Workload {
  readonly #c: SimCluster;
  readonly #nemesis: Nemesis;
  /** KV operations (every status; stale reads excluded). */
  readonly history: KvOperation[] = [];
  /** List appends. */
  readonly appends: ListAppend[] = [];
  /** List reads. */
  readonly listReads: ListRead[] = [];
  /** When true, clients start no new requests. */
  stopped = false;
  #clock = 0;
  #running = 0;
  #preferred = new Map<number, number>();

  /**
   * @param cluster the cluster the clients talk to
   * @param nemesis whose pins send a client to a chosen node
   */
  constructor(cluster: SimCluster, nemesis: Nemesis) {
    this.#c = cluster;
    this.#nemesis = nemesis;
  }

  /** Clients still in a request (or thinking). */
  get running(): number {
    return this.#running;
  }

  /** Starts every client's loop. */
  start(): void {
    for (let id = 1; id <= this.#c.o.clients; id++) {
      this.#preferred.set(id, 1 + ((id - 1) % this.#c.o.nodes));
      this.#running++;
      void this.#client(id).finally(() => this.#running--);
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#c.loop.after(ms, resolve));
  }

  #target(client: number, writer = false): SimNode | undefined {
    const c = this.#c;
    const pin = this.#nemesis.pinned;
    if (pin !== undefined && pin.client === client && c.now < pin.until) {
      const n = c.nodes[pin.node - 1];
      if (n.state === "up") return n;
    }
    if (writer && pin !== undefined) {
      // A probe's writer goes straight to the newest leader.
      const leader = c.leader();
      if (leader !== undefined && leader.id !== pin.node) return leader;
    }
    const cached = c.nodes[(this.#preferred.get(client) ?? 1) - 1];
    // The other clients notice the pinned node is cut off and move on.
    const avoid = pin !== undefined && c.now < pin.until ? pin.node : 0;
    if (cached && cached.state === "up" && cached.id !== avoid) return cached;
    const others = c.up().filter((n) => n.id !== avoid);
    if (others.length > 0) return others[c.int(others.length)];
    const up = c.up();
    return up.length > 0 ? up[c.int(up.length)] : undefined;
  }

  /** After a failure: follow the leader named, else ask a random node. */
  #rediscover(client: number, error: unknown): void {
    const c = this.#c;
    if (error instanceof NotLeaderError && error.leaderId > 0) {
      this.#preferred.set(client, error.leaderId);
      return;
    }
    const up = c.up();
    if (up.length === 0) return;
    const asked = up[c.int(up.length)];
    const leader = asked.server!.leaderId;
    this.#preferred.set(client, leader > 0 ? leader : asked.id);
  }

  async #client(id: number): Promise<void> {
    const c = this.#c;
    let count = 0;
    await this.#sleep(id * TICK_MS);
    while (!this.stopped) {
      await this.#sleep(1 + c.int(3 * TICK_MS));
      if (this.stopped) break;
      count++;
      const req = `c${id}-${count}`;
      if (c.kind === "kv") await this.#kvRequest(id, req);
      else await this.#listRequest(id, req);
    }
  }

  #consistency(): "linearizable" | "lease" | "stale" {
    const c = this.#c;
    const r = c.rand();
    if (r < 0.1) return "stale";
    if (c.o.leaseReads && r < 0.55) return "lease";
    return "linearizable";
  }

  #timeoutMs(): number {
    const c = this.#c;
    return (c.o.opTimeout / 2 + c.int(c.o.opTimeout)) * TICK_MS;
  }

  async #kvRequest(client: number, req: string): Promise<void> {
    const c = this.#c;
    const pin = this.#nemesis.pinned;
    const probe = pin?.key !== undefined && c.now < pin.until;
    const writer = probe && pin!.writer === client;
    const key = probe && (writer || pin!.client === client)
      ? pin!.key!
      : `k${c.int(c.o.keys)}`;
    const roll = c.rand();
    const pinned = pin?.client === client;
    const reads = client === 1 ? 0.8 : 0.4;
    const f = writer
      ? "put"
      : c.healed || pinned || roll < reads
      ? "get"
      : roll < reads + (1 - reads) * 0.5
      ? "put"
      : roll < reads + (1 - reads) * 0.83
      ? "cas"
      : "delete";
    // Definite failures are retried (as new operations) a few times.
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      const n = this.#target(client, writer);
      if (n === undefined) {
        await this.#sleep(TICK_MS);
        continue;
      }
      const timeoutMs = this.#timeoutMs();
      const op: KvOperation = {
        id: attempt === 0 ? req : `${req}-retry${attempt}`,
        process: client,
        f,
        key,
        status: "info",
        invokeTime: ++this.#clock,
      };
      if (f === "get") {
        // A reader left on a cut-off leader reads under its lease.
        const consistency = pinned && c.o.leaseReads
          ? pin?.consistency ?? "lease"
          : this.#consistency();
        const kv = n.kv!;
        const r = await c.settle(
          n,
          `read(${consistency})`,
          n.server!.read({ consistency, timeoutMs }),
          timeoutMs,
        );
        if (r.ok) {
          const v = kv.get(key);
          op.value = v === undefined ? null : td.decode(v);
          op.status = "ok";
          op.returnTime = ++this.#clock;
          if (consistency !== "stale") this.history.push(op);
          return;
        }
        if (consistency !== "stale") this.history.push(op);
        if (isDefinite(r.error)) {
          op.status = "fail";
          op.returnTime = ++this.#clock;
        }
        this.#rediscover(client, r.error);
        if (!isDefinite(r.error)) return;
        continue;
      }
      op.value = req;
      let data: Uint8Array;
      if (f === "put") {
        data = encodeKvCommand({ op: "put", key, value: te.encode(req) });
      } else if (f === "delete") {
        data = encodeKvCommand({ op: "delete", key });
        delete op.value;
      } else {
        const seen = this.#lastValue(key);
        op.expect = seen;
        data = encodeKvCommand({
          op: "cas",
          key,
          expect: seen === null ? null : te.encode(seen),
          value: te.encode(req),
        });
      }
      this.history.push(op);
      const r = await c.settle(
        n,
        `propose(${f} ${key})`,
        n.server!.propose(data, { timeoutMs }),
        timeoutMs,
      );
      if (r.ok && !this.#isApplied(n, String(op.id), r.value)) return;
      if (r.ok) {
        const applied = r.value as Applied<KvResult>;
        op.status = "ok";
        op.returnTime = ++this.#clock;
        if (f === "cas") op.outcome = applied.value.ok ? "ok" : "failed";
        if (f !== "cas" || applied.value.ok) {
          c.inv.acknowledged(applied.index, applied.term, `${f} ${op.id}`);
        }
        c.log(n.id, `ack ${op.id} ${f}(${key}) at ${applied.index}`);
        return;
      }
      if (isDefinite(r.error)) {
        op.status = "fail";
        op.returnTime = ++this.#clock;
        this.#rediscover(client, r.error);
        continue;
      }
      this.#rediscover(client, r.error);
      return;
    }
  }

  /** A proposal must resolve with its own entry's result (index, term, value); anything else was another entry's. */
  #isApplied(n: SimNode, what: string, value: unknown): boolean {
    const a = value as Partial<Applied<unknown>> | undefined;
    if (
      a !== undefined && a !== null && typeof a.index === "number" &&
      a.value !== undefined
    ) return true;
    this.#c.violate({
      invariant: "acknowledged-write-lost",
      detail: `node ${n.id} resolved proposal ${what} with ${
        JSON.stringify(value)
      }: not its entry's result (another entry took its index)`,
    });
    return false;
  }

  /** The latest value this run's history shows for `key` (any client), for a cas's expectation. */
  #lastValue(key: string): string | null {
    for (let i = this.history.length - 1; i >= 0; i--) {
      const op = this.history[i];
      if (op.key !== key || op.status !== "ok") continue;
      if (op.f === "delete") return null;
      if (op.f === "cas" && op.outcome !== "ok") continue;
      return (op.value ?? null) as string | null;
    }
    return null;
  }

  async #listRequest(client: number, req: string): Promise<void> {
    const c = this.#c;
    const pin = this.#nemesis.pinned;
    const writer = pin?.key !== undefined && c.now < pin.until &&
      pin.writer === client;
    const read = !writer && (c.healed || pin?.client === client ||
      c.chance(client === 1 ? 0.6 : 0.3));
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      const n = this.#target(client, writer);
      if (n === undefined) {
        await this.#sleep(TICK_MS);
        continue;
      }
      const timeoutMs = this.#timeoutMs();
      if (read) {
        const consistency = c.o.leaseReads &&
            this.#nemesis.pinned?.client === client
          ? this.#nemesis.pinned.consistency ?? "lease"
          : this.#consistency();
        const list = n.list!;
        const invokeTime = ++this.#clock;
        const r = await c.settle(
          n,
          `read(${consistency})`,
          n.server!.read({ consistency, timeoutMs }),
          timeoutMs,
        );
        if (r.ok) {
          if (consistency !== "stale") {
            this.listReads.push({
              items: list.items().slice(),
              invokeTime,
              returnTime: ++this.#clock,
            });
          }
          return;
        }
        this.#rediscover(client, r.error);
        if (!isDefinite(r.error)) return;
        continue;
      }
      // Some commands are refused by the list (ApplyError: definite).
      const value = c.chance(0.05) ? `!${req}-${attempt}` : `${req}-${attempt}`;
      const a: ListAppend = {
        value,
        status: "info",
        invokeTime: ++this.#clock,
      };
      this.appends.push(a);
      const r = await c.settle(
        n,
        `propose(append ${value})`,
        n.server!.propose(te.encode(value), { timeoutMs }),
        timeoutMs,
      );
      if (r.ok && !this.#isApplied(n, value, r.value)) return;
      if (r.ok) {
        const applied = r.value as Applied<number>;
        a.status = "ok";
        a.position = applied.value;
        a.returnTime = ++this.#clock;
        c.inv.acknowledged(applied.index, applied.term, `append ${value}`);
        return;
      }
      if (isDefinite(r.error)) {
        a.status = "fail";
        a.returnTime = ++this.#clock;
        this.#rediscover(client, r.error);
        continue;
      }
      this.#rediscover(client, r.error);
      return;
    }
  }
}
