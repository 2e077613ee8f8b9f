/**
 * The job queue's commands and their encoding: versioned JSON, validated
 * strictly on decode. The leader's HTTP front end encodes a command; every
 * replica decodes it in `apply`, so a command that does not decode is
 * rejected alike everywhere.
 *
 * @module
 */

/** The encoding version written by {@linkcode encodeCommand}. */
export const COMMAND_VERSION = 1;

/** Adds a job to the queue; its id is the log index of this command. */
export interface EnqueueCommand {
  op: "enqueue";
  /** What the job is about (opaque to the queue). */
  payload: string;
  /** Proposer's clock, ms since the epoch. */
  now: number;
}

/**
 * Claims the oldest job that is queued, or claimed with an expired lease,
 * for `owner` until `now + leaseMs`.
 */
export interface ClaimCommand {
  op: "claim";
  /** Who works on the job (a worker name). */
  owner: string;
  /** Lease length, ms: after it another worker may claim the job. */
  leaseMs: number;
  /** Proposer's clock, ms since the epoch. */
  now: number;
}

/** Completes a job; only its current owner may. */
export interface CompleteCommand {
  op: "complete";
  /** The job's id. */
  id: number;
  /** The worker completing it: must hold the job's lease. */
  owner: string;
  /** Optional outcome text. */
  result: string;
  /** Proposer's clock, ms since the epoch. */
  now: number;
}

/** Every command of the job queue. */
export type Command = EnqueueCommand | ClaimCommand | CompleteCommand;

/** Why a command was rejected; stable, for clients to branch on. */
export type RejectReason =
  | "BAD_COMMAND"
  | "UNKNOWN_JOB"
  | "NOT_OWNER"
  | "ALREADY_DONE"
  | "LEASE_EXPIRED";

/**
 * Thrown by the state machine (and by {@linkcode decodeCommand}) to reject
 * a command. It reaches the proposer as the `cause` of an `ApplyError`.
 */
export class CommandRejected extends Error {
  /** Why, as a stable reason. */
  readonly reason: RejectReason;
  /**
   * Creates the rejection.
   *
   * @param reason stable reason
   * @param message what happened
   */
  constructor(reason: RejectReason, message: string) {
    super(message);
    this.name = "CommandRejected";
    this.reason = reason;
  }
}

/** Largest payload, owner or result text, in UTF-16 code units. */
export const MAX_TEXT = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes a command for `RaftServer.propose`. */
export function encodeCommand(command: Command): Uint8Array {
  return encoder.encode(JSON.stringify({ v: COMMAND_VERSION, ...command }));
}

function text(o: Record<string, unknown>, key: string, min = 0): string {
  const v = o[key];
  if (typeof v !== "string" || v.length < min || v.length > MAX_TEXT) {
    throw new CommandRejected(
      "BAD_COMMAND",
      `${key} must be a string of ${min}..${MAX_TEXT} characters`,
    );
  }
  return v;
}

function int(o: Record<string, unknown>, key: string, min: number): number {
  const v = o[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new CommandRejected(
      "BAD_COMMAND",
      `${key} must be an integer >= ${min}`,
    );
  }
  return v;
}

/**
 * Decodes and validates a command; throws {@linkcode CommandRejected}
 * (`BAD_COMMAND`) for anything else.
 */
export function decodeCommand(bytes: Uint8Array): Command {
  let o: unknown;
  try {
    o = JSON.parse(decoder.decode(bytes));
  } catch {
    throw new CommandRejected("BAD_COMMAND", "the command is not JSON");
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new CommandRejected("BAD_COMMAND", "the command is not an object");
  }
  const c = o as Record<string, unknown>;
  if (c.v !== COMMAND_VERSION) {
    throw new CommandRejected(
      "BAD_COMMAND",
      `unknown command version ${JSON.stringify(c.v)}`,
    );
  }
  const now = int(c, "now", 0);
  switch (c.op) {
    case "enqueue":
      return { op: "enqueue", payload: text(c, "payload"), now };
    case "claim":
      return {
        op: "claim",
        owner: text(c, "owner", 1),
        leaseMs: int(c, "leaseMs", 1),
        now,
      };
    case "complete":
      return {
        op: "complete",
        id: int(c, "id", 1),
        owner: text(c, "owner", 1),
        result: text(c, "result"),
        now,
      };
    default:
      throw new CommandRejected(
        "BAD_COMMAND",
        `unknown op ${JSON.stringify(c.op)}`,
      );
  }
}
