/** The boundary: unknown input in, a RunSpec or a RunSpecError of `path: message` lines out. */
import { Effect, ParseResult, Schema } from "effect"
import { RunSpecError, type RunSpecIssue } from "./errors.ts"
import { formatPath } from "./fields.ts"
import { RunSpec } from "./runSpec.ts"

// Collect every issue, and treat unknown keys as errors: a misspelt field must not silently vanish.
const options = { errors: "all", onExcessProperty: "error" } as const

/** Turns Schema's ParseError into one `{ path, message }` per failing field. */
export const formatParseError = (error: ParseResult.ParseError): ReadonlyArray<RunSpecIssue> =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => ({
    path: formatPath(issue.path),
    // Schema's own messages ("Expected X, actual Y", "is missing") are rephrased like ours.
    message: issue.message
      .replace(/^Expected (.*), actual (.*)$/s, "expected $1, got $2")
      .replace(/^is missing$/, "expected a value, got nothing")
      .replace(/^is unexpected, expected: (.*)$/s, "expected no such field (known: $1)"),
  }))

export const decodeRunSpec = (input: unknown): Effect.Effect<RunSpec, RunSpecError> =>
  Schema.decodeUnknown(RunSpec, options)(input).pipe(
    Effect.mapError((error) => new RunSpecError({ issues: formatParseError(error) })),
  )

export const encodeRunSpec = (spec: RunSpec): Effect.Effect<typeof RunSpec.Encoded, RunSpecError> =>
  Schema.encode(RunSpec, options)(spec).pipe(Effect.mapError((error) => new RunSpecError({ issues: formatParseError(error) })))
