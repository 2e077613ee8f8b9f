/**
 * "Break each rule once": applies one mutation at a time to src/core, runs
 * the core's tests and reports whether they caught it, then restores the
 * file. Not part of the test suite (it rewrites sources); run by hand:
 *
 * `deno run --allow-read --allow-write=src/core --allow-run=deno tests/core/mutations.ts [rule...]`
 *
 * Every rule must print CAUGHT.
 */

interface Mutation {
  rule: string;
  file: string;
  from: string;
  to: string;
}

const MUTATIONS: Mutation[] = [
  {
    rule: "no-op entry",
    file: "src/core/raft.ts",
    from:
      "    const index = this.log.lastIndex() + 1;\n    this.appendToLog([{",
    to:
      "    const index = this.log.lastIndex() + 1;\n    if (index < 0) this.appendToLog([{",
  },
  {
    rule: "5.4.2 current-term commit",
    file: "src/core/replication.ts",
    from: "if (r.log.termAt(index) !== r.term) return false;",
    to: "",
  },
  {
    rule: "commit monotonic",
    file: "src/core/raft.ts",
    from: "if (index <= this.commit) return false;",
    to: "if (index === this.commit) return false;",
  },
  {
    rule: "self counts only persisted",
    file: "src/core/raft.ts",
    from: "id === this.id ? this.stableIndex",
    to: "id === this.id ? this.log.lastIndex()",
  },
  {
    rule: "pre-vote",
    file: "src/core/election.ts",
    from: 'campaign(r, r.cfg.preVote ? "preVote" : "election");',
    to: 'campaign(r, "election");',
  },
  {
    rule: "check-quorum",
    file: "src/core/step.ts",
    from: "        r.becomeFollower(r.term, 0);\n        return;\n      }\n",
    to: "        return;\n      }\n",
  },
  {
    rule: "stickiness",
    file: "src/core/step.ts",
    from: "if (inLease && !m.transfer) return;",
    to: "",
  },
  {
    rule: "snapshot once",
    file: "src/core/replication.ts",
    from: "  pr.recentActive = true;\n  pr.probeSent = false;\n",
    to:
      '  pr.recentActive = true;\n  pr.probeSent = false;\n  if (pr.state === "snapshot") pr.becomeProbe();\n',
  },
  {
    rule: "transfer abandoned",
    file: "src/core/step.ts",
    from: "if (r.leadTransferee !== 0) r.leadTransferee = 0;",
    to: "",
  },
  {
    rule: "transfer pauses proposals",
    file: "src/core/step.ts",
    from:
      "  if (r.leadTransferee !== 0) {\n    throw new TransferInProgressError(r.leadTransferee);\n  }\n  const max",
    to: "  const max",
  },
  {
    rule: "transfer catch-up first",
    file: "src/core/election.ts",
    from:
      "if (pr !== undefined && pr.match === r.log.lastIndex()) sendTimeoutNow(r, to);",
    to: "if (true) sendTimeoutNow(r, to);",
  },
  {
    rule: "read needs own-term commit",
    file: "src/core/read_index.ts",
    from: "if (!committedInTerm(r)) {",
    to: "if (false) {",
  },
  {
    rule: "read waits for apply",
    file: "src/core/node.ts",
    from: "rs.index <= appliedTo ? readStates : keep",
    to: "true ? readStates : keep",
  },
  {
    rule: "lease expiry",
    file: "src/core/read_index.ts",
    from:
      "return r.leaderTicks < sentAt + r.cfg.electionTick - LEASE_MARGIN_TICKS;",
    to: "return true;",
  },
  {
    rule: "uncommitted cap",
    file: "src/core/step.ts",
    from: "throw new OverloadedError(r.uncommittedBytes, max);",
    to: "",
  },
  {
    rule: "one change in flight",
    file: "src/core/node.ts",
    from:
      "if (r.configIndex > r.commit) {\n      throw new ConfigChangeInProgressError(\n        `the configuration at index ${r.configIndex} is not committed yet (commit",
    to:
      "if (false) {\n      throw new ConfigChangeInProgressError(\n        `the configuration at index ${r.configIndex} is not committed yet (commit",
  },
  {
    rule: "new leader own-term commit before change",
    file: "src/core/node.ts",
    from: "if (r.log.termAt(r.commit) !== r.term) {",
    to: "if (false) {",
  },
  {
    rule: "removed leader steps down",
    file: "src/core/replication.ts",
    from: "    bcastAppend(r);\n    r.becomeFollower(r.term, 0);\n    return;",
    to: "    bcastAppend(r);\n    return;",
  },
  {
    rule: "config on append",
    file: "src/core/raft.ts",
    from: 'if (entries[i].kind === "config") {',
    to: "if (false) {",
  },
  {
    rule: "fast backtracking hint",
    file: "src/core/replication.ts",
    from: "let matchHint = m.hintIndex;\n    if (m.hintTerm > 0) {",
    to: "let matchHint = m.rejectIndex - 1;\n    if (false) {",
  },
  {
    rule: "inflight bytes",
    file: "src/core/progress.ts",
    from: "(this.#maxBytes > 0 && this.#totalBytes >= this.#maxBytes)",
    to: "false",
  },
  {
    rule: "max bytes per message",
    file: "src/core/replication.ts",
    from:
      "entries = r.log.entries(pr.next, last + 1, r.cfg.maxBytesPerMessage);",
    to: "entries = r.log.entries(pr.next, last + 1);",
  },
  {
    rule: "votes after sync",
    file: "src/core/messages.ts",
    from: "      return !message.preVote;",
    to: "      return false;",
  },
  {
    rule: "joint quorum",
    file: "src/core/raft.ts",
    from: "      this.membership.outgoing,\n      this.matchIndexer,",
    to: "      [],\n      this.matchIndexer,",
  },
  {
    rule: "learner never campaigns",
    file: "src/core/raft.ts",
    from: "if (isVoter(this.membership, this.id)) return true;",
    to:
      "if (isVoter(this.membership, this.id) || this.isLearner()) return true;",
  },
  {
    rule: "inflight count",
    file: "src/core/progress.ts",
    from: "return this.#count >= this.#maxCount ||",
    to: "return false ||",
  },
  {
    rule: "added member counts as active",
    file: "src/core/raft.ts",
    from: "          p.recentActive = true;\n",
    to: "",
  },
  {
    rule: "no snapshot to an inactive follower",
    file: "src/core/snapshot.ts",
    from: "  if (!pr.recentActive) return false;\n",
    to: "",
  },
  {
    rule: "heartbeat moves a probing follower to replicate",
    file: "src/core/replication.ts",
    from: '|| pr.state === "probe") {',
    to: ") {",
  },
  {
    rule: "empty proposal passes the cap",
    file: "src/core/step.ts",
    from: "max > 0 && bytes > 0 && r.uncommittedBytes > 0",
    to: "max > 0 && r.uncommittedBytes > 0",
  },
  {
    rule: "snapshot hint by bytes",
    file: "src/core/node.ts",
    from: "appliedTo - base >= threshold) || byBytes)",
    to: "appliedTo - base >= threshold))",
  },
  {
    rule: "hint bytes count from the snapshot",
    file: "src/core/node.ts",
    from: "    this.#hintBytes = bytes;\n",
    to: "",
  },
  {
    rule: "removed never campaigns",
    file: "src/core/raft.ts",
    from: "    if (this.removed) return false;\n",
    to: "",
  },
  {
    rule: "removed refuses proposals and reads",
    file: "src/core/node.ts",
    from: "    if (r.removed) {\n      // The leader may have told it",
    to: "    if (false) {\n      // The leader may have told it",
  },
  {
    rule: "removed in softState",
    file: "src/core/node.ts",
    from: "      r.removed !== this.#prevRemoved\n    ) {\n      softState",
    to: "      false\n    ) {\n      softState",
  },
  {
    rule: "leader tells a non-member it was removed",
    file: "src/core/step.ts",
    from: "    !isMember(r.membership, m.from) &&\n",
    to: "    false &&\n",
  },
  {
    rule: "Removed rate limit",
    file: "src/core/step.ts",
    from:
      "  if (last !== undefined && r.leaderTicks - last < r.cfg.electionTick) return;\n",
    to: "",
  },
  {
    rule: "Removed from an older term ignored",
    file: "src/core/step.ts",
    from: "  if (m.from !== r.leader && m.term < r.term) return;\n",
    to: "",
  },
  {
    rule: "re-added node is a member again",
    file: "src/core/raft.ts",
    from: "        this.removedByMessage = false;\n",
    to: "",
  },
  {
    rule: "voter only through a caught-up learner",
    file: "src/core/node.ts",
    from: "      this.#checkCaughtUp(change.id);\n",
    to: "",
  },
  {
    rule: "learner catch-up slack",
    file: "src/core/node.ts",
    from: "} else if (pr.match < need) {",
    to: "} else if (pr.match < r.log.lastIndex()) {",
  },
  {
    rule: "leaderReady needs an own-term commit",
    file: "src/core/raft.ts",
    from:
      'return this.role === "leader" && this.log.termAt(this.commit) === this.term;',
    to: 'return this.role === "leader";',
  },
  {
    rule: "member info dropped with the member",
    file: "src/core/membership.ts",
    from: "    if (!isMember(m, id)) continue;\n",
    to: "",
  },
  {
    rule: "membership version 1 still decodes",
    file: "src/core/membership.ts",
    from: "if (version !== MEMBERSHIP_V1 && version !== MEMBERSHIP_V2) {",
    to: "if (version !== MEMBERSHIP_V2) {",
  },
  {
    rule: "a repaired node grants no vote",
    file: "src/core/election.ts",
    from: "canVote && upToDate && r.catchUp === undefined",
    to: "canVote && upToDate",
  },
  {
    rule: "a repaired node does not campaign",
    file: "src/core/election.ts",
    from: "  if (r.catchUp !== undefined) return;\n  let voteTerm",
    to: "  let voteTerm",
  },
  {
    rule: "a repaired node starts in the marker's term",
    file: "src/core/raft.ts",
    from: "        this.term = catchUp.term;\n",
    to: "",
  },
  {
    rule: "catch-up needs the log through the marker's index",
    file: "src/core/catch_up.ts",
    from: "  if (matched < Math.max(marker.index, leaderCommit)) return;",
    to: "  if (matched < leaderCommit) return;",
  },
  {
    rule: "voting resumes only once the marker is durably cleared",
    file: "src/core/catch_up.ts",
    from: "  r.caughtUp = true;\n",
    to: "  r.caughtUp = true;\n  r.catchUp = undefined;\n",
  },
  {
    rule: "the leader forgets a repaired follower's stale match",
    file: "src/core/catch_up.ts",
    from: "      if (m.matchIndex < pr.match) {\n        pr.forgetMatch",
    to: "      if (false) {\n        pr.forgetMatch",
  },
  {
    rule: "a pre-repair acknowledgement delivered late is ignored",
    file: "src/core/catch_up.ts",
    from: "  return m.matchIndex <= pr.match;",
    to: "  return true;",
  },
  {
    rule: "a repaired node answers a leader's first heartbeat",
    file: "src/core/replication.ts",
    from:
      "    respondAppend(r, m.from, true, r.commit, 0, 0, 0);\n  }\n  const resp",
    to: "  }\n  const resp",
  },
];

const only = Deno.args;
let missed = 0;
for (const m of MUTATIONS) {
  if (only.length > 0 && !only.includes(m.rule)) continue;
  const original = Deno.readTextFileSync(m.file);
  if (!original.includes(m.from)) {
    console.log(`STALE   ${m.rule}: pattern not found in ${m.file}`);
    missed++;
    continue;
  }
  Deno.writeTextFileSync(m.file, original.replace(m.from, m.to));
  try {
    const out = await new Deno.Command("deno", {
      args: ["test", "-q", "--no-check", "--allow-read=tests", "tests/core/"],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    const failing = new Set(
      text.split("\n").filter((l) => l.includes(" => ")).map((l) =>
        l.split(" => ")[0].trim()
      ),
    );
    if (out.success) missed++;
    console.log(
      `${out.success ? "MISSED" : "CAUGHT"}  ${m.rule}: ${
        [...failing].slice(0, 3).join("; ")
      }`,
    );
  } finally {
    Deno.writeTextFileSync(m.file, original);
  }
}
if (missed > 0) Deno.exit(1);
