/**
 * Covenant-72B, declared with the DSL. The default export is the run (an Effect yielding the
 * validated spec), for `loadRun` and the runtime. Run directly, it trains: the Covenant-72B spec
 * scaled to this machine by a declared rule (`scaleToMachine`), as an in-process swarm of peers
 * and a validator over the real transport and a local chain, with progress, a summary and an
 * HTML report.
 *
 *   bun run examples/covenant72b.ts                 # the scaled swarm (about a minute on 2 cores)
 *   bun run examples/covenant72b.ts --plan          # the full-size plan table only
 *   bun run examples/covenant72b.ts --spec          # the full-size spec summary and plan
 *   bun run examples/covenant72b.ts --peers 4 --windows 16 --backend cpu|webgpu|auto --transport fs|s3 --chain local
 */
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Cause, Effect, Exit, Option, ParseResult, Schema } from "effect"
import { covenant72b, defineRun, formatBytes, formatPlan, formatSpecSummary, plan, type RunSpec } from "@covenant/dsl"
import { measureBackends, runLogOf, runSwarm, scaleToMachine, summarizeWindow, writeReport } from "@covenant/runtime"
import type { NodeEvent, SwarmTransport } from "@covenant/runtime"
import { LocalS3 } from "@covenant/transport/testing"
import { NO_ADAPTER_HELP } from "@covenant/gpu-webgpu"

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

const Flags = Schema.Struct({
  peers: Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 32)),
  windows: Schema.NumberFromString.pipe(Schema.int(), Schema.between(2, 1000)),
  backend: Schema.Literal("cpu", "webgpu", "auto"),
  transport: Schema.Literal("fs", "s3"),
  chain: Schema.String,
  dir: Schema.optional(Schema.String),
})

const usage = `usage: bun run examples/covenant72b.ts [flags]

  (no flags)             train Covenant-72B scaled to this machine: an in-process swarm of peers and a
                         validator over the filesystem transport and a local chain; progress, summary, report
  --plan                 print the full-size plan (parameters, bytes on the wire, tokens, memory) and exit
  --spec                 print the full-size spec summary and plan and exit
  --peers N              peers in the swarm (1-32, default 4)
  --windows N            windows to train (2-1000, default 16)
  --backend B            cpu | webgpu | auto (default auto: the faster on a measured step)
  --transport T          fs | s3 (s3 starts a local S3-compatible server) (default fs)
  --chain local          the swarm's chain (only local: it registers its own nodes)
  --dir PATH             work folder (default a fresh temporary folder)
  --help                 this text`

const valueFlags = new Set(["--peers", "--windows", "--backend", "--transport", "--chain", "--dir"])
const switchFlags = new Set(["--plan", "--spec", "--help", "-h"])

/** The first argument that is no known flag (or a value flag without its value), if any. */
const unknownArgument = (argv: readonly string[]): string | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (switchFlags.has(a)) continue
    if (valueFlags.has(a) && argv[i + 1] !== undefined) {
      i++
      continue
    }
    return a
  }
  return undefined
}

const flagValue = (argv: readonly string[], name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}

const pct = (x: number) => `${(100 * x).toFixed(1)} %`

const progressLine = (events: ReadonlyArray<NodeEvent>, window: number, start: number, total: number): string => {
  const s = summarizeWindow(events, window)
  if (s === undefined) return ""
  return [
    `window ${window} (round ${window - start + 1}/${total})`,
    `loss peers ${s.peerLoss.toFixed(3)} model ${s.validatorLoss?.toFixed(3) ?? "-"}`,
    `peers ${s.gathered}/${s.expected}`,
    `sent ${formatBytes(s.bytesUp)} recv ${formatBytes(s.bytesDown)}`,
    `outside compute ${pct(s.outsideCompute)} (idle ${pct(s.idle)})`,
    s.identical ? "models identical" : "MODELS DIFFER",
  ].join(" | ")
}

const swarm = (source: RunSpec, argv: readonly string[]) =>
  Effect.gen(function* () {
    const flags = yield* Schema.decodeUnknown(Flags)({
      peers: flagValue(argv, "peers") ?? "4",
      windows: flagValue(argv, "windows") ?? "16",
      backend: flagValue(argv, "backend") ?? "auto",
      transport: flagValue(argv, "transport") ?? "fs",
      chain: flagValue(argv, "chain") ?? "local",
      dir: flagValue(argv, "dir"),
    })
    if (flags.chain !== "local") {
      return yield* Effect.fail(`--chain ${flags.chain}: the in-process swarm registers its nodes itself, which only the local chain allows; run peers and validators with bin/covenant.ts against a subtensor endpoint`)
    }
    const spec = scaleToMachine(source, { peers: flags.peers, windows: flags.windows })
    const m = spec.model
    console.log(`Covenant-72B scaled to this machine (scaleToMachine):`)
    console.log(`  model    dim ${source.model.dim} -> ${m.dim}, layers ${source.model.nLayers} -> ${m.nLayers}, heads ${source.model.nHeads}/${source.model.nKvHeads} -> ${m.nHeads}/${m.nKvHeads}, ffn ${source.model.ffnDim} -> ${m.ffnDim}, vocab ${source.model.vocabSize} -> ${m.vocabSize} (bytes), seq ${source.model.seqLen} -> ${m.seqLen}`)
    console.log(`  inner    H ${source.innerOptimizer.innerSteps} -> ${spec.innerOptimizer.innerSteps}, batch ${source.innerOptimizer.batchSize} -> ${spec.innerOptimizer.batchSize}, lr ${source.innerOptimizer.lr} -> ${spec.innerOptimizer.lr.toPrecision(3)}`)
    console.log(`  protocol SparseLoCo unchanged (${JSON.stringify(spec.compression)}), window ${source.participation.blocksPerWindow} x ${source.participation.blockTimeMs} ms -> ${spec.participation.blocksPerWindow} x ${spec.participation.blockTimeMs} ms, upload ${source.participation.uploadWindowMs} -> ${spec.participation.uploadWindowMs} ms`)
    console.log(`  run      ${flags.peers} peers + 1 validator, ${flags.windows} windows`)
    let backend: "cpu" | "webgpu" = flags.backend === "auto" ? "cpu" : flags.backend
    if (flags.backend === "auto") {
      const choice = yield* measureBackends(m, spec.innerOptimizer.batchSize)
      backend = choice.backend
      console.log(`  backend  auto: cpu ${choice.cpuStepMs.toFixed(1)} ms/step, webgpu ${choice.webgpuStepMs === null ? "no adapter" : `${choice.webgpuStepMs.toFixed(1)} ms/step`} -> ${backend}`)
      if (choice.webgpuStepMs === null) console.log(`           (${NO_ADAPTER_HELP.replace(/ Set COVENANT_ALLOW_NO_GPU.*$/, "")})`)
    } else console.log(`  backend  ${backend}`)
    const workDir = flags.dir ?? mkdtempSync(join(tmpdir(), "covenant72b-scaled-"))
    let transport: SwarmTransport = { kind: "fs" }
    if (flags.transport === "s3") {
      // A real S3 server on loopback (s3rver); point S3_ENDPOINT etc. at R2 with bin/covenant.ts instead.
      const s3 = new LocalS3()
      yield* Effect.acquireRelease(Effect.promise(() => s3.start()), () => Effect.promise(() => s3.dispose()))
      transport = { kind: "s3", config: s3.config(), read: s3.readKeys() }
      console.log(`  store    s3rver at ${s3.config().endpoint}`)
    }
    console.log(`  work dir ${workDir}\n`)
    const began = Date.now()
    let start = -1
    const seen = new Set<number>()
    const events: NodeEvent[] = []
    // Live phase of every node on one status line (terminals only), e.g. "peer-0 w5 train | validator-0 w4 gather".
    const phases = new Map<string, string>()
    const tty = process.stdout.isTTY === true
    const onEvent = (e: NodeEvent) => {
      events.push(e)
      if (tty && e._tag === "Phase") {
        phases.set(e.name, `w${e.window} ${e.phase}`)
        process.stdout.write(`\r\x1b[2K${[...phases].map(([n, p]) => `${n} ${p}`).join(" | ")}`)
      }
      if (tty && e._tag !== "Phase") process.stdout.write("\r\x1b[2K")
      if (e._tag === "Joined") console.log(`  ${e.name} joined as uid ${e.uid}${e.resumedAt === null ? "" : ` (resumed at window ${e.resumedAt})`}`)
      // A window is printed once the validator has finished the next one: by then every peer reported it.
      if (e._tag === "Round" && e.role === "validator" && !seen.has(e.window)) {
        seen.add(e.window)
        if (start < 0) start = e.window
        if (seen.has(e.window - 1)) console.log(progressLine(events, e.window - 1, start, flags.windows))
      }
    }
    const result = yield* runSwarm({ spec, peers: flags.peers, rounds: flags.windows, workDir, transport, backend, onEvent })
    console.log(progressLine(result.events, Math.max(...seen), start, flags.windows))
    const windows = [...seen].sort((a, b) => a - b)
    const summaries = windows.flatMap((w) => {
      const s = summarizeWindow(result.events, w)
      return s === undefined ? [] : [s]
    })
    const first = summaries[0]!
    const last = summaries[summaries.length - 1]!
    const up = summaries.reduce((n, s) => n + s.bytesUp, 0)
    const params = plan(spec).parameters
    const dense = 4 * params * flags.peers * summaries.length
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
    console.log(`\nSummary: ${summaries.length} windows (${windows[0]}..${windows[windows.length - 1]}) in ${((Date.now() - began) / 1000).toFixed(1)} s on ${backend}`)
    console.log(`  model loss ${first.validatorLoss?.toFixed(3)} -> ${last.validatorLoss?.toFixed(3)}; peers' training loss ${first.peerLoss.toFixed(3)} -> ${last.peerLoss.toFixed(3)}`)
    console.log(`  updates sent ${formatBytes(up)} (${formatBytes(dense)} as fp32 pseudo-gradients: ${(dense / Math.max(1, up)).toFixed(1)}x smaller)`)
    console.log(`  share of active round time outside compute ${pct(mean(summaries.map((s) => s.outsideCompute)))}; idle waiting for window boundaries ${pct(mean(summaries.map((s) => s.idle)))} of each round`)
    console.log(`  every node bitwise identical after every outer step: ${summaries.every((s) => s.identical) ? "yes" : "NO"}`)
    const reportPath = join(workDir, "report.html")
    yield* writeReport(reportPath, runLogOf("Covenant-72B, scaled swarm", result.events, {
      model: `${params.toLocaleString("en-US")} parameters (dim ${m.dim}, ${m.nLayers} layers)`,
      peers: String(flags.peers),
      compression: JSON.stringify(spec.compression),
      backend,
      transport: flags.transport,
    }))
    console.log(`  report ${reportPath}`)
  }).pipe(Effect.scoped)

if (import.meta.main) {
  const argv = process.argv.slice(2)
  const unknown = unknownArgument(argv)
  if (argv.includes("--help") || argv.includes("-h") || unknown !== undefined) {
    if (unknown !== undefined) console.error(`unknown or incomplete argument: ${unknown}\n`)
    console.log(usage)
    process.exit(unknown === undefined ? 0 : 2)
  }
  const exit = await Effect.runPromiseExit(
    Effect.flatMap(run, (spec) => {
      if (argv.includes("--plan")) return Effect.sync(() => console.log(formatPlan(plan(spec))))
      if (argv.includes("--spec")) return Effect.sync(() => console.log(`${formatSpecSummary(spec)}\n\n${formatPlan(plan(spec))}`))
      return swarm(spec, argv)
    }),
  )
  if (Exit.isFailure(exit)) {
    const failure = Cause.failureOption(exit.cause)
    const message = Option.match(failure, {
      onNone: () => Cause.pretty(exit.cause),
      onSome: (e) => (typeof e === "string" ? e : ParseResult.isParseError(e) ? ParseResult.TreeFormatter.formatErrorSync(e) : "message" in e ? String(e.message) : JSON.stringify(e)),
    })
    console.error(message)
    process.exitCode = 1
  }
}
