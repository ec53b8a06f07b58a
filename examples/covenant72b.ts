/**
 * Covenant-72B, declared with the DSL: the preset, with the R2 account (if given) naming the
 * store. The default export is the run; executed directly, the file hands it to the runtime's
 * command line (`runMain`), which trains it scaled to this machine as an in-process swarm.
 *
 *   bun run examples/covenant72b.ts                 # the scaled swarm: progress, summary, report
 *   bun run examples/covenant72b.ts --plan          # the full-size plan table
 *   bun run examples/covenant72b.ts --spec          # the full-size spec summary and plan
 *   bun run examples/covenant72b.ts --help          # every flag; `peer`, `validator`, ... run its nodes
 */
import { Effect } from "effect"
import { covenant72b, defineRun } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { runMain } from "@covenant/runtime"

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

if (import.meta.main) await runMain(run)
