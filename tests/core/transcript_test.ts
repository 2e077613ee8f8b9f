/**
 * Runs every transcript under tests/core/testdata/ (see transcript.ts for
 * the language) and compares the output exactly.
 *
 * Normal run: `deno test --allow-read=tests tests/core/transcript_test.ts`.
 * To rewrite the expectations after an intended change (then review the diff):
 * `REWRITE=1 deno test --allow-read=tests --allow-write=tests/core/testdata --allow-env=REWRITE tests/core/transcript_test.ts`
 */

import assert from "node:assert/strict";
import { Cluster } from "./harness.ts";
import { parseTranscript, renderTranscript, runCommand } from "./transcript.ts";

const DIR = "tests/core/testdata";

function rewriteMode(): boolean {
  // Query first, so the normal run needs no env permission at all.
  if (
    Deno.permissions.querySync({ name: "env", variable: "REWRITE" }).state !==
      "granted"
  ) {
    return false;
  }
  return Deno.env.get("REWRITE") === "1";
}

const rewrite = rewriteMode();
const files = [...Deno.readDirSync(DIR)]
  .filter((e) => e.isFile && e.name.endsWith(".txt"))
  .map((e) => e.name)
  .sort();

for (const name of files) {
  Deno.test(`transcript ${name} produces exactly its expected output`, () => {
    const path = `${DIR}/${name}`;
    const { blocks, tail } = parseTranscript(Deno.readTextFileSync(path));
    const cluster = new Cluster();
    const failures: string[] = [];
    for (const b of blocks) {
      let actual: string[];
      try {
        actual = runCommand(cluster, b.command);
      } catch (e) {
        actual = [`panic: ${e instanceof Error ? e.message : String(e)}`];
      }
      if (actual.join("\n") !== b.expected.join("\n")) {
        failures.push(
          `${path}:${b.line}: ${b.command}\n--- expected\n${
            b.expected.join("\n")
          }\n--- actual\n${actual.join("\n")}`,
        );
      }
      b.expected = actual;
    }
    if (rewrite) {
      Deno.writeTextFileSync(path, renderTranscript(blocks, tail));
      return;
    }
    assert.equal(failures.length, 0, failures.join("\n\n"));
  });
}

Deno.test("the transcript parser keeps comments and round-trips a file", () => {
  const src = "# c\ncmd a\n----\nout\n\n# d\ncmd b\n----\nx\ny\n";
  const { blocks, tail } = parseTranscript(src);
  assert.equal(blocks.length, 2);
  assert.deepEqual(blocks[1].expected, ["x", "y"]);
  assert.equal(renderTranscript(blocks, tail), src);
});
