import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { makeS3Transport } from "@covenant/transport"
import { LocalS3 } from "@covenant/transport/testing"
import { openObjectShardSet, openShardSet, readManifest, transportObjects } from "../src/data/index.ts"

const ROOT = join(import.meta.dir, "..")
const work = mkdtempSync(join(tmpdir(), "covenant-cli-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

const run = (...args: string[]) => {
  const proc = Bun.spawnSync([process.execPath, join(ROOT, "bin", "covenant.ts"), "prepare", ...args], { cwd: ROOT })
  return { code: proc.exitCode, out: proc.stdout.toString(), err: proc.stderr.toString() }
}

describe("covenant prepare", () => {
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

  test("bad arguments exit 2 naming the flag; a failing run exits 1 naming the typed error", () => {
    const noOut = run("--input", join(ROOT, "corpus"))
    expect(noOut.code).toBe(2)
    expect(noOut.err).toContain("--out")
    const zero = run("--input", "x", "--out", join(work, "y"), "--seq-len", "zero")
    expect(zero.code).toBe(2)
    expect(zero.err).toContain("--seq-len zero: expected an integer >= 1")
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


describe("covenant prepare --out s3://", () => {
  const s3 = new LocalS3()
  afterAll(() => s3.dispose())

  test("writes the shards straight to a bucket (multipart), the same bytes as a local prepare", async () => {
    await s3.start()
    // ~6.5 MB of text: with one shard and the byte tokenizer, a 26 MB shard, five 5 MiB parts and a tail.
    const text = join(work, "big.txt")
    const corpus = readFileSync(join(ROOT, "corpus", "declaration-of-independence.txt"), "utf-8")
    writeFileSync(text, corpus.repeat(Math.ceil(6.5e6 / corpus.length)))
    const c = s3.config()
    const env = { ...process.env, DATA_S3_ENDPOINT: c.endpoint, DATA_S3_REGION: c.region, DATA_S3_ACCESS_KEY_ID: c.accessKeyId, DATA_S3_SECRET_ACCESS_KEY: c.secretAccessKey }
    // Spawned without blocking: the S3 server answers from this process.
    const proc = Bun.spawn([process.execPath, join(ROOT, "bin", "covenant.ts"), "prepare", "--input", text, "--out", "s3://prepared-corpus/v1", "--seq-len", "512", "--shard-tokens", "8000001", "--part-mib", "5"], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" })
    const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()])
    expect(err).toBe("")
    expect(code).toBe(0)
    const local = join(work, "big-local")
    expect(run("--input", text, "--out", local, "--seq-len", "512", "--shard-tokens", "8000001").code).toBe(0)
    const expected = await Effect.runPromise(readManifest(local))
    expect(expected.shards.some((s) => s.tokens * 4 > 5 * 1024 * 1024)).toBe(true)
    await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
      const transport = yield* makeS3Transport(c)
      const listed = yield* transport.list({ bucket: "prepared-corpus" }, "v1/")
      expect(listed.map((o) => o.key)).toEqual(["v1/manifest.json", ...expected.shards.flatMap((s) => [`v1/${s.samplesFile}`, `v1/${s.file}`])].sort())
      const remote = yield* openObjectShardSet(transportObjects(transport, { bucket: "prepared-corpus" }, "v1/"), { verify: "sha256" })
      expect(remote.manifest).toEqual(expected)
      const mine = yield* openShardSet(local)
      const ids = [0, 1, 777, remote.totalSamples - 1]
      expect(Array.from(yield* remote.samples(ids))).toEqual(Array.from(yield* mine.samples(ids)))
    })))
  }, 120_000)
})
