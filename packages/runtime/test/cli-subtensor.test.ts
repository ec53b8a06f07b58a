import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

// The node CLI against a subtensor endpoint where nothing listens: a readable reason and exit 1,
// not "[object ErrorEvent]".

const root = join(import.meta.dir, "..", "..", "..")
const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

test("covenant peer --preset debug-subnet --chain ws://<nothing there> says why it cannot start and exits 1", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-cli-subtensor-"))
  try {
    const endpoint = `ws://127.0.0.1:${await freePort()}`
    const cli = Bun.spawn(
      [process.execPath, join(root, "packages", "runtime", "bin", "covenant.ts"), "peer", "--preset", "debug-subnet", "--chain", endpoint, "--netuid", "2", "--secret", "//cli-subtensor", "--name", "p0", "--state", join(dir, "p0"), "--store", join(dir, "store")],
      { cwd: root, stdout: "pipe", stderr: "pipe" },
    )
    const [code, err] = await Promise.all([cli.exited, new Response(cli.stderr).text()])
    expect(code).toBe(1)
    expect(err).toContain(`chain: ChainUnavailable: cannot connect to ${endpoint}`)
    expect(err).not.toContain("[object")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
