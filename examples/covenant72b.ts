/**
 * Covenant-72B, declared with the DSL. The default export is the run (an Effect yielding the
 * validated spec), for `loadRun` and the runtime; run directly it prints the spec and its plan:
 *
 *   bun run examples/covenant72b.ts          # spec summary + plan
 *   bun run examples/covenant72b.ts --plan   # plan table only
 */
import { Cause, Effect, Exit, Option } from "effect"
import { covenant72b, defineRun, formatPlan, formatSpecSummary, plan, type RunSpec } from "@covenant/dsl"

/** The Cloudflare R2 account id names both the endpoint and (in the reference) the bucket. */
const withR2Account = (spec: RunSpec, accountId: string | undefined): RunSpec => {
  const transport = spec.infrastructure.transport
  if (accountId === undefined || accountId === "" || transport.kind !== "s3") return spec
  return {
    ...spec,
    infrastructure: {
      ...spec.infrastructure,
      transport: { ...transport, endpoint: `https://${accountId}.r2.cloudflarestorage.com`, bucket: accountId },
    },
  }
}

const run = defineRun((args) => Effect.succeed(withR2Account(covenant72b(), args.env["R2_ACCOUNT_ID"])))

export default run

if (import.meta.main) {
  const exit = await Effect.runPromiseExit(run)
  if (Exit.isSuccess(exit)) {
    const spec = exit.value
    if (!process.argv.includes("--plan")) console.log(`${formatSpecSummary(spec)}\n`)
    console.log(formatPlan(plan(spec)))
  } else {
    const failure = Cause.failureOption(exit.cause)
    console.error(Option.isSome(failure) ? `invalid run spec:\n${failure.value.message}` : Cause.pretty(exit.cause))
    process.exitCode = 1
  }
}
