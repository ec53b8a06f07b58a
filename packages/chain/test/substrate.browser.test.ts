/**
 * Can a browser tab join a Bittensor run (issue #20)? The subtensor chain client is @polkadot/api
 * over WebSocket: this bundles its connection (connectSubstrate, test/fixtures/substrate-page.ts)
 * with Bun's bundler for the browser, opens it in headless Chromium, and connects to a real
 * Substrate runtime run by chopsticks on loopback, reads its head, and signs and submits an extrinsic
 * that lands in a block (Rococo Asset Hub: not subtensor, whose pallets
 * the page would also need, see subtensorRequirements). The peer page itself joins the local
 * chain only so far; this is the part a subtensor page would stand on.
 */
import { afterAll, beforeAll, expect, test } from "bun:test"
import { existsSync } from "node:fs"
import { chromium } from "playwright-core"

const CHROMIUM = "/usr/bin/chromium"
const allowMissing = process.env["COVENANT_ALLOW_NO_CHROMIUM"] === "1"

process.env.LOG_LEVEL = "error"
const { setupWithServer } = await import("@acala-network/chopsticks")
const { chainSpec } = await import("@substrate/connect-known-chains/rococo_v2_2_asset_hub")

const devRpc = async (method: string, params: unknown[]) =>
  (await fetch(`http://127.0.0.1:${port}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json()

let server: Awaited<ReturnType<typeof setupWithServer>>
let port = 0
beforeAll(async () => {
  server = await setupWithServer({ genesis: JSON.parse(chainSpec), port: 0, host: "127.0.0.1", "build-block-mode": "Manual" } as Parameters<typeof setupWithServer>[0])
  port = Number(server.addr.split(":").pop())
  // Alice pays for the page's remark.
  await devRpc("dev_setStorage", [{ System: { Account: [[["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"], { providers: 1, data: { free: (10n ** 15n).toString() } }]] } }])
  await devRpc("dev_newBlock", [{ count: 1 }])
}, 120_000)
afterAll(async () => {
  await server?.close()
})

test.skipIf(!existsSync(CHROMIUM) && allowMissing)("the substrate chain client bundles for the browser; in Chromium it connects over WebSocket, signs and gets an extrinsic included", async () => {
  const deadline = Date.now() + 170_000
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
  const built = await Bun.build({ entrypoints: [`${import.meta.dir}/fixtures/substrate-page.ts`], target: "browser", format: "esm" })
  expect(built.logs.map(String)).toEqual([])
  const js = await built.outputs[0]!.text()
  const page = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      new URL(req.url).pathname === "/check.js"
        ? new Response(js, { headers: { "content-type": "text/javascript" } })
        : new Response(`<!doctype html><script type="module" src="/check.js"></script>`, { headers: { "content-type": "text/html" } }),
  })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--no-first-run"] })
  try {
    const tab = await browser.newPage()
    const errors: string[] = []
    tab.on("pageerror", (e) => errors.push(e.message))
    await tab.goto(`http://127.0.0.1:${page.port}/?ws=${encodeURIComponent(`ws://127.0.0.1:${port}`)}`)
    // Connected and signed: the page waits for inclusion; a block is made whenever it asks (chopsticks builds on demand).
    await tab.waitForFunction(() => (globalThis as { substrateCheck?: unknown }).substrateCheck !== undefined, undefined, { timeout: 90_000 })
    // Blocks until the page sees its extrinsic included: bounded by the test's own 180 s (less 10 s for
    // the checks and teardown), not by a count of tries, which a busy machine can exhaust.
    while (Date.now() < deadline && (await tab.evaluate(() => (globalThis as { substrateCheck?: unknown }).substrateCheck)) === "submitting") {
      await Bun.sleep(200)
      await devRpc("dev_newBlock", [{ count: 1 }])
    }
    const result = await tab.evaluate(() => (globalThis as { substrateCheck?: unknown }).substrateCheck)
    console.log(`substrate client in Chromium (bundle ${(js.length / 1024 / 1024).toFixed(1)} MiB): ${JSON.stringify(result)}`)
    expect(result).toMatchObject({ ok: true, runtime: "statemine", includedIn: expect.stringMatching(/^0x[0-9a-f]{64}$/) })
    expect(errors).toEqual([])
  } finally {
    await browser.close()
    await page.stop(true)
  }
}, 180_000)
