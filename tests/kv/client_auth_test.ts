import assert from "node:assert/strict";
import { ClientAuth, parseAuthTokens } from "../../src/kv/auth.ts";
import { loadAuthTokens, UsageError } from "../../src/kv/node.ts";
import type { Logger } from "../../src/logger.ts";
import { call, startKvCluster, waitFor } from "./helpers.ts";

const READ = "read-token-0123456789";
const WRITE = "write-token-0123456789";
const ADMIN = "admin-token-0123456789";
const TOKENS = `# test tokens
read ${READ}

write ${WRITE}
admin   ${ADMIN}
`;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function recordingLogger(lines: string[]): Logger {
  return {
    debug: () => {},
    info: () => {},
    warn: (m) => lines.push(m),
    error: (m) => lines.push(m),
  };
}

Deno.test("auth tokens file: roles and tokens are read, comments and blank lines skipped", () => {
  assert.deepEqual(parseAuthTokens(TOKENS), [
    { role: "read", token: READ },
    { role: "write", token: WRITE },
    { role: "admin", token: ADMIN },
  ]);
});

Deno.test("auth tokens file: a bad file is a UsageError naming the file and line", async () => {
  await Deno.mkdir(".test-data", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: ".test-data", prefix: "tokens-" });
  try {
    const cases: [string, RegExp][] = [
      ["owner 0123456789abcdef0", /line 1: unknown role "owner"/],
      ["read short", /line 1: the token is 5 characters; use at least 16/],
      [`# c\n\nadmin ${ADMIN} extra`, /line 3: expected "ROLE TOKEN"/],
      [`read ${READ}\nwrite ${READ}`, /line 2: this token is given twice/],
      ["# only a comment\n", /no tokens/],
    ];
    for (const [text, message] of cases) {
      const file = `${dir}/tokens`;
      await Deno.writeTextFile(file, text);
      await assert.rejects(loadAuthTokens(file), (e) => {
        assert.ok(e instanceof UsageError);
        assert.match(e.message, /--auth-tokens-file .*tokens: /);
        assert.match(e.message, message);
        return true;
      });
    }
    await assert.rejects(loadAuthTokens(`${dir}/missing`), UsageError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client auth: a request without a valid token is 401 with a Bearer challenge, on every route", async () => {
  const logs: string[] = [];
  const c = await startKvCluster({
    auth: new ClientAuth(parseAuthTokens(TOKENS)),
    logger: recordingLogger(logs),
  });
  try {
    const url = c.leader.url;
    const routes: [string, string, string?][] = [
      ["GET", "/kv/a"],
      ["PUT", "/kv/a", "v"],
      ["DELETE", "/kv/a"],
      ["GET", "/status"],
      ["GET", "/leader"],
      ["GET", "/metrics"],
      ["POST", "/members", JSON.stringify({ id: 9, raft: "h:1", http: "h:2" })],
      ["DELETE", "/members/2"],
      ["POST", "/leader/transfer", "{}"],
    ];
    for (const [method, path, body] of routes) {
      const r = await call(`${url}${path}`, { method, body });
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer /);
      assert.equal(JSON.parse(r.text).error.code, "UNAUTHORIZED");
      const wrong = await call(`${url}${path}`, {
        method,
        body,
        headers: bearer("not-a-known-token-at-all"),
      });
      assert.equal(wrong.status, 401, `${method} ${path} with a wrong token`);
      assert.match(
        wrong.headers.get("www-authenticate") ?? "",
        /error="invalid_token"/,
      );
    }
    // Nothing changed.
    assert.equal(c.leader.kv.get("a"), undefined);
    assert.deepEqual(c.leader.server.status().membership.voters, [1, 2, 3]);
    // Failures are counted by reason and logged with the source address.
    const metrics = await call(`${url}/metrics`, { headers: bearer(READ) });
    assert.equal(metrics.status, 200);
    assert.match(
      metrics.text,
      new RegExp(
        `raft_http_auth_failures_total\\{reason="missing"\\} ${routes.length}\\b`,
      ),
    );
    assert.match(
      metrics.text,
      new RegExp(
        `raft_http_auth_failures_total\\{reason="unknown_token"\\} ${routes.length}\\b`,
      ),
    );
    assert.ok(
      logs.some((l) =>
        /client auth failure \(missing\) from 127\.0\.0\.1:\d+: POST \/members/
          .test(l)
      ),
      logs.join("\n"),
    );
  } finally {
    await c.stop();
  }
});

Deno.test("client auth: a read token reads but cannot write, a write token cannot administer (403)", async () => {
  const c = await startKvCluster({
    auth: new ClientAuth(parseAuthTokens(TOKENS)),
  });
  try {
    const url = c.leader.url;
    assert.equal(
      (await call(`${url}/kv/k`, {
        method: "PUT",
        body: "v",
        headers: bearer(READ),
      }))
        .status,
      403,
    );
    const cas = await call(`${url}/kv/k/cas`, {
      method: "POST",
      body: JSON.stringify({ expect: null, value: "x" }),
      headers: bearer(READ),
    });
    assert.equal(cas.status, 403);
    assert.equal(JSON.parse(cas.text).error.code, "FORBIDDEN");
    assert.equal(
      (await call(`${url}/kv/k`, {
        method: "PUT",
        body: "v",
        headers: bearer(WRITE),
      }))
        .status,
      204,
    );
    assert.equal(
      (await call(`${url}/kv/k`, { headers: bearer(READ) })).text,
      "v",
    );
    assert.equal(
      (await call(`${url}/status`, { headers: bearer(READ) })).status,
      200,
    );
    for (const token of [READ, WRITE]) {
      const add = await call(`${url}/members`, {
        method: "POST",
        body: JSON.stringify({
          id: 9,
          raft: "127.0.0.1:1",
          http: "127.0.0.1:2",
        }),
        headers: bearer(token),
      });
      assert.equal(add.status, 403, add.text);
      const remove = await call(`${url}/members/3`, {
        method: "DELETE",
        headers: bearer(token),
      });
      assert.equal(remove.status, 403);
      const transfer = await call(`${url}/leader/transfer`, {
        method: "POST",
        body: "{}",
        headers: bearer(token),
      });
      assert.equal(transfer.status, 403);
    }
    assert.deepEqual(c.leader.server.status().membership.voters, [1, 2, 3]);
    assert.equal(c.leader.server.role, "leader");
    const metrics = await call(`${url}/metrics`, { headers: bearer(ADMIN) });
    assert.match(
      metrics.text,
      /raft_http_auth_failures_total\{reason="forbidden"\} 8\b/,
    );
    // An admin may transfer leadership.
    const transfer = await call(`${url}/leader/transfer`, {
      method: "POST",
      body: JSON.stringify({ to: c.followers[0].id }),
      headers: bearer(ADMIN),
    });
    assert.equal(transfer.status, 200, transfer.text);
  } finally {
    await c.stop();
  }
});

Deno.test("client auth: a follower forwards a write with the client's token, and the leader checks it again", async () => {
  const c = await startKvCluster({
    auth: new ClientAuth(parseAuthTokens(TOKENS)),
  });
  try {
    const f = c.followers[0];
    const put = await call(`${f.url}/kv/fwd`, {
      method: "PUT",
      body: "ok",
      headers: bearer(WRITE),
    });
    assert.equal(put.status, 204, put.text);
    assert.equal(put.headers.get("x-raft-served-by"), String(c.leader.id));
    await waitFor(() => c.leader.kv.get("fwd") !== undefined, "the write");
    // Claiming to be a forward from a node gives no way around the check.
    const forged = await call(`${c.leader.url}/kv/forged`, {
      method: "PUT",
      body: "x",
      headers: { "x-raft-forwarded": String(f.id) },
    });
    assert.equal(forged.status, 401);
    assert.equal(c.leader.kv.get("forged"), undefined);
  } finally {
    await c.stop();
  }
});
