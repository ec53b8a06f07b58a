import { afterAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, Exit, Schema } from "effect"
import { chromium } from "playwright-core"
import { RunLog, renderReport, reportSeries, writeReport } from "../src/report/index.ts"

const CHROMIUM = "/usr/bin/chromium"
const work = mkdtempSync(join(tmpdir(), "covenant-report-"))
afterAll(() => rmSync(work, { recursive: true, force: true }))

type Log = typeof RunLog.Encoded

/**
 * Runs in the page (a string, since this package compiles without DOM types): for each chart, its
 * canvas size, how many pixels are not transparent background, how many distinct colours they
 * use, and the length of the canvas's PNG data URL.
 */
const READ_CANVASES = `Array.from(document.querySelectorAll("section.chart")).map((section) => {
  const canvas = section.querySelector("canvas")
  if (canvas === null) return { id: section.id, width: 0, height: 0, inked: 0, colours: 0, pngBytes: 0 }
  const { width, height } = canvas
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data
  let inked = 0
  const colours = new Set()
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i + 3] > 0) {
      inked++
      colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2])
    }
  }
  return { id: section.id, width, height, inked, colours: colours.size, pngBytes: canvas.toDataURL("image/png").length }
})`
const CanvasStats = Schema.Array(
  Schema.Struct({ id: Schema.String, width: Schema.Number, height: Schema.Number, inked: Schema.Number, colours: Schema.Number, pngBytes: Schema.Number }),
)

/** A plausible 4-peer run: losses decay with per-peer offsets, one peer misses windows 12-14. */
const syntheticLog = (windows: number): Log => ({
  title: "covenant-ts run <test> & report",
  meta: { model: "llama 4x256", compression: "sparseloco topk 32" },
  windows: Array.from({ length: windows }, (_, i) => {
    const base = 7 * Math.exp(-i / 12) + 2.2
    const peerLoss: Record<string, number> = {}
    for (const uid of [1, 2, 3, 10]) {
      if (uid === 3 && i >= 12 && i <= 14) continue
      peerLoss[String(uid)] = base + 0.15 * uid ** 0.5 + 0.1 * Math.sin(i * 1.7 + uid)
    }
    const compute = 60_000 + 500 * Math.sin(i)
    const gather = 4_000 + 300 * (i % 4)
    return {
      window: 100 + i,
      peerLoss,
      validatorLoss: i % 5 === 4 ? null : base,
      bytesUp: 3 * 1024 * 1024 + i * 10_000,
      bytesDown: 11 * 1024 * 1024 + (i % 3) * 500_000,
      peersGathered: i >= 12 && i <= 14 ? 3 : 4,
      peersExpected: 4,
      roundMs: compute + gather + 2_000,
      phaseMs: { compute, gather, upload: 1_500, outerStep: 500 },
    }
  }),
})

const record = (window: number, over: Partial<Log["windows"][number]> = {}): Log["windows"][number] => ({
  window, peerLoss: {}, validatorLoss: null, bytesUp: 0, bytesDown: 0, peersGathered: 0, roundMs: 0, phaseMs: { compute: 0 }, ...over,
})

describe("report series", () => {
  test("columns align per window; share outside compute and MiB are computed per window", () => {
    const s = reportSeries({
      title: "t",
      windows: [
        record(3, { peerLoss: { "10": 2, "2": 3 }, validatorLoss: 2.5, bytesUp: 2 * 1048576, bytesDown: 524288, peersGathered: 2, roundMs: 1000, phaseMs: { compute: 750, gather: 200 } }),
        record(4, { peerLoss: { "2": Number.NaN }, roundMs: 0, phaseMs: { compute: 0 } }),
        record(6, { peerLoss: { "10": 1 }, validatorLoss: 1.5, roundMs: 400, phaseMs: { compute: 500, upload: 100 } }),
      ],
    })
    expect(s.windows).toEqual([3, 4, 6])
    expect(s.peers).toEqual(["2", "10"]) // numeric order
    expect(s.peerLoss).toEqual([[3, null, null], [2, null, 1]])
    expect(s.validatorLoss).toEqual([2.5, null, 1.5])
    expect(s.mibUp).toEqual([2, 0, 0])
    expect(s.mibDown).toEqual([0.5, 0, 0])
    // 100 * (1000 - 750) / 1000 = 25; a zero-length round has no share; compute > round clamps to 0
    expect(s.outsideComputePct).toEqual([25, null, 0])
    expect(s.phases).toEqual(["compute", "gather", "upload"])
    expect(s.phaseSeconds).toEqual([[0.75, 0, 0.5], [0.2, null, null], [null, null, 0.1]])
  })

  test("idling for the window boundary is not counted as time outside compute", () => {
    // active = 1000 - 600 waiting = 400; 100 * (400 - 300) / 400 = 25
    const s = reportSeries({ title: "t", windows: [record(1, { roundMs: 1000, phaseMs: { compute: 300, wait: 600, gather: 100 } })] })
    expect(s.outsideComputePct).toEqual([25])
  })

  test("invalid logs are ReportErrors", async () => {
    const bad: unknown[] = [
      { title: "x", windows: [record(2), record(2)] },
      { title: "x", windows: [record(1, { bytesUp: -1 })] },
      { title: "x", windows: [record(1, { peersGathered: 1.5 })] },
      { title: "x", windows: [{ ...record(1), phaseMs: { gather: 1 } }] },
      { windows: [] },
    ]
    for (const log of bad) {
      const exit = await Effect.runPromiseExit(renderReport(log as Log))
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error._tag : "accepted").toBe("ReportError")
    }
  })

  test("the page is self-contained: inlined uPlot, no external references, escaped text", async () => {
    const html = await Effect.runPromise(renderReport(syntheticLog(5)))
    expect(html).toContain("uPlot")
    expect(html).toContain(".uplot")
    expect(html).not.toMatch(/<script[^>]+src=|<link|@import|url\(|<iframe|<img/i)
    expect(html).toContain("covenant-ts run &lt;test&gt; &amp; report")
    expect(html).not.toContain("<test>")
  })
})

describe("report in headless Chromium", () => {
  const allowMissing = process.env.COVENANT_ALLOW_NO_CHROMIUM === "1"
  test.skipIf(!existsSync(CHROMIUM) && allowMissing)("plots are drawn, offline, with no page errors", async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system.sh (or set COVENANT_ALLOW_NO_CHROMIUM=1 to skip)`)
    }
    const path = join(work, "report.html")
    await Effect.runPromise(writeReport(path, syntheticLog(40)))
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    })
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
      const url = pathToFileURL(path).href
      const requests: string[] = []
      const errors: string[] = []
      page.on("request", (r) => requests.push(r.url()))
      page.on("pageerror", (e) => errors.push(e.message))
      page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()) })
      await page.goto(url, { waitUntil: "load" })
      await page.waitForSelector("body[data-charts]", { timeout: 10_000 })
      expect(errors).toEqual([])
      expect(await page.getAttribute("body", "data-charts")).toBe("5")

      const canvases = Schema.decodeUnknownSync(CanvasStats)(await page.evaluate(READ_CANVASES))
      expect(canvases.map((c) => c.id)).toEqual(["chart-loss", "chart-bytes", "chart-peers", "chart-outside", "chart-phases"])
      for (const c of canvases) {
        expect(c.width).toBeGreaterThan(300)
        expect(c.height).toBeGreaterThan(100)
        // Lines, axes and fills leave a real fraction of non-background pixels, in several colours.
        expect(c.inked).toBeGreaterThan(0.01 * c.width * c.height)
        expect(c.colours).toBeGreaterThan(2)
        expect(c.pngBytes).toBeGreaterThan(2_000)
      }
      const legend = await page.locator("#chart-loss .u-legend").innerText()
      for (const label of ["peer 1", "peer 2", "peer 3", "peer 10", "validator (aggregate)"]) expect(legend).toContain(label)

      const screenshot = join(tmpdir(), "covenant-report.png")
      await page.screenshot({ path: screenshot, fullPage: true })
      expect(readFileSync(screenshot).length).toBeGreaterThan(10_000)
      expect(requests).toEqual([url])
    } finally {
      await browser.close()
    }
  }, 60_000)
})

/** The synthetic run with weights set every third window; peer 10 is a sign-flipper whose weight drops to 0. */
const weightedLog = (windows: number): Log => {
  const log = syntheticLog(windows)
  return {
    ...log,
    behaviours: { "1": "honest", "2": "honest", "3": "copycat", "10": "sign-flip" },
    windows: log.windows.map((w, i) => (i % 3 === 2
      ? { ...w, weights: { "1": 0.3, "2": 0.3, "3": i > 10 ? 0.1 : 0.2, "10": i > 5 ? 0 : 0.2 } }
      : w)),
  }
}

describe("report: weights per peer by behaviour", () => {
  test("series: one weight column per weighted peer, null where none was set, behaviours from the log", () => {
    const log = Schema.decodeUnknownSync(RunLog)(weightedLog(9))
    const s = reportSeries(log)
    expect(s.weightPeers).toEqual(["1", "2", "3", "10"])
    expect(s.weightBehaviour).toEqual(["honest", "honest", "copycat", "sign-flip"])
    expect(s.peerWeight[3]).toEqual([null, null, 0.2, null, null, 0.2, null, null, 0])
    expect(reportSeries(Schema.decodeUnknownSync(RunLog)(syntheticLog(3))).weightPeers).toEqual([])
  })

  const allowMissing = process.env.COVENANT_ALLOW_NO_CHROMIUM === "1"
  test.skipIf(!existsSync(CHROMIUM) && allowMissing)("the weights chart is drawn, its legend names each peer's behaviour", async () => {
    const path = join(work, "weights.html")
    await Effect.runPromise(writeReport(path, weightedLog(30)))
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] })
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } })
      const errors: string[] = []
      page.on("pageerror", (e) => errors.push(e.message))
      await page.goto(pathToFileURL(path).href, { waitUntil: "load" })
      await page.waitForSelector("body[data-charts]", { timeout: 10_000 })
      expect(errors).toEqual([])
      expect(await page.getAttribute("body", "data-charts")).toBe("6")
      const canvases = Schema.decodeUnknownSync(CanvasStats)(await page.evaluate(READ_CANVASES))
      const weights = canvases.find((c) => c.id === "chart-weights")!
      expect(weights.inked).toBeGreaterThan(0.01 * weights.width * weights.height)
      const legend = await page.locator("#chart-weights .u-legend").innerText()
      for (const label of ["peer 1 (honest)", "peer 3 (copycat)", "peer 10 (sign-flip)"]) expect(legend).toContain(label)
    } finally {
      await browser.close()
    }
  }, 60_000)
})
