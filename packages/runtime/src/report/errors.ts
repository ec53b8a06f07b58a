import { Data } from "effect"

/** The run log did not decode, the chart library could not be read, or the file could not be written. */
export class ReportError extends Data.TaggedError("ReportError")<{
  readonly reason: string
}> {}
