/**
 * The in-process swarm: N peers and a validator in one process, each with its own engine, error
 * feedback, data assignment, identity, bucket and state folder, over the real transport layer
 * (filesystem or S3) and a real local chain (owned here, reached by every node over loopback,
 * blocks accelerated). Peers can be killed and (re)started at given rounds to exercise churn.
 *
 * `clock: "simulated"` runs the same nodes on the simulator (sim/simulator.ts): a simulated clock,
 * the in-memory store stamped by it and the in-memory chain producing blocks on it, so a run is
 * reproducible and takes its compute time only.
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Duration, Effect, Either, Exit, Fiber, Layer } from "effect"
import { Chain, identityFromSecret, layerLocal, layerLocalBackend, layerLocalClient, openMemoryBackend, readOwnerUrl } from "@covenant/chain"
import type { CommitmentLocation, Identity, LocalChain } from "@covenant/chain"
import type { RunSpec } from "@covenant/dsl"
import { layerFileSystem, layerS3, makeMemoryTransport, Transport } from "@covenant/transport"
import type { BucketLocation, S3TransportConfig } from "@covenant/transport"
import type { PeerBehaviour } from "../adversary/behaviour.ts"
import { RuntimeError, type RuntimeFailure, inPhase } from "../errors.ts"
import { currentWindow } from "../node/clock.ts"
import type { NodeConfig, NodeEvent } from "../node/node.ts"
import { awaitStart, pollMs } from "../node/node.ts"
import { runAddress } from "../node/network.ts"
import { s3Commitment } from "../node/credentials.ts"
import type { S3Keys, WriteKeyCommitted } from "../node/credentials.ts"
import { runPeer } from "../node/peer.ts"
import { layerGauntlet, ScoringEqual } from "../node/scoring.ts"
import { ensureValidatorPermit, runValidator } from "../node/validator.ts"
import { StopRule } from "../node/stop.ts"
import { engineLayerOf } from "./backend.ts"
import type { EngineBackend } from "./backend.ts"
import { openRunData } from "./data.ts"
import { busyLabel, simulate } from "../sim/simulator.ts"

/** s3: `config` holds the write key (never committed); `read` is the distinct pair nodes commit on chain. */
export type SwarmTransport = { readonly kind: "fs" } | { readonly kind: "s3"; readonly config: S3TransportConfig; readonly read: S3Keys }

/**
 * Kill a running peer, or start one (again: it resumes from its state folder; new index: a
 * joiner); or kill or (re)start validator `validator` (0 = the one that starts the run).
 */
export type ChurnAction =
  | {
      /** Round of the run (0 = the start window) at which to act. */
      readonly round: number
      readonly action: "kill" | "start"
      readonly peer: number
    }
  | { readonly round: number; readonly action: "kill" | "start"; readonly validator: number }

export interface SwarmOptions {
  readonly spec: RunSpec
  readonly peers: number
  /** Windows to run from the start window. */
  readonly rounds: number
  /** Everything the run writes: chain, store, state folders, prepared data. */
  readonly workDir: string
  readonly transport?: SwarmTransport
  readonly backend?: EngineBackend
  readonly churn?: ReadonlyArray<ChurnAction>
  readonly onEvent?: (event: NodeEvent) => void
  /** Validator evaluates the model's loss each window (default true). */
  readonly evaluate?: boolean
  /** Where an `s3://` corpus is read from (default: the S3 transport's store, if the swarm uses one). */
  readonly dataS3?: S3TransportConfig
  /** How the validator scores: the run spec's Gauntlet (default) or equal weights. */
  readonly scoring?: "gauntlet" | "equal"
  /** Peer index -> its behaviour (adversary/behaviour.ts); peers not named are honest. */
  readonly behaviours?: Readonly<Record<number, PeerBehaviour>>
  /**
   * "wall" (default): the wall clock, the chosen transport and the local chain served on loopback.
   * "simulated": a simulated clock (sim/simulator.ts), the in-memory store and the in-memory chain
   * (`transport` must be fs or absent: state folders and prepared data stay on disk).
   */
  readonly clock?: "wall" | "simulated"
  /**
   * Validators (default 1). Validator i stakes (validators - i) x 1000, so validator 0 ranks
   * first and leads; the others start once the run has started and take over the lead if it goes
   * stale (leader.ts). The swarm ends when every validator still running has stopped.
   */
  readonly validators?: number
}

export interface SwarmResult {
  readonly startWindow: number
  readonly events: ReadonlyArray<NodeEvent>
  /** Chain time (ms) at which the start window began and at which the window after the last began. */
  readonly windowsSpanMs: { readonly from: number; readonly to: number }
  /**
   * Simulated runs only: the simulated time the whole swarm took, the clock's advances, and the
   * wall time each node's fibers spent running (by node name; the simulator's `busyMs`).
   */
  readonly simulated?: { readonly elapsedMs: number; readonly advances: number; readonly busyMs: Readonly<Record<string, number>> }
}

/** The store and chain every node of one swarm shares: a transport layer and each identity's Chain. */
interface SwarmInfra {
  readonly transport: Layer.Layer<Transport>
  readonly chainFor: (identity: Identity) => Layer.Layer<Chain | LocalChain, RuntimeFailure>
}

const bucketOf = (name: string, transport: SwarmTransport): Either.Either<{ own: BucketLocation; commitment: CommitmentLocation }, WriteKeyCommitted> => {
  const bucket = `covenant-${name}`
  if (transport.kind === "fs") return Either.right({ own: { bucket }, commitment: { _tag: "Filesystem", dir: bucket } })
  return Either.map(s3Commitment(transport.config, bucket, transport.read, transport.config), (commitment) => ({ own: { bucket }, commitment }))
}

const swarmProgram = (options: SwarmOptions): Effect.Effect<Omit<SwarmResult, "simulated">, RuntimeFailure> =>
  Effect.scoped(
    Effect.gen(function* () {
      const { spec, workDir } = options
      const transport = options.transport ?? { kind: "fs" as const }
      const events: NodeEvent[] = []
      const emit = (e: NodeEvent) => {
        events.push(e)
        options.onEvent?.(e)
      }
      mkdirSync(workDir, { recursive: true })
      const shards = yield* openRunData(spec, join(workDir, "data"), options.dataS3 ?? (transport.kind === "s3" ? transport.config : undefined))

      const infra = yield* (options.clock === "simulated" ? simulatedInfra(spec) : wallInfra(spec, workDir, transport))
      const transportLayer = infra.transport
      const engineLayer = engineLayerOf(options.backend ?? "cpu")
      const address = runAddress(spec)

      const nodeLayer = (identity: Identity) =>
        Layer.mergeAll(transportLayer, infra.chainFor(identity), options.scoring === "equal" ? ScoringEqual : layerGauntlet(spec.participation))

      const configFor = (name: string, identity: Identity, bucket: { own: BucketLocation; commitment: CommitmentLocation }): NodeConfig => ({
        name,
        spec,
        address,
        identity,
        ...bucket,
        stateDir: join(workDir, "nodes", name),
        shards,
        events: emit,
        stop: StopRule.FromStart({ windows: options.rounds }),
      })

      // Each validator stakes to hold a permit (validator 0 the most: it leads), then runs.
      const validatorCount = Math.max(1, options.validators ?? 1)
      const validatorFibers = new Map<number, Fiber.RuntimeFiber<void, RuntimeFailure>>()
      const startValidator = (index: number) =>
        Effect.gen(function* () {
          const name = `validator-${index}`
          const identity = yield* Effect.mapError(identityFromSecret(`//covenant-swarm-validator-${index}`), inPhase("identity"))
          const cfg = configFor(name, identity, yield* Effect.mapError(bucketOf(name, transport), inPhase("credentials")))
          const program = Effect.zipRight(ensureValidatorPermit(cfg, (validatorCount - index) * 1000), runValidator(cfg))
          const layer = options.evaluate === false ? nodeLayer(identity) : Layer.mergeAll(nodeLayer(identity), engineLayer)
          const fiber = yield* Effect.fork(Effect.annotateLogs(Effect.provide(program, layer), busyLabel, name))
          validatorFibers.set(index, fiber)
          return fiber
        })
      // Simulated, every node reaches the in-memory chain at once: the peers start (and register)
      // first, so the validator's first peer list names them as a wall-clock swarm's usually does.
      const simulated = options.clock === "simulated"
      const validator = simulated ? undefined : yield* startValidator(0)

      const peerFibers = new Map<number, Fiber.RuntimeFiber<void, RuntimeFailure>>()
      const startPeer = (index: number) =>
        Effect.gen(function* () {
          const identity = yield* Effect.mapError(identityFromSecret(`//covenant-swarm-peer-${index}`), inPhase("identity"))
          const behaviour = options.behaviours?.[index]
          const buckets = yield* Effect.mapError(bucketOf(`peer-${index}`, transport), inPhase("credentials"))
          const cfg = { ...configFor(`peer-${index}`, identity, buckets), ...(behaviour === undefined ? {} : { behaviour }) }
          const fiber = yield* Effect.fork(Effect.annotateLogs(Effect.provide(runPeer(cfg), Layer.mergeAll(nodeLayer(identity), engineLayer)), busyLabel, cfg.name))
          peerFibers.set(index, fiber)
        })
      for (let i = 0; i < options.peers; i++) yield* startPeer(i)
      if (simulated) yield* Effect.yieldNow()
      const validatorFiber = validator ?? (yield* startValidator(0))

      // An observer (no uid) follows the clock to apply churn at the right rounds.
      const observerIdentity = yield* Effect.mapError(identityFromSecret("//covenant-swarm-observer"), inPhase("identity"))
      const observe = <A>(effect: Effect.Effect<A, RuntimeFailure, Chain | Transport>) =>
        Effect.provide(effect, Layer.mergeAll(transportLayer, infra.chainFor(observerIdentity)))
      const start = yield* Effect.raceFirst(observe(awaitStart(address, spec)), Effect.flatMap(Fiber.join(validatorFiber), () => Effect.fail(new RuntimeError({ phase: "swarm", reason: "validator stopped before the start window" }))))
      // The other validators join the started run (they could take over its lead).
      for (let i = 1; i < validatorCount; i++) yield* startValidator(i)
      const pending = [...(options.churn ?? [])].sort((a, b) => a.round - b.round)
      const validatorsDone = () => [...validatorFibers.values()].every((f) => f.unsafePoll() !== null)
      while (pending.length > 0) {
        if (validatorsDone()) break
        const round = (yield* observe(currentWindow)) - start
        while (pending.length > 0 && pending[0]!.round <= round) {
          const action = pending.shift()!
          if ("validator" in action) {
            const fiber = validatorFibers.get(action.validator)
            if (action.action === "kill" && fiber !== undefined) {
              yield* Fiber.interrupt(fiber)
              validatorFibers.delete(action.validator)
            } else if (action.action === "start" && fiber === undefined) yield* startValidator(action.validator)
          } else if (action.action === "kill") {
            const fiber = peerFibers.get(action.peer)
            if (fiber !== undefined) {
              yield* Fiber.interrupt(fiber)
              peerFibers.delete(action.peer)
            }
          } else if (!peerFibers.has(action.peer)) yield* startPeer(action.peer)
        }
        yield* Effect.sleep(Duration.millis(pollMs(spec)))
      }
      for (const fiber of validatorFibers.values()) {
        const validatorExit = yield* Fiber.await(fiber)
        if (Exit.isFailure(validatorExit)) {
          yield* Effect.forEach([...peerFibers.values(), ...validatorFibers.values()], Fiber.interrupt, { discard: true })
          return yield* Effect.failCause(validatorExit.cause)
        }
      }
      // Peers stop after the same last window; a peer that failed fails the swarm.
      for (const fiber of peerFibers.values()) yield* Fiber.join(fiber)
      const windowsSpanMs = yield* observe(Effect.mapError(Effect.flatMap(Chain, (chain) =>
        Effect.all({ from: chain.windowStartTime(start), to: chain.windowStartTime(start + options.rounds) })), inPhase("clock")))
      return { startWindow: start, events, windowsSpanMs }
    }),
  )

export const runSwarm = (options: SwarmOptions): Effect.Effect<SwarmResult, RuntimeFailure> => {
  if (options.clock !== "simulated") return swarmProgram(options).pipe(Effect.withSpan("swarm"))
  if (options.transport !== undefined && options.transport.kind !== "fs") {
    return Effect.fail(new RuntimeError({ phase: "swarm", reason: "a simulated swarm runs on the in-memory store: the s3 transport is for wall-clock swarms" }))
  }
  return simulate(swarmProgram(options)).pipe(
    Effect.map((run): SwarmResult => ({ ...run.value, simulated: { elapsedMs: run.simulatedMs, advances: run.advances, busyMs: run.busyMs } })),
    Effect.withSpan("swarm"),
  )
}

/** The chain owned by this process, served on loopback (every node a client with its own hotkey), and the chosen store. */
const wallInfra = (spec: RunSpec, workDir: string, transport: SwarmTransport) =>
  Effect.gen(function* () {
    const chainDir = join(workDir, "chain")
    const ownerIdentity = yield* Effect.mapError(identityFromSecret("//covenant-swarm-chain"), inPhase("identity"))
    yield* Effect.mapError(
      Layer.build(layerLocal({ dir: chainDir, identity: ownerIdentity, params: chainParams(spec) })),
      inPhase("chain"),
    )
    const url = yield* Effect.mapError(readOwnerUrl(chainDir), inPhase("chain"))
    return {
      transport: transport.kind === "fs" ? layerFileSystem(join(workDir, "store")) : layerS3(transport.config),
      chainFor: (identity: Identity) => Layer.mapError(layerLocalClient(url, identity), inPhase("chain")),
    } satisfies SwarmInfra
  })

/** One in-memory chain and one in-memory store for every node, both on the (simulated) Clock. */
const simulatedInfra = (spec: RunSpec) =>
  Effect.map(openMemoryBackend({ params: chainParams(spec) }), (backend): SwarmInfra => ({
    transport: Layer.succeed(Transport, makeMemoryTransport()),
    chainFor: (identity) => layerLocalBackend(backend, identity),
  }))

/** The swarm's chain: the run's blocks, weights at any time, a permit for 1000 staked. */
const chainParams = (spec: RunSpec) => ({
  blockIntervalMs: spec.participation.blockTimeMs,
  blocksPerWindow: spec.participation.blocksPerWindow,
  weightsRateLimit: 0,
  permitStake: 1000,
})
