/**
 * What a run records per window for its end-of-run report. The runtime fills it; `writeReport`
 * decodes it with this Schema, so a malformed log is a typed error rather than a broken page.
 */
import { Schema } from "effect"

const NonNegative = Schema.Number.pipe(Schema.nonNegative())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())

/** Milliseconds spent per phase of a round; `compute` (local training) is required, others are free-form (upload, gather, outerStep, ...). */
export const PhaseTimings = Schema.Struct(
  { compute: NonNegative },
  Schema.Record({ key: Schema.String, value: NonNegative }),
)
export type PhaseTimings = typeof PhaseTimings.Type

export const WindowRecord = Schema.Struct({
  window: NonNegativeInt,
  /** Mean training loss each peer reported for the window, by peer id (uid or name). NaN/Infinity are plotted as gaps. */
  peerLoss: Schema.Record({ key: Schema.String, value: Schema.Number }),
  /** Loss of the aggregated (validator) model after the window's outer step; null if not evaluated. */
  validatorLoss: Schema.NullOr(Schema.Number),
  /** Bytes this run uploaded / downloaded in the window (all peers together). */
  bytesUp: NonNegative,
  bytesDown: NonNegative,
  /** Peers whose updates were gathered and aggregated. */
  peersGathered: NonNegativeInt,
  /** Peers that were expected to deliver (the peer list), if known. */
  peersExpected: Schema.optional(NonNegativeInt),
  /** Wall-clock length of the round. */
  roundMs: NonNegative,
  phaseMs: PhaseTimings,
  /** Weights the validator set in this window, by peer id (absent: none set). */
  weights: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Number })),
})
export type WindowRecord = typeof WindowRecord.Type

export const RunLog = Schema.Struct({
  title: Schema.String,
  /** Free-form facts shown in the report's header table (model, peers, compression, start time...). */
  meta: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  /** Each peer's behaviour ("honest", an adversary's name or file), by peer id; colours the weights chart. */
  behaviours: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  windows: Schema.Array(WindowRecord),
}).pipe(
  Schema.filter((log) => {
    for (let i = 1; i < log.windows.length; i++) {
      if (log.windows[i].window <= log.windows[i - 1].window) {
        return `windows must be strictly increasing (window ${log.windows[i].window} follows ${log.windows[i - 1].window})`
      }
    }
    return true
  }),
)
export type RunLog = typeof RunLog.Type
