/**
 * The entry point of the `covenant` command line and of every run.ts:
 *
 *   // packages/runtime/bin/covenant.ts
 *   runMain()
 *   // a run.ts
 *   export default run
 *   if (import.meta.main) runMain(run)
 *
 * Flag errors exit 2 (@effect/cli's, naming the flag, or a handler's `FlagError`: flags
 * that contradict each other); a run that fails exits 1 with `<phase>: <reason>` on stderr.
 */
import { ValidationError } from "@effect/cli"
import { BunContext } from "@effect/platform-bun"
import { Cause, Effect, Exit, Option } from "effect"
import { isRuntimeFailure } from "../errors.ts"
import { commandNames, covenantCli, rootFlags } from "./commands.ts"
import type { Run } from "./commands.ts"

export type { Run } from "./commands.ts"
export { covenantCli } from "./commands.ts"

/** @effect/cli's own flags, on every command. */
const builtIn = new Set(["-h", "--help", "--version", "--wizard", "--completions", "--log-level"])

/** Runs the CLI on `argv` (the arguments after the script); the exit code it would set. */
export const runCli = (argv: ReadonlyArray<string>, run?: Run): Promise<number> => {
  const cli = covenantCli(Option.fromNullable(run))
  return Effect.runPromiseExit(Effect.provide(cli(["bun", "covenant", ...argv]), BunContext.layer)).then((exit) => {
    if (Exit.isSuccess(exit)) return 0
    const failure = Cause.failureOption(exit.cause)
    // @effect/cli has printed its own (the flag, what it expected).
    if (Option.isSome(failure) && ValidationError.isValidationError(failure.value)) {
      // A bad flag before any command reads to @effect/cli as a bad command: name the flag too.
      if (ValidationError.isCommandMismatch(failure.value)) {
        const known = rootFlags(Option.fromNullable(run))
        const command = argv.findIndex((a) => (commandNames as ReadonlyArray<string>).includes(a))
        const beforeCommand = command < 0 ? argv : argv.slice(0, command)
        const unknown = beforeCommand.find((a) => a.startsWith("-") && !known.has(a.split("=")[0]!) && !builtIn.has(a))
        if (unknown !== undefined) console.error(`Received unknown argument: '${unknown}'`)
      }
      return 2
    }
    const flagsMisused = Option.isSome(failure) && isRuntimeFailure(failure.value) && failure.value._tag === "FlagError"
    console.error(Option.match(failure, {
      onNone: () => Cause.pretty(exit.cause),
      onSome: (e) => (isRuntimeFailure(e) ? e.message : String(e)),
    }))
    return flagsMisused ? 2 : 1
  })
}

/** `covenant ...` on this process's arguments, with `run` preselected when given; sets the exit code. */
export const runMain = (run?: Run): Promise<void> =>
  runCli(process.argv.slice(2), run).then((code) => {
    process.exitCode = code
  })
