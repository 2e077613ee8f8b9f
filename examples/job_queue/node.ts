/**
 * One job queue node as an OS process: a {@linkcode WalLog} in `--data-dir`,
 * an authenticated {@linkcode TcpTransport}, the {@linkcode JobQueue} state
 * machine, a {@linkcode RaftServer} and the HTTP front end.
 *
 * ```sh
 * deno run --allow-net=127.0.0.1 --allow-read=.jq --allow-write=.jq \
 *   examples/job_queue/node.ts --id 1 --data-dir .jq/1 --listen 127.0.0.1:7101 \
 *   --peer 2=127.0.0.1:7102 --peer 3=127.0.0.1:7103 \
 *   --http 127.0.0.1:8101 --secret-file .jq/secret
 * ```
 *
 * Every founding member is started with the same three addresses (its own
 * `--listen` plus the `--peer` of the others); they become `config.nodes`.
 * With `--join` the node is not a founder: `--peer` are only seeds, and it
 * waits to be added (`server.addVoter` on the leader).
 *
 * @module
 */
import process from "node:process";
import { readFile } from "node:fs/promises";
import { JobHttpApi, type JobHttpServer, serveJobHttp } from "./http.ts";
import { JobQueue, type JobResult } from "./state_machine.ts";
import {
  consoleLogger,
  type Logger,
  type LogLevel,
  type Message,
  raftMessageCodec,
  RaftServer,
  TcpTransport,
  WalLog,
} from "./raft.ts";

/** The parsed command line. */
export interface JobNodeOptions {
  /** This node's id. */
  id: number;
  /** Folder of the write-ahead log. */
  dataDir: string;
  /** Where the Raft transport listens, `host:port`. */
  listen: string;
  /** The other members' Raft addresses, by id. */
  peers: Map<number, string>;
  /** Where the HTTP front end listens, `host:port`. */
  http: string;
  /** File holding the cluster secret (≥ 16 bytes). */
  secretFile: string;
  /** Not a founding member: wait to be added. */
  join: boolean;
  /** Milliseconds per Raft tick. */
  tickMs: number;
  /** Snapshot after this many applied entries. */
  snapshotEntries: number;
  /** Lowest log level printed. */
  logLevel: LogLevel;
}

const USAGE = `job queue node
  --id N                 this node's id
  --data-dir DIR         write-ahead log folder (one process per folder)
  --listen HOST:PORT     Raft address of this node
  --peer ID=HOST:PORT    Raft address of another founding member (repeat)
  --http HOST:PORT       HTTP front end
  --secret-file FILE     cluster secret, >= 16 bytes
  [--join] [--tick-ms MS] [--snapshot-entries N] [--log-level debug|info|warn|error]`;

function hostPort(flag: string, v: string | undefined): string {
  if (v === undefined || !/^[^:\s]+:\d{1,5}$/.test(v)) {
    throw new Error(`${flag} needs HOST:PORT, got ${JSON.stringify(v)}`);
  }
  return v;
}

function positive(flag: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new Error(
      `${flag} needs a positive integer, got ${JSON.stringify(v)}`,
    );
  }
  return n;
}

/** Parses the flags; throws an `Error` saying what to fix. */
export function parseArgs(args: string[]): JobNodeOptions {
  const o: Partial<JobNodeOptions> & { peers: Map<number, string> } = {
    peers: new Map(),
    join: false,
    tickMs: 50,
    snapshotEntries: 1000,
    logLevel: "info",
  };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i];
    const value = () => args[++i];
    switch (flag) {
      case "--id":
        o.id = positive(flag, value());
        break;
      case "--data-dir":
        o.dataDir = value();
        break;
      case "--listen":
        o.listen = hostPort(flag, value());
        break;
      case "--peer": {
        const m = /^(\d+)=(.+)$/.exec(value() ?? "");
        if (m === null) throw new Error("--peer needs ID=HOST:PORT");
        o.peers.set(positive(flag, m[1]), hostPort(flag, m[2]));
        break;
      }
      case "--http":
        o.http = hostPort(flag, value());
        break;
      case "--secret-file":
        o.secretFile = value();
        break;
      case "--join":
        o.join = true;
        break;
      case "--tick-ms":
        o.tickMs = positive(flag, value());
        break;
      case "--snapshot-entries":
        o.snapshotEntries = positive(flag, value());
        break;
      case "--log-level":
        o.logLevel = value() as LogLevel;
        break;
      default:
        throw new Error(`unknown flag ${JSON.stringify(flag)}\n${USAGE}`);
    }
  }
  for (const k of ["id", "dataDir", "listen", "http", "secretFile"] as const) {
    if (o[k] === undefined) {
      throw new Error(`missing a required flag\n${USAGE}`);
    }
  }
  o.peers.delete(o.id!);
  return o as JobNodeOptions;
}

/** A running node. */
export interface JobNode {
  /** The Raft server. */
  readonly server: RaftServer<JobResult>;
  /** The state machine. */
  readonly queue: JobQueue;
  /** The HTTP front end. */
  readonly http: JobHttpServer;
  /** Stops the server (settling pending requests), then HTTP. Idempotent. */
  stop(): Promise<void>;
}

/** Opens the log, starts the transport, the server and the front end. */
export async function startJobNode(
  o: JobNodeOptions,
  logger: Logger,
): Promise<JobNode> {
  const secret = (await readFile(o.secretFile, "utf8")).trim();
  const log = await WalLog.open(o.dataDir);
  let transport: TcpTransport<Message> | undefined;
  try {
    transport = await TcpTransport.create<Message>({
      id: o.id,
      listen: o.listen,
      peers: o.peers, // seeds; the server adds every member it learns from the configuration
      codec: raftMessageCodec,
      clusterSecret: secret,
      logger,
    });
  } catch (e) {
    await log.close();
    throw e;
  }
  const founders = new Map([...o.peers, [o.id, o.listen]]);
  const queue = new JobQueue();
  // start() closes the log and the transport itself when it fails.
  const server = await RaftServer.start<JobResult>({
    config: {
      id: o.id,
      // A joining node bootstraps nothing: it waits for the leader to add it.
      voters: o.join ? [...o.peers.keys()] : [...founders.keys()],
      nodes: o.join ? {} : Object.fromEntries(
        [...founders].map(([id, address]) => [id, { address, metadata: "" }]),
      ),
      snapshotThreshold: o.snapshotEntries,
      compactionLag: 100,
    },
    log,
    transport,
    stateMachine: queue,
    tickMs: o.tickMs,
    logger,
  });
  const api = new JobHttpApi({ server, queue });
  const [host, port] = o.http.split(":");
  let http: JobHttpServer;
  try {
    http = await serveJobHttp(api, host, Number(port));
  } catch (e) {
    await server.stop();
    throw e;
  }
  const url = `http://${http.address}`;
  // A ready leader records its HTTP URL in its member metadata, so followers can redirect to it.
  const announce = () => {
    const st = server.status();
    if (st.role !== "leader" || st.membership.nodes[o.id]?.metadata === url) {
      return;
    }
    server.changeMembership({ type: "updateNode", id: o.id, metadata: url })
      .catch((e) => logger.warn(`could not announce ${url}: ${e.message}`));
  };
  server.on("leaderReady", announce);
  announce();
  logger.info(`raft ${transport.address}, http ${url}, data ${o.dataDir}`);
  let stopping: Promise<void> | undefined;
  return {
    server,
    queue,
    http,
    stop: () =>
      stopping ??= (async () => {
        await server.stop();
        await http.close();
      })(),
  };
}

async function main(args: string[]): Promise<number> {
  let options: JobNodeOptions;
  try {
    options = parseArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  // One logger for the server and the transport.
  const logger = consoleLogger({
    level: options.logLevel,
    prefix: `[node ${options.id}]`,
  });
  const node = await startJobNode(options, logger);
  const done = new Promise<number>((resolve) => {
    node.server.on("fatal", ({ error }) => {
      logger.error(`fatal: ${error.message}`);
      resolve(1);
    });
    const shutdown = (signal: string) => {
      logger.info(`${signal}: stopping`);
      node.stop().then(() => resolve(0), () => resolve(1));
    };
    process.once("SIGINT", () => shutdown("SIGINT"));
    process.once("SIGTERM", () => shutdown("SIGTERM"));
  });
  const code = await done;
  await node.stop().catch(() => {});
  return code;
}

const isMain = import.meta.main ??
  (process.argv[1] !== undefined && import.meta.url.endsWith(process.argv[1]));
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
