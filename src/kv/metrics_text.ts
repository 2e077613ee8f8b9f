/**
 * The Prometheus text of a key-value node's `GET /metrics`: proposals,
 * commit and fsync latency histograms, bytes written, messages per peer,
 * elections, snapshots, reads by consistency, peer lag and HTTP counters.
 *
 * @module
 */

import type { RaftServer } from "../runtime/raft_server.ts";
import type { KvResult, KvStateMachine } from "./kv_state_machine.ts";

/**
 * Renders every metric of `server` as Prometheus text (format 0.0.4).
 *
 * @example
 * ```ts ignore
 * const text = renderMetrics(server, kv, { requests: 10, forwarded: 2 });
 * text.includes("raft_proposals_total"); // true
 * ```
 */
export function renderMetrics(
  server: RaftServer<KvResult>,
  kv: KvStateMachine,
  http: { requests: number; forwarded: number },
  extra?: () => string,
): string {
  const m = server.metrics();
  const st = server.status();
  const t = server.transportStats();
  const lines: string[] = [];
  const metric = (
    name: string,
    type: string,
    help: string,
    samples: [string, number][],
  ) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) {
      lines.push(`${name}${labels ? `{${labels}}` : ""} ${v}`);
    }
  };
  metric(
    "raft_proposals_total",
    "counter",
    "Proposals accepted by this node as leader.",
    [["", m.proposals]],
  );
  metric(
    "raft_proposals_committed_total",
    "counter",
    "Proposals committed and applied.",
    [["", m.proposalsCommitted]],
  );
  metric("raft_proposals_failed_total", "counter", "Proposals that failed.", [
    ["", m.proposalsFailed],
  ]);
  lines.push("# HELP raft_commit_latency_seconds Proposal to apply latency.");
  lines.push("# TYPE raft_commit_latency_seconds histogram");
  lines.push(m.commitLatency.toPrometheus("raft_commit_latency_seconds"));
  lines.push("# HELP raft_fsync_latency_seconds Log sync latency.");
  lines.push("# TYPE raft_fsync_latency_seconds histogram");
  lines.push(m.fsyncLatency.toPrometheus("raft_fsync_latency_seconds"));
  metric("raft_log_syncs_total", "counter", "Log syncs (group commits).", [[
    "",
    m.syncs,
  ]]);
  metric(
    "raft_log_bytes_written_total",
    "counter",
    "Entry bytes made durable.",
    [["", m.bytesWritten]],
  );
  metric(
    "raft_entries_applied_total",
    "counter",
    "Entries applied to the state machine.",
    [["", m.entriesApplied]],
  );
  metric(
    "raft_elections_total",
    "counter",
    "Elections started by this node.",
    [["", m.elections]],
  );
  metric(
    "raft_leaderships_total",
    "counter",
    "Times this node became leader.",
    [["", m.leaderships]],
  );
  metric("raft_snapshots_taken_total", "counter", "Snapshots taken.", [[
    "",
    m.snapshotsTaken,
  ]]);
  metric(
    "raft_snapshots_restored_total",
    "counter",
    "Snapshots installed from a leader.",
    [["", m.snapshotsRestored]],
  );
  metric(
    "raft_reads_total",
    "counter",
    "Reads served, by consistency.",
    Object.entries(m.reads).map(([k, v]) => [`consistency="${k}"`, v]),
  );
  metric("raft_term", "gauge", "Current term.", [["", st.term]]);
  metric("raft_commit_index", "gauge", "Commit index.", [["", st.commit]]);
  metric("raft_applied_index", "gauge", "Applied index.", [[
    "",
    server.applied,
  ]]);
  metric("raft_is_leader", "gauge", "1 on the leader.", [[
    "",
    st.role === "leader" ? 1 : 0,
  ]]);
  const peers = Object.entries(t.peers);
  metric(
    "raft_messages_sent_total",
    "counter",
    "Messages sent, per peer.",
    peers.map(([id, p]) => [`peer="${id}"`, p.sent]),
  );
  metric(
    "raft_messages_dropped_total",
    "counter",
    "Messages dropped, per peer.",
    peers.map(([id, p]) => [`peer="${id}"`, p.dropped]),
  );
  metric(
    "raft_messages_received_total",
    "counter",
    "Messages received, per peer.",
    peers.map(([id, p]) => [`peer="${id}"`, p.received]),
  );
  metric(
    "raft_peer_lag_entries",
    "gauge",
    "Leader only: entries each peer is behind.",
    st.progress.filter((p) => p.id !== st.id).map((
      p,
    ) => [`peer="${p.id}"`, Math.max(0, st.lastIndex - p.match)]),
  );
  metric("kv_keys", "gauge", "Keys in the store.", [["", kv.size]]);
  metric("kv_http_requests_total", "counter", "HTTP requests.", [[
    "",
    http.requests,
  ]]);
  metric(
    "kv_http_forwarded_total",
    "counter",
    "Requests forwarded to the leader.",
    [["", http.forwarded]],
  );
  const more = extra?.();
  return lines.join("\n") + "\n" + (more ? more + "\n" : "");
}
