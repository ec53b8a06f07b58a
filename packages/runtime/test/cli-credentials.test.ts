import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

// The node CLI over S3 never commits its write key: without a read pair it says which variable is
// missing, and a read pair that is the write key is refused (WriteKeyCommitted) before it joins.

const root = join(import.meta.dir, "..", "..", "..")

const run = async (env: Record<string, string>) => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-cli-credentials-"))
  try {
    const cli = Bun.spawn(
      [process.execPath, join(root, "packages", "runtime", "bin", "covenant.ts"), "peer", "--preset", "debug", "--transport", "s3", "--secret", "//cli-credentials", "--name", "p0", "--state", join(dir, "p0"), "--chain-dir", join(dir, "chain")],
      { cwd: root, stdout: "pipe", stderr: "pipe", env: { PATH: process.env["PATH"] ?? "", S3_ENDPOINT: "http://127.0.0.1:9", S3_ACCESS_KEY_ID: "WRITE-ID", S3_SECRET_ACCESS_KEY: "WRITE-SECRET", ...env } },
    )
    const [code, err] = await Promise.all([cli.exited, new Response(cli.stderr).text()])
    return { code, err }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test("covenant peer --transport s3 refuses to commit its write key, and needs a separate read pair", async () => {
  const missing = await run({})
  expect(missing.code).toBe(1)
  expect(missing.err).toContain("S3_READ_ACCESS_KEY_ID is not set")
  const sameId = await run({ S3_READ_ACCESS_KEY_ID: "WRITE-ID", S3_READ_SECRET_ACCESS_KEY: "READ-SECRET" })
  expect(sameId.code).toBe(1)
  expect(sameId.err).toContain("credentials: WriteKeyCommitted")
  const sameSecret = await run({ S3_READ_ACCESS_KEY_ID: "READ-ID", S3_READ_SECRET_ACCESS_KEY: "WRITE-SECRET" })
  expect(sameSecret.code).toBe(1)
  expect(sameSecret.err).toContain("credentials: WriteKeyCommitted")
}, 60_000)
