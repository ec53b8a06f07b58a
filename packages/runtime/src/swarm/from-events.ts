/** What the swarm derives from its nodes' events: the report's RunLog (report/run-log.ts) and the per-window progress figures. */
import type { RunLog } from "../report/run-log.ts"
import type { NodeEvent } from "../node/node.ts"

type Round = Extract<NodeEvent, { _tag: "Round" }>

export interface WindowSummary {
  readonly window: number
  readonly peerLoss: number
  readonly validatorLoss: number | null
  readonly gathered: number
  readonly expected: number
  /** Peers that trained this window: more than `expected` when the peer list left some out. */
  readonly training: number
  /** Updates the validator rejected at the boundary (admission.ts). */
  readonly rejected: number
  readonly bytesUp: number
  readonly bytesDown: number
  /** Share of the peers' active round time (everything but idling for the window boundary) spent outside compute. */
  readonly outsideCompute: number
  /** Share of the peers' round time spent idle, waiting for the window boundary. */
  readonly idle: number
  /** Every node that finished this window holds the validator's parameters. */
  readonly identical: boolean
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length)

export const summarizeWindow = (events: ReadonlyArray<NodeEvent>, window: number): WindowSummary | undefined => {
  const rounds = events.filter((e): e is Round => e._tag === "Round" && e.window === window)
  const v = rounds.find((e) => e.role === "validator")
  if (v === undefined) return undefined
  const peers = rounds.filter((e) => e.role === "peer")
  const active = (e: Round) => e.roundMs - (e.phaseMs["wait"] ?? 0)
  const outside = peers.map((e) => (active(e) - e.phaseMs.compute) / Math.max(1, active(e)))
  return {
    window,
    peerLoss: mean(peers.map((e) => e.loss ?? Number.NaN)),
    validatorLoss: v.loss,
    gathered: v.gathered.length,
    expected: v.expected.length,
    training: peers.length,
    rejected: v.rejected.length,
    bytesUp: peers.reduce((n, e) => n + e.bytesUp, 0),
    bytesDown: rounds.reduce((n, e) => n + e.bytesDown, 0),
    outsideCompute: mean(outside),
    idle: mean(peers.map((e) => (e.phaseMs["wait"] ?? 0) / Math.max(1, e.roundMs))),
    identical: rounds.every((e) => e.digest === v.digest),
  }
}

/**
 * The report's log: per window, each peer's loss, the validator's loss, bytes, peers and phase
 * times (mean over peers), and the weights the validator set in that window, by peer name.
 * `behaviours` (peer name -> label, others "honest") is given when peers ran behaviours.
 */
export const runLogOf = (title: string, events: ReadonlyArray<NodeEvent>, meta: Record<string, string>, behaviours?: Readonly<Record<string, string>>): RunLog => {
  const windows = [...new Set(events.flatMap((e) => (e._tag === "Round" && e.role === "validator" ? [e.window] : [])))].sort((a, b) => a - b)
  const names = new Map(events.flatMap((e) => (e._tag === "Joined" && e.role === "peer" ? [[e.uid, e.name] as const] : [])))
  const weightsAt = new Map(events.flatMap((e) => (e._tag === "Weights" ? [[e.window, e.weights] as const] : [])))
  return {
    title,
    meta,
    ...(behaviours === undefined ? {} : { behaviours: Object.fromEntries([...names.values()].sort().map((n) => [n, behaviours[n] ?? "honest"])) }),
    windows: windows.map((w) => {
      const set = weightsAt.get(w)
      const weights = set === undefined ? {} : { weights: Object.fromEntries(set.map((x) => [names.get(x.uid) ?? String(x.uid), x.weight])) }
      const rounds = events.filter((e): e is Round => e._tag === "Round" && e.window === w)
      const v = rounds.find((e) => e.role === "validator")!
      const peers = rounds.filter((e) => e.role === "peer")
      const phases = new Set(peers.flatMap((e) => Object.keys(e.phaseMs)))
      const phaseMs: Record<string, number> = {}
      for (const k of phases) phaseMs[k] = Math.max(0, mean(peers.map((e) => e.phaseMs[k] ?? 0)))
      return {
        window: w,
        peerLoss: Object.fromEntries(peers.map((e) => [e.name, e.loss ?? Number.NaN])),
        validatorLoss: v.loss,
        bytesUp: peers.reduce((n, e) => n + e.bytesUp, 0),
        bytesDown: rounds.reduce((n, e) => n + e.bytesDown, 0),
        peersGathered: v.gathered.length,
        peersExpected: v.expected.length,
        roundMs: peers.length === 0 ? v.roundMs : mean(peers.map((e) => e.roundMs)),
        phaseMs: { ...phaseMs, compute: peers.length === 0 ? 0 : Math.max(0, phaseMs["compute"] ?? 0) },
        ...weights,
      }
    }),
  }
}
