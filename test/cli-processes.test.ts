/**
 * A run spread over three processes (`covenant validator` owning the local chain, two `covenant
 * peer`s as its loopback clients) sharing a filesystem store, as packages/runtime/README.md runs
 * it: every process ends each window it finishes with the same parameters, the peers' updates are
 * aggregated once the leader lists them (with the default preset and with `--preset debug`), and
 * a run whose window no CPU can keep up with is refused at start, or, accepted, says so.
 */
import { expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const root = join(import.meta.dir, "..")
const cli = join(root, "packages", "runtime", "bin", "covenant.ts")

const lineRe = /^\[(\w+)\] window (\d+): .*gathered \[([\d,]*)\] of \[([\d,]*)\](?:, missing \[([^\]]*)\])?.* model ([0-9a-f]{12})/

interface Output { readonly name: string; readonly out: string; readonly err: string; readonly code: number }

/**
 * Runs a validator (owning the chain) and `peers` (name + extra flags) as processes of one run,
 * with `common` flags on each; returns each one's output once all have exited.
 */
const runProcesses = async (
  dir: string,
  common: string[],
  peers: ReadonlyArray<{ name: string; extra?: string[]; restart?: string[] }>,
  validatorExtra: string[] = [],
): Promise<Output[]> => {
  const spawn = (role: string, name: string, extra: string[] = []) =>
    Bun.spawn([process.execPath, cli, role, "--secret", `//${name}`, "--name", name, "--state", join(dir, name), "--chain-dir", join(dir, "chain"), "--store", join(dir, "store"), ...common, ...extra], { cwd: root, stdout: "pipe", stderr: "pipe" })
  const validator = spawn("validator", "v0", ["--own-chain", ...validatorExtra])
  // The peers connect once the owner has written its URL: wait for that file (bounded).
  const ownerFile = join(dir, "chain", "owner.json")
  for (const deadline = Date.now() + 60_000; !existsSync(ownerFile); await Bun.sleep(100)) {
    if (Date.now() > deadline || validator.exitCode !== null) throw new Error(`the validator never served the chain: ${await new Response(validator.stderr).text()}`)
  }
  const collect = async (name: string, p: ReturnType<typeof spawn>): Promise<Output> => {
    const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited])
    return { name, out, err, code }
  }
  // A peer with `restart` flags is started again, same name and state, once it has exited.
  const runs = [collect("v0", validator), ...peers.map(async (x) => {
    const first = await collect(x.name, spawn("peer", x.name, x.extra))
    return x.restart === undefined ? [first] : [first, await collect(`${x.name}-again`, spawn("peer", x.name, x.restart))]
  })]
  return (await Promise.all(runs)).flat()
}

const roundsOf = (outputs: ReadonlyArray<Output>) =>
  outputs.flatMap((o) => o.out.split("\n")).flatMap((l) => {
    const m = lineRe.exec(l)
    return m === null ? [] : [{ name: m[1]!, window: Number(m[2]), gathered: m[3]!, expected: m[4]!, missing: m[5] ?? "", digest: m[6]! }]
  })

/**
 * Runs the assertions; when one fails, prints what each process printed (window lines, notices and
 * errors; the INFO logs left out) before failing, so a CI log shows why.
 */
const explained = (outputs: ReadonlyArray<Output>, assertions: () => void): void => {
  try {
    assertions()
  } catch (e) {
    for (const o of outputs) {
      const lines = `${o.out}\n${o.err}`.split("\n").filter((l) => l.trim() !== "" && !/ level=(INFO|DEBUG) /.test(l))
      console.log(`--- ${o.name} (exit ${o.code}), ${lines.length} lines, the last 25:\n${lines.slice(-25).join("\n")}`)
    }
    throw e
  }
}

const expectExitedCleanly = (outputs: ReadonlyArray<Output>) => {
  for (const o of outputs) expect({ name: o.name, code: o.code, err: o.code === 0 ? "" : o.err }).toEqual({ name: o.name, code: 0, err: "" })
}

test("validator + 2 peers in 3 processes: identical models in every window each finishes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-cli-"))
  try {
    // The local chain starts at window 0 with the validator, which starts the run at window 1.
    const outputs = await runProcesses(dir, ["--until-window", "4"], [{ name: "p0" }, { name: "p1" }])
    explained(outputs, () => {
      expectExitedCleanly(outputs)
      const rounds = roundsOf(outputs)
      const windows = [...new Set(rounds.map((r) => r.window))].sort((a, b) => a - b)
      expect(windows.at(-1)).toBe(4)
      expect(windows.length).toBeGreaterThanOrEqual(3)
      // Every process that finished a window holds the same parameters. A peer may miss a window when
      // its inner steps overrun it on a loaded machine (the round goes on with whoever delivered);
      // then it catches up by replay and must be identical again in the windows it reports next.
      for (const w of windows) {
        const at = rounds.filter((r) => r.window === w)
        expect(at.map((r) => r.name)).toContain("v0")
        expect(new Set(at.map((r) => r.digest)).size).toBe(1)
      }
      for (const peer of ["p0", "p1"]) expect(rounds.filter((r) => r.name === peer).length).toBeGreaterThanOrEqual(2)
      // Both peers' updates were aggregated in some window: the leader listed and gathered them.
      expect(rounds.some((r) => r.name === "v0" && r.gathered.split(",").length === 2)).toBe(true)
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 120_000)

test("--preset debug in 3 processes, as the README runs it: every window that lists the peers aggregates one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-cli-debug-"))
  try {
    const outputs = await runProcesses(dir, ["--preset", "debug", "--until-window", "8"], [{ name: "p0" }, { name: "p1" }])
    explained(outputs, () => {
      expectExitedCleanly(outputs)
      const v = roundsOf(outputs).filter((r) => r.name === "v0").sort((a, b) => a.window - b.window)
      expect(v.at(-1)?.window).toBe(8)
      // The leader lists newly registered peers two windows ahead: the run's first windows list none.
      const listed = v.filter((r) => r.expected !== "")
      expect(listed.length).toBeGreaterThanOrEqual(4)
      // From then on no window is empty (the bug: every window gathered [] as every update landed late).
      const first = listed[0]!.window
      expect(v.filter((r) => r.window >= first && r.gathered === "")).toEqual([])
      // No peer was told it could not keep up.
      expect(outputs.map((o) => o.out).join("\n")).not.toContain("after the upload interval closed")
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 150_000)

test("a run whose window no CPU keeps up with: refused at start, or with --accept-slow every node says why nothing is gathered", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-cli-slow-"))
  try {
    const run = ["--run", join(root, "test", "fixtures", "too-slow-run.ts")]
    // The peers stop well before the validator (the chain's owner): p1 is restarted after it stops
    // and must find the chain still up, and a peer still replaying when the chain goes away would
    // fail for that reason instead. 0.5 s windows: the peers run from about window 8 (process start,
    // warm-up, registration) to 36, the validator to 60.
    const peer = ["--until-window", "36"]
    // p1, restarted once it stopped, is told to stop at a window already past: it says it trains nothing.
    const outputs = await runProcesses(dir, run, [
      { name: "p0", extra: [...peer, "--accept-slow"] },
      { name: "p1", extra: [...peer, "--accept-slow"], restart: [...peer, "--accept-slow"] },
      { name: "p2", extra: peer },
    ], ["--until-window", "60"])
    explained(outputs, () => {
      // Without --accept-slow the peer measured one inner step and refused, with the reason.
      const refused = outputs.find((o) => o.name === "p2")!
      expect(refused.code).toBe(1)
      expect(refused.err).toContain("timing: run too-slow cannot keep up on this machine: one inner step took")
      expect(refused.err).toContain("pass --accept-slow to run anyway")
      expectExitedCleanly(outputs.filter((o) => o.name !== "p2"))
      for (const name of ["p0", "p1"]) {
        const out = outputs.find((o) => o.name === name)!.out
        expect(out).toContain(`[${name}] runs anyway (--accept-slow), though one inner step took`)
        // Every window it trained landed late (a peer that falls further behind replays instead of
        // training, so how many it trains depends on the machine's load). The first three late windows
        // are said one by one, with the numbers; from the fourth, one summary line instead.
        const trained = roundsOf([outputs.find((o) => o.name === name)!]).length
        expect(trained).toBeGreaterThanOrEqual(1)
        const late = out.split("\n").filter((l) => /^\[\w+\] window \d+: your update landed \d+ ms after the upload interval closed \(compute [\d.]+ s.* for a 0\.50 s window\): lower innerSteps\/batch or use a longer window$/.test(l))
        expect(late.length).toBe(Math.min(trained, 3))
        const summary = /windows \d+\.\.\d+: all \d+ updates this peer made landed after the upload interval closed .* this peer cannot keep up/
        if (trained > 3) expect(out).toMatch(summary)
        else expect(out).not.toMatch(summary)
      }
      const again = outputs.find((o) => o.name === "p1-again")!
      expect(again.out).toMatch(/\[p1\] stops after window 36 \(--until-window 36\) but the first window it could train is \d+: it will only catch up to window 36 and train nothing/)
      expect(roundsOf([again])).toEqual([])
      // Every node names the peers it expected and why they are missing: late by how much, or absent
      // (nothing by the gather's deadline: an update landing later still).
      const listed = roundsOf(outputs).filter((r) => r.expected !== "")
      for (const r of listed.filter((r) => r.gathered === "")) expect(r.missing).toMatch(/^\d+ (late \+\d+ ms|absent)(; \d+ (late \+\d+ ms|absent))*$/)
      // The validator listed the peers in some window (the Gauntlet later drops peers that never deliver) and said why it gathered none.
      expect(listed.filter((r) => r.name === "v0" && r.gathered === "" && r.missing !== "").length).toBeGreaterThan(0)
    })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 150_000)
