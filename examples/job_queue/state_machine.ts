/**
 * The replicated job queue: a deterministic {@linkcode StateMachine}.
 *
 * Determinism: everything `apply` decides comes from the entry — the job id
 * is the entry's log index, and time is the proposer's clock carried in the
 * command (made monotonic across leaders), never this replica's clock.
 * Rejections: a command that does not decode or fails a precondition throws
 * {@linkcode CommandRejected} before changing anything, so the proposal
 * rejects with `ApplyError` and every replica stays identical.
 *
 * @module
 */
import {
  type ClaimCommand,
  CommandRejected,
  type CompleteCommand,
  decodeCommand,
} from "./commands.ts";
import {
  type Entry,
  type StateMachine,
  StateMachineFatalError,
} from "./raft.ts";

/** Where a job is in its life. */
export type JobState = "queued" | "claimed" | "done";

/** One job. */
export interface Job {
  /** The log index of its enqueue command. */
  id: number;
  /** What the job is about. */
  payload: string;
  /** Where it is. */
  state: JobState;
  /** The worker holding (or that completed) it; `""` while queued. */
  owner: string;
  /** While claimed: when the lease ends, ms since the epoch (0 otherwise). */
  leaseUntil: number;
  /** How many times it was claimed. */
  attempts: number;
  /** The outcome given on completion. */
  result: string;
  /** When it was enqueued (proposer's clock). */
  enqueuedAt: number;
}

/** What `apply` returns: the proposal's result. */
export type JobResult =
  | { type: "enqueued"; job: Job }
  | { type: "claimed"; job: Job | null }
  | { type: "completed"; job: Job };

interface SnapshotV1 {
  v: 1;
  applied: number;
  clock: number;
  jobs: Job[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The replicated job queue. */
export class JobQueue implements StateMachine<JobResult> {
  /** Jobs by id; ids grow with the log, so insertion order is age order. */
  readonly #jobs = new Map<number, Job>();
  /** Highest command time seen: the queue's clock never goes back. */
  #clock = 0;
  /** Index of the last entry applied (kept in snapshots). */
  #applied = 0;

  /** Applies one committed command; throws `CommandRejected` to reject it. */
  apply(entry: Entry): JobResult {
    if (entry.index <= this.#applied) {
      // Guard against an invariant break: the server never hands an entry twice
      // to one life of the state machine. A durable state machine would skip it
      // instead (see docs/guide.md, "the at-least-once edge").
      throw new StateMachineFatalError(
        `entry ${entry.index} arrived after entry ${this.#applied}`,
      );
    }
    this.#applied = entry.index;
    const command = decodeCommand(entry.data);
    const now = Math.max(this.#clock, command.now);
    let result: JobResult;
    switch (command.op) {
      case "enqueue": {
        const job: Job = {
          id: entry.index,
          payload: command.payload,
          state: "queued",
          owner: "",
          leaseUntil: 0,
          attempts: 0,
          result: "",
          enqueuedAt: now,
        };
        this.#jobs.set(job.id, job);
        result = { type: "enqueued", job: { ...job } };
        break;
      }
      case "claim":
        result = { type: "claimed", job: this.#claim(command, now) };
        break;
      case "complete":
        result = { type: "completed", job: this.#complete(command, now) };
        break;
      default: {
        const never: never = command;
        throw new CommandRejected("BAD_COMMAND", `unknown command ${never}`);
      }
    }
    this.#clock = now;
    return result;
  }

  #claim(c: ClaimCommand, now: number): Job | null {
    for (const job of this.#jobs.values()) {
      const free = job.state === "queued" ||
        (job.state === "claimed" && job.leaseUntil <= now);
      if (!free) continue;
      job.state = "claimed";
      job.owner = c.owner;
      job.leaseUntil = now + c.leaseMs;
      job.attempts++;
      return { ...job };
    }
    return null;
  }

  #complete(c: CompleteCommand, now: number): Job {
    const job = this.#jobs.get(c.id);
    // Every check comes before the first change: a rejected command changes nothing.
    if (job === undefined) {
      throw new CommandRejected("UNKNOWN_JOB", `there is no job ${c.id}`);
    }
    if (job.state === "done") {
      throw new CommandRejected("ALREADY_DONE", `job ${c.id} is done already`);
    }
    if (job.state !== "claimed" || job.owner !== c.owner) {
      throw new CommandRejected(
        "NOT_OWNER",
        `job ${c.id} is not claimed by ${JSON.stringify(c.owner)}`,
      );
    }
    if (job.leaseUntil <= now) {
      throw new CommandRejected(
        "LEASE_EXPIRED",
        `the lease of ${JSON.stringify(c.owner)} on job ${c.id} has expired`,
      );
    }
    job.state = "done";
    job.leaseUntil = 0;
    job.result = c.result;
    return { ...job };
  }

  /** Copies of the jobs, oldest first, optionally only those in `state`. */
  list(state?: JobState): Job[] {
    const out: Job[] = [];
    for (const job of this.#jobs.values()) {
      if (state === undefined || job.state === state) out.push({ ...job });
    }
    return out;
  }

  /** Number of jobs by state. */
  counts(): Record<JobState, number> {
    const n = { queued: 0, claimed: 0, done: 0 };
    for (const job of this.#jobs.values()) n[job.state]++;
    return n;
  }

  /** The whole state as bytes (small states: a frozen view is not needed). */
  snapshot(): Uint8Array {
    const s: SnapshotV1 = {
      v: 1,
      applied: this.#applied,
      clock: this.#clock,
      jobs: [...this.#jobs.values()],
    };
    return encoder.encode(JSON.stringify(s));
  }

  /** Replaces the state with a snapshot's (empty bytes: the empty queue). */
  restore(bytes: Uint8Array): void {
    this.#jobs.clear();
    this.#clock = 0;
    this.#applied = 0;
    if (bytes.byteLength === 0) return;
    let s: SnapshotV1;
    try {
      s = JSON.parse(decoder.decode(bytes));
    } catch (e) {
      // Snapshots are written by this code: one that does not parse is a broken node.
      throw new StateMachineFatalError("the job queue snapshot is unreadable", {
        cause: e,
      });
    }
    if (s.v !== 1 || !Array.isArray(s.jobs)) {
      throw new StateMachineFatalError(
        `unknown job queue snapshot version ${JSON.stringify(s.v)}`,
      );
    }
    this.#applied = s.applied;
    this.#clock = s.clock;
    for (const job of s.jobs) this.#jobs.set(job.id, job);
  }
}
