// The built package carries a README written for Node (docs/npm_readme.md).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const pkgDir = new URL("../../npm/", import.meta.url);

test("the npm package has a README for Node users", () => {
  const readme = readFileSync(new URL("README.md", pkgDir), "utf8");
  const pkg = JSON.parse(readFileSync(new URL("package.json", pkgDir), "utf8"));
  assert.ok(pkg.files.includes("README.md"));
  assert.match(readme, /raft-io-serve/);
  assert.match(readme, new RegExp(`npm install ${pkg.name}`));
  assert.doesNotMatch(readme, /deno task/);
});
