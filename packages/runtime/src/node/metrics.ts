/** The runtime's metrics (Effect Metric) and its structured round log line. */
import { Effect, Metric, MetricBoundaries } from "effect"
import type { NodeEvent } from "./node.ts"

export const bytesSent = Metric.counter("covenant_bytes_sent", { description: "update bytes published" })
export const bytesReceived = Metric.counter("covenant_bytes_received", { description: "update bytes gathered or replayed" })
export const roundsCompleted = Metric.counter("covenant_rounds", { description: "outer rounds completed" })
export const peersGathered = Metric.histogram(
  "covenant_peers_gathered",
  MetricBoundaries.linear({ start: 0, width: 1, count: 33 }),
  "valid updates aggregated per round",
)
export const computeShare = Metric.gauge("covenant_compute_share", { description: "share of the last round spent in local training" })

/** Records a finished round in the metrics and as a debug-level structured log line. */
export const recordRound = (e: Extract<NodeEvent, { _tag: "Round" }>): Effect.Effect<void> =>
  Effect.gen(function* () {
    const tags = (m: Metric.Metric.Counter<number>) => m.pipe(Metric.tagged("node", e.name), Metric.tagged("role", e.role))
    yield* Metric.incrementBy(tags(bytesSent), e.bytesUp)
    yield* Metric.incrementBy(tags(bytesReceived), e.bytesDown)
    yield* Metric.increment(tags(roundsCompleted))
    yield* Metric.update(peersGathered, e.gathered.length)
    if (e.role === "peer") yield* Metric.set(computeShare.pipe(Metric.tagged("node", e.name)), e.phaseMs.compute / Math.max(1, e.roundMs))
    yield* Effect.logDebug("round").pipe(
      Effect.annotateLogs({ node: e.name, role: e.role, uid: e.uid, window: e.window, loss: e.loss ?? "n/a", gathered: e.gathered.join(","), digest: e.digest.slice(0, 16) }),
    )
  })
