/**
 * One error base: every error class any export path of the package exports
 * extends RaftIoError and carries a non-empty string `code`. The classes are
 * found from the modules' exports, so a new error that forgets the base
 * fails here without being listed.
 */

import assert from "node:assert/strict";
import { RaftIoError } from "../../src/errors.ts";

// Every entry of deno.json "exports".
const EXPORT_PATHS: Record<string, () => Promise<Record<string, unknown>>> = {
  ".": () => import("../../mod.ts"),
  "./core": () => import("../../src/core/mod.ts"),
  "./codec": () => import("../../src/codec/mod.ts"),
  "./kv": () => import("../../src/kv/mod.ts"),
  "./testing": () => import("../../src/testing/mod.ts"),
};

/** Bases whose constructor takes the code itself. */
const CODE_ARGUMENT: Record<string, unknown[]> = {
  RaftIoError: ["EXAMPLE", "an example"],
  TransportError: ["CONNECTION_FAILED", "an example"],
  HistoryError: ["invalid_json", "an example"],
};

type ErrorClass = new (...args: unknown[]) => Error;

function isErrorClass(value: unknown): value is ErrorClass {
  return typeof value === "function" &&
    (value.prototype instanceof Error || value === Error);
}

async function exportedErrorClasses(): Promise<Map<string, ErrorClass>> {
  const classes = new Map<string, ErrorClass>();
  for (const [path, load] of Object.entries(EXPORT_PATHS)) {
    for (const [name, value] of Object.entries(await load())) {
      if (isErrorClass(value)) classes.set(`${path} ${name}`, value);
    }
  }
  return classes;
}

/** An instance made with plausible arguments (most error constructors take numbers and strings). */
function instantiate(name: string, C: ErrorClass): Error {
  const attempts = [
    CODE_ARGUMENT[name] ?? [],
    [1, "detail", "detail"],
    ["file", 1, "detail"],
    [1, [2, 3]],
  ];
  let last: unknown;
  for (const args of attempts) {
    try {
      return new C(...args);
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`cannot construct ${name} for the check: ${last}`);
}

Deno.test("every export path exports its error classes (the enumeration finds them)", async () => {
  const names = [...(await exportedErrorClasses()).keys()];
  for (
    const expected of [
      ". RaftIoError",
      ". NotLeaderError",
      ". WalCorruptionError",
      ". TransportError",
      "./core ReadyProtocolError",
      "./codec MessageDecodeError",
      "./kv UsageError",
      "./testing HistoryError",
    ]
  ) {
    assert.ok(names.includes(expected), `${expected} not found in ${names}`);
  }
});

Deno.test("every exported error class extends RaftIoError and has a non-empty string code", async () => {
  const wrong: string[] = [];
  for (const [where, C] of await exportedErrorClasses()) {
    const name = where.split(" ")[1];
    const error = instantiate(name, C);
    const code = (error as { code?: unknown }).code;
    if (typeof code !== "string" || code.length === 0) {
      wrong.push(`${where}: code is ${JSON.stringify(code)}`);
    }
    if (!(error instanceof RaftIoError)) {
      wrong.push(`${where} does not extend RaftIoError`);
    }
    if (error.name !== name) {
      wrong.push(`${where}: name is ${JSON.stringify(error.name)}`);
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("core errors keep their stable codes", async () => {
  const core = await import("../../src/core/mod.ts");
  assert.equal(new core.NotLeaderError(2).code, "NOT_LEADER");
  assert.equal(new core.OverloadedError(10, 5).code, "OVERLOADED");
  assert.equal(
    new core.InvalidConfigError("id", "must be positive").code,
    "INVALID_CONFIG",
  );
  assert.ok(core.isCoreError(new core.NotLeaderError(2)));
  assert.ok(!core.isCoreError(new RaftIoError("X", "not a core error")));
});
