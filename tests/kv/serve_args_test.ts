import assert from "node:assert/strict";
import { parseServeArgs, serveUsage, UsageError } from "../../src/kv/node.ts";

const base = [
  "--id",
  "2",
  "--data-dir",
  "d",
  "--peer",
  "1=127.0.0.1:7001",
  "--peer",
  "2=127.0.0.1:7002",
];

Deno.test("serve flags: a complete command line gives the node's options with defaults", () => {
  const o = parseServeArgs([
    ...base,
    "--cluster-secret-file",
    "s",
    "--snapshot-entries=200",
  ]);
  assert.ok(o !== "help");
  assert.equal(o.id, 2);
  assert.equal(o.listen, "127.0.0.1:7002");
  assert.equal(o.http, "127.0.0.1:8002");
  assert.equal(o.secretFile, "s");
  assert.equal(o.snapshotEntries, 200);
  assert.equal(o.tickMs, 100);
  const defaults = parseServeArgs([...base, "--insecure"]);
  assert.ok(defaults !== "help");
  assert.equal(defaults.snapshotEntries, 100_000);
  assert.equal(defaults.compactionLag, 1000);
  assert.equal(defaults.forward, "proxy");
  assert.deepEqual([...o.peers.keys()], [1, 2]);
  assert.equal(parseServeArgs(["--help"]), "help");
});

Deno.test("serve flags: mistakes are refused with a message naming the flag", () => {
  const bad: [string[], RegExp][] = [
    [
      ["--data-dir", "d", "--peer", "1=127.0.0.1:7001", "--insecure"],
      /--id is required/,
    ],
    [[...base], /no cluster secret/],
    [[...base, "--insecure", "--cluster-secret-file", "s"], /either/],
    [
      [...base, "--insecure", "--tick-ms", "0"],
      /--tick-ms needs a positive integer/,
    ],
    [
      [...base, "--insecure", "--peer", "3=nohost"],
      /--peer needs/,
    ],
    [[...base, "--insecure", "--peer", "1=127.0.0.1:9"], /given twice/],
    [[...base, "--insecure", "--bogus"], /unknown flag "--bogus"/],
    [[
      "--id",
      "5",
      "--data-dir",
      "d",
      "--peer",
      "1=127.0.0.1:7001",
      "--insecure",
    ], /own --peer 5=HOST:PORT/],
    [[...base, "--insecure", "--http", "8000"], /--http needs HOST:PORT/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseServeArgs(args),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("serve flags: the help text speaks the runtime's own command line", () => {
  const node = serveUsage("node");
  assert.match(node, /raft-io-serve --id N/);
  assert.match(node, /node node_modules\/@raft-io\/raft\/bin\/serve\.mjs/);
  assert.doesNotMatch(node, /deno/);
  const deno = serveUsage("deno");
  assert.match(deno, /deno task serve --id N/);
  assert.doesNotMatch(deno, /raft-io-serve/);
  assert.equal(serveUsage(), deno); // these tests run under Deno
});

Deno.test("serve flags: node ids above 2^31 are refused", () => {
  assert.throws(
    () => parseServeArgs(["--id", String(2 ** 31 + 1), "--data-dir", "d"]),
    (e: unknown) =>
      e instanceof UsageError && /at most 2147483648/.test(e.message),
  );
});

Deno.test("serve flags: --http beyond loopback needs --auth-tokens-file or an explicit --insecure-client-api", () => {
  const exposed = [...base, "--insecure", "--http", "0.0.0.0:8002"];
  assert.throws(
    () => parseServeArgs(exposed),
    (e) =>
      e instanceof UsageError &&
      /beyond loopback with no client authentication.*--auth-tokens-file.*--insecure-client-api/
        .test(e.message),
  );
  assert.throws(
    () => parseServeArgs([...base, "--insecure", "--http", "10.1.2.3:8002"]),
    UsageError,
  );
  const withTokens = parseServeArgs([...exposed, "--auth-tokens-file", "t"]);
  assert.ok(withTokens !== "help");
  assert.equal(withTokens.authTokensFile, "t");
  const open = parseServeArgs([...exposed, "--insecure-client-api"]);
  assert.ok(open !== "help");
  assert.equal(open.insecureClientApi, true);
  for (const host of ["127.0.0.9", "[::1]", "localhost"]) {
    assert.ok(
      parseServeArgs([...base, "--insecure", "--http", `${host}:8002`]) !==
        "help",
    );
  }
});

Deno.test("serve flags: TLS, cluster id and HTTP limits", () => {
  const o = parseServeArgs([
    ...base,
    "--insecure",
    "--cert-file",
    "c.pem",
    "--key-file",
    "k.pem",
    "--cluster-id",
    "prod-eu",
    "--max-inflight-bytes",
    "1000",
    "--body-timeout-ms",
    "500",
    "--header-timeout-ms",
    "400",
    "--request-timeout-ms",
    "900",
    "--idle-timeout-ms",
    "300",
  ]);
  assert.ok(o !== "help");
  assert.equal(o.certFile, "c.pem");
  assert.equal(o.keyFile, "k.pem");
  assert.equal(o.clusterId, "prod-eu");
  assert.equal(o.maxInflightBytes, 1000);
  assert.equal(o.bodyTimeoutMs, 500);
  assert.equal(o.headerTimeoutMs, 400);
  assert.equal(o.requestTimeoutMs, 900);
  assert.equal(o.idleTimeoutMs, 300);
  const d = parseServeArgs([...base, "--insecure"]);
  assert.ok(d !== "help");
  assert.equal(d.maxInflightBytes, 64 * 1024 * 1024);
  assert.throws(
    () => parseServeArgs([...base, "--insecure", "--cert-file", "c.pem"]),
    /--cert-file and --key-file together/,
  );
  assert.throws(
    () => parseServeArgs([...base, "--insecure", "--cluster-id", ""]),
    /--cluster-id needs a name/,
  );
  const help = serveUsage("deno");
  for (
    const flag of [
      "--auth-tokens-file",
      "--insecure-client-api",
      "--cert-file",
      "--cluster-id",
      "--max-inflight-bytes",
      "--body-timeout-ms",
      "--header-timeout-ms",
      "--request-timeout-ms",
      "--idle-timeout-ms",
      "--max-body-bytes",
    ]
  ) assert.ok(help.includes(flag), `--help lists ${flag}`);
});

Deno.test("serve flags: --encrypt-frames needs a cluster secret", () => {
  const o = parseServeArgs([
    ...base,
    "--cluster-secret-file",
    "s",
    "--encrypt-frames",
  ]);
  assert.ok(o !== "help");
  assert.equal(o.encryptFrames, true);
  assert.throws(
    () => parseServeArgs([...base, "--insecure", "--encrypt-frames"]),
    /--encrypt-frames needs --cluster-secret-file/,
  );
});

Deno.test("serve flags: the test-only clock skew flags set the node's clock rate and offset, within bounds", () => {
  const o = parseServeArgs([
    ...base,
    "--insecure",
    "--test-clock-rate",
    "1.05",
    "--test-clock-offset-ms",
    "250",
  ]);
  assert.ok(o !== "help");
  assert.deepEqual(o.testClock, { rate: 1.05, offsetMs: 250 });
  for (const bad of ["0", "3", "fast"]) {
    assert.throws(
      () => parseServeArgs([...base, "--insecure", "--test-clock-rate", bad]),
      (e: unknown) =>
        e instanceof UsageError && e.message.includes("--test-clock-rate"),
    );
  }
});
