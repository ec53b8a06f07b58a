/**
 * The swarm's machine-readable outcome (`covenant swarm --summary file.json`): who ran which
 * behaviour, and per window the model's eval loss, whose updates were aggregated, who was
 * rejected and why, whom the validator's judging flagged, and the weights in force. Built from the nodes' events only.
 */
import { writeFile } from "node:fs/promises"
import { Effect, Schema } from "effect"
import { RuntimeError, type RuntimeFailure } from "../errors.ts"
import { describeRejection } from "../node/admission.ts"
import type { NodeEvent } from "../node/node.ts"

type Round = Extract<NodeEvent, { _tag: "Round" }>

const Uid = Schema.Int.pipe(Schema.between(0, 65535))

/** One rejected update as the summary writes it: the typed reason, described in one line. */
export const SummaryRejection = Schema.Struct({ uid: Uid, reason: Schema.String })
export type SummaryRejection = typeof SummaryRejection.Type

export const SwarmSummary = Schema.Struct({
  peers: Schema.Array(Schema.Struct({
    uid: Uid,
    name: Schema.String,
    /** "honest", a catalogue name, or the behaviour file's path as given. */
    behaviour: Schema.String,
  })),
  windows: Schema.Array(Schema.Struct({
    window: Schema.Int.pipe(Schema.nonNegative()),
    /** The validator's held-out loss after the window's outer step (null: not evaluated or not finite). */
    evalLoss: Schema.NullOr(Schema.Number),
    /** Uids whose updates went into the window's aggregate. */
    aggregated: Schema.Array(Uid),
    /** Listed uids left out, with the validator's reason (or "not aggregated" when it gave none). */
    rejected: Schema.Array(SummaryRejection),
    /** Delivered updates the validator's judging flagged after the step ("copy", "norm outlier"): they cost the peer its pay and its place on the list. */
    flagged: Schema.Array(SummaryRejection),
    /** The weights the validator last set at or before this window, by uid ({} before the first). */
    weights: Schema.Record({ key: Schema.String, value: Schema.Number }),
  })),
})
export type SwarmSummary = typeof SwarmSummary.Type

/** The validator's typed rejections of a window, one line each. */
const reportedRejections = (e: Round): ReadonlyArray<SummaryRejection> => e.rejected.map((r) => ({ uid: r.uid, reason: describeRejection(r.reason) }))

/**
 * The summary of a swarm's events. `behaviours`: node name (peer-3) -> behaviour label; peers
 * not named are "honest". The first validator's rounds are the reference.
 */
export const swarmSummary = (events: ReadonlyArray<NodeEvent>, behaviours: Readonly<Record<string, string>> = {}): SwarmSummary => {
  const peers = new Map<string, number>()
  for (const e of events) if (e._tag === "Joined" && e.role === "peer") peers.set(e.name, e.uid)
  const validator = events.find((e) => e._tag === "Joined" && e.role === "validator")?.name
  const rounds = events.filter((e): e is Round => e._tag === "Round" && e.role === "validator" && e.name === validator).sort((a, b) => a.window - b.window)
  const weightEvents = events.flatMap((e) => (e._tag === "Weights" && e.name === validator ? [e] : [])).sort((a, b) => a.window - b.window)
  const judged = new Map(events.flatMap((e) => (e._tag === "Judged" && e.name === validator ? [[e.window, e] as const] : [])))
  return {
    peers: [...peers].map(([name, uid]) => ({ uid, name, behaviour: behaviours[name] ?? "honest" })).sort((a, b) => a.uid - b.uid),
    windows: rounds.map((r) => {
      const reported = reportedRejections(r)
      const explained = new Set(reported.map((x) => x.uid))
      const aggregated = new Set(r.gathered)
      const unexplained = r.expected.filter((u) => !aggregated.has(u) && !explained.has(u)).map((uid) => ({ uid, reason: "not aggregated" }))
      const set = weightEvents.filter((w) => w.window <= r.window).at(-1)
      return {
        window: r.window,
        evalLoss: r.loss !== null && Number.isFinite(r.loss) ? r.loss : null,
        aggregated: [...r.gathered].sort((a, b) => a - b),
        rejected: [...reported, ...unexplained].sort((a, b) => a.uid - b.uid),
        flagged: [
          ...(judged.get(r.window)?.copies ?? []).map((uid) => ({ uid, reason: "copy" })),
          ...(judged.get(r.window)?.outliers ?? []).map((uid) => ({ uid, reason: "norm outlier" })),
        ].sort((a, b) => a.uid - b.uid),
        weights: Object.fromEntries((set?.weights ?? []).map((w) => [String(w.uid), w.weight])),
      }
    }),
  }
}

/** Writes the summary as JSON (encoded through its Schema). */
export const writeSwarmSummary = (path: string, summary: SwarmSummary): Effect.Effect<void, RuntimeFailure> =>
  Effect.gen(function* () {
    const encoded = yield* Effect.mapError(Schema.encode(SwarmSummary)(summary), (e) => new RuntimeError({ phase: "summary", reason: e.message }))
    yield* Effect.tryPromise({
      try: () => writeFile(path, JSON.stringify(encoded, null, 2) + "\n", "utf-8"),
      catch: (e) => new RuntimeError({ phase: "summary", reason: `cannot write ${path}: ${String(e)}` }),
    })
  })
