/**
 * PyTorch beside our engine, for the `--vs-torch` benchmarks: finds Debian's torch (it belongs to
 * /usr/bin/python3, not to a pyenv `python3`), installs it with OpenBLAS on request
 * (`--install-torch`: apt-get python3-torch libopenblas0-pthread; a bench dependency, never a
 * test one), and runs bench/torch_train.py, which prints JSON lines.
 */
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

// beside this file (or beside a bundle of it: bench/device.sh copies the script there); plain
// import.meta.url, so that a Node bundle finds it too
const script = process.env["COVENANT_TORCH_SCRIPT"] ?? join(dirname(fileURLToPath(import.meta.url)), "torch_train.py")

const candidates = [process.env["TORCH_PYTHON"], "/usr/bin/python3", "python3"].filter((x): x is string => x !== undefined)

const hasTorch = (py: string): boolean =>
  (py.startsWith("/") ? existsSync(py) : true) && spawnSync(py, ["-c", "import torch"], { stdio: "ignore" }).status === 0

/** A python with torch, installing Debian's when `install` (and root); null with the reason printed. */
export const torchPython = (install: boolean): string | null => {
  const found = candidates.find(hasTorch)
  if (found !== undefined) return found
  if (!install) {
    console.log("PyTorch not found (tried " + candidates.join(", ") + "); pass --install-torch to apt-get install python3-torch libopenblas0-pthread")
    return null
  }
  console.log("installing python3-torch and libopenblas0-pthread with apt-get ...")
  const r = spawnSync("apt-get", ["install", "-y", "--no-install-recommends", "python3-torch", "libopenblas0-pthread"], {
    stdio: "inherit",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
  })
  if (r.status !== 0) {
    console.log("apt-get failed (root and fresh lists needed: apt-get update)")
    return null
  }
  return candidates.find(hasTorch) ?? null
}

/** Runs torch_train.py with `args`; the parsed JSON lines (first: {blas, threads}). */
export const runTorch = (python: string, args: readonly string[]): Record<string, unknown>[] => {
  const r = spawnSync(python, [script, ...args], { encoding: "utf8", maxBuffer: 1 << 24 })
  if (r.status !== 0) throw new Error(`torch_train.py failed: ${r.stderr}`)
  return r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
}

/** Best and median of measurements (higher is better). */
export const bestMedian = (xs: readonly number[]): { best: number; median: number } => {
  const s = [...xs].sort((a, b) => b - a)
  return { best: s[0]!, median: s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2 }
}
