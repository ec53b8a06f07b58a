/** run.ts modules: a default export that is an Effect yielding the decoded spec, and their loader. */
import { Cause, Context, Effect, Exit, Option } from "effect"
import { isAbsolute, resolve } from "node:path"
import { pathToFileURL } from "node:url"
import { decodeRunSpec } from "./decode.ts"
import { RunLoadError, RunSpecError } from "./errors.ts"
import type { RunSpec, RunSpecInput } from "./runSpec.ts"

/** What a run.ts may look at before it settles its spec. */
export interface RunArgs {
  /** Command-line arguments after the script name. */
  readonly argv: ReadonlyArray<string>
  readonly env: Readonly<Record<string, string | undefined>>
}

/** Provide it to choose the arguments a run sees; without it, the process's own are used. */
export class RunArgsTag extends Context.Tag("@covenant/dsl/RunArgs")<RunArgsTag, RunArgs>() {}

const processArgs = (): RunArgs => ({ argv: process.argv.slice(2), env: process.env })

/**
 * Declares a run: `export default defineRun((args) => Effect.succeed({ ...covenant72b(), seed: 7 }))`.
 * The result is decoded; a spec that breaks a rule fails with RunSpecError.
 */
export const defineRun = <E, R>(
  build: (args: RunArgs) => Effect.Effect<RunSpecInput, E, R>,
): Effect.Effect<RunSpec, E | RunSpecError, R> =>
  Effect.serviceOption(RunArgsTag).pipe(
    Effect.map(Option.getOrElse(processArgs)),
    Effect.flatMap(build),
    Effect.flatMap(decodeRunSpec),
  )

/** Imports a run.ts and runs its default export with `args` (default: this process's). */
export const loadRun = (path: string, args?: RunArgs): Effect.Effect<RunSpec, RunSpecError | RunLoadError> => {
  const file = isAbsolute(path) ? path : resolve(process.cwd(), path)
  const fail = (reason: string, cause?: unknown) => new RunLoadError({ path: file, reason, cause })
  return Effect.tryPromise({
    try: (): Promise<Record<string, unknown>> => import(pathToFileURL(file).href),
    catch: (cause) => fail(`cannot import: ${cause instanceof Error ? cause.message : String(cause)}`, cause),
  }).pipe(
    Effect.flatMap((module): Effect.Effect<Exit.Exit<unknown, unknown>, RunLoadError> => {
      const run = module["default"]
      if (!Effect.isEffect(run)) return Effect.fail(fail("the default export is not an Effect (use defineRun)"))
      // A dynamic import cannot carry the module's static types; the exit is inspected and its
      // value decoded again below, so nothing unchecked escapes.
      const effect = run as Effect.Effect<unknown, unknown, RunArgsTag>
      return Effect.exit(Effect.provideService(effect, RunArgsTag, args ?? processArgs()))
    }),
    Effect.flatMap((exit): Effect.Effect<RunSpec, RunSpecError | RunLoadError> => {
      if (Exit.isSuccess(exit)) return decodeRunSpec(exit.value)
      const failure = Cause.failureOption(exit.cause)
      if (Option.isSome(failure) && failure.value instanceof RunSpecError) return Effect.fail(failure.value)
      return Effect.fail(fail(`the run's Effect failed: ${Cause.pretty(exit.cause)}`, Cause.squash(exit.cause)))
    }),
  )
}
