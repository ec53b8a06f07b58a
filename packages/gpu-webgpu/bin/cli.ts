/** Small helpers the interop commands share: argument parsing and error reporting. */
import { Cause, Data, Effect, Exit } from "effect"

export class UsageError extends Data.TaggedError("UsageError")<{ readonly reason: string }> {
  /** the reason, so String(error) and error.message say what went wrong */
  override get message(): string {
    return this.reason
  }
}

export interface ParsedArgs {
  readonly positional: ReadonlyArray<string>
  readonly options: ReadonlyMap<string, string>
}

/** `--name value` options (from `allowed`) and positional arguments, in order. */
export const parseArgs = (argv: ReadonlyArray<string>, allowed: ReadonlyArray<string>): Effect.Effect<ParsedArgs, UsageError> =>
  Effect.suspend(() => {
    const positional: string[] = []
    const options = new Map<string, string>()
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i]!
      if (!arg.startsWith("--")) {
        positional.push(arg)
        continue
      }
      const name = arg.slice(2)
      if (!allowed.includes(name)) return Effect.fail(new UsageError({ reason: `unknown option ${arg}` }))
      const value = argv[i + 1]
      if (value === undefined) return Effect.fail(new UsageError({ reason: `option ${arg} needs a value` }))
      options.set(name, value)
      i++
    }
    return Effect.succeed({ positional, options })
  })

/** Runs a command's program; a failure prints its tag and reason to stderr and exits 1. */
export const runMain = <A, E>(usage: string, program: Effect.Effect<A, E>): void => {
  Effect.runPromiseExit(program).then((exit) => {
    if (Exit.isSuccess(exit)) return
    const failure = Cause.failureOption(exit.cause)
    if (failure._tag === "Some") {
      const e: unknown = failure.value
      const tag = typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : "Error"
      const detail = typeof e === "object" && e !== null && "message" in e ? String(e.message) : String(e)
      console.error(`${tag}: ${detail}`)
      if (tag === "UsageError") console.error(usage)
    } else {
      console.error(Cause.pretty(exit.cause))
    }
    process.exit(1)
  })
}
