import { describe, expect, test } from "bun:test"
import { Effect } from "effect"
import { join } from "node:path"
import { covenant72b, loadRun, parameterCount } from "../src/index.ts"

const root = join(import.meta.dir, "..", "..", "..")
const example = join(root, "examples", "covenant72b.ts")

const runExample = (...args: Array<string>) =>
  Bun.spawnSync([process.execPath, "run", "examples/covenant72b.ts", ...args], { cwd: root, env: { ...process.env, R2_ACCOUNT_ID: "" } })

describe("examples/covenant72b.ts", () => {
  test("`--help` lists the flags and exits 0; a bad flag is refused, naming it, exit 2", () => {
    const help = runExample("--help")
    expect(help.exitCode).toBe(0)
    for (const flag of ["--plan", "--peers", "--windows", "--backend", "--transport", "--chain"]) expect(help.stdout.toString()).toContain(flag)
    const typo = runExample("swarm", "--peer", "3")
    expect(typo.exitCode).toBe(2)
    expect(typo.stderr.toString()).toContain("Received unknown argument: '--peer'")
    const bare = runExample("--peer", "3")
    expect(bare.exitCode).toBe(2)
    expect(bare.stderr.toString()).toContain("Received unknown argument: '--peer'")
    const bad = runExample("--peers", "40")
    expect(bad.exitCode).toBe(2)
    expect(bad.stderr.toString()).toContain("--peers 40: expected an integer from 1 to 32")
  }, 30_000)

  test("`--plan` prints the plan table with the parameter count and exits 0", () => {
    const result = runExample("--plan")
    const out = result.stdout.toString()
    expect(result.exitCode).toBe(0)
    expect(out).toContain("Plan for covenant-72b")
    expect(out).toContain(parameterCount(covenant72b().model).toLocaleString("en-US"))
    expect(out).not.toContain("Run covenant-72b")
  }, 30_000)

  test("--spec prints the spec summary, then the plan", () => {
    const result = runExample("--spec")
    const out = result.stdout.toString()
    expect(result.exitCode).toBe(0)
    expect(out.indexOf("Run covenant-72b")).toBeGreaterThanOrEqual(0)
    expect(out.indexOf("Plan for covenant-72b")).toBeGreaterThan(out.indexOf("Run covenant-72b"))
  }, 30_000)

  test("its default export loads as a run, reading the environment", async () => {
    const spec = await Effect.runPromise(loadRun(example, { argv: [], env: { R2_ACCOUNT_ID: "abc123" } }))
    expect(spec.model).toEqual(covenant72b().model)
    expect(spec.infrastructure.transport).toMatchObject({ kind: "s3", endpoint: "https://abc123.r2.cloudflarestorage.com", bucket: "abc123" })
  })
})
