/**
 * The `covenant` command line (@effect/cli): generated help, flag errors that name the flag (exit
 * 2), the flags that are gone refused with where to go, and the README's reference regenerated.
 */
import { describe, expect, test } from "bun:test"
import { join } from "node:path"

const root = join(import.meta.dir, "..", "..", "..")
const cli = join(root, "packages", "runtime", "bin", "covenant.ts")

const covenant = (...args: string[]) => {
  const p = Bun.spawnSync([process.execPath, cli, ...args], { cwd: root })
  return { code: p.exitCode, out: p.stdout.toString().replace(/\x1b\[[0-9;]*m/g, ""), err: p.stderr.toString() }
}

describe("covenant", () => {
  test("--help lists every command; each command's --help its flags", () => {
    const help = covenant("--help")
    expect(help.code).toBe(0)
    for (const c of ["swarm", "peer", "validator", "plan", "prepare", "chain metagraph"]) expect(help.out).toContain(`- ${c}`)
    const peer = covenant("peer", "--help")
    expect(peer.code).toBe(0)
    for (const f of ["--secret", "--until-window", "--windows", "--chain-dir", "--own-chain", "--store", "--accept-slow", "--fit-to-chain", "--run", "--preset"]) expect(peer.out).toContain(f)
  }, 30_000)

  test("bad flags exit 2 naming the flag; --rounds points to --windows and --until-window", () => {
    const cases: Array<[string[], string]> = [
      [["swarm", "--peers", "0"], "--peers 0: expected an integer from 1 to 32"],
      [["swarm", "--backend", "gpu"], "--backend gpu: expected cpu | cpu-fast | webgpu | auto"],
      [["swarm", "--adversary", "copycat=0"], "--adversary copycat=0: the count must be a positive integer"],
      [["swarm", "--peer", "3"], "Received unknown argument: '--peer'"],
      [["plan", "--preset", "huge"], "--preset huge: expected scaled | debug | debug-subnet | covenant72b"],
      [["peer", "--preset", "debug"], "Expected to find option: '--secret'"],
      [["peer", "--secret", "//x", "--rounds", "3"], "--rounds is gone: --until-window N finishes window N then stops; --windows N runs N windows from the live one"],
    ]
    for (const [args, message] of cases) {
      const r = covenant(...args)
      expect({ args, code: r.code, err: r.err.includes(message) ? message : r.err }).toEqual({ args, code: 2, err: message })
    }
  }, 60_000)

  test("flags that contradict each other exit 2; a failing run exits 1 with phase: reason", () => {
    const both = covenant("peer", "--preset", "debug", "--secret", "//x", "--windows", "2", "--until-window", "4")
    expect(both.code).toBe(2)
    expect(both.err).toContain("flags: --until-window and --windows both say when to stop: pass one")
    const noRun = covenant("plan", "--run", join(root, "no-such-run.ts"))
    expect(noRun.code).toBe(1)
    expect(noRun.err).toContain("cannot import")
  }, 30_000)

  test("plan --spec prints the spec summary, then the plan", () => {
    const r = covenant("plan", "--preset", "debug", "--spec")
    expect(r.code).toBe(0)
    expect(r.out.indexOf("Plan for debug")).toBeGreaterThan(r.out.indexOf("Run debug"))
    expect(r.out.indexOf("Run debug")).toBeGreaterThanOrEqual(0)
  }, 30_000)

  test("packages/runtime/README.md's command-line reference is the CLI's current help", () => {
    const p = Bun.spawnSync([process.execPath, join(root, "scripts", "cli-reference.ts"), "--check"], { cwd: root })
    expect({ code: p.exitCode, err: p.stderr.toString() }).toEqual({ code: 0, err: "" })
  }, 60_000)
})
