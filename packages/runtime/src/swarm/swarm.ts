/**
 * The in-process swarm: N peers and a validator in one process, each with its own engine, error
 * feedback, data assignment, identity, bucket and state folder, over the real transport layer
 * (filesystem or S3) and a real local chain (owned here, reached by every node over loopback,
 * blocks accelerated). Peers can be killed and (re)started at given rounds to exercise churn.
 */
import { mkdirSync } from "node:fs"
import { join } from "node:path"
import { Duration, Effect, Either, Exit, Fiber, Layer } from "effect"
import { identityFromSecret, layerLocal, layerLocalClient, readOwnerUrl } from "@covenant/chain"
import type { Chain, Commitment, Identity } from "@covenant/chain"
import type { RunSpec } from "@covenant/dsl"
import { EngineCpu, EngineWebGpu } from "@covenant/gpu-webgpu"
import type { Engine } from "@covenant/gpu-webgpu"
import { layerFileSystem, layerS3 } from "@covenant/transport"
import type { BucketLocation, S3TransportConfig, Transport } from "@covenant/transport"
import type { PeerBehaviour } from "../adversary/behaviour.ts"
import { RuntimeError, inPhase } from "../errors.ts"
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
import { openRunData } from "./data.ts"

/** s3: `config` holds the write key (never committed); `read` is the distinct pair nodes commit on chain. */
export type SwarmTransport = { readonly kind: "fs" } | { readonly kind: "s3"; readonly config: S3TransportConfig; readonly read: S3Keys }

/** Kill a running peer, or start one (again: it resumes from its state folder; new index: a joiner). */
export interface ChurnAction {
  /** Round of the run (0 = the start window) at which to act. */
  readonly round: number
  readonly action: "kill" | "start"
  readonly peer: number
}

export interface SwarmOptions {
  readonly spec: RunSpec
  readonly peers: number
  /** Windows to run from the start window. */
  readonly rounds: number
  /** Everything the run writes: chain, store, state folders, prepared data. */
  readonly workDir: string
  readonly transport?: SwarmTransport
  readonly backend?: "cpu" | "webgpu"
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
}

export interface SwarmResult {
  readonly startWindow: number
  readonly events: ReadonlyArray<NodeEvent>
}

const bucketOf = (name: string, transport: SwarmTransport): Either.Either<{ own: BucketLocation; commitment: Commitment }, WriteKeyCommitted> => {
  const bucket = `covenant-${name}`
  if (transport.kind === "fs") return Either.right({ own: { bucket }, commitment: { _tag: "Filesystem", dir: bucket } })
  return Either.map(s3Commitment(transport.config, bucket, transport.read, transport.config), (commitment) => ({ own: { bucket }, commitment }))
}

export const runSwarm = (options: SwarmOptions): Effect.Effect<SwarmResult, RuntimeError> =>
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

      // The chain: owned by this process, served on loopback; every node is a client with its own hotkey.
      const chainDir = join(workDir, "chain")
      const ownerIdentity = yield* Effect.mapError(identityFromSecret("//covenant-swarm-chain"), inPhase("identity"))
      const p = spec.participation
      yield* Effect.mapError(
        Layer.build(layerLocal({
          dir: chainDir,
          identity: ownerIdentity,
          params: { blockIntervalMs: p.blockTimeMs, blocksPerWindow: p.blocksPerWindow, weightsRateLimit: 0, permitStake: 1000 },
        })),
        inPhase("chain"),
      )
      const url = yield* Effect.mapError(readOwnerUrl(chainDir), inPhase("chain"))
      const transportLayer: Layer.Layer<Transport> = transport.kind === "fs" ? layerFileSystem(join(workDir, "store")) : layerS3(transport.config)
      const engineLayer: Layer.Layer<Engine, RuntimeError> = (options.backend ?? "cpu") === "webgpu"
        ? Layer.mapError(EngineWebGpu, (e) => new RuntimeError({ phase: "engine", reason: e._tag }))
        : EngineCpu
      const address = runAddress(spec)

      const nodeLayer = (identity: Identity) =>
        Layer.mergeAll(transportLayer, Layer.mapError(layerLocalClient(url, identity), inPhase("chain")), options.scoring === "equal" ? ScoringEqual : layerGauntlet(spec.participation))

      const configFor = (name: string, identity: Identity, bucket: { own: BucketLocation; commitment: Commitment }): NodeConfig => ({
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

      // The validator stakes to hold a permit (it is the only one, hence the leader), then runs.
      const validatorIdentity = yield* Effect.mapError(identityFromSecret("//covenant-swarm-validator-0"), inPhase("identity"))
      const validatorCfg = configFor("validator-0", validatorIdentity, yield* Effect.mapError(bucketOf("validator-0", transport), inPhase("credentials")))
      const validatorProgram = Effect.zipRight(ensureValidatorPermit(validatorCfg), runValidator(validatorCfg))
      const validatorLayer = options.evaluate === false
        ? nodeLayer(validatorIdentity)
        : Layer.mergeAll(nodeLayer(validatorIdentity), engineLayer)
      const validator = yield* Effect.fork(Effect.provide(validatorProgram, validatorLayer))

      const peerFibers = new Map<number, Fiber.RuntimeFiber<void, RuntimeError>>()
      const startPeer = (index: number) =>
        Effect.gen(function* () {
          const identity = yield* Effect.mapError(identityFromSecret(`//covenant-swarm-peer-${index}`), inPhase("identity"))
          const behaviour = options.behaviours?.[index]
          const buckets = yield* Effect.mapError(bucketOf(`peer-${index}`, transport), inPhase("credentials"))
          const cfg = { ...configFor(`peer-${index}`, identity, buckets), ...(behaviour === undefined ? {} : { behaviour }) }
          const fiber = yield* Effect.fork(Effect.provide(runPeer(cfg), Layer.mergeAll(nodeLayer(identity), engineLayer)))
          peerFibers.set(index, fiber)
        })
      for (let i = 0; i < options.peers; i++) yield* startPeer(i)

      // An observer (no uid) follows the clock to apply churn at the right rounds.
      const observerIdentity = yield* Effect.mapError(identityFromSecret("//covenant-swarm-observer"), inPhase("identity"))
      const observe = <A>(effect: Effect.Effect<A, RuntimeError, Chain | Transport>) =>
        Effect.provide(effect, Layer.mergeAll(transportLayer, Layer.mapError(layerLocalClient(url, observerIdentity), inPhase("chain"))))
      const start = yield* Effect.raceFirst(observe(awaitStart(address, spec)), Effect.flatMap(Fiber.join(validator), () => Effect.fail(new RuntimeError({ phase: "swarm", reason: "validator stopped before the start window" }))))
      const pending = [...(options.churn ?? [])].sort((a, b) => a.round - b.round)
      while (pending.length > 0) {
        const exit = validator.unsafePoll()
        if (exit !== null) break
        const round = (yield* observe(currentWindow)) - start
        while (pending.length > 0 && pending[0]!.round <= round) {
          const action = pending.shift()!
          if (action.action === "kill") {
            const fiber = peerFibers.get(action.peer)
            if (fiber !== undefined) {
              yield* Fiber.interrupt(fiber)
              peerFibers.delete(action.peer)
            }
          } else if (!peerFibers.has(action.peer)) yield* startPeer(action.peer)
        }
        yield* Effect.sleep(Duration.millis(pollMs(spec)))
      }
      const validatorExit = yield* Fiber.await(validator)
      if (Exit.isFailure(validatorExit)) {
        yield* Effect.forEach(peerFibers.values(), Fiber.interrupt, { discard: true })
        return yield* Effect.failCause(validatorExit.cause)
      }
      // Peers stop after the same last window; a peer that failed fails the swarm.
      for (const fiber of peerFibers.values()) yield* Fiber.join(fiber)
      return { startWindow: start, events }
    }),
  ).pipe(Effect.withSpan("swarm"))
