import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { readManifest } from "../src/data/index.ts"

const ROOT = join(import.meta.dir, "..")
const work = mkdtempSync(join(tmpdir(), "covenant-cli-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const run = (...args: string[]) => {
  const proc = Bun.spawnSync([process.execPath, join(ROOT, "bin", "prepare.ts"), ...args], { cwd: ROOT })
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() }
}

describe("bin/prepare.ts", () => {
  test("tokenizes the shipped corpus into shards + manifest", async () => {
    const out = join(work, "shards")
    const r = run("--input", join(ROOT, "corpus"), "--out", out, "--seq-len", "256", "--shard-tokens", "65537")
    expect(r.err).toBe("")
    expect(r.code).toBe(0)
    const manifest = await Effect.runPromise(readManifest(out))
    expect(r.out).toContain(`${manifest.totalTokens} tokens`)
    expect(manifest.seqLen).toBe(256)
    expect(manifest.shards.length).toBe(Math.ceil(manifest.totalTokens / 65537))
    expect(manifest.documents).toBe(211)
  }, 30_000)

  test("bad arguments exit 2 with usage; a failing run exits 1 naming the typed error", () => {
    const noOut = run("--input", join(ROOT, "corpus"))
    expect(noOut.code).toBe(2)
    expect(noOut.err).toContain("usage")
    expect(run("--input", "x", "--out", join(work, "y"), "--seq-len", "zero").code).toBe(2)
    const missing = run("--input", join(work, "absent"), "--out", join(work, "z"))
    expect(missing.code).toBe(1)
    expect(missing.err).toContain("DataIoError")
    const tok = join(work, "tok.json")
    writeFileSync(tok, "{}")
    const badTok = run("--input", join(ROOT, "corpus"), "--out", join(work, "w"), "--tokenizer", tok)
    expect(badTok.code).toBe(1)
    expect(badTok.err).toContain("TokenizerError")
  }, 30_000)
})

