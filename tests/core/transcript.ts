/**
 * The transcript language of the core's interaction tests. A transcript is a
 * text file of blocks:
 *
 * ```
 * # comments and blank lines between blocks are kept
 * command arg key=value ...
 * ----
 * the exact expected output (no blank lines inside)
 * ```
 *
 * Commands (ids are node ids; lists are comma separated; `all` = every node):
 *
 * - `add-nodes N [voters=1,2,3] [learners=4] [prevote=false] [checkquorum=false]
 *   [election=10] [heartbeat=1] [lease=true] [forward=false] [inflight=256]
 *   [inflight-bytes=N] [max-msg-bytes=N] [max-uncommitted=N] [chunk=N] [lag=N]
 *   [snapshot-threshold=N] [snapshot-bytes=N] [catch-up=N]
 *   [autoleave=false]`: adds N nodes with the next ids (voters default: the new ids)
 * - `campaign ID`, `tick IDS [N]`, `propose ID DATA`, `propose-batch ID D1 D2 ...`
 * - `process-ready IDS`, `deliver [from=ID] [to=ID] [max=N]`, `drop [from=] [to=] [type=]`
 * - `stabilize [IDS]`: Readies and deliveries until quiet
 * - `elapse IDS N`: N times (tick IDS once, stabilize); prints role changes only
 * - `stash [from=] [to=] [copy=true]` / `unstash`: hold messages back (or
 *   duplicate them) and re-queue them later, i.e. reorder
 * - `partition 1 | 2 3`, `isolate ID`, `heal`, `crash ID`, `restart ID`, `queue`
 * - `read-index ID CTX`, `transfer ID TARGET`, `snapshot ID [INDEX]`
 * - `change-membership ID add-voter N [force=true] | add-learner N | remove N |
 *   update-node N | enter-joint voters=1,2 [learners=3] [autoleave=false]
 *   [force=true] | leave-joint`; `add-voter`, `add-learner` and
 *   `update-node` take `address=A` and `metadata=M` (no spaces)
 * - `status ID`, `log ID`, `applied ID`, `raft-state`, `report-unreachable ID PEER`
 */

import type { RaftConfig } from "../../src/core/config.ts";
import {
  formatMembership,
  type MembershipChange,
} from "../../src/core/membership.ts";
import {
  type Cluster,
  formatEntry,
  formatError,
  formatMessage,
} from "./harness.ts";

const encoder = new TextEncoder();

/** One block of a transcript. */
export interface Block {
  /** Lines before the command (comments, blank lines). */
  preamble: string[];
  /** The command line. */
  command: string;
  /** Line number of the command (1-based). */
  line: number;
  /** Expected output lines. */
  expected: string[];
}

/** Splits a transcript into blocks; trailing comments are returned as `tail`. */
export function parseTranscript(
  source: string,
): { blocks: Block[]; tail: string[] } {
  const lines = source.split("\n");
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const blocks: Block[] = [];
  let preamble: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i];
    if (l.trim() === "" || l.startsWith("#")) {
      preamble.push(l);
      i++;
      continue;
    }
    const command = l;
    const line = i + 1;
    i++;
    if (lines[i] !== "----") {
      throw new Error(`line ${line + 1}: expected ---- after the command`);
    }
    i++;
    const expected: string[] = [];
    while (i < lines.length && lines[i] !== "") expected.push(lines[i++]);
    if (i < lines.length) i++; // the blank line that ends the block
    blocks.push({ preamble, command, line, expected });
    preamble = [];
  }
  return { blocks, tail: preamble };
}

/** Renders blocks back into a transcript (used by REWRITE=1). */
export function renderTranscript(blocks: Block[], tail: string[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    out.push(...b.preamble, b.command, "----", ...b.expected, "");
  }
  // Drop blank lines after the last block (each block already ends with one).
  const rest = tail.filter((l, i) =>
    !(l.trim() === "" && tail.slice(i).every((x) => x.trim() === ""))
  );
  out.push(...rest);
  return out.join("\n").replace(/\n+$/, "\n");
}

function parseIds(s: string | undefined): number[] | undefined {
  if (s === undefined || s === "all") return undefined;
  return s.split(",").map(Number);
}

function kv(args: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of args) {
    const eq = a.indexOf("=");
    if (eq > 0) m.set(a.slice(0, eq), a.slice(eq + 1));
  }
  return m;
}

function list(s: string | undefined): number[] | undefined {
  return s === undefined ? undefined : s === "" ? [] : s.split(",").map(Number);
}

function bool(s: string | undefined): boolean | undefined {
  return s === undefined ? undefined : s === "true";
}

function num(s: string | undefined): number | undefined {
  return s === undefined ? undefined : Number(s);
}

/** Runs one transcript command against `c`; returns its output lines. */
export function runCommand(c: Cluster, command: string): string[] {
  const [name, ...args] = command.trim().split(/\s+/);
  const opts = kv(args);
  switch (name) {
    case "add-nodes": {
      const n = Number(args[0]);
      const start = c.nodes.size + 1;
      const ids = Array.from({ length: n }, (_, i) => start + i);
      const base: Omit<RaftConfig, "id"> = {
        voters: list(opts.get("voters")) ?? ids,
        learners: list(opts.get("learners")),
        preVote: bool(opts.get("prevote")),
        checkQuorum: bool(opts.get("checkquorum")),
        electionTick: num(opts.get("election")),
        heartbeatTick: num(opts.get("heartbeat")),
        leaseReads: bool(opts.get("lease")),
        forwardProposals: bool(opts.get("forward")),
        maxInflightMessages: num(opts.get("inflight")),
        maxInflightBytes: num(opts.get("inflight-bytes")),
        maxBytesPerMessage: num(opts.get("max-msg-bytes")),
        maxUncommittedBytes: num(opts.get("max-uncommitted")),
        snapshotChunkBytes: num(opts.get("chunk")),
        compactionLag: num(opts.get("lag")),
        snapshotThreshold: num(opts.get("snapshot-threshold")),
        snapshotThresholdBytes: num(opts.get("snapshot-bytes")),
        learnerCatchUpEntries: num(opts.get("catch-up")),
        autoLeaveJoint: bool(opts.get("autoleave")),
      };
      for (const id of ids) {
        try {
          c.add({ ...base, id });
        } catch (e) {
          return [formatError(e)];
        }
      }
      return [`added ${ids.join(" ")}`];
    }
    case "campaign":
      c.get(Number(args[0])).node.campaign();
      return ["ok"];
    case "tick": {
      c.tick(parseIds(args[0]), args[1] === undefined ? 1 : Number(args[1]));
      return ["ok"];
    }
    case "propose":
      return c.propose(Number(args[0]), args.slice(1).join(" "));
    case "propose-batch": {
      try {
        const first = c.get(Number(args[0])).node.proposeBatch(
          args.slice(1).map((a) => encoder.encode(a)),
        );
        return [`first index ${first}`];
      } catch (e) {
        return [formatError(e)];
      }
    }
    case "process-ready": {
      const ids = parseIds(args[0]) ?? [...c.nodes.keys()];
      const out = ids.flatMap((id) => c.processReady(id));
      return out.length > 0 ? out : ["no ready"];
    }
    case "deliver": {
      const out = c.deliver(
        { from: num(opts.get("from")), to: num(opts.get("to")) },
        num(opts.get("max")) ?? Infinity,
      );
      return out.length > 0 ? out : ["ok"];
    }
    case "drop": {
      const out = c.drop({
        from: num(opts.get("from")),
        to: num(opts.get("to")),
        type: opts.get("type"),
      });
      return out.length > 0 ? out : ["nothing dropped"];
    }
    case "elapse": {
      // Ticks one at a time, stabilizing after each; prints role changes only.
      const ids = parseIds(args[0]);
      const n = args[1] === undefined ? 1 : Number(args[1]);
      const out: string[] = [];
      for (let i = 1; i <= n; i++) {
        c.tick(ids, 1);
        for (const line of c.stabilize()) {
          const m = /^> (\d+) handling Ready$/.exec(line);
          if (m) out.push(`tick ${i}: node ${m[1]}`);
          else if (line.startsWith("  role=")) {
            out[out.length - 1] += ` ${line.trim()}`;
          }
        }
      }
      const changes = out.filter((l) => l.includes("role="));
      return changes.length > 0 ? changes : ["no role changes"];
    }
    case "stash": {
      const out = c.stash({
        from: num(opts.get("from")),
        to: num(opts.get("to")),
      }, opts.get("copy") === "true");
      return out.length > 0 ? out : ["nothing stashed"];
    }
    case "unstash": {
      const out = c.unstash();
      return out.length > 0 ? out : ["nothing stashed"];
    }
    case "queue": {
      const out = c.queue.map(formatMessage);
      return out.length > 0 ? out : ["empty"];
    }
    case "stabilize": {
      const out = c.stabilize(parseIds(args[0]));
      return out.length > 0 ? out : ["quiet"];
    }
    case "partition": {
      const groups = args.join(" ").split("|").map((g) =>
        g.trim().split(/\s+/).map(Number)
      );
      c.partition(groups);
      return ["ok"];
    }
    case "isolate": {
      const id = Number(args[0]);
      c.partition([[id], [...c.nodes.keys()].filter((x) => x !== id)]);
      return ["ok"];
    }
    case "heal":
      c.heal();
      return ["ok"];
    case "crash":
      c.crash(Number(args[0]));
      return ["ok"];
    case "restart":
      c.restart(Number(args[0]));
      return ["ok"];
    case "read-index": {
      try {
        c.get(Number(args[0])).node.readIndex(args[1]);
        return ["ok"];
      } catch (e) {
        return [formatError(e)];
      }
    }
    case "transfer": {
      try {
        c.get(Number(args[0])).node.transferLeadership(Number(args[1]));
        return ["ok"];
      } catch (e) {
        return [formatError(e)];
      }
    }
    case "snapshot": {
      const sim = c.get(Number(args[0]));
      const index = args[1] === undefined ? sim.appliedIndex : Number(args[1]);
      try {
        sim.node.snapshotTaken(index, encoder.encode(sim.applied.join(",")));
        const meta = sim.log.snapshotMeta();
        return [
          `snapshot ${meta.term}/${meta.index}, log now ${sim.log.firstIndex()}..${sim.log.lastIndex()}`,
        ];
      } catch (e) {
        return [formatError(e)];
      }
    }
    case "change-membership": {
      const id = Number(args[0]);
      const op = args[1];
      let change: MembershipChange;
      const info = {
        address: opts.get("address"),
        metadata: opts.get("metadata"),
      };
      if (op === "add-voter") {
        change = {
          type: "addVoter",
          id: Number(args[2]),
          ...info,
          force: bool(opts.get("force")),
        };
      } else if (op === "add-learner") {
        change = { type: "addLearner", id: Number(args[2]), ...info };
      } else if (op === "update-node") {
        change = { type: "updateNode", id: Number(args[2]), ...info };
      } else if (op === "remove") {
        change = { type: "removeNode", id: Number(args[2]) };
      } else if (op === "leave-joint") change = { type: "leaveJoint" };
      else if (op === "enter-joint") {
        change = {
          type: "enterJoint",
          voters: list(opts.get("voters")) ?? [],
          learners: list(opts.get("learners")),
          autoLeave: bool(opts.get("autoleave")),
          force: bool(opts.get("force")),
        };
      } else return [`unknown membership op ${op}`];
      return c.changeMembership(id, change);
    }
    case "report-unreachable":
      c.get(Number(args[0])).node.reportUnreachable(Number(args[1]));
      return ["ok"];
    case "status": {
      const s = c.get(Number(args[0])).node.status();
      const out = [
        `${s.id}: ${s.role} term=${s.term} vote=${s.vote} leader=${s.leader} commit=${s.commit} applied=${s.applied} last=${s.lastIndex} stable=${s.stableIndex}${
          s.removed ? " removed" : ""
        }`,
        `config: ${formatMembership(s.membership)}${
          s.leadTransferee ? ` transferee=${s.leadTransferee}` : ""
        }`,
      ];
      for (const p of s.progress) {
        out.push(
          `  ${p.id}: ${p.state} match=${p.match} next=${p.next} inflight=${p.inflight}${
            p.isLearner ? " learner" : ""
          }${p.recentActive ? " active" : ""}`,
        );
      }
      return out;
    }
    case "log": {
      const sim = c.get(Number(args[0]));
      const meta = sim.log.snapshotMeta();
      const out = [
        `snapshot ${meta.term}/${meta.index}, first=${sim.log.firstIndex()} last=${sim.log.lastIndex()}`,
      ];
      for (let i = sim.log.firstIndex(); i <= sim.log.lastIndex(); i++) {
        out.push(formatEntry(sim.log.entry(i)!));
      }
      return out;
    }
    case "applied": {
      const sim = c.get(Number(args[0]));
      return [
        `applied index ${sim.appliedIndex}: [${sim.applied.join(" ")}]`,
        `reads: [${sim.reads.join(" ")}]`,
      ];
    }
    case "raft-state": {
      const out: string[] = [];
      for (const sim of c.nodes.values()) {
        const s = sim.node.status();
        out.push(
          `${s.id}: ${
            sim.up ? s.role : "down"
          } term=${s.term} leader=${s.leader} commit=${s.commit} last=${s.lastIndex}`,
        );
      }
      return out;
    }
    default:
      return [`unknown command ${name}`];
  }
}
