import { readFile, writeFile } from "node:fs/promises"
import { createRequire } from "node:module"
import { Effect, Schema } from "effect"
import { ReportError } from "./errors.ts"
import { renderReportHtml } from "./html.ts"
import type { ChartAssets } from "./html.ts"
import { RunLog } from "./run-log.ts"
import { reportSeries } from "./series.ts"

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/** uPlot's browser build and stylesheet, read from the installed package. */
export const loadChartAssets: Effect.Effect<ChartAssets, ReportError> = Effect.tryPromise({
  try: async () => {
    const require = createRequire(import.meta.url)
    const [uplotJs, uplotCss] = await Promise.all([
      readFile(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf-8"),
      readFile(require.resolve("uplot/dist/uPlot.min.css"), "utf-8"),
    ])
    return { uplotJs, uplotCss }
  },
  catch: (cause) => new ReportError({ reason: `cannot read the uplot package: ${describe(cause)}` }),
})

/** Decodes the log and renders the report page as a string. */
export const renderReport = (runLog: typeof RunLog.Encoded): Effect.Effect<string, ReportError> =>
  Effect.gen(function* () {
    const log = yield* Schema.decodeUnknown(RunLog)(runLog).pipe(
      Effect.mapError((e) => new ReportError({ reason: `invalid run log: ${e.message}` })),
    )
    const assets = yield* loadChartAssets
    return renderReportHtml(log, reportSeries(log), assets)
  })

/** Writes the run's self-contained HTML report to `path`. */
export const writeReport = (path: string, runLog: typeof RunLog.Encoded): Effect.Effect<void, ReportError> =>
  Effect.flatMap(renderReport(runLog), (html) =>
    Effect.tryPromise({
      try: () => writeFile(path, html, "utf-8"),
      catch: (cause) => new ReportError({ reason: `cannot write ${path}: ${describe(cause)}` }),
    }),
  )
