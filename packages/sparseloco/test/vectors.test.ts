import { describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { aggregationFile, codecFile, randn } from "./reference.ts"

const pkg = join(import.meta.dir, "..")
// The reference network's cases live in the shared folder beside the checkout (COVENANT_SHARED
// overrides); there may be more of them than the public four, so the count is read, not assumed.
const sharedDir = process.env["COVENANT_SHARED"] ?? join(pkg, "..", "..", "..", "shared")
const goldenDir = join(sharedDir, "vectors", "sparseloco")
const run = (dir: string) => {
  const p = Bun.spawnSync(["bun", "bin/vectors.ts", dir], { cwd: pkg })
  return { code: p.exitCode, out: p.stdout.toString() + p.stderr.toString() }
}

/** Sums of ±1.5 and ±3 with mean 0 and unbiased sigma 2: shift 0 and scale 3 exactly, t on halves. */
const roundTies = Float32Array.from([1.5, -1.5, 1.5, -1.5, 3, -3, 1.5, -1.5, 1.5, -1.5])

describe("vectors command", () => {
  test("every golden vector in the shared folder passes", () => {
    if (!existsSync(goldenDir)) throw new Error(`no golden vectors at ${goldenDir}: set COVENANT_SHARED to the shared folder`)
    const cases = readdirSync(goldenDir).filter((f) => f.endsWith(".json")).length
    expect(cases).toBeGreaterThan(0)
    const r = run(goldenDir)
    expect(r.out).toContain(`${cases} passed, 0 failed`)
    expect(r.code).toBe(0)
  }, 60_000)

  test("synthetic cases from the slow reference (other shapes, prime dims, even/odd peers, round ties, k-th place ties) pass", () => {
    const dir = mkdtempSync(join(tmpdir(), "slco-vectors-"))
    const put = (name: string, body: unknown) => writeFileSync(join(dir, `${name}.json`), JSON.stringify(body))
    put("codec_1d_200_k64", codecFile("codec_1d_200_k64", [200], 64, randn(200, 1, 2e-3), randn(200, 2, 1e-3)))
    put("codec_1d_75_k64", codecFile("codec_1d_75_k64", [75], 64, randn(75, 3, 2e-3), randn(75, 4, 1e-3)))
    put("codec_96x80_k16", codecFile("codec_96x80_k16", [96, 80], 16, randn(96 * 80, 5, 2e-3), randn(96 * 80, 6, 1e-3)))
    put("codec_67x64_k8", codecFile("codec_67x64_k8", [67, 64], 8, randn(67 * 64, 7, 2e-3), randn(67 * 64, 8, 1e-3)))
    put("codec_1d_10_roundties", codecFile("codec_1d_10_roundties", [10], 64, new Float32Array(10), roundTies))
    // equal |x| across the k-th place, the reference breaking ties the other way than we do
    const tied = Float32Array.from({ length: 64 }, (_, i) => ((i * 37) % 7) - 3)
    put("codec_1d_64_k8_ties", codecFile("codec_1d_64_k8_ties", [64], 8, new Float32Array(64), tied, 64, "high"))
    const peers = (n: number, len: number, seed: number) =>
      Array.from({ length: n }, (_, i) => {
        const common = randn(len, seed, 2e-5)
        const own = randn(len, seed + 100 + i, 2e-5)
        const mult = i === 1 ? 100 : 1
        return { efIn: common.map((v, j) => (v + own[j]!) * mult), delta: randn(len, seed + 200 + i, 1e-5 * mult) }
      })
    put("agg_96x80_k16_4peers", aggregationFile("agg_96x80_k16_4peers", [96, 80], 16, peers(4, 96 * 80, 10)))
    put("agg_1d_200_k64_5peers", aggregationFile("agg_1d_200_k64_5peers", [200], 64, peers(5, 200, 20)))
    const r = run(dir)
    expect(r.out).toContain("8 passed, 0 failed")
    expect(r.code).toBe(0)
  }, 60_000)

  test("a corrupted case fails with a reason and a non-zero exit", () => {
    const dir = mkdtempSync(join(tmpdir(), "slco-vectors-bad-"))
    const good = codecFile("codec_64x64_k4", [64, 64], 4, randn(4096, 9, 2e-3), randn(4096, 10, 1e-3))
    const codes = Buffer.from(good.codes.b64, "base64")
    codes[0] = (codes[0]! + 1) % 4
    writeFileSync(join(dir, "codec_bad.json"), JSON.stringify({ ...good, codes: { ...good.codes, b64: codes.toString("base64") } }))
    writeFileSync(join(dir, "codec_good.json"), JSON.stringify(good))
    const r = run(dir)
    expect(r.out).toContain("PASS codec_good")
    expect(r.out).toMatch(/FAIL codec_bad: .*codes/)
    expect(r.out).toContain("1 passed, 1 failed")
    expect(r.code).toBe(1)
  }, 60_000)
})
