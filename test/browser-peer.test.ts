/**
 * A browser tab joins a local run as a peer (issue #20): a validator (owning the local chain) and
 * a node peer, both `covenant` processes over a real S3 server (s3rver on loopback), the run's
 * corpus in that store (`covenant prepare --out s3://...`, as a public run's would be); the peer
 * page served by `serve-peer-page`; headless Chromium opens it, and the tab creates its hotkey, joins,
 * trains on the page's WebGPU (SwiftShader here) and takes the outer steps; the tab is reloaded after
 * window 2 (closed and opened again: same hotkey, same uid, caught up with no state of its own). After each outer step
 * the tab's parameters must be bitwise identical to the node peer's and the validator's (the
 * digests each prints/emits per window), and the validator must have aggregated the tab's updates.
 * The tab talks to the store directly (the buckets' CORS rules): every request it makes goes to the
 * store's origin or to the page server for the page, the run, its bucket and the chain, and none
 * for store objects or shards; its shards come from the store, like the nodes'.
 *
 * Timing: 8 s windows (test/fixtures/browser-run.ts); every wait is bounded by a deadline derived
 * from the run's window length, and the run ends at window LAST (the validator, the peer and the
 * tab all stop there).
 */
import { expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"
import { LocalS3 } from "@covenant/transport/testing"
import { blockTimeMs } from "./fixtures/browser-run.ts"
import { CORPUS_URI } from "./fixtures/browser-run-s3.ts"

const CHROMIUM = "/usr/bin/chromium"
const root = join(import.meta.dir, "..")
const cli = join(root, "packages", "runtime", "bin", "covenant.ts")
const runFile = join(root, "test", "fixtures", "browser-run-s3.ts")
const windowMs = 5 * blockTimeMs
/** The run's last window: the run starts at window 1; the tab joins around window 2 and is listed two windows after it registers. */
const LAST = 8

/**
 * The run's deadline (the validator done with window LAST: the windows, two more for start-up and a
 * slow last round, 30 s for processes, bundling and Chromium to start), then up to two windows for
 * the tab to stop and 20 s to tear down. Usually the test takes ~85 s.
 */
const runBudgetMs = (LAST + 4) * windowMs + 30_000
const testTimeoutMs = runBudgetMs + 2 * windowMs + 20_000

const lineRe = /^\[(\w[\w-]*)\] window (\d+): .*gathered \[([\d,]*)\] of \[([\d,]*)\].* model ([0-9a-f]{12})/

interface TabEvent {
  readonly _tag: string
  readonly window?: number
  readonly uid?: number
  readonly digest?: string
  readonly gathered?: ReadonlyArray<number>
  readonly phaseMs?: Record<string, number>
  readonly message?: string
}

const allowMissing = process.env["COVENANT_ALLOW_NO_CHROMIUM"] === "1"

test.skipIf(!existsSync(CHROMIUM) && allowMissing)("a browser tab joins a local run, is reloaded and catches up: identical parameters every window, its updates aggregated", async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), "covenant-browser-"))
  const s3 = new LocalS3()
  await s3.start()
  const read = s3.readKeys()
  const config = s3.config()
  const env = {
    ...process.env,
    S3_ENDPOINT: config.endpoint,
    S3_REGION: config.region,
    S3_ACCESS_KEY_ID: config.accessKeyId,
    S3_SECRET_ACCESS_KEY: config.secretAccessKey,
    S3_READ_ACCESS_KEY_ID: read.accessKeyId,
    S3_READ_SECRET_ACCESS_KEY: read.secretAccessKey,
  }
  const spawn = (role: string, name: string, extra: string[] = []) =>
    Bun.spawn(
      [process.execPath, cli, role, "--secret", `//${name}`, "--name", name, "--state", join(dir, name), "--chain-dir", join(dir, "chain"), "--transport", "s3", "--run", runFile, "--until-window", String(LAST), ...extra],
      { cwd: root, env, stdout: "pipe", stderr: "pipe" },
    )
  const procs: Array<{ name: string; p: ReturnType<typeof Bun.spawn> }> = []
  const texts = new Map<string, Promise<string>>()
  const track = (name: string, p: ReturnType<typeof Bun.spawn>) => {
    procs.push({ name, p })
    texts.set(name, Promise.all([new Response(p.stdout as ReadableStream).text(), new Response(p.stderr as ReadableStream).text()]).then(([o, e]) => `${o}\n${e}`))
  }
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless=new", "--enable-unsafe-webgpu", "--no-sandbox", "--no-first-run"] })
  const pageLog: string[] = []
  /** Every request the tab made (both sessions), by URL. */
  const tabRequests: URL[] = []
  let tabEvents: TabEvent[] = []
  let firstSession: TabEvent[] = []
  let outputs = new Map<string, string>()
  try {
    // The run's corpus, in the run's store: the author's `prepare` (its bucket gets the read-only CORS rule).
    const prepare = Bun.spawn([process.execPath, cli, "prepare", "--input", join(root, "packages", "runtime", "corpus"), "--out", CORPUS_URI, "--seq-len", "64"], { cwd: root, env, stdout: "pipe", stderr: "pipe" })
    track("prepare", prepare)
    if ((await prepare.exited) !== 0) throw new Error(`prepare failed: ${await texts.get("prepare")}`)
    const validator = spawn("validator", "v0", ["--own-chain"])
    track("v0", validator)
    const ownerFile = join(dir, "chain", "owner.json")
    for (const deadline = Date.now() + 60_000; !existsSync(ownerFile); await Bun.sleep(100)) {
      if (Date.now() > deadline || validator.exitCode !== null) throw new Error(`the validator never served the chain: ${await texts.get("v0")}`)
    }
    // The node peer's start-up pace check measures one step while Chromium starts beside it on two
    // cores; it may judge the run too fast for this machine and refuse. Keeping up is measured per
    // window anyway (a late update is simply not aggregated); the digests are what this test checks.
    track("p0", spawn("peer", "p0", ["--accept-slow"]))
    const server = Bun.spawn([process.execPath, cli, "serve-peer-page", "--run", runFile, "--chain-dir", join(dir, "chain"), "--data", join(dir, "page-data"), "--offer-keys"], { cwd: root, env, stdout: "pipe", stderr: "pipe" })
    // The page server prints its URL once the page is bundled and served (bounded).
    const reader = (server.stdout as ReadableStream<Uint8Array>).getReader()
    let head = ""
    const decoder = new TextDecoder()
    const urlDeadline = Date.now() + 60_000
    while (!/peer page: (\S+)/.test(head)) {
      const chunk = await Promise.race([reader.read(), Bun.sleep(Math.max(0, urlDeadline - Date.now())).then(() => null)])
      if (chunk === null || chunk.done) throw new Error(`serve-peer-page printed no URL: ${head}\n${await new Response(server.stderr as ReadableStream).text()}`)
      head += decoder.decode(chunk.value)
    }
    reader.releaseLock()
    const pageUrl = /peer page: (\S+)/.exec(head)![1]!
    procs.push({ name: "page-server", p: server })

    const page = await browser.newPage()
    page.on("console", (m) => pageLog.push(`${m.type()}: ${m.text()}`))
    page.on("pageerror", (e) => pageLog.push(`pageerror: ${e.message}`))
    page.on("request", (r) => tabRequests.push(new URL(r.url())))
    await page.goto(`${pageUrl}?name=tab&autojoin=1&untilWindow=${LAST}`)
    // The hotkey is made in the page and kept in its storage.
    await page.waitForFunction(() => (globalThis as { covenant?: { hotkey: string | null } }).covenant?.hotkey != null, undefined, { timeout: 30_000 })
    // These callbacks run in the tab; this workspace type-checks without the DOM library, so the page's globals are cast to the shapes page.ts gives them.
    const keptHotkey = () => page.evaluate(() => (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem("covenant.hotkey"))
    const hotkey = await keptHotkey()
    expect(hotkey).not.toBeNull()
    const eventsOfPage = () => page.evaluate(() => JSON.parse(JSON.stringify((globalThis as unknown as { covenant: { events: unknown[] } }).covenant.events))) as Promise<TabEvent[]>

    // The tab is closed and opened again (a reload) once it has finished window 2: the run sees a
    // missed window; the page comes back with the same hotkey (kept in localStorage), hence the same
    // uid, keeps no state of its own, and catches up from the leader's checkpoint or the records.
    await page.waitForFunction(
      () => (globalThis as unknown as { covenant: { events: Array<{ _tag: string; window?: number }>; status: string } }).covenant.events.some((e) => e._tag === "Round" && (e.window ?? 0) >= 2)
        || ["failed", "no-webgpu"].includes((globalThis as unknown as { covenant: { status: string } }).covenant.status),
      undefined,
      { timeout: Math.max(1, t0 + 5 * windowMs + 30_000 - Date.now()), polling: 500 },
    )
    firstSession = await eventsOfPage()
    await page.reload()
    await page.waitForFunction(() => (globalThis as { covenant?: { hotkey: string | null } }).covenant?.hotkey != null, undefined, { timeout: 30_000 })
    expect(await keptHotkey()).toBe(hotkey)

    // The run ends at window LAST: the validator stops after it (bounded: the windows left, plus two for start-up and a slow last round).
    const runDeadline = t0 + runBudgetMs
    // A tab that failed ends the wait at once (its message is in the log below).
    const tabFailed = page
      .waitForFunction(() => ["failed", "no-webgpu"].includes((globalThis as { covenant?: { status: string } }).covenant?.status ?? ""), undefined, { timeout: Math.max(1, runDeadline - Date.now()), polling: 500 })
      .then(() => false, () => false)
    const exited = await Promise.race([validator.exited.then(() => true), tabFailed, Bun.sleep(Math.max(0, runDeadline - Date.now())).then(() => false)])
    // The tab stops after LAST too; give it one window past the validator.
    await page
      .waitForFunction(() => ["stopped", "failed", "no-webgpu"].includes((globalThis as { covenant?: { status: string } }).covenant?.status ?? ""), undefined, { timeout: windowMs * 2 })
      .catch(() => undefined)
    tabEvents = await eventsOfPage()
    const weight = (await page.textContent("#weight")) ?? ""
    const adapter = (await page.textContent("#adapter")) ?? ""
    const status = await page.evaluate(() => (globalThis as unknown as { covenant: { status: string; message: string } }).covenant)
    pageLog.push(`status: ${status.status}: ${status.message}`)
    for (const { p } of procs) if (p.exitCode === null) p.kill()
    outputs = new Map(await Promise.all([...texts].map(async ([n, t]) => [n, await t] as const)))
    expect({ validatorExited: exited }).toEqual({ validatorExited: true })

    const rounds = [...outputs].flatMap(([, out]) =>
      out.split("\n").flatMap((l) => {
        const m = lineRe.exec(l)
        return m === null ? [] : [{ name: m[1]!, window: Number(m[2]), gathered: m[3] === "" ? [] : m[3]!.split(",").map(Number), digest: m[5]! }]
      }),
    )
    const v = new Map(rounds.filter((r) => r.name === "v0").map((r) => [r.window, r]))
    const p0 = new Map(rounds.filter((r) => r.name === "p0").map((r) => [r.window, r]))
    const tabUid = firstSession.find((e) => e._tag === "Joined")?.uid
    expect(tabUid).toBeNumber()
    // Back after the reload: the same uid, caught up, training again.
    expect(tabEvents.find((e) => e._tag === "Joined")?.uid).toBe(tabUid!)
    const secondRounds = tabEvents.filter((e) => e._tag === "Round")
    expect(secondRounds.length).toBeGreaterThanOrEqual(2)
    const tabRounds = [...firstSession, ...tabEvents].filter((e) => e._tag === "Round")
    // The tab trained at least two windows, and after each outer step holds the validator's and the node peer's parameters, bit for bit.
    expect(tabRounds.length).toBeGreaterThanOrEqual(2)
    for (const r of tabRounds) {
      expect({ window: r.window, tab: r.digest!.slice(0, 12) }).toEqual({ window: r.window, tab: v.get(r.window!)?.digest ?? "validator has no such window" })
      if (p0.has(r.window!)) expect({ window: r.window, tab: r.digest!.slice(0, 12) }).toEqual({ window: r.window, tab: p0.get(r.window!)!.digest })
    }
    expect(tabRounds.filter((r) => p0.has(r.window!)).length).toBeGreaterThanOrEqual(2)
    // The tab's requests: to the page server only for the page, the run, its bucket (made with a CORS
    // rule for the page's origin) and the chain; all store traffic straight to the store's origin,
    // its shards included; nowhere else.
    const pageOrigin = new URL(pageUrl).origin
    const storeOrigin = new URL(config.endpoint).origin
    const toPageServer = tabRequests.filter((u) => u.origin === pageOrigin).map((u) => u.pathname)
    const toStore = tabRequests.filter((u) => u.origin === storeOrigin)
    expect(tabRequests.filter((u) => u.origin !== pageOrigin && u.origin !== storeOrigin).map(String)).toEqual([])
    expect(toPageServer.filter((p) => !(["/", "/app.js", "/run.json", "/bucket", "/favicon.ico"].includes(p) || p.startsWith("/chain/")))).toEqual([])
    const storeBuckets = new Set(toStore.map((u) => u.pathname.split("/")[1]))
    // Its own bucket written, the node peer's and the validator's read, the corpus read.
    for (const bucket of ["covenant-tab", "covenant-p0", "covenant-v0", "covenant-corpus"]) expect({ bucket, requested: storeBuckets.has(bucket) }).toEqual({ bucket, requested: true })
    // The validator aggregated the tab's updates (in some window once the leader listed it).
    expect([...v.values()].filter((r) => r.gathered.includes(tabUid!)).length).toBeGreaterThanOrEqual(1)
    // The page shows its hotkey's weight once the validator has set weights (after windows 3 and 6).
    expect(weight).toMatch(/^\d\.\d{3}$/)
    // Tokens/s of the inner steps (5 steps x 4 samples x 64 tokens per window over the compute phase), the tab's next to the node peer's.
    const tokens = 5 * 4 * 64
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN
    const tabTps = tabRounds.map((r) => tokens / ((r.phaseMs?.["compute"] ?? Number.NaN) / 1000))
    const p0Tps = (outputs.get("p0") ?? "").split("\n").flatMap((l) => {
      const m = /^\[p0\] window \d+: .*\(compute (\d+)ms/.exec(l)
      return m === null ? [] : [tokens / (Number(m[1]) / 1000)]
    })
    const caughtUp = tabEvents.find((e) => e._tag === "CaughtUp") as { from?: number; to?: number } | undefined
    console.log(`tab: reloaded after window ${firstSession.filter((e) => e._tag === "Round").at(-1)?.window}, back ${caughtUp === undefined ? "from the leader's checkpoint" : `replaying windows ${caughtUp.from}..${caughtUp.to}`}, trained ${secondRounds.map((r) => r.window).join(",")}`)
    console.log(`tab requests: ${toStore.length} to the store (${[...storeBuckets].join(", ")}), ${toPageServer.length} to the page server (${[...new Set(toPageServer.map((p) => (p.startsWith("/chain/") ? "/chain/" : p)))].join(", ")})`)
    console.log(`tab (WebGPU, ${adapter}): windows ${tabRounds.map((r) => r.window).join(",")}, tokens/s ${tabTps.map((x) => x.toFixed(0)).join(",")} (median ${median(tabTps).toFixed(0)}); node peer (cpu): tokens/s ${p0Tps.map((x) => x.toFixed(0)).join(",")} (median ${median(p0Tps).toFixed(0)}); weight ${weight}; test took ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  } catch (e) {
    for (const { p } of procs) if (p.exitCode === null) p.kill()
    if (outputs.size === 0) outputs = new Map(await Promise.all([...texts].map(async ([n, t]) => [n, await t] as const)))
    for (const [name, out] of outputs) {
      const lines = out.split("\n").filter((l) => l.trim() !== "" && !/ level=(INFO|DEBUG) /.test(l))
      console.log(`--- ${name}, the last 30 lines:\n${lines.slice(-30).join("\n")}`)
    }
    console.log(`--- tab events (before the reload, then after):\n${[...firstSession, { _tag: "reloaded" }, ...tabEvents].filter((e) => e._tag !== "Phase").map((e) => JSON.stringify(e).slice(0, 600)).join("\n")}`)
    console.log(`--- tab console, the last 40 lines:\n${pageLog.slice(-40).join("\n")}`)
    throw e
  } finally {
    await browser.close()
    for (const { p } of procs) if (p.exitCode === null) p.kill()
    await s3.dispose()
    rmSync(dir, { recursive: true, force: true })
  }
}, testTimeoutMs)
