/**
 * serve-peer-page: serves the page that lets a browser tab join a running swarm as a peer.
 *
 *   bun packages/runtime/bin/serve-peer-page.ts [--preset debug | --run file.ts] --chain-dir <dir>
 *       [--data <dir>] [--port <n>] [--offer-keys]
 *
 * The run's store is the nodes' S3 store (S3_ENDPOINT, S3_REGION); --offer-keys fills the page's
 * form with S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY and S3_READ_* (a local run only: anyone who
 * loads the page sees them). Prints `peer page: <url>` once it serves. The logic lives in
 * src/browser/serve.ts; this is its command-line face.
 */
import { join, resolve } from "node:path"
import { Effect, Exit } from "effect"
import { readOwnerUrl } from "@covenant/chain"
import { covenant72b, debug, debugSubnet, loadRun } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { RuntimeError } from "../src/errors.ts"
import { prepareRunData } from "../src/swarm/data.ts"
import { scaleToMachine } from "../src/swarm/scale.ts"
import { servePeerPage } from "../src/browser/serve.ts"

const HELP = `serve-peer-page [flags]: serve the page a browser tab joins a run from (as a peer, on its WebGPU)
  --run <file.ts> | --preset scaled|debug|debug-subnet|covenant72b   the run (as the nodes were given it)
  --chain-dir <dir>   the local chain's folder (its owner.json names the URL the page's /chain/ proxies to)
  --data <dir>        where the run's shards are prepared (default .covenant/<run>/page-data)
  --port <n>          (default: any free port)   --host <addr> (default 127.0.0.1)
  --offer-keys        put the S3_* keys of this environment in the page's form (local runs only)
env: S3_ENDPOINT, S3_REGION (the store everyone's buckets are in)`

const flag = (argv: readonly string[], name: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}

const specOf = (argv: readonly string[]): Effect.Effect<RunSpec, RuntimeError> => {
  const file = flag(argv, "run")
  if (file !== undefined) return Effect.mapError(loadRun(resolve(file)), (e) => new RuntimeError({ phase: "run", reason: e.message }))
  const preset = flag(argv, "preset") ?? "scaled"
  const presets: Record<string, () => RunSpec> = { debug, "debug-subnet": debugSubnet, covenant72b, scaled: () => scaleToMachine(covenant72b(), { peers: 2, windows: 1000 }) }
  const make = presets[preset]
  return make === undefined ? Effect.fail(new RuntimeError({ phase: "run", reason: `unknown preset ${preset}` })) : Effect.sync(make)
}

const main = (argv: readonly string[]) =>
  Effect.gen(function* () {
    const spec = yield* specOf(argv)
    const endpoint = process.env["S3_ENDPOINT"]
    if (endpoint === undefined) return yield* new RuntimeError({ phase: "flags", reason: "S3_ENDPOINT is not set: the page joins a run whose nodes use --transport s3" })
    const chainDir = resolve(flag(argv, "chain-dir") ?? join(".covenant", spec.name, "chain"))
    const dataDir = yield* prepareRunData(spec, resolve(flag(argv, "data") ?? join(".covenant", spec.name, "page-data")))
    const env = (n: string) => process.env[n] ?? ""
    const url = yield* servePeerPage({
      spec,
      store: { endpoint, region: process.env["S3_REGION"] ?? "auto" },
      chainUrl: () => Effect.runPromise(readOwnerUrl(chainDir)),
      dataDir,
      ...(argv.includes("--offer-keys")
        ? { offerKeys: { write: { accessKeyId: env("S3_ACCESS_KEY_ID"), secretAccessKey: env("S3_SECRET_ACCESS_KEY") }, read: { accessKeyId: env("S3_READ_ACCESS_KEY_ID"), secretAccessKey: env("S3_READ_SECRET_ACCESS_KEY") } } }
        : {}),
      ...(flag(argv, "port") === undefined ? {} : { port: Number(flag(argv, "port")) }),
      ...(flag(argv, "host") === undefined ? {} : { hostname: flag(argv, "host")! }),
    })
    console.log(`peer page: ${url}`)
    return yield* Effect.never
  }).pipe(Effect.scoped)

if (import.meta.main) {
  const argv = process.argv.slice(2)
  if (argv.includes("--help") || argv.includes("-h")) console.log(HELP)
  else {
    const exit = await Effect.runPromiseExit(main(argv))
    if (Exit.isFailure(exit)) {
      console.error(String(exit.cause))
      process.exitCode = 1
    }
  }
}
