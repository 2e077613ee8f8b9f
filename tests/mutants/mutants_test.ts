import assert from "node:assert/strict";

const HERE = new URL("../../scripts/mutants/", import.meta.url);

Deno.test("every planted bug in scripts/mutants (core, runtime and WAL) is caught by the simulator within the CI seed budget", async () => {
  const patches: string[] = [];
  for await (const e of Deno.readDir(HERE)) {
    if (e.isFile && e.name.endsWith(".patch")) patches.push(e.name);
  }
  assert.ok(patches.length >= 8, `only ${patches.length} mutants`);
  const outside = patches.filter((p) => /^(runtime|wal)_/.test(p));
  assert.ok(outside.length >= 6, `only ${outside.length} runtime/WAL mutants`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      new URL("run.ts", HERE).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  assert.match(
    text,
    new RegExp(`^mutants: ${patches.length} caught, 0 survived$`, "m"),
    text,
  );
  assert.equal(out.code, 0, text);
});
