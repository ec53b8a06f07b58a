/**
 * The `covenant` commands: swarm, peer, validator, plan, prepare, chain, serve-peer-page. Each lists its flags
 * (flags.ts, where each is documented) and hands them to its handler. `covenantCommand(run)`
 * builds the whole tree; with a run preselected (a run.ts handing itself to `runMain`), the run
 * flags (--run, --preset) are not offered and the bare command runs that run's swarm.
 */
import { mkdtempSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { Args, Command, Options } from "@effect/cli"
import { Effect, Layer, Option } from "effect"
import { Chain, identityFromSecret, layerLocal, layerLocalClient, layerSubtensor, measureBlockTimeMs, readOwnerUrl } from "@covenant/chain"
import type { CommitmentLocation, LocalChain } from "@covenant/chain"
import { covenant72b, debug, debugSubnet, formatBytes, formatPlan, formatSpecSummary, loadRun, plan as planOf } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { NO_ADAPTER_HELP } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import { layerFileSystem, layerS3, makeS3Transport } from "@covenant/transport"
import type { BucketLocation, S3TransportConfig, Transport } from "@covenant/transport"
import { FlagError, RuntimeError, type RuntimeFailure, inPhase, isRuntimeFailure } from "../errors.ts"
import { runAddress } from "../node/network.ts"
import { s3Commitment } from "../node/credentials.ts"
import { describeRejection } from "../node/admission.ts"
import { describeMissing } from "../node/rejections.ts"
import { StopRule } from "../node/stop.ts"
import type { NodeConfig, NodeEvent } from "../node/node.ts"
import { runPeer } from "../node/peer.ts"
import { layerGauntlet } from "../node/scoring.ts"
import type { Scoring } from "../node/scoring.ts"
import { ensureValidatorPermit, runValidator } from "../node/validator.ts"
import { dataS3ConfigFromEnv, openRunData, prepareRunData } from "../swarm/data.ts"
import { servePeerPage } from "../browser/serve.ts"
import { scaleToMachine } from "../swarm/scale.ts"
import { dataCheckOn } from "../scoring/data-check.ts"
import { runSwarm } from "../swarm/swarm.ts"
import type { SwarmTransport } from "../swarm/swarm.ts"
import { engineLayerOf, measureBackends } from "../swarm/backend.ts"
import type { EngineBackend } from "../swarm/backend.ts"
import { runLogOf, summarizeWindow } from "../swarm/from-events.ts"
import { runTimingFor } from "../timing.ts"
import { writeReport } from "../report/write.ts"
import { swarmSummary, writeSwarmSummary } from "../swarm/summary.ts"
import { assignAdversaries } from "../adversary/assign.ts"
import { DataIoError } from "../data/errors.ts"
import { isObjectStoreUri, parseShardUri, transportSink } from "../data/objects.ts"
import type { ShardSink } from "../data/objects.ts"
import { byteTokenizer, loadHfTokenizer } from "../data/tokenizer.ts"
import { prepareShards } from "../data/prepare.ts"
import { printMetagraph } from "./metagraph.ts"
import * as F from "./flags.ts"

/** A run: what `defineRun` returns (an Effect yielding the validated spec). */
export type Run = Effect.Effect<RunSpec, unknown>

const describeFailure = (e: unknown): string =>
  typeof e === "string" ? e : typeof e === "object" && e !== null && "message" in e && typeof e.message === "string" && e.message !== "" ? e.message : JSON.stringify(e)

const presetSpec = (preset: F.Preset): RunSpec => {
  switch (preset) {
    case "debug": return debug()
    case "debug-subnet": return debugSubnet()
    case "covenant72b": return covenant72b()
    case "scaled": return scaleToMachine(covenant72b(), { peers: 2, windows: 1000 })
  }
}

/** The run a command works on: the preselected one, else --run, else --preset. */
const runOption = (preselected: Option.Option<Run>): Options.Options<Effect.Effect<RunSpec, RuntimeFailure>> =>
  Option.match(preselected, {
    onSome: (run) => Options.none.pipe(Options.map(() => Effect.mapError(run, (e) => new RuntimeError({ phase: "run", reason: describeFailure(e) })))),
    onNone: () =>
      Options.all({ run: F.run, preset: F.preset }).pipe(Options.map(({ preset, run }) =>
        Option.match(run, {
          onSome: (file) => Effect.mapError(loadRun(resolve(file)), (e) => new RuntimeError({ phase: "run", reason: e.message })),
          onNone: () => Effect.succeed(presetSpec(preset)),
        }))),
  })

const env = (name: string) => Effect.fromNullable(process.env[name]).pipe(Effect.mapError(() => new RuntimeError({ phase: "s3", reason: `${name} is not set` })))

/** `--bucket-cors`: the read-only rule a node (or prepare) gives the bucket it makes, unless it has one (or "none"). */
const readCors = (origin: string): Pick<S3TransportConfig, "bucketCors"> =>
  origin.trim() === "none" ? {} : { bucketCors: { origins: [origin.trim()], write: false, mode: "ifAbsent" } }

const s3Config = (bucketCors: string): Effect.Effect<S3TransportConfig, RuntimeFailure> => Effect.gen(function* () {
  return {
    ...readCors(bucketCors),
    endpoint: yield* env("S3_ENDPOINT"),
    region: process.env["S3_REGION"] ?? "auto",
    forcePathStyle: true,
    accessKeyId: yield* env("S3_ACCESS_KEY_ID"),
    secretAccessKey: yield* env("S3_SECRET_ACCESS_KEY"),
  }
})

/** A node's events, one line each. */
const logEvent = (e: NodeEvent) => {
  if (e._tag === "Round") {
    const phases = Object.entries(e.phaseMs).map(([k, v]) => `${k} ${Math.round(v)}ms`).join(", ")
    // Every expected peer not aggregated, with why (late/early by how much, invalid, absent): an empty gather is never unexplained.
    const missing = e.missing === undefined
      ? (e.rejected.length === 0 ? "" : `, rejected [${e.rejected.map((r) => `${r.uid}: ${describeRejection(r.reason)}`).join("; ")}]`)
      : e.expected.length === 0 ? ", no peers listed for this window" : e.missing.length === 0 ? "" : `, missing [${describeMissing(e.missing)}]`
    console.log(`[${e.name}] window ${e.window}: loss ${e.loss?.toFixed(4) ?? "-"}, gathered [${e.gathered.join(",")}] of [${e.expected.join(",")}]${missing}${e.stepped ? "" : ", NOT stepped (every tensor)"}, sent ${e.bytesUp} B, received ${e.bytesDown} B, model ${e.digest.slice(0, 12)} (${phases})`)
  } else if (e._tag === "Joined") console.log(`[${e.name}] ${e.role} uid ${e.uid}${e.resumedAt === null ? "" : `, resumed at window ${e.resumedAt}`}`)
  else if (e._tag === "Diverged") console.log(`[${e.name}] DIVERGED after window ${e.window}: model ${e.digest.slice(0, 12)}, leader's ${e.leaderDigest.slice(0, 12)}; re-synced to window ${e.resyncedTo}${e.matches === null ? "" : e.matches ? " (now the leader's)" : " (STILL DIFFERENT)"}`)
  else if (e._tag === "Notice") console.log(`[${e.name}] ${e.message}`)
  else if (e._tag === "CaughtUp") console.log(`[${e.name}] caught up windows ${e.from}..${e.to}, distance to the leader's debug values ${e.debugDistance ?? "unknown"}`)
  else if (e._tag === "Judged") {
    const flags = [...e.invalid.map((u) => `${u} invalid`), ...e.copies.map((u) => `${u} copy`), ...e.outliers.map((u) => `${u} norm outlier`)]
    const checks = e.dataChecks.length === 0 ? "" : `, data check z ${e.dataChecks.map((c) => `${c.uid}:${c.z.toFixed(2)}`).join(" ")}`
    console.log(`[${e.name}] judged window ${e.window}: evaluated [${e.evaluated.join(",")}], scores ${e.scores.map((s) => `${s.uid}:${s.score.toPrecision(3)}`).join(" ")}${flags.length > 0 ? `, ${flags.join(", ")}` : ""}${checks}`)
  } else if (e._tag === "Weights") console.log(`[${e.name}] weights after window ${e.window}: ${e.weights.map((w) => `${w.uid}:${w.weight.toFixed(3)}`).join(" ") || "none"}`)
}

// ---- plan ----

const printPlan = (spec: RunSpec, withSpec: boolean) =>
  Effect.sync(() => console.log(withSpec ? `${formatSpecSummary(spec)}\n\n${formatPlan(planOf(spec))}` : formatPlan(planOf(spec))))

const planCommand = (preselected: Option.Option<Run>) =>
  Command.make("plan", { run: runOption(preselected), spec: F.spec }, (o) => Effect.flatMap(o.run, (spec) => printPlan(spec, o.spec))).pipe(
    Command.withDescription("print the run's plan table (with --spec, its spec summary first)"),
  )

// ---- swarm ----

const swarmOptions = {
  peers: F.peers,
  windows: F.swarmWindows,
  backend: F.swarmBackend,
  transport: F.transport,
  chain: F.chain,
  dir: F.dir,
  adversary: F.adversary,
  scoring: F.scoring,
  dataCheck: F.dataCheck,
  clock: F.clock,
  summary: F.summary,
  report: F.report,
}
/** What an option record parses to. */
type Values<O> = { readonly [K in keyof O]: O[K] extends Options.Options<infer A> ? A : never }
type SwarmFlags = Values<typeof swarmOptions>

const pct = (x: number) => `${(100 * x).toFixed(1)} %`

const progressLine = (events: ReadonlyArray<NodeEvent>, window: number, start: number, total: number): string => {
  const s = summarizeWindow(events, window)
  if (s === undefined) return ""
  return [
    `window ${window} (round ${window - start + 1}/${total})`,
    `loss peers ${s.peerLoss.toFixed(3)} model ${s.validatorLoss?.toFixed(3) ?? "-"}`,
    `peers ${s.gathered}/${s.expected}${s.expected < s.training ? ` listed of ${s.training} training` : ""}${s.rejected > 0 ? ` (${s.rejected} rejected)` : ""}`,
    `sent ${formatBytes(s.bytesUp)} recv ${formatBytes(s.bytesDown)}`,
    `outside compute ${pct(s.outsideCompute)} (idle ${pct(s.idle)})`,
    s.identical ? "models identical" : "MODELS DIFFER",
  ].join(" | ")
}

/** The spec with its data check as `--data-check` says: on checks every peer every window against 16 random batches. */
const withDataCheck = (spec: RunSpec, flag: "spec" | "on" | "off", peers: number): RunSpec => {
  if (flag === "spec") return spec
  const scoring = spec.participation.scoring
  const dataCheck = flag === "off" ? { ...scoring.dataCheck, randomBatches: 0 } : { ...scoring.dataCheck, randomBatches: 16, peersPerWindow: Math.max(peers, scoring.dataCheck.peersPerWindow) }
  return { ...spec, participation: { ...spec.participation, scoring: { ...scoring, dataCheck } } }
}

/** Peers and a validator in this process over the local chain: progress per window, a summary and a report. */
const swarm = (source: RunSpec, flags: SwarmFlags) =>
  Effect.gen(function* () {
    if (flags.chain !== "local") {
      return yield* new FlagError({ reason: `--chain ${flags.chain}: the in-process swarm registers its nodes itself, which only the local chain allows; run peers and validators (covenant peer | validator) against a subtensor endpoint` })
    }
    const adversaries = yield* assignAdversaries(flags.adversary, flags.peers)
    // A small run on the local chain runs as declared; any other is scaled to this machine by a declared rule.
    const scaled = !(source.infrastructure.chain.kind === "local" && source.model.dim <= 256)
    const spec = withDataCheck(scaled ? scaleToMachine(source, { peers: flags.peers, windows: flags.windows }) : source, flags.dataCheck, flags.peers)
    const m = spec.model
    if (scaled) {
      console.log(`${source.name} scaled to this machine (scaleToMachine):`)
      console.log(`  model    dim ${source.model.dim} -> ${m.dim}, layers ${source.model.nLayers} -> ${m.nLayers}, heads ${source.model.nHeads}/${source.model.nKvHeads} -> ${m.nHeads}/${m.nKvHeads}, ffn ${source.model.ffnDim} -> ${m.ffnDim}, vocab ${source.model.vocabSize} -> ${m.vocabSize} (bytes), seq ${source.model.seqLen} -> ${m.seqLen}`)
      console.log(`  inner    H ${source.innerOptimizer.innerSteps} -> ${spec.innerOptimizer.innerSteps}, batch ${source.innerOptimizer.batchSize} -> ${spec.innerOptimizer.batchSize}, lr ${source.innerOptimizer.lr} -> ${spec.innerOptimizer.lr.toPrecision(3)}`)
      console.log(`  protocol SparseLoCo unchanged (${JSON.stringify(spec.compression)}), window ${source.participation.blocksPerWindow} x ${source.participation.blockTimeMs} ms -> ${spec.participation.blocksPerWindow} x ${spec.participation.blockTimeMs} ms, upload ${source.participation.uploadWindowMs} -> ${spec.participation.uploadWindowMs} ms`)
    } else {
      console.log(`${spec.name} as declared: dim ${m.dim}, ${m.nLayers} layers, vocab ${m.vocabSize}, seq ${m.seqLen}; ${JSON.stringify(spec.compression)}`)
    }
    const labels = Object.entries(adversaries.labels).map(([n, b]) => `${n} ${b}`).join(", ")
    console.log(`  run      ${flags.peers} peers + 1 validator, ${flags.windows} windows${labels === "" ? "" : ` (adversaries: ${labels})`}${dataCheckOn(spec.participation.scoring.dataCheck) ? ", data check on" : ""}`)
    let backend: EngineBackend = flags.backend === "auto" ? "cpu" : flags.backend
    if (flags.backend === "auto") {
      const choice = yield* measureBackends(m, spec.innerOptimizer.batchSize)
      backend = choice.backend
      const { stepMs } = choice
      console.log(`  backend  auto: cpu ${stepMs.cpu.toFixed(1)} ms/step, cpu-fast ${stepMs["cpu-fast"].toFixed(1)} ms/step, webgpu ${stepMs.webgpu === null ? "no adapter" : `${stepMs.webgpu.toFixed(1)} ms/step`} -> ${backend}`)
      if (stepMs.webgpu === null) console.log(`           (${NO_ADAPTER_HELP.replace(/ Set COVENANT_ALLOW_NO_GPU.*$/, "")})`)
    } else console.log(`  backend  ${backend}`)
    const workDir = resolve(Option.getOrElse(flags.dir, () => mkdtempSync(join(tmpdir(), `${spec.name}-swarm-`))))
    let transport: SwarmTransport = { kind: "fs" }
    if (flags.transport === "s3") {
      // A real S3 server on loopback (s3rver); `covenant peer --transport s3` points at R2 or any S3 instead.
      const { LocalS3 } = yield* Effect.promise(() => import("@covenant/transport/testing"))
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
    const dataS3 = dataS3ConfigFromEnv(process.env)
    const result = yield* runSwarm({
      spec, peers: flags.peers, rounds: flags.windows, workDir, transport, backend, onEvent, scoring: flags.scoring, clock: flags.clock, behaviours: adversaries.behaviours,
      ...(dataS3 === undefined ? {} : { dataS3 }),
    })
    console.log(progressLine(result.events, Math.max(...seen), start, flags.windows))
    const windows = [...seen].sort((a, b) => a - b)
    const summaries = windows.flatMap((w) => {
      const s = summarizeWindow(result.events, w)
      return s === undefined ? [] : [s]
    })
    const first = summaries[0]
    const last = summaries[summaries.length - 1]
    if (first === undefined || last === undefined) return yield* new RuntimeError({ phase: "swarm", reason: "no window finished" })
    const up = summaries.reduce((n, s) => n + s.bytesUp, 0)
    const params = planOf(spec).parameters
    const dense = 4 * params * flags.peers * summaries.length
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
    console.log(`\nSummary: ${summaries.length} windows (${windows[0]}..${windows[windows.length - 1]}) in ${((Date.now() - began) / 1000).toFixed(1)} s on ${backend}`)
    console.log(`  model loss ${first.validatorLoss?.toFixed(3)} -> ${last.validatorLoss?.toFixed(3)}; peers' training loss ${first.peerLoss.toFixed(3)} -> ${last.peerLoss.toFixed(3)}`)
    console.log(`  updates sent ${formatBytes(up)} (${formatBytes(dense)} as fp32 pseudo-gradients: ${(dense / Math.max(1, up)).toFixed(1)}x smaller)`)
    console.log(`  share of active round time outside compute ${pct(mean(summaries.map((s) => s.outsideCompute)))}; idle waiting for window boundaries ${pct(mean(summaries.map((s) => s.idle)))} of each round`)
    console.log(`  every node bitwise identical after every outer step: ${summaries.every((s) => s.identical) ? "yes" : "NO"}`)
    if (Option.isSome(flags.summary)) {
      const file = resolve(flags.summary.value)
      yield* writeSwarmSummary(file, swarmSummary(result.events, adversaries.labels))
      console.log(`  summary ${file}`)
    }
    const reportPath = resolve(Option.getOrElse(flags.report, () => join(workDir, "report.html")))
    yield* Effect.mapError(writeReport(reportPath, runLogOf(`${spec.name}, ${scaled ? "scaled " : ""}swarm`, result.events, {
      model: `${params.toLocaleString("en-US")} parameters (dim ${m.dim}, ${m.nLayers} layers)`,
      peers: String(flags.peers),
      compression: JSON.stringify(spec.compression),
      backend,
      transport: flags.transport,
    }, adversaries.labels)), (e) => new RuntimeError({ phase: "report", reason: e.reason }))
    console.log(`  report ${reportPath}`)
  }).pipe(Effect.scoped)

const swarmCommand = (preselected: Option.Option<Run>) =>
  Command.make("swarm", { run: runOption(preselected), ...swarmOptions }, ({ run, ...flags }) => Effect.flatMap(run, (spec) => swarm(spec, flags))).pipe(
    Command.withDescription("peers + a validator in this process over the local chain and a folder (or a local S3 server): progress per window, a summary and an HTML report"),
  )

// ---- peer, validator ----

const nodeOptions = {
  secret: F.secret,
  name: F.name,
  state: F.state,
  untilWindow: F.untilWindow,
  windows: F.nodeWindows,
  rounds: F.rounds,
  acceptSlow: F.acceptSlow,
  chain: F.chain,
  chainDir: F.chainDir,
  ownChain: F.ownChain,
  netuid: F.netuid,
  fitToChain: F.fitToChain,
  transport: F.transport,
  store: F.store,
  bucketCors: F.bucketCors,
  backend: F.nodeBackend,
}
type NodeFlags = Values<typeof nodeOptions>

/** --until-window N (finish window N) or --windows N (N windows from the live one). */
const stopRuleOf = (flags: NodeFlags): Effect.Effect<StopRule | undefined, RuntimeFailure> => {
  if (Option.isSome(flags.untilWindow) && Option.isSome(flags.windows)) return Effect.fail(new FlagError({ reason: "--until-window and --windows both say when to stop: pass one" }))
  if (Option.isSome(flags.untilWindow)) return Effect.succeed(StopRule.UntilWindow({ window: flags.untilWindow.value }))
  if (Option.isSome(flags.windows)) return Effect.succeed(StopRule.FromNow({ windows: flags.windows.value }))
  return Effect.succeed(undefined)
}

const node = (role: "peer" | "validator", spec: RunSpec, flags: NodeFlags) =>
  Effect.gen(function* () {
    const stop = yield* stopRuleOf(flags)
    const identity = yield* Effect.mapError(identityFromSecret(flags.secret), inPhase("identity"))
    const name = Option.getOrElse(flags.name, () => role)
    const root = join(".covenant", spec.name)
    const stateDir = resolve(Option.getOrElse(flags.state, () => join(root, "nodes", name)))
    mkdirSync(stateDir, { recursive: true })

    const bucket = `covenant-${name}`
    let transportLayer: Layer.Layer<Transport>
    const own: BucketLocation = { bucket }
    let commitment: CommitmentLocation
    if (flags.transport === "s3") {
      const c = yield* s3Config(flags.bucketCors)
      transportLayer = layerS3(c)
      // The chain is public: commit the read-only pair, never the write key the layer uses.
      const read = { accessKeyId: yield* env("S3_READ_ACCESS_KEY_ID"), secretAccessKey: yield* env("S3_READ_SECRET_ACCESS_KEY") }
      commitment = yield* Effect.mapError(s3Commitment(c, bucket, read, c), inPhase("credentials"))
    } else {
      transportLayer = layerFileSystem(resolve(Option.getOrElse(flags.store, () => join(root, "store"))))
      commitment = { _tag: "Filesystem", dir: bucket }
    }

    const shards = yield* openRunData(spec, join(stateDir, "data"), dataS3ConfigFromEnv(process.env))
    const cfg: NodeConfig = { name, spec, address: runAddress(spec), identity, own, commitment, stateDir, shards, events: logEvent, ...(stop === undefined ? {} : { stop }), warmUp: flags.acceptSlow ? "warn" : "refuse" }
    let backend: EngineBackend = flags.backend === "auto" ? "cpu" : flags.backend
    if (flags.backend === "auto") {
      backend = (yield* measureBackends(spec.model, spec.innerOptimizer.batchSize)).backend
      console.log(`[${name}] backend auto -> ${backend}`)
    }
    const engineLayer = engineLayerOf(backend)
    const services = Layer.mergeAll(transportLayer, layerGauntlet(spec.participation), engineLayer)
    const p = spec.participation
    if (flags.chain === "local") {
      const chainDir = resolve(Option.getOrElse(flags.chainDir, () => join(root, "chain")))
      const chainLayer = flags.ownChain
        ? Layer.mapError(layerLocal({ dir: chainDir, identity, params: { blockIntervalMs: p.blockTimeMs, blocksPerWindow: p.blocksPerWindow, weightsRateLimit: 0, permitStake: 1000 } }), inPhase("chain"))
        : Layer.unwrapEffect(Effect.map(Effect.mapError(readOwnerUrl(chainDir), inPhase("chain")), (url) => Layer.mapError(layerLocalClient(url, identity), inPhase("chain"))))
      const program: Effect.Effect<void, RuntimeFailure, Chain | LocalChain | Transport | Scoring | Engine> =
        role === "peer" ? runPeer(cfg) : Effect.zipRight(ensureValidatorPermit(cfg), runValidator(cfg))
      return yield* Effect.provide(program, Layer.mergeAll(services, chainLayer))
    }
    // Subtensor: registration and stake are Bittensor's own tools' business (btcli); the hotkey must be registered.
    if (Option.isNone(flags.netuid)) return yield* new FlagError({ reason: "--netuid <n> is required with a subtensor endpoint" })
    const netuid = flags.netuid.value
    const subtensor = (blocksPerWindow: number) => Layer.mapError(layerSubtensor({ endpoint: flags.chain, netuid, identity, blocksPerWindow, connectTimeoutMs: 30_000 }), inPhase("chain"))
    // Windows are blocks but upload windows are ms: refuse (or, with --fit-to-chain, refit) a run
    // whose timing does not fit the blocks this chain actually makes.
    const measured = yield* Effect.provide(Effect.flatMap(Chain, (c) => Effect.mapError(measureBlockTimeMs(c), inPhase("chain"))), subtensor(p.blocksPerWindow))
    const run = yield* runTimingFor(spec, measured, flags.fitToChain, { weightsRateLimitBlocks: 100 })
    if (measured !== undefined) console.log(`chain blocks every ${Math.round(measured)} ms; run ${run.name}: ${run.participation.blocksPerWindow} blocks a window, upload window ${run.participation.uploadWindowMs} ms`)
    const runCfg: NodeConfig = { ...cfg, spec: run }
    const chainLayer = subtensor(run.participation.blocksPerWindow)
    const program: Effect.Effect<void, RuntimeFailure, Chain | Transport | Scoring | Engine> = role === "peer" ? runPeer(runCfg) : runValidator(runCfg)
    return yield* Effect.provide(program, Layer.mergeAll(services, chainLayer))
  }).pipe(Effect.scoped)

const nodeCommand = (role: "peer" | "validator", preselected: Option.Option<Run>) =>
  Command.make(role, { run: runOption(preselected), ...nodeOptions }, ({ run, ...flags }) => Effect.flatMap(run, (spec) => node(role, spec, flags))).pipe(
    Command.withDescription(role === "peer"
      ? "one miner: follows the chain's windows, trains H inner steps on its (uid, window) data, publishes its compressed pseudo-gradient, gathers the peer list's updates and takes the outer step; resumes from --state"
      : "gathers the same updates and applies the same outer step (the canonical model). It commits the validator role with its bucket and stops at start without a validator permit (on the local chain it stakes itself to one). The leader is the highest-stake declared validator with a permit that publishes the run (its bucket holds the start window, re-stored each window as its heartbeat); while none does, the first validator to start publishes it and leads; when the leader's heartbeat is over 3 windows old, the next running validator takes over"),
  )

// ---- the peer page ----

const servePeerPageCommand = (preselected: Option.Option<Run>) =>
  Command.make(
    "serve-peer-page",
    { run: runOption(preselected), chain: F.chain, netuid: F.netuid, chainDir: F.chainDir, data: F.pageData, port: F.port, host: F.host, offerKeys: F.offerKeys },
    ({ run, ...o }) =>
      Effect.gen(function* () {
        const spec = yield* run
        const endpoint = yield* Effect.mapError(env("S3_ENDPOINT"), () => new RuntimeError({ phase: "flags", reason: "S3_ENDPOINT is not set: the page joins a run whose nodes use --transport s3" }))
        const chainDir = resolve(Option.getOrElse(o.chainDir, () => join(".covenant", spec.name, "chain")))
        // A subtensor run: the page connects to the node itself (its hotkey registered with btcli first).
        if (o.chain !== "local" && Option.isNone(o.netuid)) return yield* new FlagError({ reason: "--netuid <n> is required with a subtensor endpoint" })
        const chain: Parameters<typeof servePeerPage>[0]["chain"] = o.chain === "local" || Option.isNone(o.netuid)
          ? { kind: "local", url: () => Effect.runPromise(readOwnerUrl(chainDir)) }
          : { kind: "subtensor", endpoint: o.chain, netuid: o.netuid.value }
        const keyOf = (n: string) => process.env[n] ?? ""
        // An s3:// corpus is read by the tab from its store, like a node reads it (DATA_S3_* or S3_*);
        // its keys go to the page only with --offer-keys (a local run), else the page's read keys read it.
        const source = spec.data.source
        let data: Parameters<typeof servePeerPage>[0]["data"]
        if (source.kind === "shards" && isObjectStoreUri(source.uri)) {
          const { bucket, prefix } = yield* Effect.mapError(parseShardUri(source.uri), inPhase("data"))
          const corpus = dataS3ConfigFromEnv(process.env)
          const endpointOf = corpus?.endpoint ?? endpoint
          data = {
            kind: "s3", endpoint: endpointOf, region: corpus?.region ?? process.env["S3_REGION"] ?? "auto", bucket, prefix,
            ...(o.offerKeys && corpus !== undefined ? { keys: { accessKeyId: corpus.accessKeyId, secretAccessKey: corpus.secretAccessKey } } : {}),
          }
        } else data = { kind: "dir", dir: yield* prepareRunData(spec, resolve(Option.getOrElse(o.data, () => join(".covenant", spec.name, "page-data")))) }
        const url = yield* servePeerPage({
          spec,
          store: { endpoint, region: process.env["S3_REGION"] ?? "auto" },
          chain,
          data,
          ...(o.offerKeys
            ? { offerKeys: { write: { accessKeyId: keyOf("S3_ACCESS_KEY_ID"), secretAccessKey: keyOf("S3_SECRET_ACCESS_KEY") }, read: { accessKeyId: keyOf("S3_READ_ACCESS_KEY_ID"), secretAccessKey: keyOf("S3_READ_SECRET_ACCESS_KEY") } } }
            : {}),
          ...(Option.isSome(o.port) ? { port: o.port.value } : {}),
          ...(Option.isSome(o.host) ? { hostname: o.host.value } : {}),
        })
        console.log(`peer page: ${url}`)
        return yield* Effect.never
      }).pipe(Effect.scoped),
  ).pipe(Command.withDescription("serve the page a browser tab joins the run from, as a peer on its WebGPU (the run's store from S3_ENDPOINT / S3_REGION; the local chain through --chain-dir's owner.json, or with --chain ws://... --netuid a subtensor node the page connects to itself); prints `peer page: <url>`"))

// ---- prepare ----

const prepareCommand = Command.make(
  "prepare",
  { input: F.input, more: Args.text({ name: "input" }).pipe(Args.repeated), out: F.out, tokenizer: F.tokenizer, eosToken: F.eosToken, eosId: F.eosId, seqLen: F.seqLen, shardTokens: F.shardTokens, partMib: F.partMib, bucketCors: F.bucketCors },
  (o) =>
    Effect.gen(function* () {
      // Further arguments are more inputs, so shell globs after --input work.
      const inputs = [...o.input, ...o.more]
      if (inputs.length === 0) return yield* new FlagError({ reason: "--input: give at least one folder or file" })
      const tokenizer = Option.isNone(o.tokenizer)
        ? byteTokenizer
        : yield* loadHfTokenizer(o.tokenizer.value, {
          ...(Option.isSome(o.eosToken) ? { eosToken: o.eosToken.value } : {}),
          ...(Option.isSome(o.eosId) ? { eosId: o.eosId.value } : {}),
        })
      // S3 needs parts of at least 5 MiB; a shard larger than one part goes multipart.
      const partBytes = Math.max(5, o.partMib) * 1024 * 1024
      let sink: ShardSink | undefined
      if (isObjectStoreUri(o.out)) {
        const { bucket, prefix } = yield* parseShardUri(o.out)
        const config = dataS3ConfigFromEnv(process.env)
        if (config === undefined) return yield* new DataIoError({ path: o.out, reason: "set DATA_S3_ENDPOINT, DATA_S3_ACCESS_KEY_ID and DATA_S3_SECRET_ACCESS_KEY (or S3_*) to write to object storage" })
        const transport = yield* makeS3Transport({ ...config, ...readCors(o.bucketCors), multipartThreshold: partBytes, partSize: partBytes })
        yield* Effect.mapError(transport.ensureBucket({ bucket }), (e) => new DataIoError({ path: o.out, reason: `bucket: ${e._tag}` }))
        sink = transportSink(transport, { bucket }, prefix)
      }
      const started = performance.now()
      const manifest = yield* prepareShards({
        inputs,
        outDir: o.out,
        tokenizer,
        seqLen: o.seqLen,
        ...(Option.isSome(o.shardTokens) ? { shardTokens: o.shardTokens.value } : {}),
        ...(sink === undefined ? {} : { sink }),
      })
      const seconds = (performance.now() - started) / 1000
      console.log(
        `wrote ${manifest.shards.length} shard(s) to ${o.out}: ${manifest.documents} documents, ` +
          `${manifest.totalTokens} tokens, ${manifest.totalSamples} samples of ${o.seqLen} ` +
          `(vocab ${manifest.vocabSize}, eos ${manifest.eosId}) in ${seconds.toFixed(2)} s`,
      )
    }).pipe(
      Effect.scoped,
      Effect.mapError((e) => (isRuntimeFailure(e) ? e : new RuntimeError({ phase: "prepare", reason: `${e._tag}: ${JSON.stringify(e)}` }))),
    ),
).pipe(Command.withDescription("tokenize text files into token shards (a folder or s3://bucket/prefix) for a run's data"))

// ---- chain ----

const metagraphCommand = Command.make(
  "metagraph",
  { endpoint: F.endpoint, netuid: F.netuid, local: F.local, blocksPerWindow: F.blocksPerWindow },
  (o) =>
    Effect.gen(function* () {
      if (Option.isSome(o.endpoint) === Option.isSome(o.local)) return yield* new FlagError({ reason: "give exactly one of --endpoint or --local" })
      if (Option.isSome(o.endpoint) && Option.isNone(o.netuid)) return yield* new FlagError({ reason: "--endpoint needs --netuid <n>" })
      yield* printMetagraph({
        blocksPerWindow: o.blocksPerWindow,
        ...(Option.isSome(o.endpoint) ? { endpoint: o.endpoint.value } : {}),
        ...(Option.isSome(o.netuid) ? { netuid: o.netuid.value } : {}),
        ...(Option.isSome(o.local) ? { local: o.local.value } : {}),
      })
    }),
).pipe(Command.withDescription("print a subnet's metagraph and each uid's commitment (declared role and location only: not the committed read key pair, which is public on chain anyway)"))

const chainCommand = Command.make("chain").pipe(
  Command.withDescription("read the chain"),
  Command.withSubcommands([metagraphCommand]),
)

// ---- the tree ----

const cliConfig = { name: "covenant", version: "0.0.0" }

export const commandNames = ["swarm", "peer", "validator", "plan", "prepare", "chain", "serve-peer-page"] as const

/** The flags the bare command takes (@effect/cli reports any other there as an invalid subcommand). */
export const rootFlags = (preselected: Option.Option<Run>): ReadonlySet<string> =>
  new Set(Option.isNone(preselected) ? [] : [F.plan, F.spec, ...Object.values(swarmOptions)].flatMap((o) => Option.toArray(Options.getIdentifier(o as Options.Options<unknown>))))

/**
 * `covenant <command>` as a function of the command line (process.argv's shape: two leading
 * entries, then the arguments); with a run preselected, the bare command also takes --plan, --spec and the
 * swarm's flags and runs that run's swarm (what `bun run examples/covenant72b.ts` does).
 */
export const covenantCli = (preselected: Option.Option<Run>) => {
  const subcommands = [swarmCommand(preselected), nodeCommand("peer", preselected), nodeCommand("validator", preselected), planCommand(preselected), prepareCommand, chainCommand, servePeerPageCommand(preselected)] as const
  return Option.match(preselected, {
    onNone: () =>
      Command.make("covenant", {}, () => Effect.fail(new FlagError({ reason: "name a command: swarm | peer | validator | plan | prepare | chain | serve-peer-page (--help lists them)" }))).pipe(
        Command.withDescription("decentralized LLM pretraining with SparseLoCo: run one node of a run per process, or a whole in-process swarm"),
        Command.withSubcommands(subcommands),
        Command.run(cliConfig),
      ),
    onSome: (run) =>
      Command.make("covenant", { plan: F.plan, spec: F.spec, ...swarmOptions }, ({ plan, spec: withSpec, ...flags }) =>
        Effect.flatMap(Effect.mapError(run, (e) => new RuntimeError({ phase: "run", reason: describeFailure(e) })), (spec) =>
          plan || withSpec ? printPlan(spec, withSpec) : swarm(spec, flags))).pipe(
        Command.withDescription("this run: with no command, its swarm (scaled to this machine unless it is a small run on the local chain); --plan / --spec print it; the commands below run its nodes"),
        Command.withSubcommands(subcommands),
        Command.run(cliConfig),
      ),
  })
}
