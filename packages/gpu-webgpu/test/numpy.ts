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
/** The interpreter, for spawnSync; only called from tests that are not skipped. */
export const python = (): string => numpyPython ?? "python3"
