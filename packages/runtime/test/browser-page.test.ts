/**
 * The peer page's parts, without a run: the bundle's sha256 matches node:crypto; shard objects
 * read over HTTP (whole, ranged, sized) match the files; the page server bundles and serves the
 * page, its run and its shards, proxies no store, and makes a local run's tab bucket with CORS; and in headless Chromium without
 * WebGPU the page says plainly that it cannot train; with WebGPU (SwiftShader) the engine on the
 * page's navigator.gpu trains like the CPU reference. (test/browser-peer.test.ts runs a tab in a run.)
 */
import { expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Exit, Scope } from "effect"
import { chromium } from "playwright-core"
import { covenant72b, debug } from "@covenant/dsl"
import { createHash as pageHash } from "../src/browser/sha256.ts"
import { httpObjects } from "../src/data/http-objects.ts"
import { bundleForBrowser, servePeerPage } from "../src/browser/serve.ts"
import { prepareRunData } from "../src/swarm/data.ts"
import type { EngineCheck } from "../src/browser/engine-check.ts"
import { checkAdapter } from "../src/browser/adapter.ts"
import { LocalS3 } from "@covenant/transport/testing"

const CHROMIUM = "/usr/bin/chromium"

test("the page's sha256 is node:crypto's, across block boundaries and split updates", () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 70_000]) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255)
    const h = pageHash("sha256").update(bytes.subarray(0, n >> 1)).update(bytes.subarray(n >> 1))
    expect({ n, hex: h.digest("hex") }).toEqual({ n, hex: createHash("sha256").update(bytes).digest("hex") })
  }
  expect(pageHash("sha256").update("héllo").digest("hex")).toBe(createHash("sha256").update("héllo").digest("hex"))
})

test("no WebGPU, no adapter, or an adapter too small for the kernels or the model: the page's check says so in words", async () => {
  const none = await checkAdapter(undefined, debug().model)
  expect(none._tag === "Unusable" && none.message).toContain("no WebGPU")
  const noAdapter = await checkAdapter({ requestAdapter: async () => null } as unknown as GPU, debug().model)
  expect(noAdapter._tag === "Unusable" && noAdapter.message).toContain("no adapter")
  const adapter = (limits: Partial<GPUSupportedLimits>) =>
    ({
      requestAdapter: async () => ({
        info: { description: "test adapter", vendor: "", architecture: "", device: "" },
        limits: { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256, maxComputeWorkgroupStorageSize: 16_384, maxStorageBuffersPerShaderStage: 8, maxBufferSize: 2 ** 28, ...limits },
      }),
    }) as unknown as GPU
  const weak = await checkAdapter(adapter({ maxComputeWorkgroupStorageSize: 8_192 }), debug().model)
  expect(weak._tag === "Unusable" && weak.message).toContain("too small for the engine's kernels: maxComputeWorkgroupStorageSize 8192 < 16384")
  // Covenant-72B's parameters cannot fit 8 buffers of 256 MiB; the debug model can.
  const small = await checkAdapter(adapter({}), covenant72b().model)
  expect(small._tag === "Unusable" && small.message).toContain("too small for this run's model")
  expect((await checkAdapter(adapter({}), debug().model))._tag).toBe("Usable")
})

test("the page server: page, run, ranged shard reads; no store proxy, and no buckets made unless it offers a local run's keys", async () => {
  const dir = mkdtempSync(join(tmpdir(), "covenant-page-"))
  const scope = Effect.runSync(Scope.make())
  try {
    const file = new Uint8Array(1000).map((_, i) => i & 255)
    writeFileSync(join(dir, "shard.npy"), file)
    const url = await Effect.runPromise(
      Scope.extend(servePeerPage({ spec: debug(), store: { endpoint: "http://127.0.0.1:9", region: "us-east-1" }, chain: { kind: "local", url: async () => "http://127.0.0.1:9" }, data: { kind: "dir", dir } }), scope),
    )
    expect(await (await fetch(url)).text()).toContain("covenant")
    expect((await (await fetch(`${url}app.js`)).text()).length).toBeGreaterThan(100_000)
    const run = (await (await fetch(`${url}run.json`)).json()) as { spec: { name: string } }
    expect(run.spec.name).toBe("debug")
    const objects = httpObjects(`${url}data/`)
    expect(await Effect.runPromise(objects.size("shard.npy"))).toBe(1000)
    expect([...(await Effect.runPromise(objects.readRange("shard.npy", 990, 64)))]).toEqual([...file.subarray(990)])
    expect([...(await Effect.runPromise(objects.read("shard.npy")))]).toEqual([...file])
    expect((await Effect.runPromise(Effect.either(objects.read("missing.npy"))))._tag).toBe("Left")
    expect((await fetch(`${url}data/..%2f..%2fetc%2fpasswd`)).status).toBe(403)
    // The page talks to the store itself: nothing here forwards store requests.
    expect((await fetch(`${url}s3/127.0.0.1:9/bucket/key`)).status).toBe(404)
    expect((await fetch(`${url}bucket?name=tab`, { method: "POST" })).status).toBe(404)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)

test("a local run's page server makes the tab's bucket with a CORS rule for its own page's origin (and only that origin)", async () => {
  const s3 = new LocalS3()
  await s3.start()
  const scope = Effect.runSync(Scope.make())
  try {
    const c = s3.config()
    const keys = { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey }
    const url = await Effect.runPromise(
      Scope.extend(servePeerPage({ spec: debug(), store: { endpoint: c.endpoint, region: c.region }, offerKeys: { write: keys, read: keys }, chain: { kind: "local", url: async () => "http://127.0.0.1:9" }, data: { kind: "dir", dir: tmpdir() } }), scope),
    )
    const page = new URL(url).origin
    const made = await fetch(`${url}bucket?name=tab`, { method: "POST", headers: { origin: page } })
    expect(await made.json()).toEqual({ bucket: "covenant-tab", origin: page })
    const preflight = (origin: string, method: string) =>
      fetch(`${c.endpoint}/covenant-tab/key`, { method: "OPTIONS", headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization,x-amz-date" } }).then((r) => r.status)
    expect(await preflight(page, "PUT")).toBe(200)
    expect(await preflight(page, "GET")).toBe(200)
    expect(await preflight("http://elsewhere.example", "PUT")).toBe(403)
    expect((await fetch(`${url}bucket?name=tab`)).status).toBe(405)
    // Another site's page cannot have a bucket made for its origin.
    expect((await fetch(`${url}bucket?name=evil`, { method: "POST", headers: { origin: "http://elsewhere.example" } })).status).toBe(403)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await s3.dispose()
  }
}, 60_000)

const allowMissing = process.env["COVENANT_ALLOW_NO_CHROMIUM"] === "1"
test.skipIf(!existsSync(CHROMIUM) && allowMissing)("in Chromium without WebGPU the page says it cannot train, and keeps a hotkey", async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
  const dir = mkdtempSync(join(tmpdir(), "covenant-page-"))
  const scope = Effect.runSync(Scope.make())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--no-sandbox", "--no-first-run", "--disable-gpu", "--disable-features=WebGPU"] })
  try {
    const url = await Effect.runPromise(
      Scope.extend(servePeerPage({ spec: debug(), store: { endpoint: "http://127.0.0.1:9", region: "us-east-1" }, chain: { kind: "local", url: async () => "http://127.0.0.1:9" }, data: { kind: "dir", dir } }), scope),
    )
    const page = await browser.newPage()
    const errors: string[] = []
    page.on("pageerror", (e) => errors.push(e.message))
    await page.goto(url)
    await page.waitForFunction(() => (globalThis as { covenant?: { status: string } }).covenant?.status === "no-webgpu", undefined, { timeout: 30_000 })
    expect(await page.textContent("#status")).toMatch(/no WebGPU|no adapter/)
    expect(await page.isDisabled("#join")).toBe(true)
    // The hotkey was made in the page and kept in its storage: a reload shows the same one.
    const hotkey = await page.textContent("#hotkey")
    expect(hotkey).toMatch(/^5[1-9A-HJ-NP-Za-km-z]{40,}$/)
    await page.reload()
    await page.waitForFunction(() => (globalThis as { covenant?: { hotkey: string | null } }).covenant?.hotkey != null, undefined, { timeout: 30_000 })
    expect(await page.textContent("#hotkey")).toBe(hotkey)
    expect(errors).toEqual([])
  } finally {
    await browser.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)

test.skipIf(!existsSync(CHROMIUM) && allowMissing)("the engine on Chromium's navigator.gpu trains like the CPU reference (three steps of the debug model)", async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
  const js = await Effect.runPromise(bundleForBrowser(new URL("../src/browser/engine-check-page.ts", import.meta.url).pathname))
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) =>
      new URL(req.url).pathname === "/check.js"
        ? new Response(js, { headers: { "content-type": "text/javascript" } })
        : new Response(`<!doctype html><script type="module" src="/check.js"></script>`, { headers: { "content-type": "text/html" } }),
  })
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--enable-unsafe-webgpu", "--no-sandbox", "--no-first-run"] })
  try {
    const page = await browser.newPage()
    await page.goto(`http://127.0.0.1:${server.port}/`)
    await page.waitForFunction(() => "covenantEngineCheck" in globalThis, undefined, { timeout: 30_000 })
    const r = await page.evaluate(async () => {
      const g = globalThis as unknown as { covenantEngineCheck: (gpu: unknown) => Promise<unknown>; navigator: { gpu?: unknown } }
      return g.navigator.gpu === undefined ? null : g.covenantEngineCheck(g.navigator.gpu)
    }) as EngineCheck | null
    expect(r).not.toBeNull()
    console.log(`engine on navigator.gpu (${r!.adapter}): losses ${r!.gpuLosses.map((l) => l.toFixed(6)).join(", ")} vs CPU ${r!.cpuLosses.map((l) => l.toFixed(6)).join(", ")}, max parameter difference ${r!.maxDiff.toExponential(2)}`)
    // The tolerances of the fast CPU backend's own check against the reference (gpu-webgpu's cpuFast test).
    r!.cpuLosses.forEach((l, i) => expect(Math.abs(r!.gpuLosses[i]! - l)).toBeLessThan(1e-4 + 1e-4 * Math.abs(l)))
    expect(r!.maxDiff).toBeLessThan(2e-4 + 2e-3 * r!.maxAbs)
  } finally {
    await browser.close()
    await server.stop(true)
  }
}, 60_000)

test.skipIf(!existsSync(CHROMIUM) && allowMissing)("a subtensor run: the tab connects to the node itself over WebSocket, checks its runtime, and says in words when it is no subtensor", async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
  // A real Substrate runtime on loopback (chopsticks: Rococo Asset Hub). No subtensor runtime runs on
  // this machine, so this checks everything up to Bittensor's own pallets: the page's bundle of the
  // subtensor client, its WebSocket straight to the node, and the runtime check's typed refusal.
  process.env.LOG_LEVEL = "error"
  const { setupWithServer } = await import("@acala-network/chopsticks")
  const { chainSpec } = await import("@substrate/connect-known-chains/rococo_v2_2_asset_hub")
  const node = await setupWithServer({ genesis: JSON.parse(chainSpec), port: 0, host: "127.0.0.1", "build-block-mode": "Manual" } as Parameters<typeof setupWithServer>[0])
  const ws = `ws://127.0.0.1:${node.addr.split(":").pop()}`
  const dir = mkdtempSync(join(tmpdir(), "covenant-page-"))
  const scope = Effect.runSync(Scope.make())
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--enable-unsafe-webgpu", "--no-sandbox", "--no-first-run"] })
  try {
    const spec = debug()
    const data = await Effect.runPromise(prepareRunData(spec, dir))
    const url = await Effect.runPromise(
      Scope.extend(servePeerPage({ spec, store: { endpoint: "http://127.0.0.1:9", region: "us-east-1" }, chain: { kind: "subtensor", endpoint: ws, netuid: 3 }, data: { kind: "dir", dir: data } }), scope),
    )
    expect(await (await fetch(`${url}run.json`)).json()).toMatchObject({ chain: { kind: "subtensor", endpoint: ws, netuid: 3 } })
    // No chain proxy on a subtensor run.
    expect((await fetch(`${url}chain/rpc`)).status).toBe(404)
    const page = await browser.newPage()
    const sockets: string[] = []
    page.on("websocket", (s) => sockets.push(s.url()))
    await page.goto(`${url}?autojoin=1&name=sub&key=writer&secret=write-secret&readKey=reader&readSecret=read-secret`)
    await page.waitForFunction(() => (globalThis as { covenant?: { status: string } }).covenant?.status === "failed", undefined, { timeout: 90_000 })
    const status = await page.textContent("#status")
    console.log(`the page on a runtime without subtensor's pallets: ${status}`)
    expect(status).toContain("chain: RuntimeMismatch")
    expect(status).toContain("subtensorModule.setWeights")
    expect(status).not.toContain("CORS")
    expect(sockets.some((s) => s.startsWith(ws))).toBe(true)
  } finally {
    await browser.close()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await node.close()
    rmSync(dir, { recursive: true, force: true })
  }
}, 180_000)
