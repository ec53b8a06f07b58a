/**
 * Turns a run log into the aligned columns the report plots (one value per window, null for a gap).
 * Kept apart from the HTML so the numbers can be checked without a browser.
 */
import type { RunLog } from "./run-log.ts"

export interface ReportSeries {
  readonly windows: number[]
  readonly peers: string[]
  /** peerLoss[p][i]: loss of peers[p] in windows[i]. */
  readonly peerLoss: Array<Array<number | null>>
  readonly validatorLoss: Array<number | null>
  readonly mibUp: number[]
  readonly mibDown: number[]
  readonly peersGathered: number[]
  readonly peersExpected: Array<number | null>
  /**
   * Percent of the active round spent outside local compute: 100 * (active - compute) / active,
   * where active = roundMs minus the `wait` phase (idling for the window boundary is not overhead
   * of the protocol, only of a clock faster than the compute).
   */
  readonly outsideComputePct: Array<number | null>
  readonly phases: string[]
  /** phaseSeconds[k][i]: seconds of phases[k] in windows[i]. */
  readonly phaseSeconds: Array<Array<number | null>>
  /** Peers that ever got a weight; peerWeight[p][i]: weightPeers[p]'s weight set in windows[i] (null: none set). */
  readonly weightPeers: string[]
  readonly peerWeight: Array<Array<number | null>>
  /** weightBehaviour[p]: weightPeers[p]'s behaviour ("honest" unless the log says otherwise). */
  readonly weightBehaviour: string[]
}

const MIB = 1024 * 1024
const finiteOrNull = (x: number | null | undefined): number | null =>
  x === null || x === undefined || !Number.isFinite(x) ? null : x

/** Numeric order for uids ("2" before "10"), then by name. */
const byPeerId = (a: string, b: string) => {
  const na = Number(a)
  const nb = Number(b)
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb
  return a < b ? -1 : a > b ? 1 : 0
}

export const reportSeries = (log: RunLog): ReportSeries => {
  const ws = log.windows
  const peers = [...new Set(ws.flatMap((w) => Object.keys(w.peerLoss)))].sort(byPeerId)
  const phases = [...new Set(ws.flatMap((w) => Object.keys(w.phaseMs)))].sort((a, b) =>
    a === "compute" ? -1 : b === "compute" ? 1 : a < b ? -1 : a > b ? 1 : 0,
  )
  const weightPeers = [...new Set(ws.flatMap((w) => Object.keys(w.weights ?? {})))].sort(byPeerId)
  return {
    windows: ws.map((w) => w.window),
    peers,
    peerLoss: peers.map((p) => ws.map((w) => finiteOrNull(w.peerLoss[p]))),
    validatorLoss: ws.map((w) => finiteOrNull(w.validatorLoss)),
    mibUp: ws.map((w) => w.bytesUp / MIB),
    mibDown: ws.map((w) => w.bytesDown / MIB),
    peersGathered: ws.map((w) => w.peersGathered),
    peersExpected: ws.map((w) => w.peersExpected ?? null),
    outsideComputePct: ws.map((w) => {
      const active = w.roundMs - (w.phaseMs["wait"] ?? 0)
      return active > 0 ? (100 * Math.max(0, active - w.phaseMs.compute)) / active : null
    }),
    phases,
    phaseSeconds: phases.map((name) => ws.map((w) => finiteOrNull(w.phaseMs[name] === undefined ? null : w.phaseMs[name] / 1000))),
    weightPeers,
    peerWeight: weightPeers.map((p) => ws.map((w) => finiteOrNull(w.weights?.[p]))),
    weightBehaviour: weightPeers.map((p) => log.behaviours?.[p] ?? "honest"),
  }
}
