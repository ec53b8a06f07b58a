/**
 * The Python interpreter the interop tests check our files with: the first one on this machine that
 * imports numpy (scripts/ensure-system.sh installs Debian's python3-numpy when none does). Without
 * one the interop tests fail, unless COVENANT_ALLOW_NO_NUMPY=1 says to skip them.
 */
import { spawnSync } from "node:child_process"

const candidates = ["python3", "/usr/bin/python3"]
export const numpyPython: string | undefined = candidates.find(
  (py) => spawnSync(py, ["-c", "import numpy"]).status === 0,
)
const allowMissing = process.env["COVENANT_ALLOW_NO_NUMPY"] === "1"
if (numpyPython === undefined && !allowMissing) {
  throw new Error("no python3 with numpy for the interop tests: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_NUMPY=1)")
}
/** True when the interop tests are to be skipped (no numpy, and skipping was asked for). */
export const skipNumpy = numpyPython === undefined
/**
 * Timeout of a test that starts the interpreter once: importing numpy takes ~0.5 s on an idle
 * machine of this kind and ~1 s with both cores busy (more where `python3` is a pyenv shim), so
 * 30 s is a wide margin for one start. Each test starts at most one interpreter, whatever the
 * number of cases it checks, so the bound does not grow with them.
 */
export const NUMPY_TEST_TIMEOUT_MS = 30_000

/**
 * Runs one Python script (numpy available) with `input` as JSON on stdin and returns its stdout
 * parsed as JSON: a test writes every case first, checks them all in this one process and reads
 * back one verdict. Anything on stderr or a non-zero exit throws with Python's own message.
 */
export const runNumpyScript = (lines: ReadonlyArray<string>, input: unknown = null): unknown => {
  const py = spawnSync(numpyPython ?? "python3", ["-c", ["import json, sys", "import numpy as np", ...lines].join("\n")], {
    input: JSON.stringify(input),
    encoding: "utf8",
  })
  if (py.status !== 0 || py.stderr !== "") throw new Error(`python exited ${py.status}: ${py.stderr}`)
  return JSON.parse(py.stdout)
}
