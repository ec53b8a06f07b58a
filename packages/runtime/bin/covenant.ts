/**
 * covenant: run one node of a run per process, or a whole in-process swarm.
 *
 *   bun packages/runtime/bin/covenant.ts <peer|validator|swarm|plan> [flags]   (--help on each)
 *
 * Processes of one run share a transport (a folder, or S3/R2) and a chain (the local chain's
 * owner serves it on loopback and writes its URL into the chain folder; other processes connect
 * to it as clients).
 */
import { join, resolve } from "node:path"
import { mkdirSync } from "node:fs"
import { Cause, Effect, Exit, Layer, Option, ParseResult, Schema } from "effect"
import { Chain, identityFromSecret, layerLocal, layerLocalClient, layerSubtensor, measureBlockTimeMs, readOwnerUrl } from "@covenant/chain"
import type { Commitment, LocalChain } from "@covenant/chain"
import { covenant72b, debug, debugSubnet, formatPlan, loadRun, plan } from "@covenant/dsl"
import type { RunSpec } from "@covenant/dsl"
import { EngineCpu, EngineWebGpu } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import { layerFileSystem, layerS3 } from "@covenant/transport"
import type { BucketLocation, S3TransportConfig, Transport } from "@covenant/transport"
import { RuntimeError, inPhase } from "../src/errors.ts"
import { runAddress } from "../src/node/network.ts"
import { s3Commitment } from "../src/node/credentials.ts"
import { describeRejection } from "../src/node/admission.ts"
import { describeMissing } from "../src/node/rejections.ts"
import { StopRule } from "../src/node/stop.ts"
import type { NodeConfig, NodeEvent } from "../src/node/node.ts"
import { runPeer } from "../src/node/peer.ts"
import { layerGauntlet } from "../src/node/scoring.ts"
import type { Scoring } from "../src/node/scoring.ts"
import { ensureValidatorPermit, runValidator } from "../src/node/validator.ts"
import { dataS3ConfigFromEnv, openRunData } from "../src/swarm/data.ts"
import { scaleToMachine } from "../src/swarm/scale.ts"
import { runSwarm } from "../src/swarm/swarm.ts"
import { runLogOf, summarizeWindow } from "../src/swarm/run-log.ts"
import { runTimingFor } from "../src/timing.ts"
import { writeReport } from "../src/report/write.ts"
import { swarmSummary, writeSwarmSummary } from "../src/swarm/summary.ts"
import { catalogue } from "../src/adversary/catalogue.ts"
import { assignAdversaries, parseAdversaryFlag, repeatedFlag } from "../src/adversary/flags.ts"

const HELP: Record<string, string> = {
  main: `covenant <command> [flags]

commands:
  peer        train: one miner of a run
  validator   keep the canonical model; the highest-stake publishing validator leads (start window, peer lists, records, checkpoints)
  swarm       peers + a validator in this process (local chain, filesystem or s3rver)
  plan        print the run's plan table

every command: --help`,
  common: `run selection:
  --run <file.ts>        a run.ts (defineRun); default: --preset
  --preset <name>        scaled (Covenant-72B scaled to this machine, default) | debug | debug-subnet | covenant72b
                         (debug-subnet: the debug model timed for a real subnet's 12 s blocks)`,
  node: `node flags:
  --secret <s>           hotkey: dev URI (//Alice), mnemonic or 0x seed (required)
  --name <n>             node name: bucket covenant-<n> and state folder (default: role)
  --state <dir>          local state folder (default .covenant/<run>/nodes/<name>)
  --until-window <n>     finish window n, then stop (default: run on)
  --windows <n>          run n windows from the live one, then stop (a restarted node runs n more)
  --accept-slow          peers time one inner step at start and refuse a run whose inner steps cannot fit its
                          window on this machine (every update would land late); this runs it anyway
  --chain local|<ws-url> local (default): --chain-dir <dir>; --own-chain makes this process the chain's owner
                          ws(s)://...: a subtensor node, with --netuid <n> (hotkey registered and staked with btcli);
                          the run's timing is checked against the chain's measured block time and refused if it
                          cannot fit; --fit-to-chain derives it from the measured block time instead
  --transport fs|s3      fs (default): --store <dir>; s3: S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY
                          (write key, stays on this node) and S3_READ_ACCESS_KEY_ID, S3_READ_SECRET_ACCESS_KEY (a read-only
                          token, committed on chain for the others; must differ from the write key)
                          (this node's bucket is covenant-<name>; R2: S3_ENDPOINT=https://<account>.r2.cloudflarestorage.com)
  --backend cpu|webgpu   peers' training engine (default cpu)`,
  peer: `covenant peer [flags]: one miner. Follows the chain's windows, trains H inner steps on its (uid, window) data,
publishes its compressed pseudo-gradient, gathers the peer list's updates and takes the outer step; resumes from --state.`,
  validator: `covenant validator [flags]: gathers the same updates and applies the same outer step (the canonical model).
On the local chain it stakes itself to a validator permit. The leader is the highest-stake permit holder that publishes
the run (its bucket holds the start window); while none does, the first validator to start publishes it and leads.`,
  plan: `covenant plan [--run file | --preset name]: the plan table of a run.`,
  swarm: `covenant swarm [flags]: peers + a validator in this process over the local chain and the filesystem store.

swarm flags:
  --peers <n> (4)  --windows <n> (16)  --backend cpu|webgpu (cpu)  --dir <work dir>
  --adversary <name|path.ts>=<count>  (repeatable) that many of the peers (the last ones) run a catalogue
      behaviour (${Object.keys(catalogue).join(", ")}) or a behaviour file's default export
  --summary <file.json>  per window: eval loss, aggregated and rejected uids, weights; and each peer's behaviour
  --report <file.html>  the run's HTML report (loss, bytes, peers, phases; each peer's weight by behaviour)
  --clock wall|simulated  wall (default); simulated: a simulated clock, in-memory store and chain, reproducible
                          from the run's seed, taking compute time only`,
}

const usage = (command: string) =>
  [HELP[command] ?? HELP["main"], HELP["common"], command === "swarm" ? HELP["swarm"] : command === "plan" ? "" : HELP["node"]].filter((s) => s !== "").join("\n\n")

const flag = (argv: readonly string[], name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? argv[i + 1] : undefined
}

const Int = Schema.NumberFromString.pipe(Schema.int(), Schema.positive())
const decodeInt = (value: string | undefined, fallback: number) => Schema.decodeUnknown(Int)(value ?? String(fallback))

const intFlag = (argv: readonly string[], name: string) =>
  Effect.mapError(Schema.decodeUnknown(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative()))(flag(argv, name)), (e) => new RuntimeError({ phase: "flags", reason: `--${name}: ${e.message}` }))

/** --until-window N (finish window N) or --windows N (N windows from the live one); --rounds said neither clearly. */
const stopRuleOf = (argv: readonly string[]): Effect.Effect<StopRule | undefined, RuntimeError> =>
  Effect.gen(function* () {
    if (argv.includes("--rounds")) return yield* new RuntimeError({ phase: "flags", reason: "--rounds is gone: --until-window N finishes window N then stops; --windows N runs N windows from the live one" })
    const until = argv.includes("--until-window") ? yield* intFlag(argv, "until-window") : undefined
    const windows = argv.includes("--windows") ? yield* Effect.mapError(decodeInt(flag(argv, "windows"), 1), (e) => new RuntimeError({ phase: "flags", reason: `--windows: ${e.message}` })) : undefined
    if (until !== undefined && windows !== undefined) return yield* new RuntimeError({ phase: "flags", reason: "--until-window and --windows both say when to stop: pass one" })
    return until !== undefined ? StopRule.UntilWindow({ window: until }) : windows !== undefined ? StopRule.FromNow({ windows }) : undefined
  })

const specOf = (argv: readonly string[]): Effect.Effect<RunSpec, RuntimeError> => {
  const file = flag(argv, "run")
  if (file !== undefined) return Effect.mapError(loadRun(resolve(file)), (e) => new RuntimeError({ phase: "run", reason: e.message }))
  const preset = flag(argv, "preset") ?? "scaled"
  if (preset === "debug") return Effect.succeed(debug())
  if (preset === "debug-subnet") return Effect.succeed(debugSubnet())
  if (preset === "covenant72b") return Effect.succeed(covenant72b())
  if (preset === "scaled") return Effect.succeed(scaleToMachine(covenant72b(), { peers: 2, windows: 1000 }))
  return Effect.fail(new RuntimeError({ phase: "run", reason: `unknown preset ${preset} (scaled | debug | debug-subnet | covenant72b)` }))
}

const env = (name: string) => Effect.fromNullable(process.env[name]).pipe(Effect.mapError(() => new RuntimeError({ phase: "s3", reason: `${name} is not set` })))

const s3Config: Effect.Effect<S3TransportConfig, RuntimeError> = Effect.gen(function* () {
  return {
    endpoint: yield* env("S3_ENDPOINT"),
    region: process.env["S3_REGION"] ?? "auto",
    forcePathStyle: true,
    accessKeyId: yield* env("S3_ACCESS_KEY_ID"),
    secretAccessKey: yield* env("S3_SECRET_ACCESS_KEY"),
  }
})

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
    const flags = [...e.invalid.map((u) => `${u} invalid`), ...e.copies.map((u) => `${u} copy`)]
    console.log(`[${e.name}] judged window ${e.window}: evaluated [${e.evaluated.join(",")}], scores ${e.scores.map((s) => `${s.uid}:${s.score.toPrecision(3)}`).join(" ")}${flags.length > 0 ? `, ${flags.join(", ")}` : ""}`)
  } else if (e._tag === "Weights") console.log(`[${e.name}] weights after window ${e.window}: ${e.weights.map((w) => `${w.uid}:${w.weight.toFixed(3)}`).join(" ") || "none"}`)
}

const node = (role: "peer" | "validator", argv: readonly string[]) =>
  Effect.gen(function* () {
    const stop = yield* stopRuleOf(argv)
    const spec = yield* specOf(argv)
    const secret = flag(argv, "secret")
    if (secret === undefined) return yield* new RuntimeError({ phase: "flags", reason: "--secret is required (a dev URI such as //Alice, a mnemonic or a 0x seed)" })
    const identity = yield* Effect.mapError(identityFromSecret(secret), inPhase("identity"))
    const name = flag(argv, "name") ?? role
    const root = join(".covenant", spec.name)
    const stateDir = resolve(flag(argv, "state") ?? join(root, "nodes", name))
    mkdirSync(stateDir, { recursive: true })

    const bucket = `covenant-${name}`
    let transportLayer: Layer.Layer<Transport>
    let own: BucketLocation
    let commitment: Commitment
    if ((flag(argv, "transport") ?? "fs") === "s3") {
      const c = yield* s3Config
      transportLayer = layerS3(c)
      own = { bucket }
      // The chain is public: commit the read-only pair, never the write key the layer uses.
      const read = { accessKeyId: yield* env("S3_READ_ACCESS_KEY_ID"), secretAccessKey: yield* env("S3_READ_SECRET_ACCESS_KEY") }
      commitment = yield* Effect.mapError(s3Commitment(c, bucket, read, c), inPhase("credentials"))
    } else {
      transportLayer = layerFileSystem(resolve(flag(argv, "store") ?? join(root, "store")))
      own = { bucket }
      commitment = { _tag: "Filesystem", dir: bucket }
    }

    const shards = yield* openRunData(spec, join(stateDir, "data"), dataS3ConfigFromEnv(process.env))
    const cfg: NodeConfig = { name, spec, address: runAddress(spec), identity, own, commitment, stateDir, shards, events: logEvent, ...(stop === undefined ? {} : { stop }), warmUp: argv.includes("--accept-slow") ? "warn" : "refuse" }
    const engineLayer: Layer.Layer<Engine, RuntimeError> = flag(argv, "backend") === "webgpu"
      ? Layer.mapError(EngineWebGpu, (e) => new RuntimeError({ phase: "engine", reason: e._tag }))
      : EngineCpu
    const services = Layer.mergeAll(transportLayer, layerGauntlet(spec.participation), engineLayer)
    const p = spec.participation
    const chainFlag = flag(argv, "chain") ?? "local"
    if (chainFlag === "local") {
      const chainDir = resolve(flag(argv, "chain-dir") ?? join(root, "chain"))
      const chainLayer = argv.includes("--own-chain")
        ? Layer.mapError(layerLocal({ dir: chainDir, identity, params: { blockIntervalMs: p.blockTimeMs, blocksPerWindow: p.blocksPerWindow, weightsRateLimit: 0, permitStake: 1000 } }), inPhase("chain"))
        : Layer.unwrapEffect(Effect.map(Effect.mapError(readOwnerUrl(chainDir), inPhase("chain")), (url) => Layer.mapError(layerLocalClient(url, identity), inPhase("chain"))))
      const program: Effect.Effect<void, RuntimeError, Chain | LocalChain | Transport | Scoring | Engine> =
        role === "peer" ? runPeer(cfg) : Effect.zipRight(ensureValidatorPermit(cfg), runValidator(cfg))
      return yield* Effect.provide(program, Layer.mergeAll(services, chainLayer))
    }
    // Subtensor: registration and stake are Bittensor's own tools' business (btcli); the hotkey must be registered.
    const netuid = yield* Effect.mapError(Schema.decodeUnknown(Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative()))(flag(argv, "netuid") ?? ""), () => new RuntimeError({ phase: "flags", reason: "--netuid <n> is required with a subtensor endpoint" }))
    const subtensor = (blocksPerWindow: number) => Layer.mapError(layerSubtensor({ endpoint: chainFlag, netuid, identity, blocksPerWindow, connectTimeoutMs: 30_000 }), inPhase("chain"))
    // Windows are blocks but upload windows are ms: refuse (or, with --fit-to-chain, refit) a run
    // whose timing does not fit the blocks this chain actually makes.
    const measured = yield* Effect.provide(Effect.flatMap(Chain, (c) => Effect.mapError(measureBlockTimeMs(c), inPhase("chain"))), subtensor(p.blocksPerWindow))
    const run = yield* runTimingFor(spec, measured, argv.includes("--fit-to-chain"), { weightsRateLimitBlocks: 100 })
    if (measured !== undefined) console.log(`chain blocks every ${Math.round(measured)} ms; run ${run.name}: ${run.participation.blocksPerWindow} blocks a window, upload window ${run.participation.uploadWindowMs} ms`)
    const runCfg: NodeConfig = { ...cfg, spec: run }
    const chainLayer = subtensor(run.participation.blocksPerWindow)
    const program: Effect.Effect<void, RuntimeError, Chain | Transport | Scoring | Engine> = role === "peer" ? runPeer(runCfg) : runValidator(runCfg)
    return yield* Effect.provide(program, Layer.mergeAll(services, chainLayer))
  }).pipe(Effect.scoped)

const swarm = (argv: readonly string[]) =>
  Effect.gen(function* () {
    const source = yield* specOf(argv)
    const peers = yield* Effect.mapError(decodeInt(flag(argv, "peers"), 4), (e) => new RuntimeError({ phase: "flags", reason: e.message }))
    const windows = yield* Effect.mapError(decodeInt(flag(argv, "windows"), 16), (e) => new RuntimeError({ phase: "flags", reason: e.message }))
    const spec = source.infrastructure.chain.kind === "local" && source.model.dim <= 256 ? source : scaleToMachine(source, { peers, windows })
    const workDir = resolve(flag(argv, "dir") ?? join(".covenant", spec.name, `swarm-${Date.now()}`))
    const backend = flag(argv, "backend") === "webgpu" ? "webgpu" as const : "cpu" as const
    const dataS3 = dataS3ConfigFromEnv(process.env)
    const adversaries = yield* assignAdversaries(yield* Effect.forEach(repeatedFlag(argv, "adversary"), parseAdversaryFlag), peers)
    const clock = flag(argv, "clock") ?? "wall"
    if (clock !== "wall" && clock !== "simulated") return yield* new RuntimeError({ phase: "flags", reason: `--clock takes wall or simulated, got ${clock}` })
    const result = yield* runSwarm({ spec, peers, rounds: windows, workDir, backend, onEvent: logEvent, behaviours: adversaries.behaviours, clock, ...(dataS3 === undefined ? {} : { dataS3 }) })
    const summaryFile = flag(argv, "summary")
    if (summaryFile !== undefined) yield* writeSwarmSummary(resolve(summaryFile), swarmSummary(result.events, adversaries.labels))
    const reportFile = flag(argv, "report")
    if (reportFile !== undefined) yield* Effect.mapError(writeReport(resolve(reportFile), runLogOf(`${spec.name} swarm`, result.events, { peers: String(peers) }, adversaries.labels)), (e) => new RuntimeError({ phase: "report", reason: e.reason }))
    for (let w = result.startWindow; w < result.startWindow + windows; w++) {
      const s = summarizeWindow(result.events, w)
      if (s !== undefined) console.log(`window ${w}: peers' loss ${s.peerLoss.toFixed(4)}, model loss ${s.validatorLoss?.toFixed(4) ?? "-"}, ${s.gathered}/${s.expected} peers${s.rejected > 0 ? ` (${s.rejected} rejected)` : ""}, identical ${s.identical}`)
    }
  })

const main = (argv: readonly string[]): Effect.Effect<void, RuntimeError | ParseResult.ParseError> => {
  const command = argv[0] ?? "--help"
  if (argv.includes("--help") || argv.includes("-h") || !["peer", "validator", "swarm", "plan"].includes(command)) {
    return Effect.sync(() => console.log(usage(command)))
  }
  const rest = argv.slice(1)
  if (command === "plan") return Effect.map(specOf(rest), (spec) => console.log(formatPlan(plan(spec))))
  if (command === "swarm") return swarm(rest)
  return node(command === "peer" ? "peer" : "validator", rest)
}

if (import.meta.main) {
  const exit = await Effect.runPromiseExit(main(process.argv.slice(2)))
  if (Exit.isFailure(exit)) {
    const failure = Cause.failureOption(exit.cause)
    console.error(Option.match(failure, {
      onNone: () => Cause.pretty(exit.cause),
      onSome: (e) => (e._tag === "RuntimeError" ? `${e.phase}: ${e.reason}` : ParseResult.TreeFormatter.formatErrorSync(e)),
    }))
    process.exitCode = 1
  }
}
